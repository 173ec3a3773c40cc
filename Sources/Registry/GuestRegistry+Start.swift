internal import GRDB
internal import Host

/// What `hpvmstart` launches: the guest and each of its resources as the host shows them now,
/// read and checked under the registry's lock.
public struct GuestStartPlan: Sendable, Equatable {
    public let guest: Guest
    public let resources: [PlannedResource]

    public init(guest: Guest, resources: [PlannedResource]) {
        self.guest = guest
        self.resources = resources
    }
}

/// One resource of a guest about to start.
public struct PlannedResource: Sendable, Equatable {
    /// The resource as the registry records it (with its guest address and, for a network, its MAC).
    public let statement: ResourceStatement
    /// For storage, the real path of the backing store under the host root after every symlink
    /// (nil for a network and for an empty DVD drive, `null` storage).
    public let backingPath: String?
    /// Whether the device's entry is SHARE=YES: other running guests may write it too.
    public let shared: Bool

    public init(statement: ResourceStatement, backingPath: String?, shared: Bool) {
        self.statement = statement
        self.backingPath = backingPath
        self.shared = shared
    }
}

extension GuestRegistry {
    /// Checks that the guest may start and, under the registry's lock, hands its plan to `launch`.
    ///
    /// The lock is a `BEGIN IMMEDIATE` transaction that is always rolled back (the registry is
    /// left byte-for-byte as it was): starts, and every command that changes guests or devices,
    /// wait for each other, so two guests on one unshared LUN cannot start side by side, and a
    /// guest's storage cannot change hands while it starts. `launch` runs inside the lock, after
    /// every check passed.
    ///
    /// - Parameters:
    ///   - isRunning: whether the QEMU of the named guest runs now (asked of the live processes,
    ///     under the lock, for every guest of the registry).
    ///   - launch: starts the guest; what it throws is rethrown as it is.
    /// - Throws: a ``RegistryError`` when the guest does not exist, runs already, is Not Runnable
    ///   or being migrated, or a rule refuses one of its resources (``StorageRules``); otherwise
    ///   whatever `launch` throws.
    ///   - arriving: the online migration bringing the guest here: the guest is then the Not
    ///     Runnable arrival that migration locked (its QEMU starts paused, to receive the stream),
    ///     and every rule of a start applies to its storage as to any other.
    public func start<T>(
        _ name: String, isRunning: (String) -> Bool, arriving migrationID: String? = nil, launch: (GuestStartPlan) throws -> T
    ) throws -> T {
        var launched: Result<T, any Error>?
        try store.rehearse { db in
            guard let guest = try guest(named: name, db) else {
                throw RegistryError(.notFound, "no guest named \(Display.safe(name)).")
            }
            let names = try db.fetchAll(String.self, sql: "SELECT name FROM guest ORDER BY name")
            let running = Set(names.filter(isRunning))
            if running.contains(guest.name) {
                throw RegistryError(.conflict, "guest \(guest.name) is already running; hpvmstatus -P \(guest.name) shows it.")
            }
            if let refusal = StorageRules.startGuard(guest, arriving: migrationID) { throw refusal }
            try rules.refreshExtents(usedBy: running, db)
            var planned: [PlannedResource] = []
            for row in try resourceRows(guest.id, db) {
                let statement = row.statement
                if let refusal = try rules.startRefusal(statement, guest: guest.name, running: running, db) {
                    throw refusal
                }
                guard statement.deviceType != .network else {
                    planned.append(PlannedResource(statement: statement, backingPath: nil, shared: true))
                    continue
                }
                let identity = rules.inventory.identify(statement.location)
                let entry = try DeviceTable.entry(named: statement.location, db)
                planned.append(
                    PlannedResource(
                        statement: statement, backingPath: statement.storage == "null" ? nil : root.real(identity.resolvedPath),
                        shared: entry?.isShared ?? false))
            }
            let plan = GuestStartPlan(guest: guest, resources: planned)
            launched = Result { try launch(plan) }
        }
        guard let launched else { throw RegistryError(.database, "the start of guest \(Display.safe(name)) did not run.") }
        return try launched.get()
    }

    /// The names of every guest, ordered by name.
    public func guestNames() throws(RegistryError) -> [String] {
        try store.read { db in try db.fetchAll(String.self, sql: "SELECT name FROM guest ORDER BY name") }
    }
}
