internal import Foundation

/// The peer half (`hpvmsshsetup --peer`, run over SSH on each named host with `-r`) and the
/// orchestrating half speak one JSON request and one JSON answer per line. Host names, keys and
/// paths travel only here, never on the remote command line.
enum PeerProtocol {
    static let version = 1

    struct Peer: Codable, Sendable {
        var host: String
        /// The host keys the operator accepted for `host`; nil in a `check`.
        var keys: [HostKey]?
    }

    struct Request: Codable, Sendable {
        var version: Int = PeerProtocol.version
        /// `trust`: make the key, add the accepted host keys of `peers`, check each; `check`: check only.
        var op: String
        /// The key and known_hosts paths when the operator named them; nil for the peer's defaults.
        var identity: String?
        var knownHosts: String?
        var port: Int
        var user: String
        var peers: [Peer]
        /// How the operator accepted the keys (`-y` or `prompt`) and where, for the peer's audit log.
        var accepted: String
        var origin: String
    }

    struct PeerResult: Codable, Sendable {
        var host: String
        var cell: TrustCell
        /// `added`, `known`, `changed`, `unreachable`, `different` (the peer sees other keys than the operator accepted).
        var hostKeys: String?
        /// The peer's address toward `host`, for `from=`.
        var source: String?
    }

    struct Response: Codable, Sendable {
        var version: Int = PeerProtocol.version
        var error: String?
        var host: String
        var publicKey: String?
        var results: [PeerResult]
    }

    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ line: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(line.utf8))
    }
}
