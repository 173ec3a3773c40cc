import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

extension Trait where Self == ConditionTrait {
    /// Two-host tests need root (namespaces, sshd) and OpenSSH's server.
    static var requiresRootAndSSHD: Self {
        .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd"), "needs root and /usr/sbin/sshd")
    }
}

/// Two VM hosts on one machine, sealed (DESIGN.md §3): each a network namespace with no default
/// route, joined by a veth pair on 198.51.100.0/24, each with a bridge vsw1 on 203.0.113.0/24, its
/// own host root, and — on host B — a real sshd. Everything is stopped and deleted, by its own id,
/// when the value is released.
final class TwoHosts: @unchecked Sendable {
    let tag: String
    let nsA: String
    let nsB: String
    let rootA: HostBuilder
    let rootB: HostBuilder
    let scratch: String
    let addressB = "198.51.100.2"
    var sshdPID: pid_t = 0
    /// More `NAME=value` words for the SetEnv of each host's sshd (a host's sanlock run folder).
    var sshdEnvironment: [Character: String] = [:]
    /// Where `swift build` put `hpvm`, with a link to it for each command (``Commands``).
    static let bin = Commands.binDirectory

    init(failpointOnTarget: String? = nil) throws {
        tag = String(UUID().uuidString.prefix(6)).lowercased()
        nsA = "hpvmA-\(tag)"
        nsB = "hpvmB-\(tag)"
        rootA = try HostBuilder.temporary(prefix: "hpvm-hostA")
        rootB = try HostBuilder.temporary(prefix: "hpvm-hostB")
        scratch = rootA.path + "-ssh"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        // Storage: the same LUNs on both hosts; on B, /dev/rdisk/disk4 is another LUN and the
        // guest's disk4 LUN is /dev/rdisk/disk5.
        try HostBuilder.make(at: rootA, sanDisks: 4, dasDisks: 1)
        try HostBuilder.make(at: rootB, sanDisks: 4)
        let other = try rootB.scsiDisk(wwid: "naa.600508b4000115d000000000000000ff", transport: .fibreChannel)
        try rootB.link("/dev/rdisk/disk5", to: "/dev/sdd")
        try rootB.link("/dev/rdisk/disk4", to: "/dev/\(other)")
        for root in [rootA, rootB] {
            try root.bridge("vsw1")
            try root.folders("/hpvm/disks")
        }
        try rootA.bridge("vsw2")
        // Network.
        try run("/usr/sbin/ip", "netns", "add", nsA)
        try run("/usr/sbin/ip", "netns", "add", nsB)
        try run("/usr/sbin/ip", "link", "add", "va-\(tag)", "type", "veth", "peer", "name", "vb-\(tag)")
        try run("/usr/sbin/ip", "link", "set", "va-\(tag)", "netns", nsA)
        try run("/usr/sbin/ip", "link", "set", "vb-\(tag)", "netns", nsB)
        for (ns, dev, address, bridge) in [(nsA, "va-\(tag)", "198.51.100.1/24", "203.0.113.1/24"), (nsB, "vb-\(tag)", "198.51.100.2/24", "203.0.113.2/24")] {
            try run("/usr/sbin/ip", "-n", ns, "link", "set", "lo", "up")
            try run("/usr/sbin/ip", "-n", ns, "addr", "add", address, "dev", dev)
            try run("/usr/sbin/ip", "-n", ns, "link", "set", dev, "up")
            try run("/usr/sbin/ip", "-n", ns, "link", "add", "vsw1", "type", "bridge")
            try run("/usr/sbin/ip", "-n", ns, "addr", "add", bridge, "dev", "vsw1")
            try run("/usr/sbin/ip", "-n", ns, "link", "set", "vsw1", "up")
        }
        try run("/usr/sbin/ip", "-n", nsA, "link", "add", "vsw2", "type", "bridge")
        // SSH: host B's sshd, host A's key and known_hosts.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        try run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", scratch + "/host_ed25519")
        try run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", scratch + "/id_ed25519")
        try FileManager.default.copyItem(atPath: scratch + "/id_ed25519.pub", toPath: scratch + "/authorized_keys")
        let hostKey = try String(contentsOfFile: scratch + "/host_ed25519.pub", encoding: .utf8)
        try "\(addressB) \(hostKey.split(separator: " ").prefix(2).joined(separator: " "))\n"
            .write(toFile: scratch + "/known_hosts", atomically: true, encoding: .utf8)
        try startSSHD(failpoint: failpointOnTarget)
    }

    func startSSHD(failpoint: String?) throws {
        let config = """
            Port 22
            ListenAddress \(addressB)
            HostKey \(scratch)/host_ed25519
            PidFile \(scratch)/sshd.pid
            AuthorizedKeysFile \(scratch)/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            LogLevel VERBOSE
            SetEnv HPVM_ROOT=\(rootB.path) HPVM_ACCEL=tcg\(sshdEnvironment["B"].map { " " + $0 } ?? "")\(failpoint.map { " HPVM_FAILPOINT=\($0)" } ?? "")

            """
        try config.write(toFile: scratch + "/sshd_config", atomically: true, encoding: .utf8)
        sshdPID = try Self.spawn("/usr/sbin/ip", ["netns", "exec", nsB, "/usr/sbin/sshd", "-D", "-f", scratch + "/sshd_config", "-E", scratch + "/sshd.log"])
        for _ in 0..<100 {
            if let log = try? String(contentsOfFile: scratch + "/sshd.log", encoding: .utf8), log.contains("Server listening") { return }
            usleep(50_000)
        }
        throw TestFailure("sshd did not start in \(nsB)")
    }

    func restartSSHD(failpoint: String?) throws {
        stopSSHD()
        try? FileManager.default.removeItem(atPath: scratch + "/sshd.log")
        try startSSHD(failpoint: failpoint)
    }

    func stopSSHD() {
        guard sshdPID > 0 else { return }
        kill(sshdPID, SIGTERM)
        var status: Int32 = 0
        waitpid(sshdPID, &status, 0)
        sshdPID = 0
    }

    deinit {
        stopSSHD()
        _ = try? run("/usr/sbin/ip", "netns", "del", nsA)
        _ = try? run("/usr/sbin/ip", "netns", "del", nsB)
        rootA.remove()
        rootB.remove()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    // MARK: - Commands

    /// Runs an hpvm command on host A (the source) or B, in that host's namespace and root.
    @discardableResult
    func on(_ host: Character, _ tool: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let ns = host == "A" ? nsA : nsB
        let root = host == "A" ? rootA.path : rootB.path
        var env = [
            "HPVM_ROOT": root, "HPVM_SSH_IDENTITY": scratch + "/id_ed25519", "HPVM_SSH_KNOWN_HOSTS": scratch + "/known_hosts",
            "HPVM_REMOTE_COMMAND": Self.bin + "/hpvmmigrate", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": scratch,
        ]
        env.merge(environment) { $1 }
        return try Self.capture("/usr/sbin/ip", ["netns", "exec", ns, Self.bin + "/" + tool] + arguments, environment: env)
    }

    /// Starts `hpvmmigrate` on host A in the background; returns its pid (`ip netns exec` execs it).
    func startMigration(_ arguments: [String], environment: [String: String] = [:]) throws -> pid_t {
        var env = [
            "HPVM_ROOT": rootA.path, "HPVM_SSH_IDENTITY": scratch + "/id_ed25519", "HPVM_SSH_KNOWN_HOSTS": scratch + "/known_hosts",
            "HPVM_REMOTE_COMMAND": Self.bin + "/hpvmmigrate", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": scratch,
        ]
        env.merge(environment) { $1 }
        return try ChildProcess.start("/usr/sbin/ip", ["netns", "exec", nsA, Self.bin + "/hpvmmigrate"] + arguments + ["-h", addressB], environment: env)
    }

    @discardableResult
    func migrate(_ arguments: String..., environment: [String: String] = [:]) throws -> Result {
        try on("A", "hpvmmigrate", arguments + ["-h", addressB], environment: environment)
    }

    /// `runnable` of a guest on a host, nil when it is not there.
    func runnable(_ host: Character, _ guest: String) throws -> Bool? {
        let line = try on(host, "hpvmstatus", ["-M"]).stdout.split(separator: "\n").first { $0.hasPrefix(guest + ":") }
        return line.map { $0.split(separator: ":", omittingEmptySubsequences: false)[3] == "YES" }
    }

    func registryBytes(_ host: Character) throws -> Data {
        let root = host == "A" ? rootA.root : rootB.root
        return (try? Data(contentsOf: URL(fileURLWithPath: RegistryStore.defaultPath(root: root)))) ?? Data()
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    @discardableResult
    func run(_ path: String, _ arguments: String...) throws -> Result {
        let result = try Self.capture(path, arguments, environment: ProcessInfo.processInfo.environment)
        guard result.status == 0 else { throw TestFailure("\(path) \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result
    }

    static func spawn(_ path: String, _ arguments: [String]) throws -> pid_t {
        try ChildProcess.start(path, arguments)
    }

    /// Runs a program to its end, capturing stdout and stderr.
    static func capture(_ path: String, _ arguments: [String], environment: [String: String]) throws -> Result {
        let result = try ChildProcess.run(path, arguments, environment: environment)
        return Result(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
