internal import GRDB
public import Host
#if canImport(Glibc)
internal import Glibc
#endif

/// One row of the migration journal.
public struct JournalEntry: Sendable, Equatable {
    public let migrationID: String
    public let guestName: String
    public let role: MigrationRole
    public let peerHost: String
    public let phase: MigrationPhase
    public let detail: String?
    /// On a source's rows: the guest's name on the target.
    public let targetName: String?
    /// On a `preparing` row: who took the migration's lock (`process 1234 on hostA`).
    public let lockOwner: String?
    public let at: String
}

/// A guest's device as the source host sees it, for the target's checks.
public struct MigratingResource: Sendable, Equatable, Codable {
    public var statement: String
    public var wwid: String?
    public var transport: String?
    public var kind: String
    public var shared: Bool

    public init(statement: String, wwid: String?, transport: String?, kind: String, shared: Bool) {
        self.statement = statement
        self.wwid = wwid
        self.transport = transport
        self.kind = kind
        self.shared = shared
    }
}

/// The registry side of `hpvmmigrate` (DESIGN.md §5): every phase changes the guest and writes its
/// journal row in one transaction.
extension GuestRegistry {
    /// The journal, oldest first, optionally for one migration.
    public func journal(migrationID: String? = nil) throws(RegistryError) -> [JournalEntry] {
        try store.read { db in
            try db.rows(
                sql: "SELECT * FROM migrationJournal \(migrationID == nil ? "" : "WHERE migrationId = ?") ORDER BY id",
                arguments: migrationID.map { [$0] } ?? []
            ).map { row in
                let (role, phase): (String, String) = (row["role"], row["phase"])
                guard let role = MigrationRole(rawValue: role), let phase = MigrationPhase(rawValue: phase) else {
                    throw RegistryError(
                        .database,
                        "migration journal row \(row["id"] as Int64) has role '\(Display.safe(role))' and phase '\(Display.safe(phase))', which this release does not know; a newer hpvm wrote it.")
                }
                return JournalEntry(
                    migrationID: row["migrationId"], guestName: row["guestName"], role: role, peerHost: row["peerHost"],
                    phase: phase, detail: row["detail"], targetName: row["targetName"], lockOwner: row["lockOwner"], at: row["at"])
            }
        }
    }

    /// The last row of every migration on one side that has not ended there
    /// (``MigrationPhase/hasEnded(for:)``), oldest migration first.
    public func unfinishedMigrations(role: MigrationRole) throws(RegistryError) -> [JournalEntry] {
        let entries = try journal().filter { $0.role == role }
        var last: [String: JournalEntry] = [:]
        var order: [String] = []
        for entry in entries {
            if last[entry.migrationID] == nil { order.append(entry.migrationID) }
            last[entry.migrationID] = entry
        }
        return order.compactMap { last[$0] }
            .filter { !$0.phase.hasEnded(for: role) }
    }

    /// Appends a journal row in its own transaction (a phase that changes nothing else).
    public func record(_ migrationID: String, guest: String, role: MigrationRole, peer: String, phase: MigrationPhase, detail: String? = nil)
        throws(RegistryError)
    {
        try store.write { db in try appendJournal(db, migrationID, guest, role, peer, phase, detail) }
    }

    /// Appends a journal row in the caller's transaction, with its audit row. A source's row
    /// carries the guest's name on the target (given on `preparing`, then taken from that row).
    func appendJournal(
        _ db: Database, _ migrationID: String, _ guest: String, _ role: MigrationRole, _ peer: String, _ phase: MigrationPhase,
        _ detail: String?, targetName: String? = nil, lockOwner: String? = nil, extra: String = ""
    ) throws {
        try db.run(
            sql: """
                INSERT INTO migrationJournal (migrationId, guestName, role, peerHost, phase, detail, at, targetName, lockOwner)
                VALUES (?, ?, ?, ?, ?, ?, ?, CASE WHEN ? = '\(MigrationRole.source.rawValue)' THEN coalesce(?, (
                    SELECT targetName FROM migrationJournal WHERE migrationId = ? AND role = '\(MigrationRole.source.rawValue)'
                    AND phase = '\(MigrationPhase.preparing.rawValue)'
                    ORDER BY id LIMIT 1)) END, ?)
                """,
            arguments: [
                migrationID, guest, role.rawValue, peer, phase.rawValue, detail, audit.now(), role.rawValue, targetName, migrationID, lockOwner,
            ])
        try AuditLog.append(
            db, audit, action: "migration", object: guest,
            change: #"{"migration":\#(json(migrationID)),"role":"\#(role.rawValue)","peer":\#(json(peer)),"phase":"\#(phase.rawValue)"\#(extra)}"#)
    }

    // MARK: - Source side

    /// Phase 1: locks a runnable, modifiable guest for this migration (it stays runnable) and
    /// returns what the target must check. Refuses a guest with a shared storage device.
    ///
    /// - Parameters:
    ///   - targetName: the guest's name on the target, recorded in the journal's `targetName`.
    ///   - lockOwner: who takes the lock (`process 1234 on hostA`), recorded with it.
    ///   - lock: false for a check only (`-s`), which changes nothing.
    public func lockForMigration(
        _ name: String, migrationID: String, peer: String, targetName: String? = nil, lockOwner: String? = nil, lock: Bool = true,
        running: RunningGuestPolicy = .refuse
    )
        throws(RegistryError)
        -> (Guest, [MigratingResource])
    {
        try store.write { db in
            guard let guest = try guest(named: name, db) else {
                throw RegistryError(.notFound, "no guest named \(Display.safe(name)).")
            }
            if let lock = guest.migrationLock {
                throw RegistryError(.notModifiable, "guest \(name) is already being migrated (\(lock)); finish it with hpvmmigrate --recover -P \(name).")
            }
            guard guest.runnable && guest.modifiable else {
                throw RegistryError(
                    .notModifiable,
                    "guest \(name) is \(guest.runnable ? "Not Modify" : "Not Runnable") here, so it does not run on this host; there is nothing to migrate.")
            }
            if let refusal = StorageRules.migrationRefusal(guest.name, policy: running, isRunning: isRunning(guest.name)) { throw refusal }
            var resources: [MigratingResource] = []
            for row in try resourceRows(guest.id, db) {
                let statement = row.statement
                let identity = rules.inventory.identify(statement.location)
                let entry = try DeviceTable.entry(named: statement.location, db)
                if statement.deviceType != .network, entry?.isShared == true {
                    throw RegistryError(
                        .conflict, "Device \(statement.location) is shared.  Guest with shared storage devices cannot be migrated.")
                }
                resources.append(
                    MigratingResource(
                        statement: statement.description, wwid: (entry?.wwid ?? identity.wwid)?.normalized,
                        transport: identity.transport?.rawValue, kind: identity.kind.rawValue, shared: entry?.isShared ?? false))
            }
            if lock {
                try db.run(sql: "UPDATE guest SET migrationLock = ? WHERE id = ?", arguments: [migrationID, guest.id])
                try appendJournal(db, migrationID, name, .source, peer, .preparing, nil, targetName: targetName ?? name, lockOwner: lockOwner)
            }
            return (guest, resources)
        }
    }

    /// The migration that brought `name` here, when it is the last migration that moved it (one
    /// rolled back did not): a migration back then tells the target, whose Not Runnable copy it
    /// replaces.
    public func arrival(of name: String, excluding current: String) throws(RegistryError) -> String? {
        try store.read { db in
            guard let last = try db.row(
                sql: """
                    SELECT migrationId, role, phase FROM migrationJournal WHERE guestName = ? AND migrationId != ?
                    AND ((role = '\(MigrationRole.target.rawValue)' AND phase = ?) OR (role = '\(MigrationRole.source.rawValue)' AND phase IN (?, ?)))
                    ORDER BY id DESC LIMIT 1
                    """,
                arguments: [name, current, MigrationPhase.committed.rawValue, MigrationPhase.sourceDisabled.rawValue, MigrationPhase.done.rawValue])
            else { return nil }
            guard MigrationRole(rawValue: last["role"]) == .target && MigrationPhase(rawValue: last["phase"]) == .committed else { return nil }
            let id: String = last["migrationId"]
            // The very guest that arrived: not removed and made again, nor renamed, since (the audit
            // log, written in the same transactions, says).
            let arrived = try db.fetchOne(
                Int64.self,
                sql: """
                    SELECT max(id) FROM auditLog WHERE action = 'migration' AND object = ?
                    AND change LIKE '%"phase":"committed"%' AND instr(change, ?) > 0
                    """,
                arguments: [name, json(id)]) ?? Int64.max
            let changed = try db.fetchOne(
                Bool.self,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM auditLog WHERE id > ? AND object = ?
                                   AND (action IN ('create-guest', 'remove-guest') OR (action = 'modify-guest' AND instr(change, '"name":null') = 0)))
                    """,
                arguments: [arrived, name]) ?? true
            return changed ? nil : id
        }
    }

    /// Phase 5, the point of no return: the source copy becomes Not Runnable, Not Modify, Not Visible.
    public func disableSource(_ name: String, migrationID: String, peer: String) throws(RegistryError) {
        try store.write { db in
            try db.run(
                sql: """
                    UPDATE guest SET runnable = 0, modifiable = 0, visible = 0, statusSetBy = 'Migrate',
                                     statusReason = ? WHERE name = ? AND migrationLock = ?
                    """,
                arguments: ["migrated to \(peer)", name, migrationID])
            guard db.changesCount == 1 else {
                throw RegistryError(.conflict, "guest \(name) is no longer locked by migration \(migrationID).")
            }
            try appendJournal(db, migrationID, name, .source, peer, .sourceDisabled, nil)
        }
    }

    /// Phase 7: releases the lock and records `done`; with `remove` (`-D`) it records `removing`
    /// instead, and `finishRemoval` removes the guest and records `done` — so a `-D` interrupted
    /// between the two is seen, and finished, by recovery.
    public func finishSource(_ name: String, migrationID: String, peer: String, remove: Bool) throws(RegistryError) {
        try store.write { db in
            try db.run(sql: "UPDATE guest SET migrationLock = NULL WHERE name = ? AND migrationLock = ?", arguments: [name, migrationID])
            try appendJournal(db, migrationID, name, .source, peer, remove ? .removing : .done, nil)
        }
    }

    /// `-D` after `removing`: removes the guest as `hpvmremove -F` would (unless it is gone
    /// already, as after an interruption), then records `done (removed)`. Safe to repeat.
    public func finishRemoval(_ name: String, migrationID: String, peer: String) throws(RegistryError) {
        if let guest = try guest(named: name), guest.migrationLock == nil, !guest.runnable {
            try remove(name, force: true)
        }
        try record(migrationID, guest: name, role: .source, peer: peer, phase: .done, detail: "removed")
    }

    /// After the point of no return, when the target has no record of the migration: the guest
    /// stays Not Runnable here but is no longer locked, so the documented fix (`hpvmmodify -x
    /// register_status=enabled`, once a person checked the target) works. The journal says so.
    public func strandSource(_ name: String, migrationID: String, peer: String) throws(RegistryError) {
        try store.write { db in
            try db.run(sql: "UPDATE guest SET migrationLock = NULL WHERE name = ? AND migrationLock = ?", arguments: [name, migrationID])
            try appendJournal(db, migrationID, name, .source, peer, .aborted, "the target has no record; left Not Runnable here")
        }
    }

    /// Rolls the source back before the point of no return: the lock goes, the guest stays runnable.
    ///
    /// - Parameter targetDone: false when the target may hold a Not Runnable copy it was not told to
    ///   drop; the journal then says `aborting`, and recovery tells the target later.
    public func abortSource(_ name: String, migrationID: String, peer: String, reason: String, targetDone: Bool = true)
        throws(RegistryError)
    {
        try store.write { db in
            try db.run(sql: "UPDATE guest SET migrationLock = NULL WHERE name = ? AND migrationLock = ?", arguments: [name, migrationID])
            try appendJournal(db, migrationID, name, .source, peer, targetDone ? .aborted : .aborting, reason)
        }
    }

    // MARK: - Target side

    /// Why the guest `name` here is not the Not Runnable copy a migration back (`returning`, the id
    /// of the migration that took it away from here) may replace; nil when it is. It is that copy
    /// when it is Not Runnable, not locked, and its last migration from this host is `returning`,
    /// finished without removing it (HP: the guest comes back to the copy it left).
    public func returnRefusal(_ name: String, returning: String?) throws(RegistryError) -> String? {
        try store.read { db in try returnRefusal(name, returning: returning, db) }
    }

    func returnRefusal(_ name: String, returning: String?, _ db: Database) throws -> String? {
        guard let existing = try guest(named: name, db) else { return nil }
        if existing.runnable { return "a guest named \(name) already exists, runnable" }
        if let lock = existing.migrationLock { return "a guest named \(name) already exists, locked by migration \(lock)" }
        let last = try db.row(
            sql: "SELECT migrationId, phase, detail FROM migrationJournal WHERE guestName = ? AND role = '\(MigrationRole.source.rawValue)' ORDER BY id DESC LIMIT 1",
            arguments: [name])
        guard let returning, let last, (last["migrationId"] as String) == returning, MigrationPhase(rawValue: last["phase"]) == .done,
            (last["detail"] as String?) != "removed"
        else {
            return "a guest named \(name) already exists (Not Runnable, but not the copy this guest left when it migrated away)"
        }
        return nil
    }

    /// Phase 4: creates the guest Not Runnable (and Not Modify, Not Visible), its devices claimed,
    /// locked by the migration. Every device rule applies, as for `hpvmcreate`.
    ///
    /// - Parameter returning: the id of the migration that took this guest away from here, when it
    ///   comes back: its Not Runnable copy is then replaced in the same transaction (same VM number;
    ///   the configuration and devices become the arriving ones), still Not Runnable until commit.
    public func prepareArrival(_ spec: GuestSpec, migrationID: String, peer: String, returning: String? = nil) throws(RegistryError) {
        try store.write { db in
            if let existing = try guest(named: spec.name, db) {
                if existing.migrationLock == migrationID { return }  // already prepared: idempotent
                if let why = try returnRefusal(spec.name, returning: returning, db) {
                    throw RegistryError(.duplicate, "\(why) on this host.")
                }
                try replaceReturning(existing, spec, migrationID: migrationID, peer: peer, returning: returning ?? "", db)
                return
            }
            let number = try Self.freeVMNumber(db)
            let now = audit.now()
            // The guest keeps its UUID (its fleet lease is named by it), unless a guest here has it.
            let uuid = try spec.uuid.flatMap { uuid in
                try db.fetchOne(Bool.self, sql: "SELECT EXISTS (SELECT 1 FROM guest WHERE uuid = ?)", arguments: [uuid]) == true ? nil : uuid
            }
            try db.run(
                sql: """
                    INSERT INTO guest (name, vmNumber, label, osType, vcpus, memoryMB, uuid, runnable, modifiable, visible,
                                       statusSetBy, statusReason, migrationLock, createdAt, updatedAt)
                    VALUES (?, ?, ?, ?, ?, ?, coalesce(?, \(M0005AddGuestHPSettings.uuidExpression)), 0, 0, 0, 'Migrate', ?, ?, ?, ?)
                    """,
                arguments: [spec.name, number, spec.label, spec.osType, spec.vcpus, spec.memoryMB, uuid, "arriving from \(peer)", migrationID, now, now])
            try AuditLog.append(
                db, audit, action: "create-guest", object: spec.name,
                change: #"{"vmNumber":\#(number),"vcpus":\#(spec.vcpus),"memoryMB":\#(spec.memoryMB),"label":\#(json(spec.label)),"osType":\#(json(spec.osType)),"runnable":false,"modifiable":false,"visible":false,"statusSetBy":"Migrate","statusReason":\#(json("arriving from \(peer)")),"migrationLock":\#(json(migrationID))}"#)
            var guest = try guest(named: spec.name, db)!
            for statement in spec.resources {
                try attach(statement, to: &guest, db)
            }
            try appendJournal(db, migrationID, spec.name, .target, peer, .prepared, nil)
        }
    }

    /// The return trip's prepare: the Not Runnable copy takes the arriving configuration and
    /// devices and the migration's lock, in the caller's transaction. Devices the copy no longer
    /// uses stop counting it as a dependent (an entry made for it goes with its last dependent).
    func replaceReturning(_ existing: Guest, _ spec: GuestSpec, migrationID: String, peer: String, returning: String, _ db: Database) throws {
        // Every step audited as the commands audit it, so hpvmaudit replays the return trip: the
        // old resources are detached (an entry made for the copy goes with its last dependent),
        // the configuration changes, the arriving resources are attached.
        for row in try resourceRows(existing.id, db) {
            try detach(row: row.id, location: row.location, guest: existing, db)
        }
        try db.run(
            sql: """
                UPDATE guest SET label = ?, osType = ?, vcpus = ?, memoryMB = ?, runnable = 0, modifiable = 0, visible = 0,
                                 statusSetBy = 'Migrate', statusReason = ?, migrationLock = ?, updatedAt = ? WHERE id = ?
                """,
            arguments: [spec.label, spec.osType, spec.vcpus, spec.memoryMB, "returning from \(peer)", migrationID, audit.now(), existing.id])
        try AuditLog.append(
            db, audit, action: "modify-guest", object: spec.name,
            change: #"{"vcpus":\#(spec.vcpus),"memoryMB":\#(spec.memoryMB),"label":\#(json(spec.label)),"osType":\#(json(spec.osType)),"name":null}"#)
        var guest = try guest(named: spec.name, db)!
        for statement in spec.resources {
            try attach(statement, to: &guest, db)
        }
        try appendJournal(db, migrationID, spec.name, .target, peer, .prepared, "returning:\(returning)", extra: #","returning":true"#)
    }

    /// Phase 6: the arrived guest becomes runnable.
    ///
    /// - Parameter phase: `committed`, or `continued` for an online migration whose QEMU runs here.
    public func commitArrival(_ name: String, migrationID: String, peer: String, phase: MigrationPhase = .committed) throws(RegistryError) {
        try store.write { db in
            try db.run(
                sql: """
                    UPDATE guest SET runnable = 1, modifiable = 1, visible = 1, statusSetBy = 'Migrate', statusReason = NULL,
                                     migrationLock = NULL WHERE name = ? AND migrationLock = ?
                    """,
                arguments: [name, migrationID])
            if db.changesCount == 0 {
                // Already committed (a repeated commit during recovery) or never prepared.
                guard let guest = try guest(named: name, db), guest.runnable, guest.migrationLock == nil else {
                    throw RegistryError(.notFound, "migration \(migrationID) of \(name) was not prepared on this host.")
                }
                return
            }
            try appendJournal(db, migrationID, name, .target, peer, phase, nil)
        }
    }

    /// Claims a copy's destination for the arriving guest before the first byte is written: the
    /// rules for a copy apply, the file is created if it does not exist, and a gdev entry for it
    /// gets the arriving guest as its dependent, so no other guest can be given it meanwhile. The
    /// journal records the claim (`copy-claimed`), and rolling the migration back releases it.
    public func claimCopyDestination(_ path: String, guest name: String, migrationID: String, peer: String) throws(RegistryError) {
        let location = try NameRules.entryName(path)
        try store.write { db in
            let existing = rules.claim(location)
            if existing.identity.exists {
                if let refusal = try rules.copyRefusal(existing, guest: name, db) { throw refusal }
            } else {
                guard let (planned, folder, base) = rules.plannedFile(location) else {
                    throw RegistryError(.notFound, "the folder of \(Display.safe(location)) does not exist on this host.")
                }
                if let refusal = try rules.copyRefusal(planned, guest: name, db) { throw refusal }
                close(try HostFiles.create(in: folder, base: base, root: root, shown: location))
            }
            let claim = rules.claim(location)
            guard claim.identity.exists else {
                throw RegistryError(.notFound, "\(Display.safe(location)) does not exist on this host.")
            }
            if let refusal = try rules.copyRefusal(claim, guest: name, db) { throw refusal }
            let entry = try DeviceTable.entry(named: location, db) ?? DeviceTable.sameDevice(as: claim.identity, db).first {
                $0.type == .gdev && $0.identityKey == claim.identity.key(ignoringWWID: $0.ignoreWWID)
            }
            let entryID: Int64
            var created = ""
            if let entry {
                entryID = entry.id
                if !entry.names.contains(location) { try DeviceTable.addName(db, id: entry.id, name: location) }
            } else {
                entryID = try DeviceTable.insert(
                    db, type: .gdev, names: [location], identity: claim.identity, extents: claim.extents, ignoreWWID: false,
                    attributes: ["SHARE": "NO"], now: audit.now())
                created = #","created":{"type":"gdev","attributes":{"SHARE":"NO"},"device":\#(try DeviceTable.identityJSON(db, id: entryID))}"#
            }
            try db.run(sql: "INSERT OR IGNORE INTO dependent (deviceId, name, kind) VALUES (?, ?, 'guest')", arguments: [entryID, name])
            try appendJournal(
                db, migrationID, name, .target, peer, .copyClaimed, location,
                extra: #","location":\#(json(location)),"entry":\#(json(entry?.name ?? location))\#(created)"#)
        }
    }

    /// Releases the copy claims of a migration that was rolled back before its guest was prepared:
    /// the arriving guest stops being a dependent, and an entry made for the claim goes with its
    /// last dependent (the copied file stays).
    func releaseCopyClaims(_ name: String, migrationID: String, _ db: Database) throws {
        let claimed = try db.fetchAll(
            String.self,
            sql: "SELECT detail FROM migrationJournal WHERE migrationId = ? AND role = '\(MigrationRole.target.rawValue)' AND phase = '\(MigrationPhase.copyClaimed.rawValue)'",
            arguments: [migrationID])
        for location in claimed {
            guard let entry = try DeviceTable.entry(named: location, db), entry.dependents.contains(name) else { continue }
            if try guest(named: name, db) != nil { continue }
            try db.run(sql: "DELETE FROM dependent WHERE deviceId = ? AND name = ?", arguments: [entry.id, name])
            if entry.dependents == [name] && entry.attributes["PRESERVE"] != "YES" {
                try DeviceTable.delete(db, id: entry.id)
            }
            try AuditLog.append(
                db, audit, action: "release-copy", object: entry.name,
                change: #"{"guest":\#(json(name)),"migration":\#(json(migrationID))}"#)
        }
    }

    /// Removes a prepared, never committed arrival (the migration was rolled back), or releases
    /// what a migration that never got so far claimed for its copies.
    public func abortArrival(_ name: String, migrationID: String, peer: String) throws(RegistryError) {
        let guest = try self.guest(named: name)
        guard let guest, guest.migrationLock == migrationID else {
            if guest == nil {
                try store.write { db in
                    let claims = try db.fetchOne(
                        Int.self,
                        sql: "SELECT count(*) FROM migrationJournal WHERE migrationId = ? AND role = '\(MigrationRole.target.rawValue)' AND phase = '\(MigrationPhase.copyClaimed.rawValue)'",
                        arguments: [migrationID]) ?? 0
                    guard claims > 0 else { return }
                    try releaseCopyClaims(name, migrationID: migrationID, db)
                    try appendJournal(db, migrationID, name, .target, peer, .aborted, "copy claims released")
                }
            }
            return
        }
        // A return trip's copy was the guest's Not Runnable copy before: it stays, Not Runnable.
        let returning = try store.read { db in
            try db.fetchOne(
                String.self,
                sql: "SELECT detail FROM migrationJournal WHERE migrationId = ? AND role = '\(MigrationRole.target.rawValue)' AND phase = '\(MigrationPhase.prepared.rawValue)' ORDER BY id DESC LIMIT 1",
                arguments: [migrationID])
        }
        if returning?.hasPrefix("returning:") == true {
            try store.write { db in
                try db.run(
                    sql: "UPDATE guest SET migrationLock = NULL, statusReason = ? WHERE id = ? AND migrationLock = ?",
                    arguments: ["migrated to \(peer)", guest.id, migrationID])
                try appendJournal(db, migrationID, name, .target, peer, .aborted, "the Not Runnable copy stays")
            }
            return
        }
        try store.write { db in
            try db.run(sql: "UPDATE guest SET migrationLock = NULL, modifiable = 1 WHERE id = ?", arguments: [guest.id])
        }
        try remove(name, force: true)
        try record(migrationID, guest: name, role: .target, peer: peer, phase: .aborted)
    }
}

extension GuestRegistry {
    /// The names this registry's device entries give the LUN `wwid` (for `-t`: the name it
    /// already uses is the one to keep), in the order the entries were made.
    public func registeredNames(wwid: WWID) throws(RegistryError) -> [String] {
        try store.read { db in
            try db.fetchAll(
                String.self,
                sql: "SELECT n.name FROM device d JOIN deviceName n ON n.deviceId = d.id WHERE d.wwid = ? ORDER BY d.id, n.id",
                arguments: [wwid.normalized])
        }
    }

    /// What keeps a migration's copy from writing `location` on this host (`-m … -C`): the refusal
    /// the copy itself would meet. Changes nothing.
    public func copyObstacles(for location: String, guest: String) throws(RegistryError) -> [String] {
        let location = try NameRules.entryName(location)
        return try store.rehearse { db in
            let existing = rules.claim(location)
            guard let claim = existing.identity.exists ? existing : rules.plannedFile(location)?.claim else { return [] }
            return try rules.copyRefusal(claim, guest: guest, db).map { [$0.message] } ?? []
        }
    }

    /// What keeps a device from being given to `guest` on this host: the refusal `hpvmcreate`
    /// would give for the same statement (the same rules, asked the same way). Empty when nothing
    /// does. Changes nothing: it runs in a transaction that is always rolled back.
    public func obstacles(for statement: ResourceStatement, guest: String) throws(RegistryError) -> [String] {
        try store.rehearse { db in
            let (claim, _, refusal) = try judge(statement, guest: guest, db)
            guard claim.identity.exists, let refusal else { return [] }
            return [refusal.message]
        }
    }
}
