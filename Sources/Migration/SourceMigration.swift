internal import Foundation
public import Host
public import Registry
public import Runtime

/// What `hpvmmigrate` was asked to do.
public struct MigrationOptions: Sendable {
    public var guest: String
    public var host: String
    public var newName: String?
    public var label: String?
    public var vcpus: Int?
    public var memoryMB: Int?
    public var overrides: [ResourceStatement] = []
    public var translate = false
    public var remove = false
    public var checkOnly = false
    public var force = false
    /// `-C`: copy the data of every `-m` device to the target.
    public var copy = false
    /// Show a progress line while copying or streaming.
    public var progress = false
    /// `-o`: move the running guest (its QEMU's memory and state) to the target's QEMU.
    public var online = false
    /// `-d`: stop the running guest here once the checks passed, then migrate it offline.
    public var stopFirst = false
    /// `-b`: start the guest on the target once it is migrated.
    public var boot = false
    /// How the stream of `-o` runs.
    public var stream = LiveMigrationSettings()
    /// `-o`: the longest the stream may take, in seconds (`migrate_copy_phase_timeout`; nil: no limit).
    public var streamTimeout: Int?
    /// `-o`: the longest the stream may stand still, in seconds (the deadline of silence).
    public var silence = 15

    public init(guest: String, host: String) {
        self.guest = guest
        self.host = host
    }
}

/// What a migration or check produced.
public struct MigrationOutcome: Sendable {
    public var report: MigrationReply?
    public var migrated = false
    /// The errors `-F` went past (or, with `-s -F`, would go past).
    public var forced: [Finding] = []
    /// With `-s`: why the migration would fail (the command prints the report, then this).
    public var failure: MigrationError?
    /// `-o`: the stream as QEMU measured it when it completed.
    public var live: LiveMigrationProgress?
    /// What the target said once the guest was migrated: `-b`'s start, or a QEMU that ended there.
    public var notes: [String] = []
}

/// The source half of an offline migration, phase by phase (DESIGN.md §5).
public struct SourceMigration {
    let guests: GuestRegistry
    let connector: any RemoteConnector
    let failpoints: Failpoints
    let sourceHost: String
    /// How this host runs guests: online migration, `-d`, and recovery of an online migration need it.
    let runtime: GuestRuntime?
    /// The fleet's leases on this host (``NoLeases`` when they are off).
    let leases: any GuestLeases

    public init(
        guests: GuestRegistry, connector: any RemoteConnector, failpoints: Failpoints, sourceHost: String, runtime: GuestRuntime? = nil,
        leases: any GuestLeases = NoLeases()
    ) {
        self.guests = guests
        self.connector = connector
        self.failpoints = failpoints
        self.sourceHost = sourceHost
        self.runtime = runtime
        self.leases = leases
    }

    /// Online, past the point of no return: the guest's lease is released from its QEMU here
    /// (its version kept in the journal), then that QEMU ends (`source-stopped`).
    ///
    /// - Returns: the lease's version, nil when leases are off or it could not be read (the QEMU's
    ///   end releases the lease then, and the target takes it at any version).
    func stopQEMUHere(_ name: String, migrationID: String, peer: String) throws -> UInt64? {
        guard let runtime else { return nil }
        var version: UInt64?
        if let pid = try runtime.folder(name).runningPID {
            version = try? leases.release(guest: name, pid: pid)
            try runtime.stop(name, mode: .force)
        }
        try guests.record(
            migrationID, guest: name, role: .source, peer: peer, phase: .sourceStopped, detail: version.map(LiveArrival.leaseVersionDetail))
        return version
    }

    /// Runs the migration phase by phase (DESIGN.md §5): each step below is one transition, and
    /// each transition that fails rolls back, or says how recovery finishes, in one place
    /// (``SourceRun/cancel(_:_:told:)``).
    public func run(_ options: MigrationOptions) throws(MigrationError) -> MigrationOutcome {
        let run = try SourceRun.lock(self, options)
        defer { run.close() }
        try run.connect()
        try run.greet()
        run.dropAbandonedCopies()
        let report = try run.check()
        if options.checkOnly { return run.verdict(report) }
        try run.stopOnFailedChecks(report)
        if options.stopFirst { try run.stopGuest() }
        try run.copy(report)
        try run.prepare()
        if options.online {
            try run.startTargetQEMU()
            try run.stream()
            try run.confirmArrival()
        }
        try run.disable()
        if options.online { try run.stopSourceQEMU() }
        try run.commit()
        try run.finish()
        if options.boot { run.bootOnTarget() }
        run.goodbye()
        return run.outcome(report)
    }

    /// Whether `-m override` names the device of `statement`: the same type, bus and device (and
    /// target, for storage).
    static func matches(_ override: ResourceStatement, _ statement: ResourceStatement) -> Bool {
        override.deviceType == statement.deviceType && override.bus == statement.bus && override.device == statement.device
            && (override.deviceType == .network || override.target == statement.target)
    }

    /// HPVM's message lines for failed checks, one per class, then the details.
    func checkFailure(_ errors: [Finding], forced: Bool = false) -> MigrationError {
        var lines: [String] = []
        for message in errors.map(\.message) where !message.isEmpty && !lines.contains(message) {
            lines.append(message)
        }
        if errors.contains(where: { $0.message.hasPrefix("Target VM Host error") }) {
            lines.append("The target's findings follow, one a line (hpvmmigrate -s --json prints them as JSON).")
        }
        lines += errors.map { "  \($0.kind): \($0.detail)" }
        if forced { lines.append("-F does not override these errors (see hpvmmigrate(8), -F).") }
        return MigrationError(.checks, lines, phase: "check")
    }

    // MARK: - Recovery

    /// Finishes or rolls back every unfinished migration from this host (of one guest, or all).
    ///
    /// Before the source was disabled, the migration is rolled back: the target drops its Not
    /// Runnable copy and the guest stays runnable here. After, it is finished: the target's copy is
    /// committed. Safe to run again; it never needs a person to edit the registry.
    public func recover(guest name: String?) throws(MigrationError) -> [String] {
        let pending: [JournalEntry]
        do {
            pending = try guests.unfinishedMigrations(role: .source).filter { name == nil || $0.guestName == name }
        } catch {
            throw MigrationError.registry(error, phase: "recover")
        }
        let arrivals = try recoverArrivals(guest: name)
        if pending.isEmpty && arrivals == nil { return ["nothing to recover\(name.map { " for \($0)" } ?? "")."] }
        var lines: [String] = arrivals?.lines ?? []
        var stuck = arrivals?.stuck ?? false
        var held: [MigrationLock] = []
        defer { withExtendedLifetime(held) {} }
        for entry in pending {
            let guest = entry.guestName
            let id = entry.migrationID
            // A migration that is still running is its own business: never roll it back under it.
            do {
                held.append(try MigrationLock.acquire(root: guests.root, guest: guest, phase: "recover"))
            } catch {
                stuck = true
                lines.append(
                    "migration \(id) of \(guest) is still running (\(MigrationLock.holder(root: guests.root, guest: guest) ?? "another process")); --recover leaves it alone. Run it again when that process has ended.")
                continue
            }
            // -D interrupted after the migration finished: only the removal is left, here.
            if entry.phase == .removing {
                do { try guests.finishRemoval(guest, migrationID: id, peer: entry.peerHost) } catch {
                    throw MigrationError.registry(error, phase: "recover")
                }
                lines.append("finished migration \(id): \(guest) is runnable on \(entry.peerHost) and removed from this host (-D).")
                continue
            }
            let targetName = entry.targetName ?? guest
            let journal = (try? guests.journal(migrationID: id)) ?? []
            var leaseVersion = LiveArrival.releasedLeaseVersion(journal)
            let link = try? connector.connect(host: entry.peerHost)
            defer { link?.close() }
            /// One request to the target and its answer, nil when there is none to be had.
            func ask(_ type: RequestType) -> MigrationReply? {
                guard let link, !link.isBroken else { return nil }
                let request =
                    type == .hello
                    ? MigrationRequest(type, version: MigrationProtocol.version, sourceHost: sourceHost)
                    // abort, commit and status need only the migration and the guest's name on the target.
                    : MigrationRequest(type, migrationID: id, sourceHost: sourceHost, guestName: targetName)
                var sent = request
                if type == .commit { sent.leaseVersion = leaseVersion }
                _ = try? link.send(JSONLine.encode(sent))
                guard let line = (try? link.receive()) ?? nil else { return nil }
                return try? ProtocolDecoder.reply(line, to: type)
            }
            let greeted = ask(.hello)?.version == MigrationProtocol.version
            let targetPhase = greeted ? ask(.status)?.phase : nil
            /// An online migration's QEMU here goes on with the guest when a completed stream had
            /// left it paused: the target's copy never continues before this host passed its
            /// point of no return.
            func resumeHere() {
                if let runtime, runtime.runState(guest) == "postmigrate" { try? runtime.resume(guest) }
            }
            switch entry.phase {
            case .preparing, .aborting, .streamed:
                let dropped = greeted && ask(.abort)?.kind == .aborted
                if entry.phase == .aborting && !dropped {
                    resumeHere()
                    stuck = true
                    lines.append(
                        "\(guest) stays runnable here; \(entry.peerHost) may still hold a Not Runnable copy (it never becomes runnable). Run hpvmmigrate --recover -P \(guest) again when \(entry.peerHost) is reachable to remove it.")
                    continue
                }
                do { try guests.abortSource(guest, migrationID: id, peer: entry.peerHost, reason: "recovered", targetDone: dropped) } catch {
                    throw MigrationError.registry(error, phase: "recover")
                }
                resumeHere()
                lines.append(
                    "rolled back migration \(id): \(guest) stays runnable on this host"
                        + (dropped ? "; \(entry.peerHost) dropped its copy." : "; \(entry.peerHost) was not reachable: run hpvmmigrate --recover again later to remove its Not Runnable copy, if any."))
            case .sourceDisabled, .sourceStopped:
                // Online: the QEMU here ends before the target's may continue.
                if entry.phase == .sourceDisabled, journal.contains(where: { $0.role == .source && $0.phase == .streamed }) {
                    do {
                        leaseVersion = try stopQEMUHere(guest, migrationID: id, peer: entry.peerHost)
                    } catch {
                        stuck = true
                        lines.append("guest \(guest)'s QEMU here did not end (\(error)); run hpvmmigrate --recover -P \(guest) again.")
                        continue
                    }
                }
                guard greeted, let targetPhase else {
                    stuck = true
                    lines.append(
                        "\(guest) is Not Runnable on both hosts: \(entry.peerHost) cannot be reached. Run hpvmmigrate --recover -P \(guest) again when it can.")
                    continue
                }
                guard [.prepared, .committed, .targetStarted, .continued].contains(targetPhase) else {
                    // The target has no prepared copy (its registry was lost or replaced): the guest
                    // is runnable nowhere. Say so; never guess. The lock goes, so the fix the
                    // message gives works.
                    stuck = true
                    if targetPhase == .noRecord || targetPhase == .aborted {
                        try? guests.strandSource(guest, migrationID: id, peer: entry.peerHost)
                    }
                    lines.append(
                        "\(entry.peerHost) has no record of migration \(id) (phase \(targetPhase.rawValue)); \(guest) is runnable on neither host. Check that it is not on \(entry.peerHost), then make it runnable here with hpvmmodify -P \(guest) -x register_status=enabled.")
                    continue
                }
                if targetPhase == .prepared || targetPhase == .targetStarted {
                    guard ask(.commit)?.kind == .committed else {
                        stuck = true
                        lines.append("\(entry.peerHost) did not commit \(guest); run hpvmmigrate --recover -P \(guest) again.")
                        continue
                    }
                }
                do { try guests.finishSource(guest, migrationID: id, peer: entry.peerHost, remove: false) } catch {
                    throw MigrationError.registry(error, phase: "recover")
                }
                lines.append("finished migration \(id): \(guest) is runnable on \(entry.peerHost) and Not Runnable here.")
            case .removing, .done, .aborted, .copyClaimed, .prepared, .committed, .noRecord, .targetStarted, .continued:
                lines.append("migration \(id) of \(guest) is in phase \(entry.phase.rawValue); nothing to do.")
            }
        }
        if stuck { throw MigrationError(.interrupted, lines, phase: "recover") }
        return lines
    }
}

extension SourceMigration {
    /// Recovery on the target: every arrival here that is neither committed nor rolled back is
    /// settled by asking its source how far it got (nil when there is none). Before the source's
    /// point of no return (and with its process gone), the arrival is rolled back here; after it,
    /// it is committed here. The source's own journal is finished by `--recover` there.
    func recoverArrivals(guest name: String?) throws(MigrationError) -> (lines: [String], stuck: Bool)? {
        let pending: [JournalEntry]
        do {
            pending = try guests.unfinishedMigrations(role: .target).filter { name == nil || $0.guestName == name }
        } catch {
            throw MigrationError.registry(error, phase: "recover")
        }
        if pending.isEmpty { return nil }
        var lines: [String] = []
        var stuck = false
        for entry in pending {
            let (guest, id, source) = (entry.guestName, entry.migrationID, entry.peerHost)
            let link = try? connector.connect(host: source)
            defer { link?.close() }
            func ask(_ request: MigrationRequest) -> MigrationReply? {
                guard let link, !link.isBroken, let type = RequestType(rawValue: request.type) else { return nil }
                guard (try? link.send(JSONLine.encode(request))) != nil, let line = (try? link.receive()) ?? nil else { return nil }
                return try? ProtocolDecoder.reply(line, to: type)
            }
            let hello = ask(MigrationRequest(.hello, version: MigrationProtocol.version, sourceHost: sourceHost))
            guard hello?.version == MigrationProtocol.version, let status = ask(MigrationRequest(.status, migrationID: id, sourceHost: sourceHost)),
                let phase = status.phase
            else {
                stuck = true
                lines.append(
                    "\(guest) arriving by migration \(id) stays Not Runnable here: its source \(source) cannot be asked how far it got. Run hpvmmigrate --recover here again when it can, or on \(source).")
                continue
            }
            if let running = status.message, running.hasPrefix("running") {
                stuck = true
                lines.append("migration \(id) of \(guest) is still running on \(source) (\(running.dropFirst(9))); --recover leaves it alone.")
                continue
            }
            do {
                let live = LiveArrival(guests: guests, runtime: runtime, leases: leases)
                switch phase {
                case .sourceDisabled where entry.phase == .targetStarted:
                    // Online: the source's QEMU may not have ended yet; only the source finishes this.
                    stuck = true
                    lines.append(
                        "migration \(id) of \(guest) is past the point of no return on \(source), whose QEMU may still hold the guest; finish it there with hpvmmigrate --recover -P \(guest).")
                case .sourceDisabled, .sourceStopped, .done, .removing:
                    if entry.phase == .prepared || entry.phase == .targetStarted {
                        let note = try live.commit(guest, migrationID: id, peer: source, leaseVersion: status.leaseVersion)
                        lines.append(
                            "finished migration \(id): \(guest) is runnable here\(entry.phase == .targetStarted && note == nil ? " and runs here" : "") and Not Runnable on \(source) (run hpvmmigrate --recover there to close its journal)."
                                + (note.map { " " + $0 + "." } ?? ""))
                    } else {
                        stuck = true
                        lines.append("migration \(id) of \(guest) is past the point of no return on \(source) but was never prepared here; run hpvmmigrate --recover on \(source).")
                    }
                case .preparing, .aborting, .aborted, .noRecord, .copyClaimed, .prepared, .committed, .streamed, .targetStarted, .continued:
                    // The source never disabled its copy (a target's phase here means a source
                    // that holds no source row for it: it never got so far either).
                    try live.abort(guest, migrationID: id, peer: source)
                    lines.append(
                        "rolled back migration \(id): \(guest) is not kept here; the source \(source) keeps it (its journal says \(phase.rawValue)).")
                }
            } catch let error as RegistryError {
                throw MigrationError.registry(error, phase: "recover")
            } catch {
                stuck = true
                lines.append("migration \(id) of \(guest) could not be settled here: \(error); run hpvmmigrate --recover again.")
            }
        }
        return (lines, stuck)
    }
}
