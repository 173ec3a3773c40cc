internal import Foundation
internal import Host
internal import Registry
internal import Runtime

#if canImport(Glibc)
internal import Glibc
#endif

/// One migration on the source host, as the state machine of DESIGN.md §5: one method per
/// transition, and ``cancel(_:_:told:)`` the one place that says what a failure at each stage
/// leaves on both hosts.
final class SourceRun {
    /// Where the migration stands: what a failure must undo, or cannot.
    enum Stage {
        /// Phase 1 done (`preparing`): the guest is locked here; nothing exists on the target.
        case locked
        /// Connected and checked: the target holds nothing of this migration.
        case talking
        /// Copying (`-m … -C`): the target has claimed the copies' destinations.
        case copying
        /// Asked to prepare: the target may hold the guest, Not Runnable.
        case preparing
        /// Phase 5 done (`source-disabled`): past the point of no return; recovery finishes it.
        case disabled
    }

    let migration: SourceMigration
    let options: MigrationOptions
    let id: String
    let name: String
    let targetName: String
    var guests: GuestRegistry { migration.guests }
    var host: String { options.host }
    /// The migration's claim for its whole life (none for `-s`, which changes nothing): released by
    /// the kernel when this process ends, however it ends.
    let held: MigrationLock?
    let guest: Guest
    let resources: [MigratingResource]
    /// Each resource's statement, parsed (nil for one that does not parse).
    let statements: [ResourceStatement?]
    var stage = Stage.locked
    var link: (any RemoteLink)?
    var package: GuestPackage?
    /// `-o`: the stream's channel, open from the stream's start until the target has all of it.
    var streamLink: (any RemoteLink)?
    /// `-o`: the stream as QEMU measured it when it completed.
    var live: LiveMigrationProgress?
    /// What the target said after the migration (its QEMU, `-b`).
    var notes: [String] = []
    /// `-o`: the fleet lease's version as this host released it, for the target's take.
    var leaseVersion: UInt64?

    private init(
        _ migration: SourceMigration, _ options: MigrationOptions, id: String, held: MigrationLock?, guest: Guest,
        resources: [MigratingResource]
    ) {
        self.migration = migration
        self.options = options
        self.id = id
        name = options.guest
        targetName = options.newName ?? options.guest
        self.held = held
        self.guest = guest
        self.resources = resources
        statements = resources.map { try? ResourceStatement.parse($0.statement) }
    }

    func close() {
        streamLink?.close()
        link?.close()
        withExtendedLifetime(held) {}
    }

    // MARK: - Transitions

    /// Phase 1: the lock file, then the guest locked in the registry (`preparing`); every `-m`
    /// must name one of its devices.
    static func lock(_ migration: SourceMigration, _ options: MigrationOptions) throws(MigrationError) -> SourceRun {
        let id = "\(migration.sourceHost)-\(UUID().uuidString.prefix(8).lowercased())"
        let name = options.guest
        // A guest that is not here is refused by lockForMigration, with nothing made for it.
        let exists = ((try? migration.guests.guest(named: name)) ?? nil) != nil
        let held = options.checkOnly || !exists ? nil : try MigrationLock.acquire(root: migration.guests.root, guest: name, phase: "lock")
        let locked: (Guest, [MigratingResource])
        do {
            locked = try migration.guests.lockForMigration(
                name, migrationID: id, peer: options.host, targetName: options.newName ?? name,
                lockOwner: "process \(getpid()) on \(migration.sourceHost)", lock: !options.checkOnly,
                running: options.online ? .require : options.stopFirst ? .allow : .refuse)
        } catch {
            throw MigrationError.registry(error, phase: "lock")
        }
        let run = SourceRun(migration, options, id: id, held: held, guest: locked.0, resources: locked.1)
        if options.online {
            let setting = (try? migration.guests.settings(of: name)["online_migration"]) ?? nil
            if setting == "disabled" {
                run.rollBack("online migration disabled")
                throw MigrationError(
                    .refused,
                    ["online migration is disabled for guest \(name) (hpvmmodify -P \(name) -x online_migration=enabled allows it); migrate it offline, or with -d."],
                    phase: "lock")
            }
            guard migration.runtime != nil else {
                run.rollBack("no runtime")
                throw MigrationError(.refused, ["this host cannot drive guests: its runtime settings (HPVM_QEMU, HPVM_ACCEL) are wrong; hpvmstatus -V says why."], phase: "lock")
            }
        }
        // Every -m names a device of the guest, by its address: one that names none is refused.
        if let stray = options.overrides.first(where: { override in
            !run.statements.contains { $0.map { SourceMigration.matches(override, $0) } ?? false }
        }) {
            run.rollBack("-m matches no device")
            throw MigrationError(
                .refused,
                ["-m \(stray.description) matches no device of \(name): give the device type, bus, device and target of one of its devices (hpvmstatus -P \(name) -d lists them)."],
                phase: "lock")
        }
        migration.failpoints.hit("source-after-lock")
        return run
    }

    /// The SSH connection and the target half.
    func connect() throws(MigrationError) {
        do {
            link = try migration.connector.connect(host: host)
        } catch {
            rollBack("connect failed")
            throw error
        }
        stage = .talking
    }

    /// Both halves speak the same protocol version.
    func greet() throws(MigrationError) {
        let hello: MigrationReply
        do {
            hello = try exchange(MigrationRequest(.hello, version: MigrationProtocol.version, sourceHost: migration.sourceHost))
        } catch {
            throw cancel(error, "no answer to hello")
        }
        guard hello.kind == .hello, hello.version == MigrationProtocol.version else {
            rollBack("protocol version")
            throw MigrationError(
                .protocolError,
                ["Target VM Host error - the target speaks protocol version \(hello.version.map(String.init) ?? "?"), this host \(MigrationProtocol.version); install the same hpvm release on both hosts."])
        }
    }

    /// An earlier migration of this guest to this target that was rolled back here without the
    /// target being told (`aborting`) may have left a Not Runnable copy there: it is dropped first,
    /// so that it does not stand in the way.
    func dropAbandonedCopies() {
        guard !options.checkOnly else { return }
        let abandoned = ((try? guests.unfinishedMigrations(role: .source)) ?? []).filter {
            $0.guestName == name && $0.phase == .aborting && $0.peerHost == host && $0.migrationID != id
        }
        for entry in abandoned {
            let abort = MigrationRequest(
                type: "abort", migrationID: entry.migrationID, sourceHost: migration.sourceHost, guestName: entry.targetName ?? name)
            if (try? exchange(abort))?.kind == .aborted {
                try? guests.abortSource(name, migrationID: entry.migrationID, peer: host, reason: "recovered", targetDone: true)
            }
        }
    }

    /// Phase 2: the target's checks, and its map of every device.
    func check() throws(MigrationError) -> MigrationReply {
        var package = GuestPackage(
            name: targetName, vcpus: options.vcpus ?? guest.vcpus, memoryMB: options.memoryMB ?? guest.memoryMB,
            label: options.label ?? guest.label, osType: guest.osType, resources: resources,
            overrides: statements.map { statement in
                guard let statement else { return nil }
                return options.overrides.first { SourceMigration.matches($0, statement) }?.description
            },
            translate: options.translate, networks: NetworkInventory().bridges())
        package.copies = package.overrides.map { $0 != nil && options.copy }
        package.online = options.online ? true : nil
        package.uuid = guest.uuid
        // Going back where it came from, under the same name: the target's copy is the one it left.
        if targetName == name { package.returning = (try? guests.arrival(of: name, excluding: id)) ?? nil }
        self.package = package
        let report: MigrationReply
        do {
            report = try exchange(MigrationRequest(.check, migrationID: id, sourceHost: migration.sourceHost, guest: package))
        } catch {
            throw cancel(error, "check failed")
        }
        // Every resource has its statement on the target, or nothing goes ahead: a map that leaves
        // one out would skip its copy.
        guard report.map?.count == resources.count else {
            _ = try? exchange(MigrationRequest(.bye))
            throw cancel(
                MigrationError(
                    .protocolError,
                    ["Target VM Host error - the target answered something that is not hpvmmigrate's protocol: a map of \(report.map?.count ?? 0) devices for \(resources.count)."],
                    phase: "check"), "protocol")
        }
        return report
    }

    /// -F passes only what the target marks forceable; -s -F judges exactly the same way.
    func blocking(_ report: MigrationReply) -> [Finding] {
        let errors = report.errors ?? []
        return options.force ? errors.filter { $0.forceable != true } : errors
    }

    func outcome(_ report: MigrationReply) -> MigrationOutcome {
        var outcome = MigrationOutcome(report: report)
        outcome.forced = options.force ? (report.errors ?? []).filter { $0.forceable == true } : []
        outcome.migrated = stage == .disabled
        outcome.live = live
        outcome.notes = notes
        return outcome
    }

    /// `-s`: the report goes back with the verdict, so `--json` prints it whatever it says.
    func verdict(_ report: MigrationReply) -> MigrationOutcome {
        _ = try? exchange(MigrationRequest(.bye))
        var outcome = outcome(report)
        let stopping = blocking(report)
        if !stopping.isEmpty { outcome.failure = migration.checkFailure(stopping, forced: options.force) }
        return outcome
    }

    /// Errors the migration may not go past end it here.
    func stopOnFailedChecks(_ report: MigrationReply) throws(MigrationError) {
        let stopping = blocking(report)
        if !stopping.isEmpty {
            rollBack("checks failed")
            _ = try? exchange(MigrationRequest(.bye))
            throw migration.checkFailure(stopping, forced: options.force)
        }
        migration.failpoints.hit("source-after-check")
    }

    /// Phase 3: the data of each `-m … -C` device, over the same channel.
    func copy(_ report: MigrationReply) throws(MigrationError) {
        guard let package, let link else { return }
        for (index, copy) in package.copies.enumerated() where copy {
            stage = .copying
            do throws(MigrationError) {
                guard let source = try? ResourceStatement.parse(resources[index].statement),
                    let target = (report.map?[safe: index]).flatMap({ try? ResourceStatement.parse($0) })
                else {
                    throw MigrationError(
                        .protocolError, ["Target VM Host error - the target's map has no statement for device \(index + 1), which -C copies."],
                        phase: "copy")
                }
                try BackingCopy.send(
                    realPath: guests.root.real(source.location), shownPath: source.location, targetPath: target.location,
                    migrationID: id, link: link, exchange: { request throws(MigrationError) in try exchange(request) }, progress: options.progress)
            } catch {
                throw cancel(error, "copy failed", told: tellTargetToAbort())
            }
        }
    }

    /// Phase 4: the target makes the guest, Not Runnable, its devices claimed (`prepared`).
    func prepare() throws(MigrationError) {
        guard let package else { return }
        stage = .preparing
        do throws(MigrationError) {
            // exchange accepts only `prepared` (or `error`) in answer to `prepare`.
            _ = try exchange(MigrationRequest(.prepare, migrationID: id, sourceHost: migration.sourceHost, guest: package))
        } catch {
            throw cancel(error, "prepare failed", told: tellTargetToAbort())
        }
        migration.failpoints.hit("source-after-prepare")
    }

    /// Phase 5, the point of no return: the guest becomes Not Runnable here (`source-disabled`).
    func disable() throws(MigrationError) {
        do {
            try guests.disableSource(name, migrationID: id, peer: host)
        } catch {
            let told = tellTargetToAbort()
            rollBack("disable failed", targetDone: told)
            throw MigrationError.registry(error, phase: MigrationPhase.sourceDisabled.rawValue)
        }
        stage = .disabled
        migration.failpoints.hit("source-after-disable")
    }

    /// Phase 6: the target makes its copy runnable (`committed`).
    func commit() throws(MigrationError) {
        do {
            // Only `committed` counts: exchange refuses any other answer.
            var request = MigrationRequest(.commit, migrationID: id, sourceHost: migration.sourceHost, guestName: targetName)
            request.leaseVersion = leaseVersion
            let reply = try exchange(request)
            if let note = reply.message { notes.append(note) }
        } catch {
            throw cancel(error, "commit failed")
        }
        migration.failpoints.hit("source-after-commit")
    }

    /// Phase 7: `done`, or with `-D` `removing`, the removal, then `done`.
    func finish() throws(MigrationError) {
        do {
            try guests.finishSource(name, migrationID: id, peer: host, remove: options.remove)
            if options.remove {
                migration.failpoints.hit("source-before-remove")
                try guests.finishRemoval(name, migrationID: id, peer: host)
            }
        } catch {
            throw MigrationError.registry(error, phase: MigrationPhase.done.rawValue)
        }
    }

    /// The end of the conversation: the target half ends.
    func goodbye() {
        _ = try? exchange(MigrationRequest(.bye))
    }

    // MARK: - Failures

    /// What a failure at the current stage leaves, in one place: before the point of no return the
    /// migration is rolled back here (`aborted`, or `aborting` when the target may keep a Not
    /// Runnable copy it was not told to drop) and the message says where each host stands; after
    /// it, nothing is undone and the message says which command finishes it.
    ///
    /// - Parameter told: whether the target confirmed it dropped what it held (`abort`).
    func cancel(_ error: MigrationError, _ reason: String, told: Bool = true) -> MigrationError {
        switch stage {
        case .disabled:
            return MigrationError(
                .interrupted,
                error.lines + ["Guest \(name) is Not Runnable here and not yet runnable on \(host); finish with: hpvmmigrate --recover -P \(name)"],
                phase: "commit", cause: error)
        case .locked, .talking, .copying, .preparing:
            rollBack(reason, targetDone: told)
            if options.online { resumeSourceQEMU() }
            guard !options.checkOnly, error.code == .ssh || error.code == .protocolError else { return error }
            let target: String
            switch (stage, told) {
            case (.copying, true): target = "\(host) released what it claimed for the copies."
            case (.copying, false): target = "\(host) may keep its claims on the copies' destinations until hpvmmigrate --recover -P \(name) reaches it."
            case (.preparing, true): target = "\(host) dropped its Not Runnable copy\(options.online ? " and ended its waiting QEMU" : "")."
            case (.preparing, false):
                target = "\(host) may hold a Not Runnable copy (it never becomes runnable) until hpvmmigrate --recover -P \(name) reaches it."
            default: target = "nothing changed on \(host)."
            }
            return MigrationError(
                error.code,
                error.lines + ["Guest \(name) stays runnable on this host (the migration was rolled back); \(target)"],
                phase: error.phase, cause: error.cause)
        }
    }

    /// Rolls back here before the point of no return: the lock goes, the guest stays runnable.
    func rollBack(_ reason: String, targetDone: Bool = true) {
        if !options.checkOnly {
            try? guests.abortSource(name, migrationID: id, peer: host, reason: reason, targetDone: targetDone)
        }
    }

    /// Asks the target to drop what it holds of this migration; whether it said it did.
    func tellTargetToAbort() -> Bool {
        (try? exchange(MigrationRequest(.abort, migrationID: id, sourceHost: migration.sourceHost, guestName: targetName)))?.kind
            == .aborted
    }

    // MARK: - The channel

    /// What a target half that ended wrote to its standard error, as `: line; line` (made safe).
    static func lastWords(_ text: String) -> String {
        let lines = text.split(separator: "\n").suffix(3).map { ProtocolDecoder.shown(String($0)) }
        return lines.isEmpty ? "" : ": " + lines.joined(separator: "; ")
    }

    /// Sends one request and returns its answer: the one reply type that answers it, decoded
    /// strictly; `error` and anything else become a ``MigrationError``.
    ///
    /// - Parameter channel: the link to send on (the stream's own channel); the migration's link when nil.
    func exchange(_ request: MigrationRequest, on channel: (any RemoteLink)? = nil) throws(MigrationError) -> MigrationReply {
        guard let link = channel ?? link, !link.isBroken else {
            throw MigrationError(.ssh, ["Target VM Host error - the connection to \(host) was lost."], phase: request.type)
        }
        try link.send(JSONLine.encode(request))
        guard let line = try link.receive() else {
            throw MigrationError(
                .protocolError,
                ["Target VM Host error - the target closed the connection during '\(request.type)': its hpvmmigrate ended (killed, or it failed)\(Self.lastWords(link.errorOutput()))."],
                phase: request.type)
        }
        let reply: MigrationReply
        do {
            reply = try ProtocolDecoder.reply(line, to: RequestType(rawValue: request.type) ?? .bye)
        } catch {
            throw MigrationError(
                .protocolError, ["Target VM Host error - the target answered something that is not hpvmmigrate's protocol: \(error.reason)."],
                phase: request.type)
        }
        if reply.kind == .error {
            throw MigrationError(.target, ["Target VM Host error - \(reply.message ?? "unknown error")."], phase: request.type)
        }
        return reply
    }
}
