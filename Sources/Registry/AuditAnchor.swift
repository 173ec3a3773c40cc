internal import CSysLog
#if canImport(Glibc)
internal import Glibc
#endif

/// The id and hash of an audit row: the head of the log when it is the last row.
public struct AuditHead: Sendable, Equatable, CustomStringConvertible {
    public let id: Int64
    public let hash: String

    public init(id: Int64, hash: String) {
        self.id = id
        self.hash = hash
    }

    /// `ID:HASH`, as `hpvmaudit head` prints it and `verify --head` reads it.
    public var description: String { "\(id):\(hash)" }

    /// Parses `ID:HASH` (a positive id, 64 hex digits).
    public static func parse(_ text: String) throws(RegistryError) -> AuditHead {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let id = Int64(parts[0]), id > 0, parts[1].utf8.count == 64,
            parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) })
        else {
            throw RegistryError(
                .badSpec, "head '\(Display.safe(text))' must be ID:HASH, a row number and 64 hex digits, as hpvmaudit head prints it.")
        }
        return AuditHead(id: id, hash: parts[1].lowercased())
    }
}

/// Where each write's new audit head goes once the write has committed: a copy outside the
/// registry file, which someone able to rewrite the file alone cannot rewrite.
///
/// `system` sends it with `syslog(3)` (facility `LOG_AUTHPRIV`, the command's name as identity).
/// When `HPVM_AUDIT_SYSLOG_SOCKET` names a Unix datagram socket, the same message goes there
/// instead, in the syslog wire format (`<PRI>TIMESTAMP ident[pid]: message`): tests serve
/// such a socket and never depend on the machine's own journal.
public struct AuditAnchor: Sendable {
    let sink: (@Sendable (_ message: String) -> Void)?

    /// Sends nothing (tests, and the library used without a command).
    public static let none = AuditAnchor(sink: nil)

    /// The system log, as `identity`.
    public static func system(identity: String) -> AuditAnchor {
        let socketPath = getenv("HPVM_AUDIT_SYSLOG_SOCKET").map { String(cString: $0) }
        return AuditAnchor(sink: { message in
            if let socketPath, !socketPath.isEmpty {
                sendDatagram(socketPath, identity: identity, message: message)
            } else {
                identity.withCString { ident in
                    openlog(ident, LOG_PID, LOG_AUTHPRIV)
                    hpvm_syslog(LOG_AUTHPRIV | LOG_NOTICE, message)
                    closelog()
                }
            }
        })
    }

    /// An anchor that hands each message to `body` (tests).
    public static func custom(_ body: @escaping @Sendable (String) -> Void) -> AuditAnchor { AuditAnchor(sink: body) }

    var isActive: Bool { sink != nil }

    /// The marker `hpvmaudit verify --from-log` looks for.
    static let marker = "hpvm-audit-head"

    /// `hpvm-audit-head id=12 hash=… registry=/var/… command=hpvmdevmgmt -a …`
    static func message(head: AuditHead, registry: String, command: String) -> String {
        "\(marker) id=\(head.id) hash=\(head.hash) registry=\(ShellQuote.quote(registry)) command=\(Display.safe(command, limit: 200))"
    }

    func send(head: AuditHead, registry: String, command: String) {
        sink?(Self.message(head: head, registry: registry, command: command))
    }

    private static func sendDatagram(_ path: String, identity: String, message: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // A full log socket may delay a command by two seconds at most, never hang it.
        var limit = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let text = "<\(LOG_AUTHPRIV | LOG_NOTICE)>\(AuditContext.utcNow()) \(identity)[\(getpid())]: \(message)"
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                text.withCString { sendto(fd, $0, strlen($0), 0, sa, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
    }
}

/// One place where the log and the registry part: the audit row (or 0 for a table row) and what is wrong.
public struct AuditFinding: Sendable, Equatable {
    /// The first audit row concerned, 0 when the finding is about a table row alone.
    public let row: Int64
    public let message: String
}
