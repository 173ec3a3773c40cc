public import SSH

/// One cell of the final table: whether `from` can reach `to` as hpvmmigrate does.
public struct TrustCell: Sendable, Codable, Equatable {
    /// `ok`, or a short name of what is missing (`host key unknown`, `key refused`, …).
    public let state: String
    /// SSH's full message, when it failed.
    public let message: String?
    /// The `hpvmsshsetup` command line that fixes it, when there is one.
    public let fix: String?

    public var ok: Bool { state == "ok" }

    public init(state: String, message: String? = nil, fix: String? = nil) {
        self.state = state
        self.message = message
        self.fix = fix
    }
}

/// The SSH check `hpvmmigrate -s` makes before anything else: one libssh2 session, the host key
/// checked against known_hosts, public-key login only (``SSHSession/connect(_:)``).
public enum TrustCheck {
    public static func check(_ configuration: SSHConfiguration) -> (cell: TrustCell, code: SSHError.Code?) {
        do {
            let session = try SSHSession.connect(configuration)
            session.disconnect()
            return (TrustCell(state: "ok"), nil)
        } catch {
            return (TrustCell(state: state(error.code), message: error.message, fix: configuration.setupAdvice(for: error)), error.code)
        }
    }

    static func state(_ code: SSHError.Code) -> String {
        switch code {
        case .hostKeyUnknown: return "host key unknown"
        case .hostKeyMismatch: return "host key changed"
        case .authentication: return "key refused"
        case .rsaRefused: return "RSA key"
        case .noKey: return "no key"
        case .noPublicKey: return "no public keys"
        case .connect, .resolve, .timeout: return "unreachable"
        default: return "ssh failed"
        }
    }
}
