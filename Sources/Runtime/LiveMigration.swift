public import Registry

#if canImport(Glibc)
internal import Glibc
#endif

/// How an online migration's stream runs (QMP `migrate-set-parameters` and capabilities).
public struct LiveMigrationSettings: Sendable, Equatable {
    /// The most the stream may carry, in bytes a second (QEMU's own default is 32 MiB/s).
    public var maxBandwidth: Int64
    /// The longest the guest may stand still for the last pass, in milliseconds.
    public var downtimeLimit: Int
    /// Slow the guest's processors down when it dirties memory faster than the stream carries it.
    public var autoConverge: Bool

    public init(maxBandwidth: Int64 = 1 << 30, downtimeLimit: Int = 300, autoConverge: Bool = true) {
        self.maxBandwidth = maxBandwidth
        self.downtimeLimit = downtimeLimit
        self.autoConverge = autoConverge
    }
}

/// Where a migration stream stands, from QMP `query-migrate`.
public struct LiveMigrationProgress: Sendable, Equatable {
    /// QEMU's status: `setup`, `active`, `device`, `completed`, `failed`, `cancelled`, …
    public var status: String
    /// Bytes of memory sent so far.
    public var transferred: Int64 = 0
    /// Bytes of memory left to send.
    public var remaining: Int64 = 0
    /// Milliseconds since the migration started (when it completed: its whole length).
    public var totalTime: Int64 = 0
    /// Milliseconds the guest stood still (when it completed).
    public var downtime: Int64 = 0
    /// Passes over memory so far.
    public var passes: Int = 0
    /// QEMU's reason, when it failed.
    public var error: String?

    public var hasEnded: Bool { status == "completed" || status == "failed" || status == "cancelled" }

    public init(status: String) { self.status = status }

    init(_ answer: JSONValue) {
        status = answer["status"]?.string ?? "none"
        let ram = answer["ram"]
        transferred = Int64(ram?["transferred"]?.int ?? 0)
        remaining = Int64(ram?["remaining"]?.int ?? 0)
        passes = ram?["dirty-sync-count"]?.int ?? 0
        totalTime = Int64(answer["total-time"]?.int ?? 0)
        downtime = Int64(answer["downtime"]?.int ?? 0)
        error = answer["error-desc"]?.string
    }
}

/// The source half of a live migration on this host: the guest's QEMU writes its stream into one
/// end of a socket pair (QMP `getfd`, then `migrate fd:`), and the caller carries what comes out
/// of ``descriptor`` to the target. Holds the guest's command monitor until closed.
public final class OutgoingMigration {
    /// The end of the socket pair the stream comes out of (owned: closed by ``close()``).
    public let descriptor: Int32
    let monitor: QMPClient
    let guest: String
    let timeout: Duration
    private var closed = false

    init(monitor: QMPClient, descriptor: Int32, guest: String, timeout: Duration) {
        self.monitor = monitor
        self.descriptor = descriptor
        self.guest = guest
        self.timeout = timeout
    }

    deinit { close() }

    /// Where the stream stands.
    public func progress() throws(RuntimeError) -> LiveMigrationProgress {
        LiveMigrationProgress(try monitor.execute("query-migrate", until: ContinuousClock.now + timeout))
    }

    /// Cancels the stream (QMP `migrate_cancel`): the guest goes on running here.
    public func cancel() {
        _ = try? monitor.execute("migrate_cancel", until: ContinuousClock.now + timeout)
    }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(descriptor)
        monitor.close()
    }
}

extension GuestRuntime {
    /// Starts sending a running guest's migration stream: sets the stream's parameters, hands QEMU
    /// one end of a socket pair and starts `migrate` on it.
    ///
    /// - Throws: ``RuntimeError/Code/notRunning`` for a guest that does not run, or the monitor's refusal.
    public func beginOutgoing(_ name: String, settings stream: LiveMigrationSettings) throws(RuntimeError) -> OutgoingMigration {
        let folder = try self.folder(name)
        guard folder.runningPID != nil else { throw RuntimeError(.notRunning, "guest \(name) is not running.") }
        let until = ContinuousClock.now + settings.monitorTimeout
        let monitor = try QMPClient(folder: folder, monitor: .command, deadline: until)
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw RuntimeError(.io, "cannot make the stream's socket pair: \(SystemError(function: "socketpair", number: errno)).")
        }
        let outgoing = OutgoingMigration(monitor: monitor, descriptor: pair[0], guest: name, timeout: settings.monitorTimeout)
        defer { Glibc.close(pair[1]) }
        try monitor.execute(
            "migrate-set-capabilities",
            arguments: [("capabilities", .array([.object([("capability", .string("auto-converge")), ("state", .bool(stream.autoConverge))])]))],
            until: until)
        try monitor.execute(
            "migrate-set-parameters",
            arguments: [("max-bandwidth", .number(Double(stream.maxBandwidth))), ("downtime-limit", .number(Double(stream.downtimeLimit)))],
            until: until)
        try monitor.execute("getfd", arguments: [("fdname", .string("hpvm-migrate"))], passing: pair[1], until: until)
        try monitor.execute("migrate", arguments: [("uri", .string("fd:hpvm-migrate"))], until: until)
        return outgoing
    }

    /// Starts a guest arriving by online migration: its QEMU waits, paused, for the stream
    /// (`-S -incoming defer`), under every rule of a start (``GuestRegistry/start(_:isRunning:arriving:launch:)``).
    public func startIncoming(_ name: String, guests: GuestRegistry, migrationID: String, lease: LeaseHold? = nil) throws -> Started {
        try start(name, guests: guests, lease: lease, arriving: migrationID)
    }

    /// Hands the arriving stream on descriptor `fd` to the guest's waiting QEMU (QMP `getfd`, then
    /// `migrate-incoming fd:`).
    public func acceptIncoming(_ name: String, fd: Int32) throws(RuntimeError) {
        let folder = try self.folder(name)
        let until = ContinuousClock.now + settings.monitorTimeout
        let monitor = try QMPClient(folder: folder, monitor: .command, deadline: until)
        defer { monitor.close() }
        try monitor.execute("getfd", arguments: [("fdname", .string("hpvm-incoming"))], passing: fd, until: until)
        try monitor.execute("migrate-incoming", arguments: [("uri", .string("fd:hpvm-incoming"))], until: until)
    }

    /// QMP's `query-status` of a running guest (`running`, `paused`, `inmigrate`, `postmigrate`, …);
    /// nil when no QEMU runs it.
    public func runState(_ name: String) -> String? {
        guard let folder = try? self.folder(name), folder.runningPID != nil else { return nil }
        let until = ContinuousClock.now + settings.monitorTimeout
        guard let monitor = try? QMPClient(folder: folder, monitor: .status, deadline: until) else { return nil }
        defer { monitor.close() }
        return (try? monitor.execute("query-status", until: until))?["status"]?.string
    }

    /// Waits until the arriving guest's QEMU has the whole stream: its status leaves `inmigrate`.
    ///
    /// - Returns: the status it reached (`paused` when the stream arrived whole).
    /// - Throws: ``RuntimeError/Code/notRunning`` when its QEMU ended (QEMU exits when a stream
    ///   breaks off), ``RuntimeError/Code/timeout`` when it still waits at `deadline`.
    public func waitForIncoming(_ name: String, until deadline: ContinuousClock.Instant) throws(RuntimeError) -> String {
        let folder = try self.folder(name)
        while true {
            guard folder.runningPID != nil else {
                throw RuntimeError(.notRunning, "guest \(name)'s QEMU here ended before the stream arrived whole.")
            }
            if let state = runState(name), state != "inmigrate" { return state }
            guard ContinuousClock.now < deadline else {
                throw RuntimeError(.timeout, "guest \(name)'s QEMU here was still receiving the stream at the deadline.")
            }
            usleep(20_000)
        }
    }

    /// Lets a paused guest's processors run (QMP `cont`).
    public func resume(_ name: String) throws(RuntimeError) {
        let folder = try self.folder(name)
        let until = ContinuousClock.now + settings.monitorTimeout
        let monitor = try QMPClient(folder: folder, monitor: .command, deadline: until)
        defer { monitor.close() }
        try monitor.execute("cont", until: until)
    }
}

extension GuestRuntime {
    /// Why this host cannot take a running guest (its QEMU is missing, or lacks the pinned machine
    /// type); nil when it can. Asks the QEMU program itself (`-machine help`).
    public func arrivalRefusal() -> String? {
        guard access(settings.qemu, X_OK) == 0 else {
            return "\(settings.qemu) is not there to run the guest (install qemu-system-x86 or set HPVM_QEMU)"
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { return "cannot ask \(settings.qemu) for its machine types" }
        _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let words: [String] = [settings.qemu, "-machine", "help"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, settings.qemu, &actions, nil, argv, environ)
        Glibc.close(pipeEnds[1])
        defer { Glibc.close(pipeEnds[0]) }
        guard spawned == 0 else { return "cannot run \(settings.qemu) (\(SystemError(function: "posix_spawn", number: spawned)))" }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while output.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            output.append(contentsOf: chunk[0..<n])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let machine = QEMUCommandLine.machineType
        let listed = String(decoding: output, as: UTF8.self).split(separator: "\n").contains { $0.split(separator: " ").first.map(String.init) == machine }
        return listed ? nil : "\(settings.qemu) has no machine type \(machine), which the guest runs on"
    }
}
