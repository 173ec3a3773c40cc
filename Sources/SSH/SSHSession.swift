internal import CLibSSH2
#if canImport(Glibc)
internal import Glibc
#endif

/// Where and as whom to connect. Every field has an option and an environment variable
/// (DESIGN.md §5): `HPVM_SSH_USER`, `HPVM_SSH_PORT`, `HPVM_SSH_IDENTITY`, `HPVM_SSH_KNOWN_HOSTS`.
public struct SSHConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int = 22
    public var user: String = "root"
    /// Private key files to try, in order.
    public var identities: [String]
    public var knownHosts: String
    /// Milliseconds to wait for the connection and for each answer.
    public var timeoutMilliseconds: Int = 30_000
    /// The home folder the defaults came from (`~/.ssh/...`), when they came from the environment.
    public var home: String?

    public init(host: String, port: Int = 22, user: String = "root", identities: [String], knownHosts: String) {
        self.host = host
        self.port = port
        self.user = user
        self.identities = identities
        self.knownHosts = knownHosts
    }

    /// The configuration for `host` from the environment, with OpenSSH's defaults under `~/.ssh`.
    public static func fromEnvironment(host: String, environment: [String: String]) throws(SSHError) -> SSHConfiguration {
        let home = environment["HOME"] ?? "/root"
        var configuration = SSHConfiguration(
            host: host,
            identities: environment["HPVM_SSH_IDENTITY"].map { [$0] }
                ?? ["id_ed25519", "id_ecdsa", "id_rsa"].map { "\(home)/.ssh/\($0)" },
            knownHosts: environment["HPVM_SSH_KNOWN_HOSTS"] ?? "\(home)/.ssh/known_hosts")
        configuration.home = home
        if let user = environment["HPVM_SSH_USER"], !user.isEmpty { configuration.user = user }
        if let port = environment["HPVM_SSH_PORT"] {
            guard let value = Int(port), (1...65535).contains(value) else {
                throw SSHError(.connect, "HPVM_SSH_PORT='\(port)' is not a port number (1-65535).")
            }
            configuration.port = value
        }
        return configuration
    }

    /// How known_hosts names this host: `host`, or `[host]:port` off port 22.
    public var knownHostsName: String { port == 22 ? host : "[\(host)]:\(port)" }
}

/// One SSH connection, authenticated with a public key after its host key was checked against
/// known_hosts. Not thread-safe: confine it to one task. Channels keep it alive.
public final class SSHSession {
    let socket: Int32
    let pointer: OpaquePointer
    public let configuration: SSHConfiguration
    private var disconnected = false

    /// libssh2's process-wide initialisation, run once. The corresponding C function is `libssh2_init`.
    private static let initialized: Int32 = libssh2_init(0)

    private init(socket: Int32, pointer: OpaquePointer, configuration: SSHConfiguration) {
        self.socket = socket
        self.pointer = pointer
        self.configuration = configuration
    }

    deinit {
        if !disconnected { _ = hpvm_ssh2_session_disconnect(pointer, "bye") }
        libssh2_session_free(pointer)
        Glibc.close(socket)
    }

    /// Connects, checks the host key, and authenticates with the first key the server accepts.
    ///
    /// Password and keyboard-interactive authentication are never attempted, and nothing prompts.
    public static func connect(_ configuration: SSHConfiguration) throws(SSHError) -> SSHSession {
        guard initialized == 0 else { throw SSHError(.handshake, "libssh2 could not be initialised.") }
        let fd = try openSocket(configuration)
        guard let pointer = hpvm_ssh2_session_init() else {
            Glibc.close(fd)
            throw SSHError(.handshake, "libssh2 could not make a session.")
        }
        let session = SSHSession(socket: fd, pointer: pointer, configuration: configuration)
        libssh2_session_set_blocking(pointer, 1)
        libssh2_session_set_timeout(pointer, Int(configuration.timeoutMilliseconds))
        // As OpenSSH does: ask first for the host-key algorithms known_hosts holds for this host.
        if let preference = hostKeyPreference(configuration) {
            _ = libssh2_session_method_pref(pointer, LIBSSH2_METHOD_HOSTKEY, preference)
        }
        let rc = libssh2_session_handshake(pointer, libssh2_socket_t(fd))
        guard rc == 0 else {
            throw session.error(.handshake, "SSH handshake with \(configuration.knownHostsName) failed", rc)
        }
        try session.checkHostKey()
        try session.authenticate()
        return session
    }

    /// Says goodbye to the server. The corresponding C function is `libssh2_session_disconnect_ex`.
    public func disconnect() {
        guard !disconnected else { return }
        disconnected = true
        _ = hpvm_ssh2_session_disconnect(pointer, "done")
    }

    /// How long each blocking call may wait before it fails with `.timeout`.
    /// The corresponding C function is `libssh2_session_set_timeout`.
    public func setTimeout(milliseconds: Int) {
        libssh2_session_set_timeout(pointer, milliseconds)
    }

    /// Sends an SSH keepalive (`keepalive@openssh.com`, reply wanted) unless one went out less than
    /// `interval` seconds ago. The corresponding C functions are `libssh2_keepalive_config` and
    /// `libssh2_keepalive_send`.
    public func keepalive(interval: Int) throws(SSHError) {
        libssh2_keepalive_config(pointer, 1, UInt32(max(1, interval)))
        var next: Int32 = 0
        let rc = libssh2_keepalive_send(pointer, &next)
        guard rc == 0 else { throw error(.io, "cannot send a keepalive to \(configuration.knownHostsName)", rc) }
    }

    /// Runs `command` on the server in a new channel.
    public func exec(_ command: String) throws(SSHError) -> SSHChannel {
        guard let channel = hpvm_ssh2_channel_open_session(pointer) else {
            throw error(.channel, "cannot open a channel on \(configuration.knownHostsName)", lastErrorCode())
        }
        let rc = command.withCString { hpvm_ssh2_channel_exec(channel, $0, UInt32(strlen($0))) }
        guard rc == 0 else {
            libssh2_channel_free(channel)
            throw error(.channel, "\(configuration.knownHostsName) refused to run the remote command", rc)
        }
        return SSHChannel(session: self, pointer: channel)
    }

    // MARK: - Host key

    private func checkHostKey() throws(SSHError) {
        var length = 0
        var type: Int32 = 0
        guard let key = libssh2_session_hostkey(pointer, &length, &type) else {
            throw error(.handshake, "\(configuration.knownHostsName) sent no host key", lastErrorCode())
        }
        guard let hosts = libssh2_knownhost_init(pointer) else {
            throw SSHError(.knownHosts, "cannot read known hosts: libssh2 could not allocate them.")
        }
        defer { libssh2_knownhost_free(hosts) }
        let path = configuration.knownHosts
        let fingerprint = self.fingerprint()
        let fix = "check the key (SHA256:\(fingerprint)) with the target's administrator, then add it: ssh-keyscan -p \(configuration.port) -t ed25519 \(configuration.host) >> \(path)"
        if access(path, R_OK) != 0 {
            throw SSHError(
                .hostKeyUnknown,
                "Host key verification failed: \(path) does not exist or cannot be read, so \(configuration.knownHostsName) is not a known host; \(fix)")
        }
        let read = libssh2_knownhost_readfile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
        guard read >= 0 else {
            throw error(.knownHosts, "cannot read known hosts from \(path)", read)
        }
        var entry: UnsafeMutablePointer<libssh2_knownhost>?
        let typeMask = Int32(LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW)
        let check = libssh2_knownhost_checkp(
            hosts, configuration.host, Int32(configuration.port), key, length, typeMask, &entry)
        switch check {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            throw SSHError(
                .hostKeyMismatch,
                "Host key verification failed: \(configuration.knownHostsName) sent a different host key (SHA256:\(fingerprint)) from the one in \(path). It may have been reinstalled, or someone may be in the middle; find out which, then remove the old key with ssh-keygen -R '\(configuration.knownHostsName)' -f \(path) and add the new one.")
        default:
            throw SSHError(
                .hostKeyUnknown, "Host key verification failed: \(configuration.knownHostsName) is not in \(path); \(fix)")
        }
    }

    /// The host key's SHA-256 fingerprint in base64, as `ssh-keygen -l` prints it.
    private func fingerprint() -> String {
        guard let hash = libssh2_hostkey_hash(pointer, LIBSSH2_HOSTKEY_HASH_SHA256) else { return "?" }
        let bytes = UnsafeRawPointer(hash).assumingMemoryBound(to: UInt8.self)
        return Base64.encode(Array(UnsafeBufferPointer(start: bytes, count: 32)), padding: false)
    }

    // MARK: - Authentication

    private func authenticate() throws(SSHError) {
        let user = configuration.user
        let methods = user.withCString { name -> String in
            guard let list = libssh2_userauth_list(pointer, name, UInt32(strlen(name))) else { return "" }
            return String(cString: list)
        }
        if libssh2_userauth_authenticated(pointer) == 1 { return }
        guard methods.split(separator: ",").contains("publickey") else {
            throw SSHError(
                .noPublicKey,
                "\(configuration.knownHostsName) offers only \(methods.isEmpty ? "no method" : methods) to \(user); hpvmmigrate uses public keys only. Set PubkeyAuthentication yes in its sshd_config and add your key to \(user)'s authorized_keys.")
        }
        let keys = configuration.identities.filter { access($0, R_OK) == 0 }
        guard !keys.isEmpty else {
            throw SSHError(
                .noKey,
                "no private key to log in with: none of \(configuration.identities.joined(separator: ", ")) exists. Make one with ssh-keygen -t ed25519 and add its .pub to \(user)'s authorized_keys on \(configuration.host).")
        }
        var lastCode: Int32 = 0
        var triedRSA = false
        for key in keys {
            let publicKey = access(key + ".pub", R_OK) == 0 ? key + ".pub" : nil
            if isRSA(key, publicKey: publicKey) { triedRSA = true }
            let rc = user.withCString { name in
                hpvm_ssh2_userauth_publickey_fromfile(pointer, name, UInt32(strlen(name)), publicKey, key, nil)
            }
            if rc == 0 { return }
            lastCode = rc
        }
        if triedRSA && keys.allSatisfy({ isRSA($0, publicKey: access($0 + ".pub", R_OK) == 0 ? $0 + ".pub" : nil) }) {
            throw SSHError(
                .rsaRefused,
                "\(configuration.knownHostsName) refused your RSA key: libssh2 1.10 signs RSA only with SHA-1 (ssh-rsa), which OpenSSH 8.8 and later refuse. Make an ed25519 key (ssh-keygen -t ed25519), add its .pub to \(user)'s authorized_keys there, and try again.",
                libssh2Code: lastCode)
        }
        throw error(
            .authentication,
            "\(configuration.knownHostsName) refused the key\(keys.count == 1 ? "" : "s") \(keys.joined(separator: ", ")) for \(user); add the .pub to \(user)'s authorized_keys there",
            lastCode)
    }

    private func isRSA(_ key: String, publicKey: String?) -> Bool {
        if let publicKey, let text = FileRead.prefix(publicKey, 16) { return text.hasPrefix("ssh-rsa") }
        if let text = FileRead.prefix(key, 64), text.contains("RSA PRIVATE KEY") { return true }
        return key.hasSuffix("id_rsa")
    }

    // MARK: - Errors

    func lastErrorCode() -> Int32 { libssh2_session_last_errno(pointer) }

    /// An error carrying libssh2's last error text. The corresponding C function is `libssh2_session_last_error`.
    func error(_ code: SSHError.Code, _ what: String, _ rc: Int32) -> SSHError {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        _ = libssh2_session_last_error(pointer, &message, &length, 0)
        let text = message.map { String(cString: $0) } ?? ""
        let finalCode: SSHError.Code = rc == LIBSSH2_ERROR_TIMEOUT ? .timeout : code
        return SSHError(finalCode, what + (text.isEmpty ? "" : ": \(text)") + " (libssh2 error \(rc)).", libssh2Code: rc)
    }

    // MARK: - Socket

    private static func openSocket(_ configuration: SSHConfiguration) throws(SSHError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(configuration.host, String(configuration.port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SSHError(.resolve, "cannot resolve \(configuration.host): \(String(cString: gai_strerror(rc))).")
        }
        defer { freeaddrinfo(result) }
        var lastError = ""
        var info: UnsafeMutablePointer<addrinfo>? = first
        while let current = info {
            info = current.pointee.ai_next
            let fd = Glibc.socket(current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), current.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            // Non-blocking connect, so an unreachable host fails in the timeout, not the kernel's.
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var ok = Glibc.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0
            if !ok && errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, Int32(configuration.timeoutMilliseconds)) == 1 {
                    var soError: Int32 = 0
                    var size = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &size)
                    ok = soError == 0
                    if !ok { errno = soError }
                } else {
                    errno = ETIMEDOUT
                }
            }
            if ok {
                _ = fcntl(fd, F_SETFL, flags)
                return fd
            }
            lastError = String(cString: strerror(errno))
            Glibc.close(fd)
        }
        throw SSHError(.connect, "cannot connect to \(configuration.knownHostsName): \(lastError).")
    }
}

enum FileRead {
    /// The first `count` bytes of a file as text.
    static func prefix(_ path: String, _ count: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = read(fd, &buffer, count)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}

enum Base64 {
    static func encode(_ bytes: [UInt8], padding: Bool) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 3) << 4 | b1 >> 4)])
            if index + 1 < bytes.count { out.append(table[Int((b1 & 0xF) << 2 | b2 >> 6)]) } else if padding { out.append(61) }
            if index + 2 < bytes.count { out.append(table[Int(b2 & 0x3F)]) } else if padding { out.append(61) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The host-key algorithms to offer, best first: those of the keys known_hosts holds for this host
/// (plain entries; a hashed one is not read), then the rest in libssh2's order. Nil when known_hosts
/// names none, so libssh2's own order applies.
func hostKeyPreference(_ configuration: SSHConfiguration) -> String? {
    let fd = open(configuration.knownHosts, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < 16 << 20 {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    Glibc.close(fd)
    let text = String(decoding: bytes, as: UTF8.self)
    let algorithms: [String: [String]] = [
        "ssh-ed25519": ["ssh-ed25519"],
        "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"], "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
        "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
    ]
    let names = Set([configuration.knownHostsName, configuration.port == 22 ? configuration.host : "[\(configuration.host)]:\(configuration.port)"])
    var known: [String] = []
    for line in text.split(separator: "\n") {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 3, !fields[0].hasPrefix("#"), !fields[0].hasPrefix("@"),
            fields[0].split(separator: ",").contains(where: { names.contains(String($0)) }),
            let offered = algorithms[String(fields[1])]
        else { continue }
        for algorithm in offered where !known.contains(algorithm) { known.append(algorithm) }
    }
    guard !known.isEmpty else { return nil }
    let rest = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    return (known + rest.filter { !known.contains($0) }).joined(separator: ",")
}
