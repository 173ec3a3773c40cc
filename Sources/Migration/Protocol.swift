internal import Foundation
public import Registry

/// The line-delimited JSON protocol between the source and target halves (one object per line).
public enum MigrationProtocol {
    /// Bumped on any incompatible change; both halves refuse another version.
    /// Online migration (`-o`: `incoming`, `stream`, `arrival`) and `boot` (`-b`) were added to
    /// version 1 without a change to what was there: a target without them refuses them, and the
    /// migration rolls back.
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
    /// For `commit` and `abort`: the guest's name on the target (`guest` carries it too, from
    /// sources of an earlier release; one of the two must be there).
    public var guestName: String?
    /// For `copy`: the target path and the source's size; for `data`: offset and length; for
    /// `end`: the checksum.
    public var path: String?
    public var size: Int64?
    public var offset: Int64?
    public var length: Int?
    public var sha256: String?
    /// For an online migration's `commit`: the version of the guest's fleet lease as the source
    /// released it; the target takes the lease only at that version.
    public var leaseVersion: UInt64?

    public init(
        type: String, version: Int? = nil, migrationID: String? = nil, sourceHost: String? = nil, guest: GuestPackage? = nil,
        guestName: String? = nil
    ) {
        self.type = type
        self.version = version
        self.migrationID = migrationID
        self.sourceHost = sourceHost
        self.guest = guest
        self.guestName = guestName
    }

    /// A request of a type of the protocol.
    public init(
        _ type: RequestType, version: Int? = nil, migrationID: String? = nil, sourceHost: String? = nil, guest: GuestPackage? = nil,
        guestName: String? = nil
    ) {
        self.init(type: type.rawValue, version: version, migrationID: migrationID, sourceHost: sourceHost, guest: guest, guestName: guestName)
    }

    /// The request's type; nil for one the protocol does not have (the decoder refuses those).
    public var kind: RequestType? { RequestType(rawValue: type) }

    /// The guest's name on the target, for `commit` and `abort`.
    public var targetGuestName: String? { guestName ?? guest?.name }
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
    /// The migration that brought the guest to the source, when it comes back: the target's Not
    /// Runnable copy that migration left is the one it returns to.
    public var returning: String? = nil    /// `-o`: the guest runs and moves running; the target also checks that it can run it now.
    public var online: Bool? = nil
    /// The guest's UUID, which it keeps on the target (its fleet lease is named by it).
    public var uuid: String? = nil
}

/// One finding of the target's checks.
public struct Finding: Codable, Sendable, Equatable {
    /// `storage`, `das`, `restricted`, `vswitch`, `name`, `resources`.
    public var kind: String
    /// HPVM's message for the class, when it has one.
    public var message: String
    public var detail: String
    /// Whether `-F` goes ahead despite this error (the target decides; absent means no): a WWID
    /// that does not match at an existing path, a vswitch whose subnets differ, too little memory.
    public var forceable: Bool?

    public init(kind: String, message: String, detail: String, forceable: Bool = false) {
        self.kind = kind
        self.message = message
        self.detail = detail
        self.forceable = forceable
    }
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
    /// For `status`: the migration's last phase on the target (`none`: no record of it).
    public var phase: MigrationPhase?
    public var message: String?
    public var sha256: String?
    /// For `status` of an online migration past `source-stopped`: the fleet lease's version the
    /// source released.
    public var leaseVersion: UInt64?

    public init(type: String) { self.type = type }

    /// An answer of a type of the protocol.
    public init(_ type: ReplyType) { self.type = type.rawValue }

    /// The answer's type; nil for one the protocol does not have (the decoder refuses those).
    public var kind: ReplyType? { ReplyType(rawValue: type) }
}

/// What the source may send, by its wire name.
public enum RequestType: String, Sendable, CaseIterable {
    case hello, check, copy, data, end, prepare, commit, abort, status, bye
    /// Online: start the prepared guest's QEMU paused, waiting for the stream.
    case incoming
    /// Online, on a second channel: the rest of this channel is the stream, for the waiting QEMU.
    case stream
    /// Online: wait until the waiting QEMU has the whole stream.
    case arrival
    /// `-b`: start the committed guest.
    case boot

    /// The one reply type that answers this request (`error` aside); nil for `data`, which has none.
    public var answer: ReplyType? {
        switch self {
        case .hello: .hello
        case .check: .report
        case .copy: .copying
        case .data: nil
        case .end: .copied
        case .prepare: .prepared
        case .commit: .committed
        case .abort: .aborted
        case .status: .status
        case .bye: .bye
        case .incoming: .listening
        case .stream: .streaming
        case .arrival: .arrived
        case .boot: .booted
        }
    }
}

/// What the target may answer, by its wire name.
public enum ReplyType: String, Sendable, CaseIterable {
    case hello, report, copying, copied, prepared, committed, aborted, status, bye, error
    case listening, streaming, arrived, booted
}

/// A line that is not hpvmmigrate's protocol: not JSON, a field missing or of the wrong type, an
/// unknown message type, or an answer that does not answer the request.
public struct ProtocolViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// Strict decoding of every protocol message (issue 8 row 8): a message is accepted only when it
/// is a JSON object of a known type that carries every field that type needs, with the right JSON
/// type. Fields a type does not use are ignored.
public enum ProtocolDecoder {
    /// The longest line either half accepts, in bytes (data travels as raw bytes, not in lines).
    public static let lineLimit = 1 << 20

    public static func request(_ line: String) throws(ProtocolViolation) -> MigrationRequest {
        let request: MigrationRequest = try decode(line)
        guard let type = RequestType(rawValue: request.type) else {
            throw ProtocolViolation(reason: "unknown request type '\(Self.shown(request.type))'")
        }
        func need(_ present: Bool, _ field: String) throws(ProtocolViolation) {
            if !present { throw ProtocolViolation(reason: "'\(type.rawValue)' without '\(field)'") }
        }
        switch type {
        case .hello:
            try need(request.version != nil, "version")
        case .check, .prepare:
            try need(request.migrationID != nil, "migrationID")
            try need(request.sourceHost != nil, "sourceHost")
            try need(request.guest != nil, "guest")
            if let guest = request.guest {
                guard guest.overrides.count == guest.resources.count, guest.copies.count == guest.resources.count else {
                    throw ProtocolViolation(reason: "'\(type.rawValue)' whose guest has \(guest.resources.count) resources but \(guest.overrides.count) overrides and \(guest.copies.count) copy flags")
                }
                guard guest.vcpus > 0, guest.memoryMB > 0 else {
                    throw ProtocolViolation(reason: "'\(type.rawValue)' of a guest with \(guest.vcpus) vCPUs and \(guest.memoryMB) MB")
                }
            }
        case .commit, .abort, .incoming, .stream, .arrival, .boot:
            try need(request.migrationID != nil, "migrationID")
            try need(request.guestName != nil || request.guest != nil, "guestName")
            if let name = request.guestName {
                guard !name.isEmpty else { throw ProtocolViolation(reason: "'\(type.rawValue)' with an empty 'guestName'") }
            }
        case .status:
            try need(request.migrationID != nil, "migrationID")
        case .copy:
            try need(request.migrationID != nil, "migrationID")
            try need(request.path != nil, "path")
            try need(request.size != nil, "size")
        case .data:
            try need(request.offset != nil, "offset")
            try need(request.length != nil, "length")
        case .end:
            try need(request.sha256 != nil, "sha256")
        case .bye:
            break
        }
        return request
    }

    /// The answer to a request of type `request`: that request's one reply type, or `error`.
    public static func reply(_ line: String, to request: RequestType) throws(ProtocolViolation) -> MigrationReply {
        let reply: MigrationReply = try decode(line)
        guard let type = ReplyType(rawValue: reply.type) else {
            throw ProtocolViolation(reason: "unknown answer type '\(Self.shown(reply.type))' to '\(request.rawValue)'")
        }
        func need(_ present: Bool, _ field: String) throws(ProtocolViolation) {
            if !present { throw ProtocolViolation(reason: "'\(type.rawValue)' without '\(field)'") }
        }
        if type == .error {
            try need(reply.message != nil, "message")
            return reply
        }
        guard type == request.answer else {
            throw ProtocolViolation(reason: "'\(type.rawValue)' in answer to '\(request.rawValue)'")
        }
        switch type {
        case .hello:
            try need(reply.version != nil, "version")
        case .report:
            try need(reply.errors != nil, "errors")
            try need(reply.warnings != nil, "warnings")
            try need(reply.map != nil, "map")
        case .status:
            try need(reply.phase != nil, "phase")
        case .copied:
            try need(reply.sha256 != nil, "sha256")
        default:
            break
        }
        return reply
    }

    static func decode<T: Decodable>(_ line: String) throws(ProtocolViolation) -> T {
        guard line.utf8.count <= lineLimit else { throw ProtocolViolation(reason: "a line longer than \(lineLimit) bytes") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(line.utf8))
        } catch DecodingError.keyNotFound(let key, _) {
            throw ProtocolViolation(reason: "a message without '\(key.stringValue)'")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw ProtocolViolation(reason: "a field of the wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            // A value of a closed vocabulary (a phase) that this protocol does not have.
            throw ProtocolViolation(reason: "an unknown value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch {
            throw ProtocolViolation(reason: "not a JSON object: \(Self.shown(String(line.prefix(80))))")
        }
    }

    /// A value from the peer, safe to print (no control characters, at most 80 characters).
    static func shown(_ value: String) -> String {
        String(String(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) }).prefix(80))
    }
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

// MARK: - One type per message

/// A request as the target half acts on it: one case per message type, each with the fields that
/// type needs, present and typed (``ProtocolDecoder/message(_:)`` builds it or refuses the line).
public enum Request: Sendable, Equatable {
    /// Both halves say which protocol version they speak.
    public struct Hello: Sendable, Equatable {
        public let version: Int
        public let sourceHost: String?
    }

    /// `check` and `prepare`: the arriving guest, as the source describes it.
    public struct Arrival: Sendable, Equatable {
        public let migrationID: String
        public let sourceHost: String
        public let guest: GuestPackage
    }

    /// `commit` and `abort`: the migration, and the guest's name on the target.
    public struct Settle: Sendable, Equatable {
        public let migrationID: String
        public let guestName: String
        public let sourceHost: String?
        /// `commit` of an online migration: the fleet lease's version the source released.
        public var leaseVersion: UInt64? = nil
    }

    /// `status`: how far a migration got on the host asked.
    public struct Status: Sendable, Equatable {
        public let migrationID: String
    }

    /// `copy`: a copy of `size` bytes into `path` starts.
    public struct Copy: Sendable, Equatable {
        public let migrationID: String
        public let path: String
        public let size: Int64
    }

    /// `data`: `length` raw bytes for `offset` follow the line.
    public struct Data: Sendable, Equatable {
        public let offset: Int64
        public let length: Int
    }

    /// `end`: the copy is over; the source's checksum of the whole content.
    public struct End: Sendable, Equatable {
        public let sha256: String
    }

    case hello(Hello)
    case check(Arrival)
    case prepare(Arrival)
    case commit(Settle)
    case abort(Settle)
    case status(Status)
    case copy(Copy)
    case data(Data)
    case end(End)
    case bye
    case incoming(Settle)
    case stream(Settle)
    case arrival(Settle)
    case boot(Settle)

    public var type: RequestType {
        switch self {
        case .hello: .hello
        case .check: .check
        case .prepare: .prepare
        case .commit: .commit
        case .abort: .abort
        case .status: .status
        case .copy: .copy
        case .data: .data
        case .end: .end
        case .bye: .bye
        case .incoming: .incoming
        case .stream: .stream
        case .arrival: .arrival
        case .boot: .boot
        }
    }
}

extension ProtocolDecoder {
    /// A request line as its typed message: ``request(_:)``'s strict checks, then the one case of
    /// ``Request`` its type names, every field it needs unwrapped.
    public static func message(_ line: String) throws(ProtocolViolation) -> Request {
        let request = try request(line)
        // request(_:) has checked that each field used below is there for this type.
        func missing(_ field: String) -> ProtocolViolation { ProtocolViolation(reason: "'\(request.type)' without '\(field)'") }
        func id() throws(ProtocolViolation) -> String {
            guard let id = request.migrationID else { throw missing("migrationID") }
            return id
        }
        func arrival() throws(ProtocolViolation) -> Request.Arrival {
            guard let sourceHost = request.sourceHost else { throw missing("sourceHost") }
            guard let guest = request.guest else { throw missing("guest") }
            return Request.Arrival(migrationID: try id(), sourceHost: sourceHost, guest: guest)
        }
        func settle() throws(ProtocolViolation) -> Request.Settle {
            guard let name = request.targetGuestName else { throw missing("guestName") }
            return Request.Settle(migrationID: try id(), guestName: name, sourceHost: request.sourceHost, leaseVersion: request.leaseVersion)
        }
        switch RequestType(rawValue: request.type) {
        case .hello:
            guard let version = request.version else { throw missing("version") }
            return .hello(Request.Hello(version: version, sourceHost: request.sourceHost))
        case .check: return .check(try arrival())
        case .prepare: return .prepare(try arrival())
        case .commit: return .commit(try settle())
        case .abort: return .abort(try settle())
        case .status: return .status(Request.Status(migrationID: try id()))
        case .copy:
            guard let path = request.path else { throw missing("path") }
            guard let size = request.size else { throw missing("size") }
            return .copy(Request.Copy(migrationID: try id(), path: path, size: size))
        case .data:
            guard let offset = request.offset else { throw missing("offset") }
            guard let length = request.length else { throw missing("length") }
            return .data(Request.Data(offset: offset, length: length))
        case .end:
            guard let sha256 = request.sha256 else { throw missing("sha256") }
            return .end(Request.End(sha256: sha256))
        case .bye: return .bye
        case .incoming: return .incoming(try settle())
        case .stream: return .stream(try settle())
        case .arrival: return .arrival(try settle())
        case .boot: return .boot(try settle())
        case nil: throw ProtocolViolation(reason: "unknown request type '\(shown(request.type))'")
        }
    }
}
