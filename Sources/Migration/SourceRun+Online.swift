internal import Dispatch
internal import Foundation
internal import Registry
internal import Runtime

#if canImport(Glibc)
internal import Glibc
#endif

/// The live phases of an online migration (`-o`) on the source, and `-d` and `-b`.
///
/// Order, each step recorded before the next (DESIGN.md §7): the target starts the prepared guest's
/// QEMU paused (`target-started`); the stream runs over a second channel until QEMU here reports
/// it complete and the target's QEMU has all of it (`streamed`; the guest stands still on both
/// hosts); the guest becomes Not Runnable here (`source-disabled`, the point of no return); the
/// QEMU here ends (`source-stopped`); only then does the target's QEMU continue (`continued`).
/// Before the point of no return a failure rolls back: the target ends its QEMU, and the QEMU
/// here goes on (QEMU resumes it itself after a failed stream; a completed one is resumed with
/// `cont`). The target's QEMU never continues before the QEMU here has ended.
extension SourceRun {
    /// `-d`: after the checks passed, the running guest stops here (power button, then `quit`
    /// after the stop timeout), and the migration goes on offline.
    func stopGuest() throws(MigrationError) {
        guard let runtime = migration.runtime, runtime.isRunning(name) else { return }
        do {
            do {
                try runtime.stop(name, mode: .powerButtonAndWait)
            } catch where error.code == .timeout {
                try runtime.stop(name, mode: .force)
            }
        } catch {
            throw cancel(MigrationError(.refused, ["cannot stop guest \(name) for the migration (-d): \(error.message)"], phase: "stop"), "stop failed")
        }
        migration.failpoints.hit("source-after-stop")
    }

    /// The target starts the prepared guest's QEMU, paused, waiting for the stream.
    func startTargetQEMU() throws(MigrationError) {
        do {
            _ = try exchange(MigrationRequest(.incoming, migrationID: id, sourceHost: migration.sourceHost, guestName: targetName))
        } catch {
            throw cancel(error, "target QEMU failed", told: tellTargetToAbort())
        }
        migration.failpoints.hit("source-after-incoming")
    }

    /// The stream: QEMU here writes it into a socket pair, and this process carries it over a
    /// second channel to the target, whose QEMU reads it. Ends when QEMU here says `completed`
    /// and has closed its end; cancelled (the guest going on here) when QEMU fails it, when the
    /// target stops taking it for the deadline of silence, or at `migrate_copy_phase_timeout`.
    func stream() throws(MigrationError) {
        guard let runtime = migration.runtime, let link else { return }
        let channel: any RemoteLink
        do throws(MigrationError) {
            channel = try link.openStream()
            streamLink = channel
            // The stream's channel runs a target half of its own: greeted, then told what it carries.
            let hello = try exchange(MigrationRequest(.hello, version: MigrationProtocol.version, sourceHost: migration.sourceHost), on: channel)
            guard hello.version == MigrationProtocol.version else {
                throw MigrationError(.protocolError, ["Target VM Host error - the stream's channel did not greet with protocol version \(MigrationProtocol.version)."], phase: "stream")
            }
            _ = try exchange(MigrationRequest(.stream, migrationID: id, sourceHost: migration.sourceHost, guestName: targetName), on: channel)
        } catch {
            throw cancel(error, "stream refused", told: tellTargetToAbort())
        }
        let outgoing: OutgoingMigration
        do {
            outgoing = try runtime.beginOutgoing(name, settings: options.stream)
        } catch {
            throw cancel(MigrationError(.refused, ["cannot start guest \(name)'s stream: \(error.message)"], phase: "stream"), "stream failed", told: tellTargetToAbort())
        }
        defer { outgoing.close() }
        migration.failpoints.hit("source-streaming")
        do {
            live = try pump(outgoing, into: channel)
        } catch {
            // pump cancelled the stream already: QEMU here goes on with the guest.
            channel.close()
            streamLink = nil
            throw cancel(error, "stream failed", told: tellTargetToAbort())
        }
        channel.finishSending()
    }

    /// Carries the stream until QEMU here completed it and closed its end.
    ///
    /// The bytes move on a thread of their own (``StreamPump``), never waiting for QMP: in its
    /// last pass QEMU writes the stream while it holds its big lock, and its monitor answers only
    /// once that write is done, so a reader that waited for the monitor first would never get the
    /// answer. This thread asks QMP how far the stream got, and judges the deadlines.
    private func pump(_ outgoing: OutgoingMigration, into channel: any RemoteLink) throws(MigrationError) -> LiveMigrationProgress {
        let started = ContinuousClock.now
        let silence = Duration.seconds(options.silence)
        let pump = StreamPump(descriptor: outgoing.descriptor, channel: channel)
        pump.start()
        var progress = LiveMigrationProgress(status: "setup")
        var shown = false
        var completed = false
        defer {
            // A stream that failed is cancelled first: QEMU here goes on with the guest at once.
            if !completed { outgoing.cancel() }
            pump.stop()
            // The channel is this thread's again only once the pump let it go (a write waits at
            // most the deadline of silence).
            pump.wait(for: silence + .seconds(2))
            if shown { _ = "\n".withCString { write(2, $0, 1) } }
        }
        while true {
            usleep(50_000)
            let now = ContinuousClock.now
            let (ended, lastMoved, failure) = pump.state()
            if let failure { throw failure }
            do {
                progress = try outgoing.progress()
            } catch {
                throw MigrationError(
                    .refused, ["guest \(name)'s QEMU here stopped answering during the stream (\(error.message)); it may have ended."], phase: "stream")
            }
            if options.progress {
                shown = true
                let line = "\rhpvmmigrate: streaming \(name): \(progress.transferred >> 20) MiB sent, \(progress.remaining >> 20) MiB left, pass \(progress.passes)   "
                _ = line.withCString { write(2, $0, strlen($0)) }
            }
            switch progress.status {
            case "completed" where ended:
                completed = true
                return progress
            case "failed", "cancelled":
                throw MigrationError(
                    .refused, ["guest \(name)'s stream \(progress.status)\(progress.error.map { ": \($0)" } ?? ""); it goes on running here."], phase: "stream")
            default:
                if ended && !progress.hasEnded && now - lastMoved > .seconds(5) {
                    throw MigrationError(.refused, ["guest \(name)'s QEMU closed the stream without completing it."], phase: "stream")
                }
            }
            if !ended && now - lastMoved > silence {
                throw MigrationError(
                    .ssh, ["Target VM Host error - the stream to \(host) did not move for \(options.silence) s; the migration was cancelled."],
                    phase: "stream")
            }
            if let limit = options.streamTimeout, now - started > .seconds(limit) {
                throw MigrationError(
                    .refused,
                    ["guest \(name)'s stream did not complete within migrate_copy_phase_timeout (\(limit) s); the migration was cancelled and the guest goes on running here."],
                    phase: "stream")
            }
        }
    }

    /// The target's QEMU has the whole stream: the guest stands still on both hosts (`streamed`).
    func confirmArrival() throws(MigrationError) {
        do {
            _ = try exchange(MigrationRequest(.arrival, migrationID: id, sourceHost: migration.sourceHost, guestName: targetName))
            streamLink?.close()
            streamLink = nil
            try guests.record(id, guest: name, role: .source, peer: host, phase: .streamed, detail: live.map(Self.figures))
        } catch let error as MigrationError {
            throw cancel(error, "arrival failed", told: tellTargetToAbort())
        } catch {
            throw cancel(MigrationError.registry(error as? RegistryError ?? RegistryError(.database, "\(error)"), phase: "streamed"), "journal", told: tellTargetToAbort())
        }
        migration.failpoints.hit("source-after-stream")
    }

    /// After the point of no return: the QEMU here ends (`source-stopped`); the target's QEMU may
    /// then continue.
    func stopSourceQEMU() throws(MigrationError) {
        do {
            leaseVersion = try migration.stopQEMUHere(name, migrationID: id, peer: host)
        } catch {
            throw MigrationError(
                .interrupted,
                ["guest \(name)'s QEMU here did not end (\(error)); it is Not Runnable here and not yet running on \(host); finish with: hpvmmigrate --recover -P \(name)"],
                phase: MigrationPhase.sourceStopped.rawValue)
        }
        migration.failpoints.hit("source-after-source-stopped")
    }

    /// `-b`: the target starts the guest. A refusal there leaves the migration done: it is said.
    func bootOnTarget() {
        do {
            let reply = try exchange(MigrationRequest(.boot, migrationID: id, sourceHost: migration.sourceHost, guestName: targetName))
            notes.append("started guest \(targetName) on \(host) (-b): \(reply.message ?? "running").")
        } catch {
            notes.append("guest \(targetName) did not start on \(host) (-b): \(error.lines.joined(separator: " ")) Start it there with hpvmstart -P \(targetName).")
        }
    }

    /// Before the point of no return: QEMU here goes on with the guest when a completed stream
    /// had left it paused (`postmigrate`).
    func resumeSourceQEMU() {
        guard let runtime = migration.runtime else { return }
        if runtime.runState(name) == "postmigrate" { try? runtime.resume(name) }
    }

    /// `12.3 MiB in 1.62 s, downtime 18 ms, 3 passes`.
    static func figures(_ progress: LiveMigrationProgress) -> String {
        "\(progress.transferred >> 20) MiB in \(Double(progress.totalTime) / 1000) s, downtime \(progress.downtime) ms, \(progress.passes) passes"
    }
}

/// Moves a stream's bytes from QEMU's end of the socket pair to the channel, on a thread of its
/// own, until QEMU closes its end, the channel fails, or it is told to stop.
final class StreamPump: @unchecked Sendable {
    private let descriptor: Int32
    private let channel: any RemoteLink
    private let lock = NSLock()
    private let finished = DispatchSemaphore(value: 0)
    private var ended = false
    private var lastMoved = ContinuousClock.now
    private var failure: MigrationError?
    private var stopping = false
    private var running = false

    init(descriptor: Int32, channel: any RemoteLink) {
        self.descriptor = descriptor
        self.channel = channel
    }

    func start() {
        running = true
        Thread.detachNewThread { [self] in
            run()
            finished.signal()
        }
    }

    /// Whether QEMU closed its end, when bytes last moved, and why the channel failed.
    func state() -> (ended: Bool, lastMoved: ContinuousClock.Instant, failure: MigrationError?) {
        lock.withLock { (ended, lastMoved, failure) }
    }

    func stop() { lock.withLock { stopping = true } }

    /// Waits until the thread has ended (at most `duration`).
    func wait(for duration: Duration) {
        guard running else { return }
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        if finished.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .success { running = false }
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        while !lock.withLock({ stopping }) {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else {
                lock.withLock { ended = true }
                return
            }
            let failed: MigrationError? = buffer.withUnsafeBytes { bytes -> MigrationError? in
                do throws(MigrationError) {
                    try channel.sendBytes(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
                    return nil
                } catch {
                    return error
                }
            }
            lock.withLock {
                if let failed { failure = failed } else { lastMoved = .now }
            }
            if failed != nil { return }
        }
    }
}
