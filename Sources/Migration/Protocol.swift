internal import Foundation
public import Registry

/// The line-delimited JSON protocol between the source and target halves (one object per line).
public enum MigrationProtocol {
    /// Bumped on any incompatible change; both halves refuse another version.
    public static let version = 1
}

/// What the source sends.
public struct MigrationRequest: Codable, Sendable, Equatable {
    /// `hello`, `check`, `prepare`, `commit`, `abort`, `status`.
    public var type: String
    public var version: Int?
    public var migrationID: String?
    public var sourceHost: String?
    public var guest: GuestPackage?
    /// For `copy`: the target path and the source's size; for `data`: offset and length; for
    /// `end`: the checksum.
    public var path: String?
    public var size: Int64?
    public var offset: Int64?
    public var length: Int?
    public var sha256: String?

    public init(type: String, version: Int? = nil, migrationID: String? = nil, sourceHost: String? = nil, guest: GuestPackage? = nil) {
        self.type = type
        self.version = version
        self.migrationID = migrationID
        self.sourceHost = sourceHost
        self.guest = guest
    }
}

/// The guest as the source describes it to the target.
public struct GuestPackage: Codable, Sendable, Equatable {
    /// The guest's name on the target (`-N`, or the source name).
    public var name: String
    public var vcpus: Int
    public var memoryMB: Int
    public var label: String?
    public var osType: String?
    public var resources: [MigratingResource]
    /// For each resource, the statement given with `-m` for it, if any.
    public var overrides: [String?]
    /// `-t`: use the target path that has each LUN's WWID.
    public var translate: Bool
    /// For each resource, whether `-m … -C` copies its data to the target.
    public var copies: [Bool] = []
    /// The source's vswitches and their IPv4 subnets.
    public var networks: [String: [String]]
}

/// One finding of the target's checks.
public struct Finding: Codable, Sendable, Equatable {
    /// `storage`, `das`, `restricted`, `vswitch`, `name`, `resources`.
    public var kind: String
    /// HPVM's message for the class, when it has one.
    public var message: String
    public var detail: String
}

/// What the target answers.
public struct MigrationReply: Codable, Sendable, Equatable {
    /// `hello`, `report`, `prepared`, `committed`, `aborted`, `status`, `error`.
    public var type: String
    public var version: Int?
    public var host: String?
    public var errors: [Finding]?
    public var warnings: [Finding]?
    /// For each resource, the statement it becomes on the target.
    public var map: [String]?
    public var phase: String?
    public var message: String?
    public var sha256: String?

    public init(type: String) { self.type = type }
}

enum JSONLine {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ line: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(line.utf8))
    }
}
