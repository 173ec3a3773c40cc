import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

/// Where `swift build` put `hpvm`, with a link to it for each command (``Commands``).
let binDirectory = Commands.binDirectory

/// What a command printed and returned.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

/// A temporary host root and ways to run the real commands against it.
final class CLIHost {
    let host: HostBuilder
    let layout: HostBuilder.Layout
    var root: String { host.path }
    var registryPath: String { RegistryStore.defaultPath(root: host.root) }

    init(sanDisks: Int = 10, multipathMaps: Int = 1, demo: Bool = false) throws {
        host = try HostBuilder.temporary(prefix: "hpvm-cli-test")
        if demo {
            _ = try DemoHost.build(at: host.path)
            layout = HostBuilder.Layout()
        } else {
            layout = try HostBuilder.make(at: host, sanDisks: sanDisks, multipathMaps: multipathMaps, dasDisks: 1)
        }
        try host.bridge("vsw1")
        try host.folders("/hpvm/disks")
    }

    deinit {
        stopQEMUs()
        host.remove()
    }

    /// The guests a test started with ``start(_:_:)``: each QEMU still running at the end is stopped by its pid.
    var startedGuests: Set<String> = []

    /// Runs a runtime command (`hpvmstart`, `hpvmstop`, `hpvmconsole`) with the TCG accelerator (this
    /// machine's KVM runs no normal guest), noting the guest so that its QEMU is stopped at the end.
    @discardableResult
    func runtime(_ tool: String, _ arguments: String..., environment: [String: String] = [:]) throws -> CommandResult {
        if let index = arguments.firstIndex(of: "-P"), index + 1 < arguments.count { startedGuests.insert(arguments[index + 1]) }
        return try run(tool, arguments, environment: ["HPVM_ACCEL": "tcg"].merging(environment) { $1 })
    }

    /// The pid of the QEMU running `guest`: the pid its pidfile names, when that process holds the
    /// pidfile open (read from /proc, not through the runtime's own lock test).
    func qemuPID(_ guest: String) -> Int32? {
        let pidfile = root + "/var/opt/hpvm/run/\(guest)/pid"
        guard let text = try? String(contentsOfFile: pidfile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        let holds = fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == pidfile }
        return holds ? pid : nil
    }

    /// Stops, by its pid, every QEMU this host's tests started that still runs.
    func stopQEMUs() {
        for guest in startedGuests {
            guard let pid = qemuPID(guest) else { continue }
            kill(pid, SIGKILL)
        }
        startedGuests = []
    }

    /// Runs `tool` with `arguments` and `HPVM_ROOT` set to this host.
    @discardableResult
    func run(_ tool: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        try runProcess(binDirectory + "/" + tool, arguments, environment: ["HPVM_ROOT": root].merging(environment) { $1 })
    }

    @discardableResult
    func devmgmt(_ arguments: String...) throws -> CommandResult { try run("hpvmdevmgmt", arguments) }

    /// The registry file's bytes, with a check that no write-ahead log is left beside it.
    func registryBytes() throws -> Data {
        #expect(!FileManager.default.fileExists(atPath: registryPath + "-wal")
            || ((try? FileManager.default.attributesOfItem(atPath: registryPath + "-wal")[.size] as? Int) ?? 0) == 0)
        return try Data(contentsOf: URL(fileURLWithPath: registryPath))
    }

    /// Runs `body` with the registry opened through the library (for guest rows the guest
    /// commands will make), closing it afterwards.
    func withRegistry<T>(_ body: (RegistryStore, GuestRegistry) throws -> T) throws -> T {
        let store = try RegistryStore.open(at: registryPath)
        defer { try? store.close() }
        let guests = GuestRegistry(store: store, root: host.root, audit: AuditContext(user: "tester", command: "test"))
        return try body(store, guests)
    }
}

func disk(_ path: String) -> ResourceStatement {
        ResourceStatement(deviceType: .disk, adapter: "avio_stor", storage: path.hasPrefix("/dev/") ? "disk" : "file", location: path)
    }

/// Runs a program, capturing stdout and stderr through files (no pipe can fill up).
func runProcess(_ path: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil)
    throws -> CommandResult
{
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hpvm-out-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let out = scratch.appendingPathComponent("out")
    let err = scratch.appendingPathComponent("err")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "HPVM_ROOT")
    env.merge(environment) { $1 }
    process.environment = env
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
        stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
}
