internal import GRDB
public import Host

/// The work of `hpvmdevmgmt`: every operation checks the rules, changes the registry in one
/// transaction, and records what it changed in the audit log.
public struct DeviceManager: Sendable {
    public let store: RegistryStore
    public let root: HostRoot
    public let audit: AuditContext
    let rules: StorageRules
    /// Whether a guest's QEMU runs now (``GuestRegistry/isRunning``): replacing the device of a
    /// running guest is refused. Where none is given, no guest runs.
    public var isRunning: @Sendable (String) -> Bool = { _ in false }

    public init(store: RegistryStore, root: HostRoot, audit: AuditContext) {
        self.store = store
        self.root = root
        self.audit = audit
        self.rules = StorageRules(root: root)
    }

    /// What an operation produced: entries to list, and notes for `-V`.
    public struct Outcome: Sendable {
        public var entries: [DeviceEntry] = []
        public var notes: [String] = []
        public var warnings: [String] = []

        public init(entries: [DeviceEntry] = [], notes: [String] = [], warnings: [String] = []) {
            self.entries = entries
            self.notes = notes
            self.warnings = warnings
        }
    }

    /// Performs one parsed operation.
    public func perform(_ operation: DeviceOperation) throws(RegistryError) -> Outcome {
        try perform([operation])
    }

    /// Performs every operation in order, all in one transaction: either all are applied, or the
    /// first refusal is reported and nothing changes. A list on its own only reads.
    public func perform(_ operations: [DeviceOperation]) throws(RegistryError) -> Outcome {
        if operations.count == 1, case let .list(query) = operations[0] { return Outcome(entries: try list(query)) }
        return try store.write { db in
            var outcome = Outcome()
            for operation in operations {
                let one = try apply(operation, db)
                outcome.entries += one.entries
                outcome.notes += one.notes
                outcome.warnings += one.warnings
            }
            return outcome
        }
    }

    private func apply(_ operation: DeviceOperation, _ db: Database) throws -> Outcome {
        switch operation {
        case let .add(type, name, attribute): return try add(type, name, attribute: attribute, db)
        case let .delete(type, name): return try delete(type, name, db)
        case let .deleteDependent(entry, dependent): return try deleteDependent(entry: entry, dependent: dependent, db)
        case let .deleteAttribute(type, name, attribute): return try deleteAttribute(type, name, attribute, db)
        case let .clearIgnoreWWID(type, name): return try setIgnoreWWID(type, name, false, db)
        case let .deleteAlias(name): return try deleteAlias(name, db)
        case let .modify(type, name, setting): return try modify(type, name, setting, db)
        case let .setIgnoreWWID(type, name, value): return try setIgnoreWWID(type, name, value, db)
        case let .rename(type, old, new): return try rename(type, old: old, new: new, db)
        case let .list(query): return Outcome(entries: try list(query, db))
        }
    }

    // MARK: - Add

    /// Adds an entry, or an alias to the entry that already has the same device.
    public func add(_ type: EntryType, _ name: String, attribute: AttributeSetting? = nil) throws(RegistryError)
        -> Outcome
    {
        try store.write { db in try add(type, name, attribute: attribute, db) }
    }

    func add(_ type: EntryType, _ rawName: String, attribute: AttributeSetting?, _ db: Database) throws -> Outcome {
        let name = try NameRules.entryName(rawName)
        let claim = rules.claim(name)
        let identity = claim.identity
        guard identity.exists else {
            throw RegistryError(.notFound, notFoundText(name))
        }
        if let attribute {
            try DeviceAttribute.validate(
                name: attribute.name, value: attribute.value, type: type, kind: identity.kind, entry: name)
        }
        var outcome = Outcome()
        // An rdev takes the place of the unused gdev entries of its storage (StorageRules).
        for entry in try rules.restrictionTakesOver(claim, type: type, db) {
            try DeviceTable.delete(db, id: entry.id)
            try AuditLog.append(
                db, audit, action: "delete", object: entry.name,
                change: #"{"type":"gdev","names":\#(json(entry.names)),"wwid":\#(json(entry.wwid?.description)),"by":"restrict"}"#)
            outcome.notes.append(
                "unused gdev entry \(Display.safe(entry.name)) is the same storage; it becomes the restriction.")
        }
        if let existing = try DeviceTable.entry(named: name, db) {
            if existing.type == .gdev && type != .gdev {
                try checkAdd(type, claim: claim, attribute: attribute, db)  // names the guest that uses it
            }
            throw RegistryError(
                .duplicate, "\(Display.safe(name)) is already in the registry as \(existing.type.rawValue) entry \(Display.safe(existing.name)).")
        }
        let same = try DeviceTable.sameDevice(as: identity, db)
        let twin = identity.kind == .vswitch
            ? nil : same.first(where: { $0.type == type && $0.identityKey == identity.key(ignoringWWID: $0.ignoreWWID) })
        try checkAdd(type, claim: claim, attribute: attribute, db)
        let now = audit.now()
        if let twin {
            // The same device under another name: record the name as an alias.
            try DeviceTable.addName(db, id: twin.id, name: name)
            if let attribute {
                try DeviceTable.setAttribute(db, id: twin.id, name: attribute.name, value: attribute.value)
            }
            try DeviceTable.touch(db, id: twin.id, now: now)
            try AuditLog.append(
                db, audit, action: "add-alias", object: twin.name,
                change: #"{"alias":\#(json(name)),"type":"\#(type.rawValue)","attribute":\#(attribute.map { json([$0.name: $0.value]) } ?? "null")}"#)
            outcome.notes.append(
                "\(Display.safe(name)) is the same device as \(type.rawValue) entry \(Display.safe(twin.name)); added as an alias.")
            return outcome
        }
        var attributes = ["SHARE": identity.kind == .vswitch && type == .gdev ? "YES" : "NO"]
        if let attribute { attributes[attribute.name] = attribute.value }
        let id = try DeviceTable.insert(
            db, type: type, names: [name], identity: identity, extents: claim.extents, ignoreWWID: false,
            attributes: attributes, now: now)
        try AuditLog.append(
            db, audit, action: "add", object: name,
            change: #"{"type":"\#(type.rawValue)","devType":"\#(identity.kind.rawValue)","wwid":\#(json(identity.wwid?.description)),"attributes":\#(json(attributes)),"device":\#(try DeviceTable.identityJSON(db, id: id))}"#
        )
        outcome.notes.append("added \(type.rawValue) entry \(Display.safe(name)) (id \(id)).")
        return outcome
    }

    /// The rules for a new entry (or a new alias of `twin`): a guest device must be free of the
    /// host's claims and of the host's own use; a host-kept entry must be free of guest devices.
    private func checkAdd(
        _ type: EntryType, claim: StorageRules.Claim, attribute: AttributeSetting?, _ db: Database
    ) throws {
        let name = Display.safe(claim.path)
        if type == .gdev {
            let action = "cannot add \(name) as a guest device"
            if let why = try rules.restriction(of: claim, db) { throw StorageRules.restricted(action, why) }
            if let why = rules.hostUse(of: claim) { throw StorageRules.hostsOwn(action, why) }
            return
        }
        let action = "cannot \(type == .rdev ? "restrict" : "add \(type.rawValue) entry") \(name)"
        if let refusal = try rules.hostClaimRefusal(claim, action: action, db) { throw refusal }
        if let attribute, attribute.name == "RECURSIVE",
            let used = try rules.guestUse(under: claim.identity.resolvedPath, mode: attribute.value, db).first
        {
            throw StorageRules.recursiveOverGuest("\(action) with RECURSIVE=\(attribute.value)", used)
        }
    }

    private func notFoundText(_ name: String) -> String {
        if name.hasPrefix("/") {
            return "\(Display.safe(name)) does not exist on this host (looked up as \(Display.safe(root.real(name))))."
        }
        return "no vswitch named \(Display.safe(name)) exists on this host (no bridge in /sys/class/net)."
    }

    // MARK: - Delete

    /// Deletes an entry that has no dependents.
    public func delete(_ type: EntryType, _ name: String) throws(RegistryError) -> Outcome {
        try store.write { db in try delete(type, name, db) }
    }

    func delete(_ type: EntryType, _ name: String, _ db: Database) throws -> Outcome {
        let entry = try require(type, name, db)
        if let refusal = StorageRules.deleteRefusal(entry) { throw refusal }
        try DeviceTable.delete(db, id: entry.id)
        try AuditLog.append(
            db, audit, action: "delete", object: entry.name,
            change: #"{"type":"\#(type.rawValue)","names":\#(json(entry.names)),"wwid":\#(json(entry.wwid?.description))}"#)
        return Outcome(notes: ["deleted \(type.rawValue) entry \(Display.safe(entry.name))."])
    }

    /// Removes a stale dependent from one entry, or from every gdev entry, without touching the
    /// guest. A guest that still has the device keeps its dependent: dependents never drift from
    /// the guests' resources.
    public func deleteDependent(entry name: String?, dependent: String) throws(RegistryError) -> Outcome {
        try store.write { db in try deleteDependent(entry: name, dependent: dependent, db) }
    }

    func deleteDependent(entry name: String?, dependent: String, _ db: Database) throws -> Outcome {
        let targets: [DeviceEntry]
        if let name {
            let entry = try require(.gdev, name, db)
            guard entry.dependents.contains(dependent) else {
                throw RegistryError(
                    .notFound, "\(Display.safe(dependent)) is not a dependent of gdev entry \(Display.safe(entry.name)).")
            }
            targets = [entry]
        } else {
            targets = try DeviceTable.entries(
                db, where: "d.type = 'gdev' AND d.id IN (SELECT deviceId FROM dependent WHERE name = ?)",
                arguments: [dependent])
            guard !targets.isEmpty else {
                throw RegistryError(.notFound, "no gdev entry has \(Display.safe(dependent)) as a dependent.")
            }
        }
        for entry in targets {
            if let refusal = try rules.dependentRefusal(entry: entry, dependent: dependent, db) { throw refusal }
            try db.run(sql: "DELETE FROM dependent WHERE deviceId = ? AND name = ?", arguments: [entry.id, dependent])
            try DeviceTable.touch(db, id: entry.id, now: audit.now())
            try AuditLog.append(
                db, audit, action: "delete-dependent", object: entry.name,
                change: #"{"dependent":\#(json(dependent))}"#)
        }
        return Outcome(notes: targets.map { "removed dependent \(Display.safe(dependent)) from \(Display.safe($0.name))." })
    }

    /// Removes one attribute.
    public func deleteAttribute(_ type: EntryType, _ name: String, _ attribute: String) throws(RegistryError) -> Outcome {
        try store.write { db in try deleteAttribute(type, name, attribute, db) }
    }

    func deleteAttribute(_ type: EntryType, _ name: String, _ attribute: String, _ db: Database) throws -> Outcome {
        let entry = try require(type, name, db)
        try DeviceAttribute.validate(name: attribute, value: nil, type: type, kind: entry.devType, entry: entry.name)
        guard entry.attributes[attribute] != nil else {
            throw RegistryError(.notFound, "\(type.rawValue) entry \(Display.safe(entry.name)) has no \(attribute) attribute.")
        }
        if attribute == "SHARE" {
            let fallback = entry.devType == .vswitch ? "YES" : "NO"
            if entry.isShared && fallback == "NO", let refusal = try unshareRefusal(entry, db) { throw refusal }
            try DeviceTable.setAttribute(db, id: entry.id, name: "SHARE", value: fallback)
        } else {
            try DeviceTable.removeAttribute(db, id: entry.id, name: attribute)
        }
        try DeviceTable.touch(db, id: entry.id, now: audit.now())
        try AuditLog.append(
            db, audit, action: "delete-attribute", object: entry.name,
            change: #"{"attribute":"\#(attribute)","was":\#(json(entry.attributes[attribute])),"value":\#(json(attribute == "SHARE" ? (entry.devType == .vswitch ? "YES" : "NO") : nil))}"#)
        return Outcome(notes: ["removed \(attribute) from \(Display.safe(entry.name))."])
    }

    /// Removes one name from an entry that has others.
    public func deleteAlias(_ name: String) throws(RegistryError) -> Outcome {
        try store.write { db in try deleteAlias(name, db) }
    }

    func deleteAlias(_ name: String, _ db: Database) throws -> Outcome {
        guard let entry = try DeviceTable.entry(named: name, db) else {
            throw RegistryError(.notFound, "no entry has the name \(Display.safe(name)).")
        }
        guard entry.names.count > 1 else {
            throw RegistryError(
                .conflict,
                "\(Display.safe(name)) is the only name of \(entry.type.rawValue) entry \(Display.safe(entry.name)); delete the entry with hpvmdevmgmt -d \(entry.type.rawValue):\(Display.safe(name)) instead.")
        }
        let guests = try DeviceTable.guestsUsing(location: name, db)
        guard guests.isEmpty else {
            throw RegistryError(
                .inUse,
                "cannot delete alias \(Display.safe(name)): guest \(Display.list(guests, separator: ", ")) names the device by it; replace it first with hpvmdevmgmt -n.")
        }
        let remaining = entry.names.filter { $0 != name }
        try DeviceTable.setNames(db, id: entry.id, names: remaining)
        if entry.name == name {
            // The primary name changes: take the new primary's resolution as the recorded path.
            let identity = rules.inventory.identify(remaining[0])
            try db.run(sql: "UPDATE device SET resolvedPath = ? WHERE id = ?", arguments: [identity.resolvedPath, entry.id])
        }
        try DeviceTable.touch(db, id: entry.id, now: audit.now())
        try AuditLog.append(
            db, audit, action: "delete-alias", object: entry.name,
            change: #"{"alias":\#(json(name)),"device":\#(try DeviceTable.identityJSON(db, id: entry.id))}"#)
        return Outcome(notes: ["removed alias \(Display.safe(name)) from \(Display.safe(remaining[0]))."])
    }

    // MARK: - Modify

    /// Sets or changes one attribute.
    public func modify(_ type: EntryType, _ name: String, _ setting: AttributeSetting) throws(RegistryError) -> Outcome {
        try store.write { db in try modify(type, name, setting, db) }
    }

    func modify(_ type: EntryType, _ name: String, _ setting: AttributeSetting, _ db: Database) throws -> Outcome {
        let entry = try require(type, name, db)
        try DeviceAttribute.validate(
            name: setting.name, value: setting.value, type: type, kind: entry.devType, entry: entry.name)
        if setting.name == "SHARE" && setting.value == "NO" && entry.isShared, let refusal = try unshareRefusal(entry, db) {
            throw refusal
        }
        if setting.name == "RECURSIVE",
            let used = try rules.guestUse(under: entry.resolvedPath ?? entry.name, mode: setting.value, db).first
        {
            throw StorageRules.recursiveOverGuest("cannot set RECURSIVE=\(setting.value) on \(Display.safe(entry.name))", used)
        }
        try DeviceTable.setAttribute(db, id: entry.id, name: setting.name, value: setting.value)
        try DeviceTable.touch(db, id: entry.id, now: audit.now())
        try AuditLog.append(
            db, audit, action: "modify", object: entry.name,
            change: #"{"attribute":"\#(setting.name)","value":"\#(setting.value)","was":\#(json(entry.attributes[setting.name]))}"#)
        return Outcome(notes: ["set \(setting.name)=\(setting.value) on \(Display.safe(entry.name))."])
    }

    /// SHARE=NO is refused while several guests share the entry, or while another guest holds
    /// overlapping shared storage (the two claims would then overlap without both being shared).
    private func unshareRefusal(_ entry: DeviceEntry, _ db: Database) throws -> RegistryError? {
        if let refusal = StorageRules.unshareRefusal(entry) { return refusal }
        guard let guest = entry.dependents.first else { return nil }
        let claim = rules.claim(entry.names[0])
        var unshared = entry
        unshared.attributes["SHARE"] = "NO"
        if let why = try rules.otherGuests(of: claim, guest: guest, ownEntry: unshared, db) {
            return StorageRules.inUse("cannot set SHARE=NO on \(Display.safe(entry.name))", why)
        }
        return nil
    }

    /// Sets or clears IGNOREWWID, which makes the entry group its names by path, not WWID. The
    /// rules still judge overlap by WWID: IGNOREWWID never weakens a restriction.
    public func setIgnoreWWID(_ type: EntryType, _ name: String, _ value: Bool) throws(RegistryError) -> Outcome {
        try store.write { db in try setIgnoreWWID(type, name, value, db) }
    }

    func setIgnoreWWID(_ type: EntryType, _ name: String, _ value: Bool, _ db: Database) throws -> Outcome {
        let entry = try require(type, name, db)
        if !value && !entry.ignoreWWID {
            throw RegistryError(.notFound, "\(type.rawValue) entry \(Display.safe(entry.name)) has no IGNOREWWID setting.")
        }
        let identity = rules.inventory.identify(entry.name)
        let recordedWWID = entry.wwid ?? identity.wwid
        let newKey = value ? identity.key(ignoringWWID: true) : (recordedWWID.map { "wwid:" + $0.normalized } ?? identity.key())
        if !value {
            // Identifying by WWID again must not merge this entry into another one's device.
            let clash = try DeviceTable.entries(db, where: "d.identityKey = ? AND d.id != ?", arguments: [newKey, entry.id])
            if let other = clash.first {
                throw RegistryError(
                    .conflict,
                    "cannot clear IGNOREWWID on \(Display.safe(entry.name)): by WWID it is the same device as \(other.type.rawValue) entry \(Display.safe(other.name)).")
            }
        }
        try db.run(sql: "UPDATE device SET ignoreWWID = ?, identityKey = ?, updatedAt = ? WHERE id = ?",
            arguments: [value, newKey, audit.now(), entry.id])
        try AuditLog.append(
            db, audit, action: value ? "set-ignorewwid" : "clear-ignorewwid", object: entry.name,
            change: #"{"IGNOREWWID":"\#(value ? "YES" : "NO")","device":\#(try DeviceTable.identityJSON(db, id: entry.id))}"#)
        return Outcome(notes: ["IGNOREWWID=\(value ? "YES" : "NO") on \(Display.safe(entry.name))."])
    }

    // MARK: - Rename

    /// Replaces an entry's device by a new path (and optionally a second name for it), keeping its
    /// dependents and rewriting every guest resource that named the old device.
    ///
    /// Every rule that giving the guests the new path would meet applies: its kind must suit each
    /// guest's storage type, and the host and other guests must not hold it.
    public func rename(_ type: EntryType, old: String, new: [String]) throws(RegistryError) -> Outcome {
        try store.write { db in try rename(type, old: old, new: new, db) }
    }

    func rename(_ type: EntryType, old: String, new rawNew: [String], _ db: Database) throws -> Outcome {
        let new = try rawNew.map { name throws(RegistryError) in try NameRules.entryName(name) }
        let claims = new.map { rules.claim($0) }
        for claim in claims where !claim.identity.exists {
            throw RegistryError(.notFound, notFoundText(claim.path))
        }
        if claims.count == 2 && claims[0].identity.key() != claims[1].identity.key() {
            throw RegistryError(
                .conflict,
                "\(Display.safe(new[1])) is not the same device as \(Display.safe(new[0])); the second new name must be another path to it.")
        }
        let claim = claims[0]
        let identity = claim.identity
        let entry = try require(type, old, db)
        for name in new {
            if let other = try DeviceTable.entry(named: name, db), other.id != entry.id {
                throw RegistryError(
                    .duplicate, "\(Display.safe(name)) is already in the registry as \(other.type.rawValue) entry \(Display.safe(other.name)).")
            }
        }
        let action = "cannot replace \(Display.safe(old)) by \(Display.safe(new[0]))"
        if type == .gdev, let running = entry.dependents.first(where: isRunning) {
            // Its QEMU keeps the old device, which the registry would then let another guest have.
            throw StorageRules.runningRefusal(running, "replace \(Display.safe(old)) of")
        }
        if type == .gdev {
            // The guests' resources must still make sense: a disk stays a disk, a file a file.
            for row in try db.rows(
                sql: "SELECT DISTINCT storageType FROM guestResource WHERE location IN (\(DeviceTable.marks(entry.names.count)))",
                arguments: StatementArguments(entry.names))
            {
                let storage: String = row["storageType"]
                if !StorageRules.kinds(forStorage: storage).contains(identity.kind) {
                    throw StorageRules.wrongKind(action, location: new[0], kind: identity.kind, storage: storage)
                }
            }
            for (other, relation) in try rules.meeting(claim, db) where other.id != entry.id && other.type == .gdev && other.dependents.isEmpty {
                throw RegistryError(.conflict, "\(action): it is \(rules.describe(other, relation, for: claim)).")
            }
            for guest in entry.dependents.isEmpty ? [""] : entry.dependents {
                if let refusal = try rules.guestRefusal(claim, guest: guest, ownEntry: entry, action: action, db) {
                    throw refusal
                }
            }
        } else if let refusal = try rules.hostClaimRefusal(claim, action: action, db) {
            throw refusal
        }
        let now = audit.now()
        try DeviceTable.setNames(db, id: entry.id, names: new)
        try DeviceTable.updateIdentity(
            db, id: entry.id, identity: identity, extents: claim.extents, ignoreWWID: entry.ignoreWWID, now: now)
        var rewritten = 0
        for name in entry.names {
            try db.run(sql: "UPDATE guestResource SET location = ? WHERE location = ?", arguments: [new[0], name])
            rewritten += db.changesCount
        }
        try AuditLog.append(
            db, audit, action: "rename", object: new[0],
            change: #"{"type":"\#(type.rawValue)","old":\#(json(entry.names)),"new":\#(json(new)),"wwid":\#(json(identity.wwid?.description)),"guestResources":\#(rewritten),"device":\#(try DeviceTable.identityJSON(db, id: entry.id))}"#)
        return Outcome(
            notes: ["replaced \(Display.safe(entry.name)) by \(Display.list(new, separator: ",")); \(entry.dependents.count) dependents kept, \(rewritten) guest resources rewritten."])
    }

    // MARK: - List

    /// The entries a `-l` query selects, ordered by primary name.
    public func list(_ query: ListQuery) throws(RegistryError) -> [DeviceEntry] {
        try store.read { db in try list(query, db) }
    }

    func list(_ query: ListQuery, _ db: Database) throws -> [DeviceEntry] {
        do {
            var clauses: [String] = []
            var arguments = StatementArguments()
            if let type = query.type {
                clauses.append("d.type = ?")
                arguments += [type.rawValue]
            }
            switch query.filter {
            case .none:
                break
            case .entry(let name):
                if try DeviceTable.entry(named: name, db) != nil {
                    clauses.append("d.id = (SELECT deviceId FROM deviceName WHERE name = ?)")
                    arguments += [name]
                } else {
                    // Not a registered name: list the entry for the same device, if any.
                    let identity = rules.inventory.identify(name)
                    let ids = identity.exists ? try DeviceTable.sameDevice(as: identity, db).map(\.id) : []
                    clauses.append("d.id IN (\(ids.isEmpty ? "NULL" : ids.map(String.init).joined(separator: ",")))")
                }
            case .dependent(let name):
                clauses.append("d.id IN (SELECT deviceId FROM dependent WHERE name = ?)")
                arguments += [name]
            case .attribute(let setting):
                switch setting.name {
                case "CONFIG":
                    clauses.append("d.type = ?")
                    arguments += [setting.value]
                case "EXIST":
                    clauses.append("d.exist = ?")
                    arguments += [setting.value == "YES"]
                case "DEVTYPE":
                    clauses.append("d.devType = ?")
                    arguments += [setting.value]
                case "IGNOREWWID":
                    clauses.append("d.ignoreWWID = ?")
                    arguments += [setting.value == "YES"]
                case "SHARE" where setting.value == "NO":
                    clauses.append(
                        "d.id NOT IN (SELECT deviceId FROM deviceAttribute WHERE name = 'SHARE' AND value = 'YES')")
                default:
                    clauses.append("d.id IN (SELECT deviceId FROM deviceAttribute WHERE name = ? AND value = ?)")
                    arguments += [setting.name, setting.value]
                }
            }
            return try DeviceTable.entries(
                db, where: clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), arguments: arguments)
        }
    }

    // MARK: - Helpers

    func require(_ type: EntryType, _ name: String, _ db: Database) throws -> DeviceEntry {
        guard let entry = try DeviceTable.entry(named: name, db) else {
            throw RegistryError(.notFound, "no \(type.rawValue) entry named \(Display.safe(name)) in the registry.")
        }
        guard entry.type == type else {
            throw RegistryError(
                .notFound,
                "\(Display.safe(name)) is a \(entry.type.rawValue) entry, not \(type.rawValue); use \(entry.type.rawValue):\(Display.safe(name)).")
        }
        return entry
    }
}

/// A JSON string literal for audit records (Foundation-free).
func json(_ value: String?) -> String {
    guard let value else { return "null" }
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

func json(_ values: [String]) -> String { "[" + values.map { json($0) }.joined(separator: ",") + "]" }

func json(_ values: [String: String]) -> String {
    "{" + values.keys.sorted().map { "\(json($0)):\(json(values[$0]))" }.joined(separator: ",") + "}"
}
