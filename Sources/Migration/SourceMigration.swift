internal import Foundation
public import Host
public import Registry

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
    /// Show a progress line while copying.
    public var progress = false

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
}

/// The source half of an offline migration, phase by phase (DESIGN.md §5).
public struct SourceMigration {
    let guests: GuestRegistry
    let connector: any RemoteConnector
    let failpoints: Failpoints
    let sourceHost: String

    public init(guests: GuestRegistry, connector: any RemoteConnector, failpoints: Failpoints, sourceHost: String) {
        self.guests = guests
        self.connector = connector
        self.failpoints = failpoints
        self.sourceHost = sourceHost
    }

    public func run(_ options: MigrationOptions) throws(MigrationError) -> MigrationOutcome {
        let id = "\(sourceHost)-\(UUID().uuidString.prefix(8).lowercased())"
        let name = options.guest
        let targetName = options.newName ?? name
        // The migration's claim for its whole life (not for -s, which changes nothing anywhere):
        // released by the kernel when this process ends, however it ends.
        // A guest that is not here is refused below, with nothing made for it.
        let exists = ((try? guests.guest(named: name)) ?? nil) != nil
        let held = options.checkOnly || !exists ? nil : try MigrationLock.acquire(root: guests.root, guest: name, phase: "lock")
        defer { withExtendedLifetime(held) {} }
        // Phase 1: lock (not for -s).
        let guest: Guest
        let resources: [MigratingResource]
        do {
            (guest, resources) = try guests.lockForMigration(
                name, migrationID: id, peer: options.host, targetName: targetName, lock: !options.checkOnly)
        } catch {
            throw MigrationError.registry(error, phase: "lock")
        }
        // Every -m names a device of the guest, by its address: one that names none is refused.
        let statements = resources.map { try? ResourceStatement.parse($0.statement) }
        if let stray = options.overrides.first(where: { override in !statements.contains { $0.map { Self.matches(override, $0) } ?? false } }) {
            if !options.checkOnly { try? guests.abortSource(name, migrationID: id, peer: options.host, reason: "-m matches no device") }
            throw MigrationError(
                .refused,
                ["-m \(stray.description) matches no device of \(name): give the device type, bus, device and target of one of its devices (hpvmstatus -P \(name) -d lists them)."],
                phase: "lock")
        }
        failpoints.hit("source-after-lock")
        func rollBack(_ reason: String, targetDone: Bool = true) {
            if !options.checkOnly {
                try? guests.abortSource(name, migrationID: id, peer: options.host, reason: reason, targetDone: targetDone)
            }
        }
        /// Rolls back and says where each host stands, for a failure of the link or the protocol.
        func failed(_ error: MigrationError, _ reason: String, targetDone: Bool = true, target: String? = nil) -> MigrationError {
            rollBack(reason, targetDone: targetDone)
            guard !options.checkOnly, error.code == .ssh || error.code == .protocolError else { return error }
            return MigrationError(
                error.code,
                error.lines + ["Guest \(name) stays runnable on this host (the migration was rolled back); \(target ?? "nothing changed on \(options.host).")"],
                phase: error.phase, cause: error.cause)
        }
        func targetState(_ told: Bool, copies: Bool) -> String {
            if told { return copies ? "\(options.host) released what it claimed for the copies." : "\(options.host) dropped its Not Runnable copy." }
            return (copies ? "\(options.host) may keep its claims on the copies' destinations" : "\(options.host) may hold a Not Runnable copy (it never becomes runnable)")
                + " until hpvmmigrate --recover -P \(name) reaches it."
        }
        let link: any RemoteLink
        do {
            link = try connector.connect(host: options.host)
        } catch {
            rollBack("connect failed")
            throw error
        }
        defer { link.close() }
        func exchange(_ request: MigrationRequest) throws(MigrationError) -> MigrationReply {
            guard !link.isBroken else {
                throw MigrationError(.ssh, ["Target VM Host error - the connection to \(options.host) was lost."], phase: request.type)
            }
            try link.send(JSONLine.encode(request))
            guard let line = try link.receive() else {
                throw MigrationError(.protocolError, ["Target VM Host error - the target closed the connection during '\(request.type)': its hpvmmigrate ended (killed, or it failed)."], phase: request.type)
            }
            let reply: MigrationReply
            do {
                reply = try ProtocolDecoder.reply(line, to: RequestType(rawValue: request.type) ?? .bye)
            } catch {
                throw MigrationError(
                    .protocolError, ["Target VM Host error - the target answered something that is not hpvmmigrate's protocol: \(error.reason)."],
                    phase: request.type)
            }
            if reply.type == "error" {
                throw MigrationError(.target, ["Target VM Host error - \(reply.message ?? "unknown error")."], phase: request.type)
            }
            return reply
        }
        // Versions.
        let hello: MigrationReply
        do {
            hello = try exchange(MigrationRequest(type: "hello", version: MigrationProtocol.version, sourceHost: sourceHost))
        } catch {
            throw failed(error, "no answer to hello")
        }
        guard hello.type == "hello", hello.version == MigrationProtocol.version else {
            rollBack("protocol version")
            throw MigrationError(
                .protocolError,
                ["Target VM Host error - the target speaks protocol version \(hello.version.map(String.init) ?? "?"), this host \(MigrationProtocol.version); install the same hpvm release on both hosts."])
        }
        // An earlier migration of this guest to this target that was rolled back here without the
        // target being told (`aborting`) may have left a Not Runnable copy there: drop it first,
        // so that it does not stand in the way.
        if !options.checkOnly {
            let abandoned = ((try? guests.unfinishedMigrations(role: "source")) ?? []).filter {
                $0.guestName == name && $0.phase == "aborting" && $0.peerHost == options.host && $0.migrationID != id
            }
            for entry in abandoned {
                let left = ((try? guests.journal(migrationID: entry.migrationID)) ?? []).first { $0.phase == "preparing" }?.detail ?? name
                let carrier = GuestPackage(
                    name: left, vcpus: 0, memoryMB: 0, label: nil, osType: nil, resources: [], overrides: [], translate: false, networks: [:])
                let abort = MigrationRequest(type: "abort", migrationID: entry.migrationID, sourceHost: sourceHost, guest: carrier)
                if (try? exchange(abort))?.type == "aborted" {
                    try? guests.abortSource(name, migrationID: entry.migrationID, peer: options.host, reason: "recovered", targetDone: true)
                }
            }
        }
        // Phase 2: checks.
        let networks = NetworkInventory().bridges()
        var package = GuestPackage(
            name: targetName, vcpus: options.vcpus ?? guest.vcpus, memoryMB: options.memoryMB ?? guest.memoryMB,
            label: options.label ?? guest.label, osType: guest.osType, resources: resources,
            overrides: statements.map { statement in
                guard let statement else { return nil }
                return options.overrides.first { Self.matches($0, statement) }?.description
            },
            translate: options.translate, networks: networks)
        package.copies = package.overrides.map { $0 != nil && options.copy }
        // Going back where it came from, under the same name: the target's copy is the one it left.
        if targetName == name { package.returning = (try? guests.arrival(of: name, excluding: id)) ?? nil }
        let report: MigrationReply
        do {
            report = try exchange(MigrationRequest(type: "check", migrationID: id, sourceHost: sourceHost, guest: package))
        } catch {
            throw failed(error, "check failed")
        }
        // Every resource has its statement on the target, or nothing goes ahead: a map that leaves
        // one out would skip its copy.
        guard report.map?.count == resources.count else {
            _ = try? exchange(MigrationRequest(type: "bye"))
            throw failed(MigrationError(
                .protocolError,
                ["Target VM Host error - the target answered something that is not hpvmmigrate's protocol: a map of \(report.map?.count ?? 0) devices for \(resources.count)."],
                phase: "check"), "protocol")
        }
        var outcome = MigrationOutcome(report: report)
        let errors = report.errors ?? []
        // -F passes only what the target marks forceable; -s -F judges exactly the same way.
        let stopping = options.force ? errors.filter { $0.forceable != true } : errors
        outcome.forced = options.force ? errors.filter { $0.forceable == true } : []
        if options.checkOnly {
            _ = try? exchange(MigrationRequest(type: "bye"))
            // The report goes back with the verdict, so --json prints it whatever it says.
            if !stopping.isEmpty { outcome.failure = checkFailure(stopping, forced: options.force) }
            return outcome
        }
        if !stopping.isEmpty {
            rollBack("checks failed")
            _ = try? exchange(MigrationRequest(type: "bye"))
            throw checkFailure(stopping, forced: options.force)
        }
        failpoints.hit("source-after-check")
        // Phase 3: data copies (-m ... -C), over the same channel.
        for (index, copy) in package.copies.enumerated() where copy {
            do throws(MigrationError) {
                guard let source = try? ResourceStatement.parse(resources[index].statement),
                    let target = (report.map?[safe: index]).flatMap({ try? ResourceStatement.parse($0) })
                else {
                    throw MigrationError(
                        .protocolError, ["Target VM Host error - the target's map has no statement for device \(index + 1), which -C copies."], phase: "copy")
                }
                try BackingCopy.send(
                    realPath: guests.root.real(source.location), shownPath: source.location, targetPath: target.location,
                    migrationID: id, link: link, exchange: exchange, progress: options.progress)
            } catch {
                // The target releases what it claimed for the copies.
                let told = (try? exchange(MigrationRequest(type: "abort", migrationID: id, sourceHost: sourceHost, guest: package)))?.type == "aborted"
                throw failed(error, "copy failed", targetDone: told, target: targetState(told, copies: true))
            }
        }
        // Phase 4: the target prepares.
        do throws(MigrationError) {
            // exchange accepts only `prepared` (or `error`) in answer to `prepare`.
            _ = try exchange(MigrationRequest(type: "prepare", migrationID: id, sourceHost: sourceHost, guest: package))
        } catch {
            let told = (try? exchange(MigrationRequest(type: "abort", migrationID: id, sourceHost: sourceHost, guest: package)))?.type == "aborted"
            throw failed(error, "prepare failed", targetDone: told, target: targetState(told, copies: false))
        }
        failpoints.hit("source-after-prepare")
        // Phase 5: the point of no return.
        do {
            try guests.disableSource(name, migrationID: id, peer: options.host)
        } catch {
            let told = (try? exchange(MigrationRequest(type: "abort", migrationID: id, sourceHost: sourceHost, guest: package)))?.type == "aborted"
            rollBack("disable failed", targetDone: told)
            throw MigrationError.registry(error, phase: "source-disabled")
        }
        failpoints.hit("source-after-disable")
        // Phase 6: the target makes its copy runnable.
        do {
            // Only `committed` counts: exchange refuses any other answer.
            _ = try exchange(MigrationRequest(type: "commit", migrationID: id, sourceHost: sourceHost, guest: package))
        } catch {
            throw MigrationError(
                .interrupted,
                error.lines + [
                    "Guest \(name) is Not Runnable here and not yet runnable on \(options.host); finish with: hpvmmigrate --recover -P \(name)"
                ], phase: "commit", cause: error)
        }
        failpoints.hit("source-after-commit")
        // Phase 7.
        do {
            try guests.finishSource(name, migrationID: id, peer: options.host, remove: options.remove)
            if options.remove {
                failpoints.hit("source-before-remove")
                try guests.finishRemoval(name, migrationID: id, peer: options.host)
            }
        } catch {
            throw MigrationError.registry(error, phase: "done")
        }
        _ = try? exchange(MigrationRequest(type: "bye"))
        outcome.migrated = true
        return outcome
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
            pending = try guests.unfinishedMigrations(role: "source").filter { name == nil || $0.guestName == name }
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
            if entry.phase == "removing" {
                do { try guests.finishRemoval(guest, migrationID: id, peer: entry.peerHost) } catch {
                    throw MigrationError.registry(error, phase: "recover")
                }
                lines.append("finished migration \(id): \(guest) is runnable on \(entry.peerHost) and removed from this host (-D).")
                continue
            }
            let targetName = ((try? guests.journal(migrationID: id)) ?? []).first { $0.phase == "preparing" }?.detail ?? guest
            let link = try? connector.connect(host: entry.peerHost)
            defer { link?.close() }
            func ask(_ type: String) -> MigrationReply? {
                guard let link, !link.isBroken else { return nil }
                // abort, commit and status need only the guest's name on the target.
                let package = GuestPackage(
                    name: targetName, vcpus: 0, memoryMB: 0, label: nil, osType: nil,
                    resources: [], overrides: [], translate: false, networks: [:])
                if type == "hello" {
                    _ = try? link.send(JSONLine.encode(MigrationRequest(type: "hello", version: MigrationProtocol.version, sourceHost: sourceHost)))
                } else {
                    _ = try? link.send(JSONLine.encode(MigrationRequest(type: type, migrationID: id, sourceHost: sourceHost, guest: package)))
                }
                guard let line = (try? link.receive()) ?? nil, let request = RequestType(rawValue: type) else { return nil }
                return try? ProtocolDecoder.reply(line, to: request)
            }
            let greeted = ask("hello")?.version == MigrationProtocol.version
            let targetPhase = greeted ? ask("status")?.phase : nil
            switch entry.phase {
            case "preparing", "aborting":
                let dropped = greeted && ask("abort")?.type == "aborted"
                if entry.phase == "aborting" && !dropped {
                    stuck = true
                    lines.append(
                        "\(guest) stays runnable here; \(entry.peerHost) may still hold a Not Runnable copy (it never becomes runnable). Run hpvmmigrate --recover -P \(guest) again when \(entry.peerHost) is reachable to remove it.")
                    continue
                }
                do { try guests.abortSource(guest, migrationID: id, peer: entry.peerHost, reason: "recovered", targetDone: dropped) } catch {
                    throw MigrationError.registry(error, phase: "recover")
                }
                lines.append(
                    "rolled back migration \(id): \(guest) stays runnable on this host"
                        + (dropped ? "; \(entry.peerHost) dropped its copy." : "; \(entry.peerHost) was not reachable: run hpvmmigrate --recover again later to remove its Not Runnable copy, if any."))
            case "source-disabled":
                guard greeted, let targetPhase else {
                    stuck = true
                    lines.append(
                        "\(guest) is Not Runnable on both hosts: \(entry.peerHost) cannot be reached. Run hpvmmigrate --recover -P \(guest) again when it can.")
                    continue
                }
                guard targetPhase == "prepared" || targetPhase == "committed" else {
                    // The target has no prepared copy (its registry was lost or replaced): the guest
                    // is runnable nowhere. Say so; never guess. The lock goes, so the fix the
                    // message gives works.
                    stuck = true
                    if targetPhase == "none" || targetPhase == "aborted" {
                        try? guests.strandSource(guest, migrationID: id, peer: entry.peerHost)
                    }
                    lines.append(
                        "\(entry.peerHost) has no record of migration \(id) (phase \(targetPhase)); \(guest) is runnable on neither host. Check that it is not on \(entry.peerHost), then make it runnable here with hpvmmodify -P \(guest) -x register_status=enabled.")
                    continue
                }
                if targetPhase == "prepared" {
                    guard ask("commit")?.type == "committed" else {
                        stuck = true
                        lines.append("\(entry.peerHost) did not commit \(guest); run hpvmmigrate --recover -P \(guest) again.")
                        continue
                    }
                }
                do { try guests.finishSource(guest, migrationID: id, peer: entry.peerHost, remove: false) } catch {
                    throw MigrationError.registry(error, phase: "recover")
                }
                lines.append("finished migration \(id): \(guest) is runnable on \(entry.peerHost) and Not Runnable here.")
            default:
                lines.append("migration \(id) of \(guest) is in phase \(entry.phase); nothing to do.")
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
            pending = try guests.unfinishedMigrations(role: "target").filter { name == nil || $0.guestName == name }
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
            let hello = ask(MigrationRequest(type: "hello", version: MigrationProtocol.version, sourceHost: sourceHost))
            guard hello?.version == MigrationProtocol.version, let status = ask(MigrationRequest(type: "status", migrationID: id, sourceHost: sourceHost)),
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
            do throws(RegistryError) {
                switch phase {
                case "source-disabled", "done", "removing":
                    if entry.phase == "prepared" {
                        try guests.commitArrival(guest, migrationID: id, peer: source)
                        lines.append(
                            "finished migration \(id): \(guest) is runnable here and Not Runnable on \(source) (run hpvmmigrate --recover there to close its journal).")
                    } else {
                        stuck = true
                        lines.append("migration \(id) of \(guest) is past the point of no return on \(source) but was never prepared here; run hpvmmigrate --recover on \(source).")
                    }
                default:
                    // preparing, aborting, aborted, or no record: the source never disabled its copy.
                    try guests.abortArrival(guest, migrationID: id, peer: source)
                    lines.append("rolled back migration \(id): \(guest) is not kept here; the source \(source) keeps it (its journal says \(phase)).")
                }
            } catch {
                throw MigrationError.registry(error, phase: "recover")
            }
        }
        return (lines, stuck)
    }
}
