internal import GRDB
public import Host

/// This host's place in the fleet's sanlock lockspace, as the registry keeps it (issue 11): the
/// lease file or LUN, the host id, the io_timeout, and each guest's lease slot. The sanlock calls
/// themselves live in the `Lease` module; this type only records and checks.
public struct FleetLeases: Sendable {
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

    /// The fleet settings of this host.
    public struct Settings: Sendable, Equatable, Codable {
        public let path: String
        public let hostID: Int
        public let ioTimeout: Int
        public let joinedAt: String

        public init(path: String, hostID: Int, ioTimeout: Int, joinedAt: String) {
            self.path = path
            self.hostID = hostID
            self.ioTimeout = ioTimeout
            self.joinedAt = joinedAt
        }
    }

    /// A guest's lease as the registry knows it.
    public struct GuestLease: Sendable, Equatable, Codable {
        public let guest: String
        public let uuid: String
        /// The resource name on the lease file: `guest-<uuid>`.
        public let resource: String
        /// The slot, when one was found or assigned.
        public let slot: Int?
    }

    /// The resource name of the guest with this UUID (at most 47 bytes, as sanlock allows).
    public static func resourceName(uuid: String) -> String { "guest-" + uuid }

    /// The settings, or nil when fleet leases are off on this host.
    public func settings() throws(RegistryError) -> Settings? {
        try store.read { db in try Self.settings(db) }
    }

    static func settings(_ db: Database) throws -> Settings? {
        guard let row = try Row.fetchOne(db, sql: "SELECT path, hostId, ioTimeout, joinedAt FROM fleetLease WHERE id = 1") else { return nil }
        return Settings(path: row["path"], hostID: row["hostId"], ioTimeout: row["ioTimeout"], joinedAt: row["joinedAt"])
    }

    /// `hpvmstatus -V`'s line on fleet leases: on (host id, storage, io_timeout) or off.
    public func statusLine() -> String {
        guard let settings = try? settings() else {
            return "Fleet leases: off (hpvmlease -i path -H host-id sets them up)\n"
        }
        return "Fleet leases: on, host \(settings.hostID), lease storage \(Display.safe(settings.path)), io_timeout \(settings.ioTimeout) s\n"
    }

    /// Why the registry refuses `path` as the lease storage, or nil: a guest uses it (or storage
    /// that overlaps it), or a gdev entry is the same storage. Asked before sanlock touches it.
    public func refusal(path: String) throws(RegistryError) -> RegistryError? {
        try store.read { db in
            try rules.hostClaimRefusal(rules.claim(path), action: "cannot use \(Display.safe(path)) for fleet leases", db)
        }
    }

    /// Records this host's fleet settings, and the lease storage as an rdev entry (SHARE=NO) so no
    /// guest can be given it; all or nothing. Setting the same path again only updates the host id
    /// and io_timeout; a different path is refused while one is set.
    public func record(path: String, hostID: Int, ioTimeout: Int) throws(RegistryError) -> Settings {
        try store.write { db in
            if let current = try Self.settings(db), current.path != path {
                throw RegistryError(
                    .conflict,
                    "this host already uses \(Display.safe(current.path)) for fleet leases; one lease storage per host (a fleet shares one lockspace).")
            }
            let claim = rules.claim(path)
            if let refusal = try rules.hostClaimRefusal(claim, action: "cannot use \(Display.safe(path)) for fleet leases", db) {
                throw refusal
            }
            let now = audit.now()
            if try DeviceTable.entry(named: path, db) == nil {
                let same = try DeviceTable.sameDevice(as: claim.identity, db).filter { $0.identityKey == claim.identity.key() }
                if !same.contains(where: { $0.type == .rdev }) {
                    let id = try DeviceTable.insert(
                        db, type: .rdev, names: [path], identity: claim.identity, extents: claim.extents, ignoreWWID: false,
                        attributes: ["SHARE": "NO"], now: now)
                    try AuditLog.append(
                        db, audit, action: "add", object: path,
                        change: #"{"type":"rdev","reason":"fleet lease storage","wwid":\#(json(claim.identity.wwid?.description)),"attributes":{"SHARE":"NO"},"device":\#(try DeviceTable.identityJSON(db, id: id))}"#)
                }
            }
            try db.run(
                sql: """
                    INSERT INTO fleetLease (id, path, hostId, ioTimeout, joinedAt) VALUES (1, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET hostId = excluded.hostId, ioTimeout = excluded.ioTimeout, joinedAt = excluded.joinedAt
                    """,
                arguments: [path, hostID, ioTimeout, now])
            try AuditLog.append(
                db, audit, action: "setting", object: "fleet-lease",
                change: #"{"path":\#(json(path)),"hostId":\#(hostID),"ioTimeout":\#(ioTimeout)}"#)
            return Settings(path: path, hostID: hostID, ioTimeout: ioTimeout, joinedAt: now)
        }
    }

    /// Every guest with its resource name and slot, by name.
    public func guestLeases() throws(RegistryError) -> [GuestLease] {
        try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT g.name, g.uuid, l.slot FROM guest g LEFT JOIN guestLease l ON l.guestId = g.id
                WHERE g.uuid IS NOT NULL ORDER BY g.name
                """).map { row in
                let uuid: String = row["uuid"]
                return GuestLease(guest: row["name"], uuid: uuid, resource: Self.resourceName(uuid: uuid), slot: row["slot"])
            }
        }
    }

    /// One guest's lease, or nil when no guest has that name.
    public func guestLease(_ name: String) throws(RegistryError) -> GuestLease? {
        try guestLeases().first { $0.guest == name }
    }

    /// Records where the guest's resource is on the lease file (found there, or just written).
    public func recordSlot(_ slot: Int, guest name: String) throws(RegistryError) {
        try store.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM guest WHERE name = ?", arguments: [name]) else {
                throw RegistryError(.notFound, "guest \(Display.safe(name)) does not exist.")
            }
            try db.run(sql: "DELETE FROM guestLease WHERE slot = ? AND guestId <> ?", arguments: [slot, id])
            try db.run(
                sql: "INSERT INTO guestLease (guestId, slot) VALUES (?, ?) ON CONFLICT (guestId) DO UPDATE SET slot = excluded.slot",
                arguments: [id, slot])
        }
    }
}
