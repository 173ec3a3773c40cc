internal import GRDB
public import Host

/// A guest as the registry records it (the guest commands fill in the rest).
public struct Guest: Sendable, Equatable, Codable {
    public let id: Int64
    public let name: String
    public let vmNumber: Int
    public let runnable: Bool
    public let modifiable: Bool
    public let visible: Bool
    public let migrationLock: String?
}

/// One guest resource: a virtual device and the host device behind it.
public struct GuestResource: Sendable, Equatable, Codable {
    public var deviceType: String
    public var adapterType: String
    public var storageType: String
    public var location: String

    public init(deviceType: String, adapterType: String, storageType: String, location: String) {
        self.deviceType = deviceType
        self.adapterType = adapterType
        self.storageType = storageType
        self.location = location
    }
}

/// Guest rows and the device dependents that follow them; the guest commands build on this.
public struct GuestRegistry: Sendable {
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

    /// Creates a guest, with the lowest free VM number unless one is given.
    @discardableResult
    public func createGuest(name: String, vmNumber: Int? = nil) throws(RegistryError) -> Guest {
        let name = try NameRules.dependentName(name)
        return try store.write { db in
            if try DeviceTable.guestExists(db, name) {
                throw RegistryError(.duplicate, "a guest named \(Display.safe(name)) already exists.")
            }
            let number: Int
            if let vmNumber {
                guard vmNumber > 0 else { throw RegistryError(.badSpec, "VM number \(vmNumber) must be greater than 0.") }
                if let holder = try String.fetchOne(db, sql: "SELECT name FROM guest WHERE vmNumber = ?", arguments: [vmNumber]) {
                    throw RegistryError(.duplicate, "VM number \(vmNumber) is taken by guest \(Display.safe(holder)).")
                }
                number = vmNumber
            } else {
                number = try Int.fetchOne(
                    db,
                    sql: """
                        SELECT min(n) FROM (SELECT 1 AS n UNION ALL SELECT vmNumber + 1 FROM guest) AS c
                        WHERE n NOT IN (SELECT vmNumber FROM guest)
                        """) ?? 1
            }
            let now = audit.now()
            try db.execute(
                sql: "INSERT INTO guest (name, vmNumber, createdAt, updatedAt) VALUES (?, ?, ?, ?)",
                arguments: [name, number, now, now])
            try AuditLog.append(db, audit, action: "create-guest", object: name, change: #"{"vmNumber":\#(number)}"#)
            return try guest(named: name, db)!
        }
    }

    /// The guest named `name`, if any.
    public func guest(named name: String) throws(RegistryError) -> Guest? {
        try store.read { db in try guest(named: name, db) }
    }

    func guest(named name: String, _ db: Database) throws -> Guest? {
        try Row.fetchOne(db, sql: "SELECT * FROM guest WHERE name = ?", arguments: [name]).map { row in
            Guest(
                id: row["id"], name: row["name"], vmNumber: row["vmNumber"], runnable: row["runnable"],
                modifiable: row["modifiable"], visible: row["visible"], migrationLock: row["migrationLock"])
        }
    }

    /// The guest's resources, in order.
    public func resources(of name: String) throws(RegistryError) -> [GuestResource] {
        try store.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.* FROM guestResource r JOIN guest g ON g.id = r.guestId
                    WHERE g.name = ? ORDER BY r.position
                    """,
                arguments: [name]
            ).map { row in
                GuestResource(
                    deviceType: row["deviceType"], adapterType: row["adapterType"], storageType: row["storageType"],
                    location: row["location"])
            }
        }
    }

    /// Gives a guest a resource, applying every device rule to the device behind it.
    ///
    /// Refused when the guest is Not Modify or locked by a migration, when the device is
    /// restricted (by any alias, or under a recursive restricted directory), and when another
    /// guest uses it without `SHARE=YES`. The `gdev` entry is created if needed and the guest
    /// added as its dependent.
    public func attach(_ resource: GuestResource, to guestName: String) throws(RegistryError) {
        let location = try NameRules.entryName(resource.location)
        let identity = rules.inventory.identify(location)
        guard identity.exists else {
            throw RegistryError(.notFound, "\(Display.safe(location)) does not exist on this host.")
        }
        try store.write { db in
            let guest = try modifiableGuest(guestName, db)
            if let (_, why) = try rules.restriction(of: identity, db) {
                throw RegistryError(
                    .restricted, "cannot give \(Display.safe(location)) to guest \(Display.safe(guestName)): it is restricted, \(why).")
            }
            let same = try DeviceTable.sameDevice(as: identity, db)
            var entry = same.first { $0.type == .gdev && $0.identityKey == identity.key(ignoringWWID: $0.ignoreWWID) }
                ?? same.first { $0.type == .gdev }
            if let existing = entry {
                let others = existing.dependents.filter { $0 != guestName }
                if !others.isEmpty && !existing.isShared {
                    throw RegistryError(
                        .inUse,
                        "cannot give \(Display.safe(location)) to guest \(Display.safe(guestName)): it is \(rules.describe(existing, for: identity)), used by \(Display.list(others, separator: ", ")) and not SHARE=YES.")
                }
                if !existing.names.contains(location) {
                    try DeviceTable.addName(db, id: existing.id, name: location)
                }
            } else {
                if let taken = try DeviceTable.entry(named: location, db) {
                    throw RegistryError(.conflict, "\(Display.safe(location)) is \(taken.type.rawValue) entry \(Display.safe(taken.name)).")
                }
                let id = try DeviceTable.insert(
                    db, type: .gdev, names: [location], identity: identity, ignoreWWID: false,
                    attributes: ["SHARE": identity.kind == .vswitch ? "YES" : "NO"], now: audit.now())
                entry = try DeviceTable.entry(id: id, db)
                try AuditLog.append(
                    db, audit, action: "add", object: location,
                    change: #"{"type":"gdev","devType":"\#(identity.kind.rawValue)","wwid":\#(json(identity.wwid?.description)),"by":"guest"}"#)
            }
            guard let entry else { return }
            try db.execute(
                sql: "INSERT OR IGNORE INTO dependent (deviceId, name, kind) VALUES (?, ?, 'guest')",
                arguments: [entry.id, guestName])
            let position = try Int.fetchOne(
                db, sql: "SELECT coalesce(max(position), -1) + 1 FROM guestResource WHERE guestId = ?",
                arguments: [guest.id]) ?? 0
            try db.execute(
                sql: """
                    INSERT INTO guestResource (guestId, position, deviceType, adapterType, storageType, location)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [guest.id, position, resource.deviceType, resource.adapterType, resource.storageType, location])
            try AuditLog.append(
                db, audit, action: "attach", object: entry.name,
                change: #"{"guest":\#(json(guestName)),"location":\#(json(location))}"#)
        }
    }

    /// Takes a resource away from a guest: the guest stops being a dependent of the device's
    /// entry once no resource of it uses the device, and the entry is deleted when its last
    /// dependent goes, unless it has `PRESERVE=YES`.
    public func detach(location: String, from guestName: String) throws(RegistryError) {
        let location = try NameRules.entryName(location)
        try store.write { db in
            let guest = try modifiableGuest(guestName, db)
            guard let resourceID = try Int64.fetchOne(
                db, sql: "SELECT id FROM guestResource WHERE guestId = ? AND location = ? ORDER BY position LIMIT 1",
                arguments: [guest.id, location])
            else {
                throw RegistryError(.notFound, "guest \(Display.safe(guestName)) has no resource on \(Display.safe(location)).")
            }
            try db.execute(sql: "DELETE FROM guestResource WHERE id = ?", arguments: [resourceID])
            try AuditLog.append(
                db, audit, action: "detach", object: location, change: #"{"guest":\#(json(guestName))}"#)
            guard let entry = try DeviceTable.entry(named: location, db) else { return }
            let stillUses = try Bool.fetchOne(
                db,
                sql: """
                    SELECT EXISTS (SELECT 1 FROM guestResource r JOIN deviceName n ON n.name = r.location
                                   WHERE r.guestId = ? AND n.deviceId = ?)
                    """,
                arguments: [guest.id, entry.id]) ?? false
            guard !stillUses else { return }
            try db.execute(sql: "DELETE FROM dependent WHERE deviceId = ? AND name = ?", arguments: [entry.id, guestName])
            let remaining = entry.dependents.filter { $0 != guestName }
            if remaining.isEmpty && entry.attributes["PRESERVE"] != "YES" {
                try DeviceTable.delete(db, id: entry.id)
                try AuditLog.append(
                    db, audit, action: "delete", object: entry.name,
                    change: #"{"type":"gdev","reason":"last dependent removed","names":\#(json(entry.names))}"#)
            }
        }
    }

    private func modifiableGuest(_ name: String, _ db: Database) throws -> Guest {
        guard let guest = try guest(named: name, db) else {
            throw RegistryError(.notFound, "no guest named \(Display.safe(name)).")
        }
        guard guest.modifiable else {
            throw RegistryError(
                .notModifiable,
                "guest \(Display.safe(name)) is Not Modify; only hpvmmodify -P \(Display.safe(name)) -x modify_status=enabled changes it.")
        }
        if let lock = guest.migrationLock {
            throw RegistryError(.notModifiable, "guest \(Display.safe(name)) is being migrated (\(Display.safe(lock))); try again when it is done.")
        }
        return guest
    }
}
