#if canImport(Glibc)
internal import Glibc
#endif

/// OpenSSH's own programs, run by absolute path with an argument vector (posix_spawn), never
/// through a shell: `ssh-keygen`, `ssh-keyscan`, `ssh-copy-id`.
public struct OpenSSHTools: Sendable {
    public var keygen = "/usr/bin/ssh-keygen"
    public var keyscan = "/usr/bin/ssh-keyscan"
    public var copyID = "/usr/bin/ssh-copy-id"
    /// HOME for the children (where ssh-copy-id keeps its scratch folder).
    public var home: String
    /// Seconds ssh-keyscan waits for a host.
    public var scanTimeout = 10

    public init(home: String) { self.home = home }

    /// What a finished program printed and returned.
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    // MARK: - Keys

    /// Makes an ed25519 key pair at `path` (no passphrase) when there is no key there; returns the
    /// public key line and whether it was made. The corresponding program is `ssh-keygen`.
    func ensureKey(at path: String, comment: String) throws(SetupError) -> (publicKey: String, made: Bool) {
        var made = false
        if access(path, F_OK) != 0 {
            let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            if !folder.isEmpty && access(folder, F_OK) != 0 && mkdir(folder, 0o700) != 0 {
                throw SetupError(.failed, "cannot make the folder \(folder) for the key \(path): \(String(cString: strerror(errno))).")
            }
            let made_ = try run(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
            guard made_.status == 0 else {
                throw SetupError(.failed, "ssh-keygen could not make \(path): \(made_.stderr.trimmed)")
            }
            made = true
        }
        var publicKey = FileText.read(path + ".pub")?.trimmed ?? ""
        if publicKey.isEmpty {
            let derived = try run(keygen, ["-y", "-f", path])
            guard derived.status == 0 else {
                throw SetupError(
                    .failed, "cannot read the public half of \(path) (no \(path).pub, and ssh-keygen -y failed: \(derived.stderr.trimmed)).")
            }
            publicKey = derived.stdout.trimmed
        }
        if publicKey.hasPrefix("ssh-rsa ") {
            throw SetupError(
                .refused,
                "\(path) is an RSA key: libssh2 1.10, which hpvmmigrate uses, signs RSA only with SHA-1, which OpenSSH 8.8 and later refuse. Give -i a path where no key exists yet (for example \(String(path.dropLast(path.hasSuffix("id_rsa") ? 6 : 0)))\(path.hasSuffix("id_rsa") ? "id_ed25519" : "_ed25519")) and hpvmsshsetup makes an ed25519 key there.")
        }
        return (publicKey, made)
    }

    /// The host keys `host` presents, as ssh-keyscan reads them. The corresponding program is `ssh-keyscan`.
    func scan(_ host: String, port: Int) throws(SetupError) -> [HostKey] {
        let result = try run(keyscan, ["-T", String(scanTimeout), "-p", String(port), "--", host])
        return HostKey.parse(result.stdout)
    }

    /// The entries known_hosts has for `name` (`host` or `[host]:port`), hashed or not.
    /// The corresponding program is `ssh-keygen -F`.
    func knownKeys(_ name: String, in knownHosts: String) throws(SetupError) -> [HostKey] {
        guard access(knownHosts, F_OK) == 0 else { return [] }
        let result = try run(keygen, ["-F", name, "-f", knownHosts])
        return HostKey.parse(result.stdout)
    }

    /// `ssh-keygen -l` fingerprints of `keys`, one line each (`256 SHA256:… host (ED25519)`).
    func fingerprints(_ keys: [HostKey], name: String) throws(SetupError) -> [String] {
        let folder = try Scratch.make()
        defer { Scratch.remove(folder) }
        let file = folder + "/keys"
        try FileText.write(keys.map { $0.line(name: name) }.joined(separator: "\n") + "\n", to: file)
        let result = try run(keygen, ["-l", "-E", "sha256", "-f", file])
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// Installs the public key in `publicKeyLine` in `user@host`'s authorized_keys with
    /// `ssh-copy-id -f`, checking the host key against `knownHosts` only.
    ///
    /// - Parameters:
    ///   - authenticateWith: a private key to log in with instead of asking for a password
    ///     (`-o IdentityFile=… -o IdentitiesOnly=yes -o BatchMode=yes`); nil lets ssh ask.
    func copyID(
        _ publicKeyLine: String, host: String, port: Int, user: String, knownHosts: String, authenticateWith: String?
    ) throws(SetupError) -> Result {
        let folder = try Scratch.make()
        defer { Scratch.remove(folder) }
        let file = folder + "/key.pub"
        try FileText.write(publicKeyLine + "\n", to: file)
        var arguments = ["-f", "-i", file, "-p", String(port),
                         "-o", "UserKnownHostsFile=\(knownHosts)", "-o", "StrictHostKeyChecking=yes",
                         "-o", "ConnectTimeout=\(scanTimeout)"]
        if let authenticateWith {
            arguments += ["-o", "IdentityFile=\(authenticateWith)", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        }
        arguments.append("\(user)@\(host)")
        return try run(copyID, arguments, interactive: authenticateWith == nil)
    }

    // MARK: - Running

    /// Runs `path` with `arguments` to its end. Non-interactive runs read /dev/null and have their
    /// output captured; interactive ones share the terminal (ssh asks for the password there) and
    /// send their output to standard error.
    func run(_ path: String, _ arguments: [String], interactive: Bool = false) throws(SetupError) -> Result {
        let folder = try Scratch.make()
        defer { Scratch.remove(folder) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if interactive {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, folder + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, folder + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let environment: [String] = ["PATH=/usr/bin:/bin", "HOME=\(home)", "LC_ALL=C"]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard rc == 0 else {
            throw SetupError(.failed, "cannot run \(path): \(String(cString: strerror(rc))). Install openssh-client.")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: FileText.read(folder + "/out") ?? "", stderr: FileText.read(folder + "/err") ?? "")
    }
}

/// Temporary folders for the tools' output and key files, mode 0700.
enum Scratch {
    static func make() throws(SetupError) -> String {
        var template = Array("/tmp/hpvmsshsetup.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SetupError(.failed, "cannot make a temporary folder: \(String(cString: strerror(errno))).")
        }
        return String(cString: made)
    }

    static func remove(_ folder: String) {
        for name in ["out", "err", "keys", "key.pub"] { unlink(folder + "/" + name) }
        rmdir(folder)
    }
}

/// Whole small text files.
enum FileText {
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 65536) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ text: String, to path: String, append: Bool = false, mode: mode_t = 0o600) throws(SetupError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), mode)
        guard fd >= 0 else { throw SetupError(.failed, "cannot write \(path): \(String(cString: strerror(errno))).") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SetupError(.failed, "cannot write \(path): \(String(cString: strerror(errno))).") }
            offset += n
        }
    }
}

extension String {
    var trimmed: String {
        var scalars = Substring(self)
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        return String(scalars)
    }
}
