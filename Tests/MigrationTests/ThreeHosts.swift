import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

/// Three VM hosts on one machine, sealed (DESIGN.md §3) and with no SSH trust between them:
/// namespaces A, B and C with no default route, each joined by a veth pair to a bridge inside a
/// fourth, switch-only namespace on 198.51.100.0/24; each with its own host root (the same SAN
/// LUNs by WWID), its own home folder for root's keys and known_hosts, and a real sshd whose only
/// authorized key is the test's bootstrap key. Every process and namespace is stopped and
/// deleted, by its own id, when the value is released.
final class ThreeHosts: @unchecked Sendable {
    static let names: [Character] = ["A", "B", "C"]
    let tag: String
    let switchNamespace: String
    var namespaces: [Character: String] = [:]
    var roots: [Character: HostBuilder] = [:]
    var addresses: [Character: String] = [:]
    var sshdPIDs: [Character: pid_t] = [:]
    /// Holds each host's folder (`A/home/.ssh`, `A/sshd_config`, …) and the bootstrap key.
    let scratch: String
    var bootstrapKey: String { scratch + "/bootstrap_ed25519" }

    init() throws {
        tag = String(UUID().uuidString.prefix(6)).lowercased()
        switchNamespace = "hpvmS-\(tag)"
        var template = Array("/tmp/hpvm-three.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        scratch = String(cString: made)
        try run("/usr/sbin/ip", "netns", "add", switchNamespace)
        try run("/usr/sbin/ip", "-n", switchNamespace, "link", "add", "br0", "type", "bridge")
        try run("/usr/sbin/ip", "-n", switchNamespace, "link", "set", "br0", "up")
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        try run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bootstrap", "-f", bootstrapKey)
        for (index, host) in Self.names.enumerated() {
            let ns = "hpvm\(host)-\(tag)"
            namespaces[host] = ns
            addresses[host] = "198.51.100.\(index + 1)"
            // Storage: the same LUNs (same WWID seed) on every host.
            let root = try HostBuilder.temporary(prefix: "hpvm-host\(host)")
            roots[host] = root
            try HostBuilder.make(at: root, sanDisks: 2, wwidSeed: 0)
            // Network: host veth in its namespace, switch end on the bridge.
            try run("/usr/sbin/ip", "netns", "add", ns)
            try run("/usr/sbin/ip", "link", "add", "h\(host)-\(tag)", "type", "veth", "peer", "name", "s\(host)-\(tag)")
            try run("/usr/sbin/ip", "link", "set", "h\(host)-\(tag)", "netns", ns)
            try run("/usr/sbin/ip", "link", "set", "s\(host)-\(tag)", "netns", switchNamespace)
            try run("/usr/sbin/ip", "-n", switchNamespace, "link", "set", "s\(host)-\(tag)", "master", "br0")
            try run("/usr/sbin/ip", "-n", switchNamespace, "link", "set", "s\(host)-\(tag)", "up")
            try run("/usr/sbin/ip", "-n", ns, "link", "set", "lo", "up")
            try run("/usr/sbin/ip", "-n", ns, "addr", "add", addresses[host]! + "/24", "dev", "h\(host)-\(tag)")
            try run("/usr/sbin/ip", "-n", ns, "link", "set", "h\(host)-\(tag)", "up")
            // SSH: a home with only the bootstrap key authorized, no known_hosts, no key of its own.
            try FileManager.default.createDirectory(atPath: home(host) + "/.ssh", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: bootstrapKey + ".pub", toPath: home(host) + "/.ssh/authorized_keys")
            try newHostKey(host)
            try startSSHD(host)
        }
    }

    func folder(_ host: Character) -> String { scratch + "/\(host)" }
    func home(_ host: Character) -> String { folder(host) + "/home" }

    func newHostKey(_ host: Character) throws {
        try? FileManager.default.removeItem(atPath: folder(host) + "/host_ed25519")
        try? FileManager.default.removeItem(atPath: folder(host) + "/host_ed25519.pub")
        try run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", folder(host) + "/host_ed25519")
    }

    func startSSHD(_ host: Character) throws {
        let config = """
            Port 22
            ListenAddress \(addresses[host]!)
            HostKey \(folder(host))/host_ed25519
            PidFile \(folder(host))/sshd.pid
            AuthorizedKeysFile \(home(host))/.ssh/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            LogLevel VERBOSE
            SetEnv HOME=\(home(host)) HPVM_ROOT=\(roots[host]!.path)

            """
        try config.write(toFile: folder(host) + "/sshd_config", atomically: true, encoding: .utf8)
        let log = folder(host) + "/sshd.log"
        try? FileManager.default.removeItem(atPath: log)
        sshdPIDs[host] = try ChildProcess.start(
            "/usr/sbin/ip", ["netns", "exec", namespaces[host]!, "/usr/sbin/sshd", "-D", "-f", folder(host) + "/sshd_config", "-E", log])
        for _ in 0..<100 {
            if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("Server listening") { return }
            usleep(50_000)
        }
        throw TestFailure("sshd did not start in \(namespaces[host]!)")
    }

    func stopSSHD(_ host: Character) {
        guard let pid = sshdPIDs[host], pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        sshdPIDs[host] = 0
    }

    deinit {
        for host in Self.names { stopSSHD(host) }
        for ns in namespaces.values { _ = try? run("/usr/sbin/ip", "netns", "del", ns) }
        _ = try? run("/usr/sbin/ip", "netns", "del", switchNamespace)
        for root in roots.values { root.remove() }
        try? FileManager.default.removeItem(atPath: scratch)
    }

    // MARK: - Commands

    /// Runs an hpvm command as root of `host`: in its namespace, with its root and home.
    @discardableResult
    func on(_ host: Character, _ tool: String, _ arguments: [String], environment: [String: String] = [:]) throws -> TwoHosts.Result {
        var env = [
            "HPVM_ROOT": roots[host]!.path, "HOME": home(host), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HPVM_REMOTE_COMMAND": TwoHosts.bin + "/hpvmmigrate", "HPVM_SSHSETUP_COMMAND": TwoHosts.bin + "/hpvmsshsetup",
        ]
        env.merge(environment) { $1 }
        return try TwoHosts.capture("/usr/sbin/ip", ["netns", "exec", namespaces[host]!, TwoHosts.bin + "/" + tool] + arguments, environment: env)
    }

    /// Whether `guest` is runnable on `host`; nil when it is not there.
    func runnable(_ host: Character, _ guest: String) throws -> Bool? {
        let line = try on(host, "hpvmstatus", ["-M"]).stdout.split(separator: "\n").first { $0.hasPrefix(guest + ":") }
        return line.map { $0.split(separator: ":", omittingEmptySubsequences: false)[3] == "YES" }
    }

    func knownHosts(_ host: Character) -> Data {
        (try? Data(contentsOf: URL(fileURLWithPath: home(host) + "/.ssh/known_hosts"))) ?? Data()
    }

    @discardableResult
    func run(_ path: String, _ arguments: String...) throws -> TwoHosts.Result {
        let result = try TwoHosts.capture(path, arguments, environment: ProcessInfo.processInfo.environment)
        guard result.status == 0 else { throw TestFailure("\(path) \(arguments.joined(separator: " ")): \(result.stderr)") }
        return result
    }
}
