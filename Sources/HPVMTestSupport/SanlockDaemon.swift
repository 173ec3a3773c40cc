import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One sanlock daemon for one test "host": unprivileged, no watchdog (`-w 0`), in the foreground
/// (`-D`) as this test's child, so it is stopped and reaped by its own pid.
public final class SanlockDaemon {
    public let runDirectory: String
    let process = Process()
    public var pid: Int32 { process.processIdentifier }

    public init() throws {
        runDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("hpvm-sanlock-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/sanlock")
        process.arguments = ["daemon", "-D", "-w", "0", "-U", "root", "-G", "root"]
        var environment = ProcessInfo.processInfo.environment
        environment["SANLOCK_PRIVILEGED"] = "0"
        environment["SANLOCK_RUN_DIR"] = runDirectory
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: {
            let log = URL(fileURLWithPath: runDirectory + "/daemon.log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            return log
        }())
        try process.run()
        // Ready once its socket is there.
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: runDirectory + "/sanlock.sock") && Date() < deadline {
            usleep(20_000)
        }
    }

    /// The environment a tool needs to talk to this daemon.
    public var environment: [String: String] { ["SANLOCK_RUN_DIR": runDirectory] }

    /// Kills the daemon at once (a host that dies): its leases stay on disk until they expire.
    public func kill() {
        if process.isRunning { Glibc.kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// `sanlock client shutdown -f 1` (it ignores SIGTERM while it has lockspaces), then SIGKILL.
    public func stop() {
        guard process.isRunning else { return }
        _ = try? ChildProcess.run("/usr/sbin/sanlock", ["client", "shutdown", "-f", "1"], environment: environment)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        kill()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: runDirectory)
    }
}

