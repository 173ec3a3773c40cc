internal import GRDB
public import Host

/// The work of `hpvmdevmgmt`: every operation checks the rules, changes the registry in one
/// transaction, and records what it changed in the audit log.
public struct DeviceManager: Sendable {
    public let store: RegistryStore
    public let root: HostRoot
    public let audit: AuditContext
    let rules: DeviceRules

    public init(store: RegistryStore, root: HostRoot, audit: AuditContext) {
        self.store = store
        self.root = root
        self.audit = audit
        self.rules = DeviceRules(root: root)
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
        switch operation {
        case let .add(type, name, attribute): return try add(type, name, attribute: attribute)
        case let .delete(type, name): return try delete(type, name)
        case let .deleteDependent(entry, dependent): return try deleteDependent(entry: entry, dependent: dependent)
        case let .deleteAttribute(type, name, attribute): return try deleteAttribute(type, name, attribute)
        case let .clearIgnoreWWID(type, name): return try setIgnoreWWID(type, name, false)
        case let .deleteAlias(name): return try deleteAlias(name)
        case let .modify(type, name, setting): return try modify(type, name, setting)
        case let .setIgnoreWWID(type, name, value): return try setIgnoreWWID(type, name, value)
        case let .rename(type, old, new): return try rename(type, old: old, new: new)
        case let .list(query): return Outcome(entries: try list(query))
        }
    }

    // MARK: - Add

    /// Adds an entry, or an alias to the entry that already has the same device.
    public func add(_ type: EntryType, _ name: String, attribute: AttributeSetting? = nil) throws(RegistryError)
        -> Outcome
    {
        let identity = rules.inventory.identify(name)
        guard identity.exists else {
            throw RegistryError(.notFound, notFoundText(name))
        }
        if let attribute {
            try DeviceAttribute.validate(
                name: attribute.name, value: attribute.value, type: type, kind: identity.kind, entry: name)
        }
        return try store.write { db in
            var outcome = Outcome()
            if let existing = try DeviceTable.entry(named: name, db) {
                throw RegistryError(
                    .duplicate, "\(Display.safe(name)) is already in the registry as \(existing.type.rawValue) entry \(Display.safe(existing.name)).")
            }
            let same = try DeviceTable.sameDevice(as: identity, db)
            try checkAdd(type, identity: identity, attribute: attribute, same: same, db)
            let now = audit.now()
            if type != .server && type != .env, identity.kind != .vswitch,
                let twin = same.first(where: { $0.type == type && $0.identityKey == identity.key(ignoringWWID: $0.ignoreWWID) })
            {
                // The same device under another name: record the name as an alias.
                try DeviceTable.addName(db, id: twin.id, name: name)
                if let attribute {
                    try DeviceTable.setAttribute(db, id: twin.id, name: attribute.name, value: attribute.value)
                }
                try DeviceTable.touch(db, id: twin.id, now: now)
                try AuditLog.append(
                    db, audit, action: "add-alias", object: twin.name,
                    change: #"{"alias":\#(json(name)),"type":"\#(type.rawValue)"}"#)
                outcome.notes.append(
                    "\(Display.safe(name)) is the same device as \(type.rawValue) entry \(Display.safe(twin.name)); added as an alias.")
                return outcome
            }
            var attributes = ["SHARE": identity.kind == .vswitch && type == .gdev ? "YES" : "NO"]
            if let attribute { attributes[attribute.name] = attribute.value }
            let id = try DeviceTable.insert(
                db, type: type, names: [name], identity: identity, ignoreWWID: false, attributes: attributes, now: now)
            try AuditLog.append(
                db, audit, action: "add", object: name,
                change: #"{"type":"\#(type.rawValue)","devType":"\#(identity.kind.rawValue)","wwid":\#(json(identity.wwid?.description)),"attributes":\#(json(attributes))}"#
            )
            outcome.notes.append("added \(type.rawValue) entry \(Display.safe(name)) (id \(id)).")
            return outcome
        }
    }

    private func checkAdd(
        _ type: EntryType, identity: StorageIdentity, attribute: AttributeSetting?, same: [DeviceEntry], _ db: Database
    ) throws {
        let name = Display.safe(identity.path)
        switch type {
        case .gdev:
            if let (_, why) = try rules.restriction(of: identity, db) {
                throw RegistryError(.restricted, "cannot add \(name) as a guest device: it is restricted, \(why).")
            }
            if let other = same.first(where: { $0.type != .gdev && $0.type != .server && $0.type != .env }) {
                throw RegistryError(.conflict, "cannot add \(name) as a guest device: it is \(rules.describe(other, for: identity)).")
            }
        case .rdev:
            if let used = try rules.guestUse(of: identity, db).first {
                throw RegistryError(
                    .inUse,
                    "cannot restrict \(name): it is \(rules.describe(used, for: identity)), used by guest \(Display.list(used.dependents, separator: ", ")).")
            }
            if let other = same.first(where: { $0.type == .gdev }) {
                throw RegistryError(
                    .conflict,
                    "cannot restrict \(name): it is \(rules.describe(other, for: identity)); delete that entry first (hpvmdevmgmt -d gdev:\(Display.safe(other.name))).")
            }
            if let attribute, attribute.name == "RECURSIVE" {
                let directory = identity.resolvedPath
                if let used = try rules.guestUse(under: directory, recursive: attribute.value, db).first {
                    throw RegistryError(
                        .inUse,
                        "cannot restrict \(name) with RECURSIVE=\(attribute.value): guest device \(Display.safe(used.name)) under it is used by \(Display.list(used.dependents, separator: ", ")).")
                }
            }
        case .server, .env:
            break
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
        try store.write { db in
            let entry = try require(type, name, db)
            guard entry.dependents.isEmpty else {
                throw RegistryError(
                    .hasDependents,
                    "cannot delete \(type.rawValue) entry \(Display.safe(entry.name)): it has dependents \(Display.list(entry.dependents, separator: ", ")). Remove the device from those guests first (or hpvmdevmgmt -d gdev:\(Display.safe(entry.name)):depend:GUEST).")
            }
            try DeviceTable.delete(db, id: entry.id)
            try AuditLog.append(
                db, audit, action: "delete", object: entry.name,
                change: #"{"type":"\#(type.rawValue)","names":\#(json(entry.names)),"wwid":\#(json(entry.wwid?.description))}"#)
            return Outcome(notes: ["deleted \(type.rawValue) entry \(Display.safe(entry.name))."])
        }
    }

    /// Removes a dependent from one entry, or from every gdev entry, without touching the guest.
    public func deleteDependent(entry name: String?, dependent: String) throws(RegistryError) -> Outcome {
        try store.write { db in
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
                try db.run(sql: "DELETE FROM dependent WHERE deviceId = ? AND name = ?", arguments: [entry.id, dependent])
                try DeviceTable.touch(db, id: entry.id, now: audit.now())
                try AuditLog.append(
                    db, audit, action: "delete-dependent", object: entry.name,
                    change: #"{"dependent":\#(json(dependent))}"#)
            }
            return Outcome(notes: targets.map { "removed dependent \(Display.safe(dependent)) from \(Display.safe($0.name))." })
        }
    }

    /// Removes one attribute.
    public func deleteAttribute(_ type: EntryType, _ name: String, _ attribute: String) throws(RegistryError) -> Outcome {
        try store.write { db in
            let entry = try require(type, name, db)
            try DeviceAttribute.validate(name: attribute, value: nil, type: type, kind: entry.devType, entry: entry.name)
            guard entry.attributes[attribute] != nil else {
                throw RegistryError(.notFound, "\(type.rawValue) entry \(Display.safe(entry.name)) has no \(attribute) attribute.")
            }
            if attribute == "SHARE" {
                let fallback = entry.devType == .vswitch ? "YES" : "NO"
                if entry.isShared && fallback == "NO" { try checkUnshare(entry) }
                try DeviceTable.setAttribute(db, id: entry.id, name: "SHARE", value: fallback)
            } else {
                try DeviceTable.removeAttribute(db, id: entry.id, name: attribute)
            }
            try DeviceTable.touch(db, id: entry.id, now: audit.now())
            try AuditLog.append(
                db, audit, action: "delete-attribute", object: entry.name,
                change: #"{"attribute":"\#(attribute)","was":\#(json(entry.attributes[attribute]))}"#)
            return Outcome(notes: ["removed \(attribute) from \(Display.safe(entry.name))."])
        }
    }

    /// Removes one name from an entry that has others.
    public func deleteAlias(_ name: String) throws(RegistryError) -> Outcome {
        try store.write { db in
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
                db, audit, action: "delete-alias", object: entry.name, change: #"{"alias":\#(json(name))}"#)
            return Outcome(notes: ["removed alias \(Display.safe(name)) from \(Display.safe(remaining[0]))."])
        }
    }

    // MARK: - Modify

    /// Sets or changes one attribute.
    public func modify(_ type: EntryType, _ name: String, _ setting: AttributeSetting) throws(RegistryError) -> Outcome {
        try store.write { db in
            let entry = try require(type, name, db)
            try DeviceAttribute.validate(
                name: setting.name, value: setting.value, type: type, kind: entry.devType, entry: entry.name)
            if setting.name == "SHARE" && setting.value == "NO" && entry.isShared { try checkUnshare(entry) }
            if setting.name == "RECURSIVE" {
                if let used = try rules.guestUse(under: entry.resolvedPath ?? entry.name, recursive: setting.value, db).first {
                    throw RegistryError(
                        .inUse,
                        "cannot set RECURSIVE=\(setting.value) on \(Display.safe(entry.name)): guest device \(Display.safe(used.name)) under it is used by \(Display.list(used.dependents, separator: ", ")).")
                }
            }
            try DeviceTable.setAttribute(db, id: entry.id, name: setting.name, value: setting.value)
            try DeviceTable.touch(db, id: entry.id, now: audit.now())
            try AuditLog.append(
                db, audit, action: "modify", object: entry.name,
                change: #"{"attribute":"\#(setting.name)","value":"\#(setting.value)","was":\#(json(entry.attributes[setting.name]))}"#)
            return Outcome(notes: ["set \(setting.name)=\(setting.value) on \(Display.safe(entry.name))."])
        }
    }

    /// Refuses to unshare a device that several guests use.
    private func checkUnshare(_ entry: DeviceEntry) throws {
        if entry.dependents.count > 1 {
            throw RegistryError(
                .inUse,
                "cannot set SHARE=NO on \(Display.safe(entry.name)): guests \(Display.list(entry.dependents, separator: ", ")) share it. Remove it from all but one first.")
        }
    }

    /// Sets or clears IGNOREWWID, which makes the rules identify the device by path, not WWID.
    public func setIgnoreWWID(_ type: EntryType, _ name: String, _ value: Bool) throws(RegistryError) -> Outcome {
        try store.write { db in
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
                change: #"{"IGNOREWWID":"\#(value ? "YES" : "NO")"}"#)
            return Outcome(notes: ["IGNOREWWID=\(value ? "YES" : "NO") on \(Display.safe(entry.name))."])
        }
    }

    // MARK: - Rename

    /// Replaces an entry's device by a new path (and optionally a second name for it), keeping its
    /// dependents and rewriting every guest resource that named the old device.
    public func rename(_ type: EntryType, old: String, new: [String]) throws(RegistryError) -> Outcome {
        let identities = new.map { rules.inventory.identify($0) }
        for identity in identities where !identity.exists {
            throw RegistryError(.notFound, notFoundText(identity.path))
        }
        if identities.count == 2 && identities[0].key() != identities[1].key() {
            throw RegistryError(
                .conflict,
                "\(Display.safe(new[1])) is not the same device as \(Display.safe(new[0])); the second new name must be another path to it.")
        }
        let identity = identities[0]
        return try store.write { db in
            let entry = try require(type, old, db)
            for name in new {
                if let other = try DeviceTable.entry(named: name, db), other.id != entry.id {
                    throw RegistryError(
                        .duplicate, "\(Display.safe(name)) is already in the registry as \(other.type.rawValue) entry \(Display.safe(other.name)).")
                }
            }
            let others = try DeviceTable.sameDevice(as: identity, db).filter { $0.id != entry.id }
            if type == .gdev {
                if let (_, why) = try rules.restriction(of: identity, db) {
                    throw RegistryError(.restricted, "cannot replace \(Display.safe(old)) by \(Display.safe(new[0])): it is restricted, \(why).")
                }
                if let other = others.first {
                    throw RegistryError(
                        .conflict, "cannot replace \(Display.safe(old)) by \(Display.safe(new[0])): it is \(rules.describe(other, for: identity)).")
                }
            } else if let other = others.first(where: { $0.type == .gdev }) {
                throw RegistryError(
                    .conflict, "cannot replace \(Display.safe(old)) by \(Display.safe(new[0])): it is \(rules.describe(other, for: identity)).")
            }
            let now = audit.now()
            try DeviceTable.setNames(db, id: entry.id, names: new)
            try DeviceTable.updateIdentity(db, id: entry.id, identity: identity, ignoreWWID: entry.ignoreWWID, now: now)
            var rewritten = 0
            for name in entry.names {
                try db.run(sql: "UPDATE guestResource SET location = ? WHERE location = ?", arguments: [new[0], name])
                rewritten += db.changesCount
            }
            try AuditLog.append(
                db, audit, action: "rename", object: new[0],
                change: #"{"type":"\#(type.rawValue)","old":\#(json(entry.names)),"new":\#(json(new)),"wwid":\#(json(identity.wwid?.description)),"guestResources":\#(rewritten)}"#)
            return Outcome(
                notes: ["replaced \(Display.safe(entry.name)) by \(Display.list(new, separator: ",")); \(entry.dependents.count) dependents kept, \(rewritten) guest resources rewritten."])
        }
    }

    // MARK: - List

    /// The entries a `-l` query selects, ordered by primary name.
    public func list(_ query: ListQuery) throws(RegistryError) -> [DeviceEntry] {
        try store.read { db in
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
