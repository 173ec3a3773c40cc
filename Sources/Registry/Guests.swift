internal import GRDB
public import Host

/// A guest as the registry records it.
public struct Guest: Sendable, Equatable {
    public let id: Int64
    public let name: String
    public let vmNumber: Int
    public let label: String?
    public let osType: String?
    public let vcpus: Int
    public let memoryMB: Int
    public let runnable: Bool
    public let modifiable: Bool
    public let visible: Bool
    public let statusSetBy: String?
    public let migrationLock: String?
    /// The guest's UUID (nil only in a registry older than migration 0005, read without writing).
    public var uuid: String? = nil
    /// HP's boot attribute: `Auto` (started when the host starts) or `Manual`.
    public var startType: String = "Manual"
    /// The CPU entitlement as given to `-e`/`-E` (`50%`, `50%:80%`, `1200MHz`), or nil for none.
    public var entitlement: String? = nil

    /// `Off`, or `Off (NR)` when the guest is Not Runnable (guests are defined, not run, here).
    public var state: String { runnable ? "Off" : "Off (NR)" }
}

/// A guest with its resources, for `hpvmstatus`.
public struct GuestStatus: Sendable, Equatable {
    public let guest: Guest
    public let resources: [ResourceStatement]
}

/// A guest with the number of its storage devices and networks, for the `hpvmstatus` table.
public struct GuestSummary: Sendable, Equatable {
    public let guest: Guest
    public let devices: Int
    public let networks: Int

    public init(guest: Guest, devices: Int, networks: Int) {
        self.guest = guest
        self.devices = devices
        self.networks = networks
    }
}

/// What `hpvmcreate` makes.
public struct GuestSpec: Sendable, Equatable {
    public var name: String
    public var vcpus: Int = 1
    public var memoryMB: Int = 2048
    public var label: String?
    public var osType: String?
    /// `Auto` or `Manual` (`-B`).
    public var startType: String?
    /// `-e`/`-E`, as ``GuestRules/entitlement(_:cycles:)`` returns it.
    public var entitlement: String?
    public var resources: [ResourceStatement] = []
    /// The guest's UUID when it arrives by migration (a new guest gets a new one).
    public var uuid: String?

    public init(name: String) { self.name = name }
}

/// What locking a guest for migration says about a guest that runs.
public enum RunningGuestPolicy: Sendable {
    /// Offline migration: a running guest is refused.
    case refuse
    /// `-d`: the guest may run; the migration stops it after the checks.
    case allow
    /// Online migration (`-o`): the guest must run.
    case require
}

/// What `hpvmmodify` changes; applied in this order: status, resources out, resources in, the rest.
public struct GuestChange: Sendable, Equatable {
    public var add: [ResourceStatement] = []
    public var delete: [ResourceStatement] = []
    public var modify: [ResourceStatement] = []
    public var vcpus: Int?
    public var memoryMB: Int?
    public var label: String?
    public var osType: String?
    public var newName: String?
    /// `Auto` or `Manual` (`-B`).
    public var startType: String?
    /// `-e`/`-E`, as ``GuestRules/entitlement(_:cycles:)`` returns it.
    public var entitlement: String?
    /// `-x` settings: runnable_status, modify_status, visible_status or register_status.
    public var status: [(String, Bool)] = []
    /// `-x` settings kept as they are given (``GuestRules/setting(_:)``): online_migration and the
    /// migration phase timeouts.
    public var settings: [(String, String)] = []

    public init() {}

    public static func == (lhs: GuestChange, rhs: GuestChange) -> Bool {
        lhs.add == rhs.add && lhs.delete == rhs.delete && lhs.modify == rhs.modify && lhs.vcpus == rhs.vcpus
            && lhs.memoryMB == rhs.memoryMB && lhs.label == rhs.label && lhs.newName == rhs.newName && lhs.osType == rhs.osType
            && lhs.startType == rhs.startType && lhs.entitlement == rhs.entitlement
            && lhs.status.map(\.0) == rhs.status.map(\.0) && lhs.status.map(\.1) == rhs.status.map(\.1)
            && lhs.settings.map(\.0) == rhs.settings.map(\.0) && lhs.settings.map(\.1) == rhs.settings.map(\.1)
    }

    /// Whether the change only re-enables modification, the one change a Not Modify guest accepts.
    var onlyReenables: Bool {
        add.isEmpty && delete.isEmpty && modify.isEmpty && vcpus == nil && memoryMB == nil && label == nil
            && osType == nil && newName == nil && startType == nil && entitlement == nil && settings.isEmpty && !status.isEmpty
            && status.allSatisfy { ($0.0 == "modify_status" || $0.0 == "register_status") && $0.1 }
    }
}

/// What a guest's name, label and OS type may hold.
public enum GuestRules {
    /// 1–64 letters, digits, `_`, `.` and `-`, starting with a letter or digit: no shell
    /// metacharacter, space or control character can reach a script that handles it.
    public static func name(_ raw: String) throws(RegistryError) -> String {
        guard !raw.isEmpty else { throw RegistryError(.badName, "empty guest name.") }
        guard raw.utf8.count <= 64 else {
            throw RegistryError(.badName, "guest name '\(Display.safe(raw, limit: 40))' is \(raw.utf8.count) bytes long (at most 64).")
        }
        let ok = raw.unicodeScalars.enumerated().allSatisfy { index, scalar in
            scalar.isASCII && (CharacterSetLite.isAlnum(scalar) || (index > 0 && "_.-".unicodeScalars.contains(scalar)))
        }
        guard ok else {
            throw RegistryError(
                .badName,
                "guest name '\(Display.safe(raw))' may hold only letters, digits, '_', '.' and '-', starting with a letter or digit.")
        }
        return raw
    }

    /// A label: at most 256 bytes, no control characters and no `:` (it is a field of `hpvmstatus -M`).
    public static func label(_ raw: String) throws(RegistryError) -> String {
        guard raw.utf8.count <= 256 else { throw RegistryError(.badName, "label is \(raw.utf8.count) bytes long (at most 256).") }
        for scalar in raw.unicodeScalars where scalar.value < 0x20 || scalar.value == 0x7F || scalar == ":" || scalar == "\u{FFFD}" {
            throw RegistryError(.badName, "label '\(Display.safe(raw))' contains \(scalar == ":" ? "':'" : "a control character").")
        }
        return raw
    }

    /// An OS type: 1–16 letters, digits or `_` (`hpux`, `linux`, `windows`, `openvms`).
    public static func osType(_ raw: String) throws(RegistryError) -> String {
        guard (1...16).contains(raw.count), raw.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSetLite.isAlnum($0) || $0 == "_") })
        else { throw RegistryError(.badName, "OS type '\(Display.safe(raw))' must be 1-16 letters, digits or '_'.") }
        return raw.uppercased()
    }

    /// HP's boot attribute (`-B`): `auto` or `manual`, in any case; stored as `Auto` or `Manual`.
    public static func startType(_ raw: String) throws(RegistryError) -> String {
        switch raw.lowercased() {
        case "auto": return "Auto"
        case "manual": return "Manual"
        default: throw RegistryError(.badSpec, "-B '\(Display.safe(raw))': expected auto or manual.")
        }
    }

    /// CPU entitlement: `-e percent[:max_percent]` (1–100) or `-E cycles[:max_cycles]` (MHz,
    /// 1–1000000), the maximum not below the minimum. Stored as `50%`, `50%:80%`, `1200MHz`.
    public static func entitlement(_ raw: String, cycles: Bool) throws(RegistryError) -> String {
        let option = cycles ? "-E" : "-e"
        let unit = cycles ? "MHz" : "%"
        let limit = cycles ? 1_000_000 : 100
        let parts = raw.split(separator: ":", omittingEmptySubsequences: false)
        let values = parts.map { part in
            part.count <= 7 && part.allSatisfy({ $0.isASCII && $0.isNumber }) ? Int(part) : nil
        }
        guard (1...2).contains(parts.count), values.allSatisfy({ $0.map { (1...limit).contains($0) } ?? false }),
            values.count == 1 || values[1]! >= values[0]!
        else {
            throw RegistryError(
                .badSpec,
                "\(option) '\(Display.safe(raw))': expected \(cycles ? "cycles[:max_cycles] in MHz" : "percent[:max_percent]"), whole numbers from 1 to \(limit), the maximum not below the minimum.")
        }
        return values.map { "\($0!)\(unit)" }.joined(separator: ":")
    }

    /// The `-x` keywords stored as they are given (the status switches are handled apart), with
    /// what each takes: `online_migration` and the online migration's phase timeouts (seconds;
    /// 0 is no limit).
    public static let keptSettings: [String: String] = [
        "online_migration": "enabled|disabled",
        "migrate_init_phase_timeout": "seconds",
        "migrate_copy_phase_timeout": "seconds",
        "migrate_io_quiesce_phase_timeout": "seconds",
        "migrate_frozen_phase_timeout": "seconds",
    ]

    /// One kept `-x keyword=value`, checked; nil when the keyword is not one of ``keptSettings``.
    public static func setting(_ key: String, _ value: String) throws(RegistryError) -> (String, String)? {
        guard let kind = keptSettings[key] else { return nil }
        if kind == "seconds" {
            guard value.count <= 7, !value.isEmpty, value.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int(value) else {
                throw RegistryError(.badSpec, "-x \(key)='\(Display.safe(value))': expected a whole number of seconds (0 for no limit).")
            }
            return (key, String(seconds))
        }
        guard value == "enabled" || value == "disabled" else {
            throw RegistryError(.badSpec, "-x \(key)='\(Display.safe(value))': expected enabled or disabled.")
        }
        return (key, value)
    }

    /// Virtual CPUs: 1–128.
    public static func vcpus(_ raw: String) throws(RegistryError) -> Int {
        guard raw.count <= 4, raw.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(raw), (1...128).contains(value) else {
            throw RegistryError(.badSpec, "number of vCPUs '\(Display.safe(raw))' must be a whole number from 1 to 128.")
        }
        return value
    }

    /// Memory: a whole number followed by `M` or `G` (a bare number is megabytes), 32 MB to 4 TB.
    public static func memory(_ raw: String) throws(RegistryError) -> Int {
        var digits = Substring(raw)
        var scale = 1
        if let last = raw.last, "MmGg".contains(last) {
            digits = raw.dropLast()
            scale = "Gg".contains(last) ? 1024 : 1
        }
        guard !digits.isEmpty, digits.count <= 8, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits),
            (32...4_194_304).contains(value * scale)
        else {
            throw RegistryError(.badSpec, "memory '\(Display.safe(raw))' must be a whole number followed by M or G, from 32M to 4096G.")
        }
        return value * scale
    }
}

/// Guests and their resources, with the device dependents kept in step: the work of `hpvmcreate`,
/// `hpvmmodify`, `hpvmremove` and `hpvmstatus`.
public struct GuestRegistry: Sendable {
    public let store: RegistryStore
    public let root: HostRoot
    public let audit: AuditContext
    let rules: StorageRules
    /// Whether a guest's QEMU runs now, asked inside the transaction of a change that a running
    /// guest refuses (``StorageRules/runningRefusal(_:_:)``). The commands give the runtime's
    /// answer; where none is given, no guest runs.
    public var isRunning: @Sendable (String) -> Bool = { _ in false }

    public init(store: RegistryStore, root: HostRoot, audit: AuditContext) {
        self.store = store
        self.root = root
        self.audit = audit
        self.rules = StorageRules(root: root)
    }

    // MARK: - Create

    /// Creates a guest with its resources in one transaction, with the lowest free VM number.
    @discardableResult
    public func create(_ spec: GuestSpec) throws(RegistryError) -> Guest {
        let name = try GuestRules.name(spec.name)
        return try store.write { db in
            if try DeviceTable.guestExists(db, name) {
                throw RegistryError(.duplicate, "a guest named \(name) already exists.")
            }
            let number = try Self.freeVMNumber(db)
            let now = audit.now()
            try db.run(sql: """
                    INSERT INTO guest (name, vmNumber, label, osType, vcpus, memoryMB, uuid, startType, entitlement, createdAt, updatedAt)
                    VALUES (?, ?, ?, ?, ?, ?, \(M0005AddGuestHPSettings.uuidExpression), ?, ?, ?, ?)
                    """,
                arguments: [name, number, spec.label, spec.osType, spec.vcpus, spec.memoryMB, spec.startType ?? "Manual",
                            spec.entitlement, now, now])
            try AuditLog.append(
                db, audit, action: "create-guest", object: name,
                change: #"{"vmNumber":\#(number),"vcpus":\#(spec.vcpus),"memoryMB":\#(spec.memoryMB),"label":\#(json(spec.label)),"osType":\#(json(spec.osType)),"startType":\#(json(spec.startType)),"entitlement":\#(json(spec.entitlement))}"#)
            var guest = try guest(named: name, db)!
            for statement in spec.resources {
                try attach(statement, to: &guest, db)
            }
            return guest
        }
    }

    /// Creates a guest with no resources (tests and examples).
    @discardableResult
    public func createGuest(name: String) throws(RegistryError) -> Guest {
        try create(GuestSpec(name: name))
    }

    /// The lowest free VM number: the next one when numbers 1…n are all taken (one index look-up),
    /// otherwise the first gap.
    static func freeVMNumber(_ db: Database) throws -> Int {
        // Two statements: max() alone is one look-up in vmNumber's index, count(*) alone counts
        // that index; together they scan the table (5 M instructions for 10,000 guests).
        let top = try db.fetchOne(Int.self, sql: "SELECT coalesce(max(vmNumber), 0) FROM guest") ?? 0
        let count = try db.fetchOne(Int.self, sql: "SELECT count(*) FROM guest") ?? 0
        if count == top { return top + 1 }
        return try db.fetchOne(
            Int.self,
            sql: """
                SELECT min(n) FROM (SELECT 1 AS n UNION ALL SELECT vmNumber + 1 FROM guest) AS c
                WHERE n NOT IN (SELECT vmNumber FROM guest)
                """) ?? top + 1
    }

    // MARK: - Modify

    /// Applies `change` to the guest in one transaction.
    public func modify(_ name: String, _ change: GuestChange) throws(RegistryError) {
        try store.write { db in
            guard var guest = try guest(named: name, db) else {
                throw RegistryError(.notFound, "no guest named \(Display.safe(name)).")
            }
            if let refusal = StorageRules.guardRefusal(guest, onlyReenables: change.onlyReenables) {
                throw refusal
            }
            if !change.delete.isEmpty || !change.modify.isEmpty || change.newName.map({ $0 != name }) == true, isRunning(guest.name) {
                throw StorageRules.runningRefusal(
                    guest.name, change.newName.map { $0 != name } == true ? "rename" : "take a device from or change a device of")
            }
            let now = audit.now()
            for (key, value) in change.status {
                let columns: [String]
                switch key {
                case "runnable_status": columns = ["runnable"]
                case "modify_status": columns = ["modifiable"]
                case "visible_status": columns = ["visible"]
                case "register_status": columns = ["runnable", "modifiable", "visible"]
                default: throw RegistryError(.badSpec, "unknown -x setting '\(Display.safe(key))'.")
                }
                try db.run(sql: "UPDATE guest SET \(columns.map { "\($0) = ?" }.joined(separator: ", ")), statusSetBy = 'Admin', updatedAt = ? WHERE id = ?",
                    arguments: StatementArguments(columns.map { _ in value }) + [now, guest.id])
                try AuditLog.append(db, audit, action: "status", object: name, change: #"{"\#(key)":"\#(value ? "enabled" : "disabled")"}"#)
            }
            guest = try self.guest(named: name, db)!
            for statement in change.delete {
                let row = try findResource(statement, guest: guest, db)
                try detach(row: row.id, location: row.location, guest: guest, db)
            }
            for statement in change.modify {
                guard statement.hasAddress else {
                    throw RegistryError(.badSpec, "-m '\(Display.safe(statement.description))': give the guest address (bus,device,target) of the device to change.")
                }
                let row = try findResource(statement, guest: guest, db, byAddressOnly: true)
                try detach(row: row.id, location: row.location, guest: guest, db)
                try attach(statement, to: &guest, db)
            }
            for statement in change.add {
                try attach(statement, to: &guest, db)
            }
            var sets: [String] = []
            var arguments = StatementArguments()
            if let vcpus = change.vcpus { sets.append("vcpus = ?"); arguments += [vcpus] }
            if let memory = change.memoryMB { sets.append("memoryMB = ?"); arguments += [memory] }
            if let label = change.label { sets.append("label = ?"); arguments += [label] }
            if let osType = change.osType { sets.append("osType = ?"); arguments += [osType] }
            if let startType = change.startType { sets.append("startType = ?"); arguments += [startType] }
            if let entitlement = change.entitlement { sets.append("entitlement = ?"); arguments += [entitlement] }
            for (key, value) in change.settings {
                try db.run(sql: "INSERT OR REPLACE INTO guestSetting (guestId, name, value) VALUES (?, ?, ?)", arguments: [guest.id, key, value])
                try AuditLog.append(db, audit, action: "setting", object: name, change: #"{\#(json(key)):\#(json(value))}"#)
            }
            if let newName = change.newName {
                if newName != name, try DeviceTable.guestExists(db, newName) {
                    throw RegistryError(.duplicate, "cannot rename \(name) to \(newName): a guest of that name exists.")
                }
                sets.append("name = ?")
                arguments += [newName]
                try db.run(sql: "UPDATE dependent SET name = ? WHERE name = ? AND kind = 'guest'", arguments: [newName, name])
            }
            if !sets.isEmpty {
                try db.run(sql: "UPDATE guest SET \(sets.joined(separator: ", ")), updatedAt = ? WHERE id = ?",
                    arguments: arguments + [now, guest.id])
                try AuditLog.append(
                    db, audit, action: "modify-guest", object: name,
                    change: #"{"vcpus":\#(change.vcpus.map(String.init) ?? "null"),"memoryMB":\#(change.memoryMB.map(String.init) ?? "null"),"label":\#(json(change.label)),"osType":\#(json(change.osType)),"name":\#(json(change.newName)),"startType":\#(json(change.startType)),"entitlement":\#(json(change.entitlement))}"#)
            }
        }
    }

    // MARK: - Remove

    /// Removes a guest and, for every resource, its dependent (and the entry, unless PRESERVE=YES).
    ///
    /// - Parameter force: also remove a Not Modify guest (`hpvmremove -F`).
    public func remove(_ name: String, force: Bool = false) throws(RegistryError) {
        try store.write { db in
            guard let guest = try guest(named: name, db) else {
                throw RegistryError(.notFound, "no guest named \(Display.safe(name)).")
            }
            let migratedAway = try StorageRules.migratedAway(guest, db)
            if let refusal = StorageRules.guardRefusal(guest, removing: true, force: force, migratedAway: migratedAway) {
                throw refusal
            }
            if isRunning(guest.name) { throw StorageRules.runningRefusal(guest.name, "remove") }
            for row in try resourceRows(guest.id, db) {
                try detach(row: row.id, location: row.location, guest: guest, db)
            }
            try db.run(sql: "DELETE FROM guest WHERE id = ?", arguments: [guest.id])
            try AuditLog.append(db, audit, action: "remove-guest", object: name, change: #"{"vmNumber":\#(guest.vmNumber),"force":\#(force)}"#)
        }
    }

    // MARK: - Read

    /// The guest named `name`, if any.
    public func guest(named name: String) throws(RegistryError) -> Guest? {
        try store.read { db in try guest(named: name, db) }
    }

    /// The guest with VM number `number`, if any.
    public func guest(number: Int) throws(RegistryError) -> Guest? {
        try store.read { db in
            try db.row(sql: "SELECT * FROM guest WHERE vmNumber = ?", arguments: [number]).map(Self.guest)
        }
    }

    /// Every guest (or the one named) with its resources, ordered by name.
    public func status(_ name: String? = nil) throws(RegistryError) -> [GuestStatus] {
        try store.read { db in
            let guests = try db.rows(sql: "SELECT * FROM guest \(name == nil ? "" : "WHERE name = ?") ORDER BY name",
                arguments: name.map { [$0] } ?? []
            ).map(Self.guest)
            var resources: [Int64: [ResourceStatement]] = [:]
            let cursor = try db.rowCursor(sql: "SELECT * FROM guestResource \(name == nil ? "" : "WHERE guestId = ?") ORDER BY guestId, position",
                arguments: name == nil ? [] : [guests.first?.id ?? -1])
            while let row = try cursor.next() {
                resources[row["guestId"], default: []].append(Self.statement(row))
            }
            return guests.map { GuestStatus(guest: $0, resources: resources[$0.id] ?? []) }
        }
    }

    /// Every guest with the number of its storage devices and networks, ordered by name: what the
    /// `hpvmstatus` table and `-M` need, counted by SQLite.
    public func summaries() throws(RegistryError) -> [GuestSummary] {
        try store.read { db in
            var result: [GuestSummary] = []
            let cursor = try db.rowCursor(
                sql: """
                    SELECT g.*,
                           (SELECT count(*) FROM guestResource r WHERE r.guestId = g.id AND r.deviceType != 'network') AS devices,
                           (SELECT count(*) FROM guestResource r WHERE r.guestId = g.id AND r.deviceType = 'network') AS networks
                    FROM guest g ORDER BY g.name
                    """)
            while let row = try cursor.next() {
                result.append(GuestSummary(guest: Self.guest(row), devices: row["devices"], networks: row["networks"]))
            }
            return result
        }
    }

    /// The guest's `-x keyword=value` settings (online_migration, the phase timeouts), by keyword.
    /// A registry older than migration 0005 has none.
    public func settings(of name: String) throws(RegistryError) -> [String: String] {
        try store.read { db in
            guard try db.tableExists("guestSetting") else { return [:] }
            var result: [String: String] = [:]
            for row in try db.rows(
                sql: "SELECT s.name, s.value FROM guestSetting s JOIN guest g ON g.id = s.guestId WHERE g.name = ?",
                arguments: [name])
            {
                result[row["name"]] = row["value"]
            }
            return result
        }
    }

    /// The guest's resources, in order.
    public func resources(of name: String) throws(RegistryError) -> [ResourceStatement] {
        try status(name).first?.resources ?? []
    }

    // MARK: - Test helpers kept for the device examples

    /// Gives a guest one resource in its own transaction.
    public func attach(_ statement: ResourceStatement, to guestName: String) throws(RegistryError) {
        var change = GuestChange()
        change.add = [statement]
        try modify(guestName, change)
    }

    /// Takes one resource (by location) away from a guest in its own transaction.
    public func detach(location: String, from guestName: String) throws(RegistryError) {
        try store.write { db in
            guard let guest = try guest(named: guestName, db) else {
                throw RegistryError(.notFound, "no guest named \(Display.safe(guestName)).")
            }
            guard let row = try resourceRows(guest.id, db).first(where: { $0.location == location }) else {
                throw RegistryError(.notFound, "guest \(guestName) has no resource on \(Display.safe(location)).")
            }
            try detach(row: row.id, location: location, guest: guest, db)
        }
    }

    // MARK: - Inside a transaction

    struct ResourceRow {
        let id: Int64
        let statement: ResourceStatement
        var location: String { statement.location }
    }

    func guest(named name: String, _ db: Database) throws -> Guest? {
        try db.row(sql: "SELECT * FROM guest WHERE name = ?", arguments: [name]).map(Self.guest)
    }

    static func guest(_ row: Row) -> Guest {
        Guest(
            id: row["id"], name: row["name"], vmNumber: row["vmNumber"], label: row["label"], osType: row["osType"],
            vcpus: row["vcpus"], memoryMB: row["memoryMB"], runnable: row["runnable"], modifiable: row["modifiable"],
            visible: row["visible"], statusSetBy: row["statusSetBy"], migrationLock: row["migrationLock"],
            uuid: row["uuid"], startType: row["startType"] ?? "Manual", entitlement: row["entitlement"])
    }

    static func statement(_ row: Row) -> ResourceStatement {
        ResourceStatement(
            deviceType: ResourceStatement.DeviceType(rawValue: row["deviceType"]) ?? .disk, adapter: row["adapterType"],
            bus: row["bus"], device: row["device"], target: row["target"], mac: row["mac"], storage: row["storageType"],
            location: row["location"])
    }

    func resourceRows(_ guestID: Int64, _ db: Database) throws -> [ResourceRow] {
        try db.rows(sql: "SELECT * FROM guestResource WHERE guestId = ? ORDER BY position", arguments: [guestID]).map {
            ResourceRow(id: $0["id"], statement: Self.statement($0))
        }
    }

    private func findResource(_ statement: ResourceStatement, guest: Guest, _ db: Database, byAddressOnly: Bool = false) throws
        -> ResourceRow
    {
        let rows = try resourceRows(guest.id, db)
        func matches(_ s: ResourceStatement, sameLocation: (String) -> Bool) -> Bool {
            guard s.deviceType == statement.deviceType else { return false }
            if statement.hasAddress {
                let same = s.bus == statement.bus && s.device == statement.device
                    && (statement.deviceType == .network || s.target == statement.target)
                return byAddressOnly ? same : same && sameLocation(s.location)
            }
            return sameLocation(s.location) && s.adapter == statement.adapter
        }
        // The spelling first; then, for storage, the same device or file by another name (StorageRules).
        var match = rows.first { matches($0.statement) { $0 == statement.location } }
        if match == nil, statement.deviceType != .network, !byAddressOnly {
            match = rows.first { matches($0.statement) { rules.sameStorage(statement.location, $0) } }
        }
        guard let match else {
            throw RegistryError(.notFound, "guest \(guest.name) has no resource \(Display.safe(statement.description)).")
        }
        return match
    }

    /// What the rules say about giving `guest` the storage a resource statement names: the claim,
    /// the gdev entry it would join (an entry with one of its names, or the same device), and the
    /// refusal, if any. `attach` and the migration check (``obstacles(for:guest:)``) both ask this,
    /// so they agree by construction.
    func judge(_ statement: ResourceStatement, guest: String, _ db: Database) throws
        -> (claim: StorageRules.Claim, entry: DeviceEntry?, refusal: RegistryError?)
    {
        let location = statement.location
        _ = try NameRules.entryName(location)  // checked here too, not only by the command's parser
        let claim = rules.claim(location)
        let identity = claim.identity
        let action = "cannot give guest \(guest) \(Display.safe(location))"
        guard identity.exists else {
            return (claim, nil, RegistryError(
                .notFound,
                statement.deviceType == .network
                    ? "cannot give guest \(guest) \(Display.safe(statement.description)): no vswitch named \(Display.safe(location)) exists on this host."
                    : "cannot give guest \(guest) \(Display.safe(statement.description)): \(Display.safe(location)) does not exist on this host."))
        }
        guard StorageRules.kinds(forStorage: statement.storage).contains(identity.kind) else {
            return (claim, nil, StorageRules.wrongKind(
                "cannot give guest \(guest) \(Display.safe(statement.description))", location: location, kind: identity.kind,
                storage: statement.storage))
        }
        let named = try DeviceTable.entry(named: location, db)
        if let named, named.type != .gdev {
            if let why = try rules.restriction(of: claim, db) { return (claim, nil, StorageRules.restricted(action, why)) }
            return (claim, nil, RegistryError(.conflict, "\(action): it is \(named.type.rawValue) entry \(Display.safe(named.name))."))
        }
        let entry = try named ?? DeviceTable.sameDevice(as: identity, db).first {
            $0.type == .gdev && $0.identityKey == identity.key(ignoringWWID: $0.ignoreWWID)
        }
        let refusal = try rules.guestRefusal(claim, guest: guest, ownEntry: entry, action: action, db)
        return (claim, entry, refusal)
    }

    /// Every rule of DESIGN.md §4 for one new resource, then the address, the gdev entry, the
    /// dependent and the resource row.
    func attach(_ statement: ResourceStatement, to guest: inout Guest, _ db: Database) throws {
        let location = statement.location
        let (claim, entry, refusal) = try judge(statement, guest: guest.name, db)
        if let refusal { throw refusal }
        let identity = claim.identity
        var entryID: Int64 = 0
        var entryName = location
        var created = ""
        if let existing = entry {
            entryID = existing.id
            entryName = existing.name
            if !existing.names.contains(location) {
                try DeviceTable.addName(db, id: existing.id, name: location)
            }
        } else {
            entryID = try DeviceTable.insert(
                db, type: .gdev, names: [location], identity: identity, extents: claim.extents, ignoreWWID: false,
                attributes: ["SHARE": identity.kind == .vswitch ? "YES" : "NO"], now: audit.now())
            entryName = location
            created = #","created":{"type":"gdev","devType":"\#(identity.kind.rawValue)","wwid":\#(json(identity.wwid?.description)),"device":\#(try DeviceTable.identityJSON(db, id: entryID))}"#
        }
        let placed = try place(statement, guest: guest, db)
        try db.run(sql: "INSERT OR IGNORE INTO dependent (deviceId, name, kind) VALUES (?, ?, 'guest')", arguments: [entryID, guest.name])
        let position = try db.fetchOne(Int.self, sql: "SELECT coalesce(max(position), -1) + 1 FROM guestResource WHERE guestId = ?", arguments: [guest.id]) ?? 0
        try db.run(sql: """
                INSERT INTO guestResource (guestId, position, deviceType, adapterType, bus, device, target, mac, storageType, location)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                guest.id, position, placed.deviceType.rawValue, placed.adapter, placed.bus, placed.device, placed.target,
                placed.mac, placed.storage, location,
            ])
        // One audit row for the attachment and, when the entry is new, its creation.
        try AuditLog.append(
            db, audit, action: "attach", object: entryName,
            change: #"{"guest":\#(json(guest.name)),"resource":\#(json(placed.description)),"row":\#(try Self.resourceJSON(db, guestID: guest.id, position: position))\#(created)}"#)
    }

    /// The statement with its guest address checked, or assigned when it was left empty.
    ///
    /// Storage on one adapter type shares a slot (bus,device) as targets of one controller; a
    /// network takes a slot of its own. A network without a MAC gets a locally administered one,
    /// unique on this host.
    private func place(_ statement: ResourceStatement, guest: Guest, _ db: Database) throws -> ResourceStatement {
        var placed = statement
        let others = try resourceRows(guest.id, db).map(\.statement)
        let ranges = ResourceStatement.ranges(adapter: statement.adapter)
        func slotOwner(_ bus: Int, _ device: Int) -> ResourceStatement? {
            others.first { $0.bus == bus && $0.device == device }
        }
        func fits(_ bus: Int, _ device: Int, _ target: Int?) -> String? {
            guard let owner = slotOwner(bus, device) else { return nil }
            if statement.deviceType == .network || owner.deviceType == .network || owner.adapter != statement.adapter {
                return "slot \(bus),\(device) is taken by \(owner.description)"
            }
            if let clash = others.first(where: { $0.bus == bus && $0.device == device && $0.target == target }) {
                return "address \(bus),\(device),\(target ?? 0) is taken by \(clash.description)"
            }
            return nil
        }
        if let bus = statement.bus, let device = statement.device {
            let target = statement.deviceType == .network ? nil : statement.target
            if let why = fits(bus, device, target) {
                throw RegistryError(.conflict, "cannot give guest \(guest.name) \(Display.safe(statement.description)): \(why).")
            }
        } else {
            var found: (Int, Int, Int?)?
            search: for bus in ranges.bus {
                for device in ranges.device {
                    if statement.deviceType == .network {
                        if slotOwner(bus, device) == nil { found = (bus, device, nil); break search }
                    } else {
                        for target in ranges.target where fits(bus, device, target) == nil {
                            found = (bus, device, target)
                            break search
                        }
                    }
                }
            }
            guard let found else {
                throw RegistryError(.conflict, "guest \(guest.name) has no free \(statement.adapter) address left.")
            }
            (placed.bus, placed.device, placed.target) = found
        }
        if statement.deviceType == .network {
            placed.target = nil
            if placed.mac == nil {
                var seed = SHA256.swiftDigest(Array("\(guest.name)/\(guest.vmNumber)/\(placed.bus!)/\(placed.device!)".utf8))
                seed[0] = (seed[0] & 0xFC) | 0x02  // locally administered, unicast
                var candidate = seed.prefix(6).map { String($0, radix: 16).leftPadded(2) }.joined()
                while try db.fetchOne(Bool.self, sql: "SELECT EXISTS (SELECT 1 FROM guestResource WHERE mac = ?)", arguments: [candidate]) ?? false {
                    seed[5] = seed[5] &+ 1
                    candidate = seed.prefix(6).map { String($0, radix: 16).leftPadded(2) }.joined()
                }
                placed.mac = candidate
            } else if let mac = placed.mac,
                let owner = try db.fetchOne(String.self, sql: "SELECT g.name FROM guestResource r JOIN guest g ON g.id = r.guestId WHERE r.mac = ?", arguments: [mac])
            {
                throw RegistryError(.conflict, "cannot give guest \(guest.name) MAC 0x\(mac.uppercased()): guest \(owner) has it.")
            }
        }
        return placed
    }

    /// Removes one resource row; the guest stops being a dependent of the entry once no resource
    /// of it uses the device, and the entry goes with its last dependent unless PRESERVE=YES.
    func detach(row id: Int64, location: String, guest: Guest, _ db: Database) throws {
        let position = try db.fetchOne(Int.self, sql: "SELECT position FROM guestResource WHERE id = ?", arguments: [id]) ?? -1
        try db.run(sql: "DELETE FROM guestResource WHERE id = ?", arguments: [id])
        try AuditLog.append(
            db, audit, action: "detach", object: location, change: #"{"guest":\#(json(guest.name)),"position":\#(position)}"#)
        guard let entry = try DeviceTable.entry(named: location, db) else { return }
        let stillUses = try db.fetchOne(Bool.self, sql: """
                SELECT EXISTS (SELECT 1 FROM guestResource r JOIN deviceName n ON n.name = r.location
                               WHERE r.guestId = ? AND n.deviceId = ?)
                """,
            arguments: [guest.id, entry.id]) ?? false
        guard !stillUses else { return }
        try db.run(sql: "DELETE FROM dependent WHERE deviceId = ? AND name = ?", arguments: [entry.id, guest.name])
        let remaining = entry.dependents.filter { $0 != guest.name }
        if remaining.isEmpty && entry.attributes["PRESERVE"] != "YES" {
            try DeviceTable.delete(db, id: entry.id)
            try AuditLog.append(
                db, audit, action: "delete", object: entry.name,
                change: #"{"type":"gdev","reason":"last dependent removed","names":\#(json(entry.names))}"#)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
