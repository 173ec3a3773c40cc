internal import GRDB
public import Host

/// The work of `hpvmhostrdev`: restricting, with `AUTORDEV=YES`, every disk and volume the host
/// itself uses, and nothing made by hand.
public struct HostRestrictions: Sendable {
    public let store: RegistryStore
    public let root: HostRoot
    public let audit: AuditContext
    let rules: StorageRules

    public init(store: RegistryStore, root: HostRoot, audit: AuditContext) {
        self.store = store
        self.root = root
        self.audit = audit
        self.rules = StorageRules(root: root)
    }

    /// What a run changed.
    public struct Report: Sendable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        /// Devices the host uses that a hand-made rdev entry already restricts.
        public var alreadyRestricted: [String] = []
    }

    /// Asks the kernel to rescan every SCSI host (`echo "- - -" > sys/class/scsi_host/*/scan`).
    public func rescanIO() {
        rules.inventory.requestSCSIRescan()
    }

    /// Brings the AUTORDEV entries in line with what the host uses now (`-u`, and the plain run
    /// after its rescan). Saves the current AUTORDEV set for `-r` first.
    ///
    /// All or nothing: if any device the host uses is a guest device, nothing changes and the
    /// error names every such device.
    public func update() throws(RegistryError) -> Report {
        let devices = HostUsage(root: root).devices()
        return try store.write { db in
            try backup(db)
            var report = Report()
            var wanted: Set<String> = []
            var problems: [String] = []
            let now = audit.now()
            for device in devices {
                let claim = rules.claim(device.path)
                let identity = claim.identity
                if let refusal = try rules.hostClaimRefusal(claim, action: "\(Display.safe(device.path)) (\(Display.safe(device.reason)))", db)
                {
                    problems.append(refusal.message)
                    continue
                }
                let same = try DeviceTable.sameDevice(as: identity, db).filter { $0.identityKey == identity.key() }
                if let existing = same.first(where: { $0.type == .rdev }) {
                    if existing.attributes["AUTORDEV"] == "YES" {
                        wanted.insert(existing.name)
                    } else {
                        report.alreadyRestricted.append(device.path)
                    }
                    continue
                }
                if try DeviceTable.entry(named: device.path, db) != nil { continue }
                let id = try DeviceTable.insert(
                    db, type: .rdev, names: [device.path], identity: identity, extents: claim.extents, ignoreWWID: false,
                    attributes: ["SHARE": "NO", "AUTORDEV": "YES"], now: now)
                try AuditLog.append(
                    db, audit, action: "add", object: device.path,
                    change: #"{"type":"rdev","AUTORDEV":"YES","reason":\#(json(device.reason)),"wwid":\#(json(identity.wwid?.description)),"attributes":{"AUTORDEV":"YES","SHARE":"NO"},"device":\#(try DeviceTable.identityJSON(db, id: id))}"#)
                wanted.insert(device.path)
                report.added.append(device.path)
            }
            if !problems.isEmpty {
                throw RegistryError(
                    .inUse,
                    "the host uses devices that are registered for guests; nothing was changed:\n  "
                        + problems.joined(separator: "\n  ")
                        + "\nRemove them from the guests (or delete the gdev entries), then run hpvmhostrdev again.")
            }
            for entry in try autoEntries(db) where !wanted.contains(entry.name) {
                try DeviceTable.delete(db, id: entry.id)
                try AuditLog.append(
                    db, audit, action: "delete", object: entry.name,
                    change: #"{"type":"rdev","AUTORDEV":"YES","reason":"no longer used by the host"}"#)
                report.removed.append(entry.name)
            }
            return report
        }
    }

    /// Removes every AUTORDEV entry (`-d`); hand-made rdev entries stay. Saves them for `-r` first.
    public func removeAll() throws(RegistryError) -> Report {
        try store.write { db in
            try backup(db)
            var report = Report()
            for entry in try autoEntries(db) {
                try DeviceTable.delete(db, id: entry.id)
                try AuditLog.append(
                    db, audit, action: "delete", object: entry.name, change: #"{"type":"rdev","AUTORDEV":"YES"}"#)
                report.removed.append(entry.name)
            }
            return report
        }
    }

    /// Puts the AUTORDEV entries back as they were before the last plain, `-u` or `-d` run (`-r`).
    ///
    /// Only AUTORDEV entries are touched; the set they replace becomes the new backup, so a
    /// second `-r` undoes the first.
    public func restore() throws(RegistryError) -> Report {
        try store.write { db in
            let saved = try db.fetchAll(String.self, sql: "SELECT name FROM autoRdevBackup ORDER BY name")
            let hasBackup = try db.fetchOne(String.self, sql: "SELECT value FROM hostSetting WHERE name = 'hostrdev.backup'")
            guard hasBackup != nil else {
                throw RegistryError(.notFound, "there is no backup to restore: hpvmhostrdev has not run on this registry.")
            }
            try backup(db)
            var report = Report()
            let now = audit.now()
            for entry in try autoEntries(db) where !saved.contains(entry.name) {
                try DeviceTable.delete(db, id: entry.id)
                try AuditLog.append(
                    db, audit, action: "delete", object: entry.name, change: #"{"type":"rdev","AUTORDEV":"YES","by":"restore"}"#)
                report.removed.append(entry.name)
            }
            for name in saved where try DeviceTable.entry(named: name, db) == nil {
                let claim = rules.claim(name)
                if let refusal = try rules.hostClaimRefusal(claim, action: "cannot restore the restriction of \(Display.safe(name))", db)
                {
                    throw RegistryError(refusal.code, refusal.message.dropLast() + "; nothing was changed.")
                }
                let id = try DeviceTable.insert(
                    db, type: .rdev, names: [name], identity: claim.identity, extents: claim.extents, ignoreWWID: false,
                    attributes: ["SHARE": "NO", "AUTORDEV": "YES"], now: now)
                try AuditLog.append(
                    db, audit, action: "add", object: name,
                    change: #"{"type":"rdev","AUTORDEV":"YES","by":"restore","attributes":{"AUTORDEV":"YES","SHARE":"NO"},"device":\#(try DeviceTable.identityJSON(db, id: id))}"#)
                report.added.append(name)
            }
            return report
        }
    }

    /// Turns the automatic run at start-up on or off (`-E`, `-D`).
    public func setAutomatic(_ enabled: Bool) throws(RegistryError) {
        try store.write { db in
            try db.run(sql: "INSERT INTO hostSetting (name, value) VALUES ('hostrdev.autorun', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                arguments: [enabled ? "YES" : "NO"])
            try AuditLog.append(
                db, audit, action: "setting", object: "hostrdev.autorun", change: #"{"value":"\#(enabled ? "YES" : "NO")"}"#)
        }
    }

    /// Whether the automatic run at start-up is on (the default).
    public func isAutomatic() throws(RegistryError) -> Bool {
        try store.read { db in
            try db.fetchOne(String.self, sql: "SELECT value FROM hostSetting WHERE name = 'hostrdev.autorun'") != "NO"
        }
    }

    private func autoEntries(_ db: Database) throws -> [DeviceEntry] {
        try DeviceTable.entries(
            db, where: "d.type = 'rdev' AND d.id IN (SELECT deviceId FROM deviceAttribute WHERE name = 'AUTORDEV' AND value = 'YES')")
    }

    /// Saves the AUTORDEV set for `-r`, with an audit row naming what was saved.
    private func backup(_ db: Database) throws {
        try db.run(sql: "DELETE FROM autoRdevBackup")
        let saved = try autoEntries(db).map(\.name)
        for name in saved {
            try db.run(sql: "INSERT INTO autoRdevBackup (name) VALUES (?)", arguments: [name])
        }
        try db.run(sql: "INSERT INTO hostSetting (name, value) VALUES ('hostrdev.backup', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            arguments: [audit.now()])
        try AuditLog.append(db, audit, action: "setting", object: "hostrdev.backup", change: #"{"saved":\#(json(saved))}"#)
    }
}
