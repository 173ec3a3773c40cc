public import SSH

/// Where the migration key and known_hosts live and how to log in: the settings hpvmmigrate reads
/// (DESIGN.md §5), so that what hpvmsshsetup sets up is what hpvmmigrate uses.
public struct SSHSetupSettings: Sendable, Equatable {
    public var home: String
    /// The private key hpvmmigrate logs in with; made (ed25519) when missing.
    public var identity: String
    public var knownHosts: String
    public var port: Int = 22
    public var user: String = "root"

    public init(home: String, identity: String, knownHosts: String, port: Int = 22, user: String = "root") {
        self.home = home
        self.identity = identity
        self.knownHosts = knownHosts
        self.port = port
        self.user = user
    }

    /// `HPVM_SSH_IDENTITY` (default `~/.ssh/id_ed25519`, the first key hpvmmigrate tries),
    /// `HPVM_SSH_KNOWN_HOSTS` (default `~/.ssh/known_hosts`), `HPVM_SSH_PORT`, `HPVM_SSH_USER`.
    public static func fromEnvironment(_ environment: [String: String]) throws(SetupError) -> SSHSetupSettings {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/root"
        var settings = SSHSetupSettings(
            home: home,
            identity: environment["HPVM_SSH_IDENTITY"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.ssh/id_ed25519",
            knownHosts: environment["HPVM_SSH_KNOWN_HOSTS"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.ssh/known_hosts")
        if let port = environment["HPVM_SSH_PORT"] {
            guard let value = Int(port), (1...65535).contains(value) else {
                throw SetupError(.usage, "HPVM_SSH_PORT='\(SetupInput.show(port))' is not a port number (1-65535).")
            }
            settings.port = value
        }
        if let user = environment["HPVM_SSH_USER"], !user.isEmpty { settings.user = user }
        return settings
    }

    /// How known_hosts names `host`: `host`, or `[host]:port` off port 22.
    public func knownHostsName(_ host: String) -> String { port == 22 ? host : "[\(host)]:\(port)" }

    /// The configuration hpvmmigrate would use for `host` with these settings.
    public func configuration(host: String) -> SSHConfiguration {
        var configuration = SSHConfiguration(host: host, port: port, user: user, identities: [identity], knownHosts: knownHosts)
        configuration.home = home
        configuration.timeoutMilliseconds = 10_000
        return configuration
    }
}

/// Appending accepted host keys to a known_hosts file, as `ssh-keyscan >> known_hosts` would.
enum KnownHostsFile {
    static func append(_ keys: [HostKey], name: String, to path: String) throws(SetupError) {
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !folder.isEmpty && access(folder, F_OK) != 0 && mkdir(folder, 0o700) != 0 {
            throw SetupError(.failed, "cannot make the folder \(folder) for \(path).")
        }
        var text = keys.map { $0.line(name: name) }.joined(separator: "\n") + "\n"
        if let existing = FileText.read(path), !existing.isEmpty, !existing.hasSuffix("\n") { text = "\n" + text }
        try FileText.write(text, to: path, append: true, mode: 0o644)
    }
}

#if canImport(Glibc)
internal import Glibc
#endif
