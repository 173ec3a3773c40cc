import Foundation
import HPVMTestSupport
import Testing

/// Tests that need a real OpenSSH server: root (sshd must run as root) and /usr/sbin/sshd.
struct RequiresSSHD: TestTrait, SuiteTrait {}

extension Trait where Self == ConditionTrait {
    static var requiresSSHD: Self {
        .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"), "needs root and /usr/sbin/sshd")
    }
}

/// A real `sshd` on 127.0.0.1 with its own config, ed25519 host key, authorized key and
/// known_hosts, in a temporary folder; stopped by its own process id when released.
final class SSHDFixture {
    let folder: URL
    let port: Int
    /// The sshd's process id; it is stopped by this id and nothing else.
    let pid: pid_t
    var clientKey: String { folder.appendingPathComponent("id_ed25519").path }
    var knownHosts: String { folder.appendingPathComponent("known_hosts").path }
    var log: String { folder.appendingPathComponent("sshd.log").path }

    init(extraConfig: String = "", authorize: Bool = true) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hpvm-sshd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        chmod("/run/sshd", 0o755)
        let clientKey = folder.appendingPathComponent("id_ed25519").path
        let knownHosts = folder.appendingPathComponent("known_hosts").path
        let log = folder.appendingPathComponent("sshd.log").path
        try Self.keygen(type: "ed25519", path: folder.appendingPathComponent("host_ed25519").path)
        try Self.keygen(type: "ed25519", path: clientKey)
        if authorize {
            try FileManager.default.copyItem(atPath: clientKey + ".pub", toPath: folder.appendingPathComponent("authorized_keys").path)
        } else {
            FileManager.default.createFile(atPath: folder.appendingPathComponent("authorized_keys").path, contents: nil)
        }
        let hostKey = try String(contentsOfFile: folder.appendingPathComponent("host_ed25519.pub").path, encoding: .utf8)
        let keyFields = hostKey.split(separator: " ").prefix(2).joined(separator: " ")
        // A port below the kernel's ephemeral range (so no outgoing connection of another test
        // takes it between our check and sshd's bind), tried again if it was taken all the same.
        for attempt in 1...8 {
            let candidate = try Self.freePort()
            try "[127.0.0.1]:\(candidate) \(keyFields)\n".write(toFile: knownHosts, atomically: true, encoding: .utf8)
            // sshd keeps the first value of a keyword, so the test's own settings come first.
            let config = """
                \(extraConfig)
                Port \(candidate)
                ListenAddress 127.0.0.1
                HostKey \(folder.path)/host_ed25519
                PidFile \(folder.path)/sshd.pid
                AuthorizedKeysFile \(folder.path)/authorized_keys
                PubkeyAuthentication yes
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PermitRootLogin prohibit-password
                UsePAM no
                StrictModes no
                LogLevel VERBOSE

                """
            let configPath = folder.appendingPathComponent("sshd_config").path
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)
            unlink(log)
            // posix_spawn, not Foundation's Process: its child monitor blocks on a long-lived child.
            let child = try Self.spawn("/usr/sbin/sshd", ["-D", "-f", configPath, "-E", log])
            // Wait until it accepts connections.
            for _ in 0..<100 {
                if Self.canConnect(candidate) {
                    port = candidate
                    pid = child
                    return
                }
                var status: Int32 = 0
                if waitpid(child, &status, WNOHANG) == child { break }  // it ended: the port was taken
                usleep(50_000)
            }
            kill(child, SIGTERM)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard text.contains("Address already in use"), attempt < 8 else {
                throw FixtureError("sshd did not start: \(text)")
            }
        }
        throw FixtureError("sshd did not start: no free port")
    }

    deinit {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(at: folder)
    }

    /// A new key pair in the folder, not authorized.
    func extraKey(type: String, name: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try Self.keygen(type: type, path: path)
        return path
    }

    func authorize(_ publicKey: String) throws {
        let handle = try FileHandle(forWritingTo: folder.appendingPathComponent("authorized_keys"))
        handle.seekToEndOfFile()
        handle.write(try Data(contentsOf: URL(fileURLWithPath: publicKey)))
        try handle.close()
    }

    static func keygen(type: String, path: String) throws {
        let child = try spawn("/usr/bin/ssh-keygen", ["-q", "-t", type, "-N", "", "-f", path] + (type == "rsa" ? ["-b", "2048"] : []))
        var status: Int32 = 0
        waitpid(child, &status, 0)
        guard status == 0 else { throw FixtureError("ssh-keygen failed: \(status)") }
    }

    static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        try ChildProcess.start(path, arguments)
    }

    /// A port on 127.0.0.1 that nothing is bound to now, from 20000–32767 (below Linux's
    /// ephemeral range, which outgoing connections draw from).
    static func freePort() throws -> Int {
        for _ in 0..<200 {
            let candidate = Int.random(in: 20000...32767)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(candidate).bigEndian)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if bound == 0 { return candidate }
        }
        throw FixtureError("no free port")
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
