public import Host
public import Registry

#if canImport(Glibc)
internal import Glibc
#endif

/// Guests that run: `hpvmstart`, `hpvmstop` and the state `hpvmstatus` shows, on QEMU driven over
/// QMP (DESIGN.md §7). A guest's state is read from its live QEMU — the lock on its pidfile, then
/// its status monitor — and never from a flag that a killed process could leave behind.
public struct GuestRuntime: Sendable {
    public let root: HostRoot
    public let settings: RuntimeSettings

    public init(root: HostRoot, settings: RuntimeSettings) {
        self.root = root
        self.settings = settings
    }

    /// The run folder of a guest.
    public func folder(_ guest: String) throws(RuntimeError) -> RunFolder {
        try RunFolder(root: root, guest: guest)
    }

    /// Whether the guest's QEMU runs. A state that cannot be read counts as running, so a rule
    /// that asks never lets two guests on one disk for want of a permission.
    public func isRunning(_ guest: String) -> Bool {
        guard let folder = try? self.folder(guest) else { return false }
        switch folder.liveness() {
        case .stopped: return false
        case .running, .unknown: return true
        }
    }

    // MARK: - Start

    /// A guest that started.
    public struct Started: Sendable, Equatable {
        public let guest: String
        /// The pid of its QEMU.
        public let pid: Int32
        /// QMP's `query-status` once it answered (`running`).
        public let status: String
    }

    /// Starts a guest: the registry's checks and rules under its lock (``GuestRegistry/start(_:isRunning:launch:)``),
    /// then its taps and QEMU, detached; returns once its status monitor answers.
    ///
    /// - Throws: the registry's refusal (``RegistryError``) or a ``RuntimeError``.
    /// - Parameter lease: the guest's fleet lease, which its QEMU then holds (nil: leases are off).
    /// - Parameter arriving: the online migration bringing the guest here: its QEMU then starts
    ///   paused, waiting for the stream (``startIncoming(_:guests:migrationID:lease:)``).
    public func start(_ name: String, guests: GuestRegistry, lease: LeaseHold? = nil, arriving: String? = nil) throws -> Started {
        let (folder, pid) = try guests.start(name, isRunning: isRunning, arriving: arriving) { plan -> (RunFolder, Int32) in
            let folder = try self.folder(plan.guest.name)
            let machine = GuestMachine(plan: plan)
            try folder.prepare()
            var taps: [Int32] = []
            defer { taps.forEach { close($0) } }
            for nic in machine.nics {
                taps.append(try Tap.open(name: nic.tapName, bridge: nic.bridge, guest: machine.name))
            }
            let arguments = QEMUCommandLine.arguments(machine, options: .init(accelerator: settings.accelerator, incoming: arriving != nil))
            return (
                folder,
                try QEMUProcess.launch(settings.qemu, arguments: arguments, in: folder, taps: taps, lease: lease, helper: settings.leaseHelper)
            )
        }
        let deadline = ContinuousClock.now + settings.monitorTimeout
        do {
            let monitor = try QMPClient(folder: folder, monitor: .status, deadline: deadline)
            let status = try monitor.execute("query-status", until: deadline)["status"]?.string ?? "unknown"
            return Started(guest: folder.guest, pid: pid, status: status)
        } catch {
            throw RuntimeError(
                error.code, "guest \(folder.guest) started (QEMU pid \(pid)), but \(error.message) Stop it with hpvmstop -F -P \(folder.guest).",
                cause: error)
        }
    }

    // MARK: - Stop

    /// How to stop a guest.
    public enum StopMode: Sendable, Equatable {
        /// Press the guest's power button (ACPI, QMP `system_powerdown`) and return.
        case powerButton
        /// Press the power button and wait until the guest's OS has stopped it (``RuntimeSettings/stopTimeout``).
        case powerButtonAndWait
        /// Stop at once (QMP `quit`, or SIGKILL to the QEMU when its monitor does not answer).
        case force
    }

    /// Stops a running guest.
    ///
    /// - Returns: whether the guest is stopped when this returns (false after ``StopMode/powerButton``
    ///   while its OS shuts down).
    @discardableResult
    public func stop(_ name: String, mode: StopMode) throws(RuntimeError) -> Bool {
        let folder = try self.folder(name)
        guard case .running(let pid) = folder.liveness() else {
            throw RuntimeError(.notRunning, "guest \(name) is not running.")
        }
        switch mode {
        case .powerButton, .powerButtonAndWait:
            let deadline = ContinuousClock.now + settings.monitorTimeout
            let monitor = try QMPClient(folder: folder, monitor: .command, deadline: deadline)
            try monitor.execute("system_powerdown", until: deadline)
            monitor.close()
            guard mode == .powerButtonAndWait else { return false }
            guard waitUntilStopped(folder, pid: pid, for: settings.stopTimeout) else {
                let seconds = settings.stopTimeout.components.seconds
                throw RuntimeError(
                    .timeout,
                    "guest \(name) did not stop within \(seconds) s of its power button; its OS may ignore it (hpvmstop -F -P \(name) stops it at once).")
            }
            return true
        case .force:
            let deadline = ContinuousClock.now + .seconds(5)
            var asked = false
            if let monitor = try? QMPClient(folder: folder, monitor: .command, deadline: deadline) {
                // QEMU may close the connection as it quits, before or after its answer.
                asked = (try? monitor.execute("quit", until: deadline)) != nil || monitor.events.contains { $0["event"]?.string == "SHUTDOWN" }
                monitor.close()
            }
            if asked && waitUntilStopped(folder, pid: pid, for: .seconds(10)) { return true }
            // The monitor did not answer, or QEMU did not go: kill the process that holds the lock.
            if folder.liveness() == .running(pid: pid) { kill(pid, SIGKILL) }
            guard waitUntilStopped(folder, pid: pid, for: .seconds(10)) else {
                throw RuntimeError(.timeout, "guest \(name)'s QEMU (pid \(pid)) did not stop, even after SIGKILL.")
            }
            return true
        }
    }

    /// Waits until the process `pid` no longer holds the guest's pidfile lock.
    func waitUntilStopped(_ folder: RunFolder, pid: Int32, for duration: Duration) -> Bool {
        let deadline = ContinuousClock.now + duration
        while folder.liveness() == .running(pid: pid) {
            guard ContinuousClock.now < deadline else { return false }
            usleep(10_000)
        }
        return true
    }

    // MARK: - State

    /// What runs of a guest, as `hpvmstatus` shows it.
    public enum LiveState: Sendable, Equatable {
        /// No QEMU runs the guest.
        case off
        /// Its QEMU runs it (QMP `running`).
        case on
        /// Its QEMU runs but the guest's processors are stopped (QMP's status: `paused`, `inmigrate`, …).
        case paused(String)
        /// Its QEMU runs but its status monitor did not answer.
        case noAnswer(String)
        /// Whether a QEMU runs cannot be told (the run folder cannot be read).
        case unknown(String)

        public var isRunning: Bool { self != .off }
    }

    /// The states of several guests: the run folders are listed once, and only a guest that has one
    /// is asked (``state(_:)``); the others are off.
    public func states(_ guests: [String]) -> [String: LiveState] {
        var result: [String: LiveState] = [:]
        let folders = RunFolder.existing(root: root)
        for guest in guests {
            result[guest] = folders.map { $0.contains(guest) } == false ? .off : state(guest)
        }
        return result
    }

    /// The guest's state from its live QEMU: the pidfile's lock, then `query-status` on the status
    /// monitor (waiting at most ``RuntimeSettings/monitorTimeout`` for it).
    public func state(_ name: String) -> LiveState {
        guard let folder = try? self.folder(name) else { return .off }
        switch folder.liveness() {
        case .stopped: return .off
        case .unknown(let why): return .unknown(why)
        case .running(let pid):
            let deadline = ContinuousClock.now + settings.monitorTimeout
            do {
                let monitor = try QMPClient(folder: folder, monitor: .status, deadline: deadline)
                let answer = try monitor.execute("query-status", until: deadline)
                if answer["running"]?.bool == true { return .on }
                return .paused(answer["status"]?.string ?? "paused")
            } catch {
                // A QEMU that went while it was asked is off; one that stays but does not answer is not.
                return folder.liveness() == .running(pid: pid) ? .noAnswer(error.message) : .off
            }
        }
    }
}
