internal import GRDB
internal import Host

/// Low-level reads and writes of device entries, used inside one transaction.
enum DeviceTable {
    /// Every column of an entry, with its names, attributes and dependents as JSON arrays built by
    /// SQLite: a name is a row, never a piece of a joined string, so `,`, `=` or `:` in it are safe.
    static let listingSQL = """
        SELECT d.id, d.type, d.name, d.devType, d.exist, d.wwid, d.identityKey, d.containerKey, d.resolvedPath, d.transport,
               d.ignoreWWID,
               (SELECT json_group_array(name) FROM
                   (SELECT name FROM deviceName WHERE deviceId = d.id ORDER BY position)) AS names,
               (SELECT json_group_array(json_array(name, value)) FROM
                   (SELECT name, value FROM deviceAttribute WHERE deviceId = d.id ORDER BY name)) AS attrs,
               (SELECT json_group_array(name) FROM
                   (SELECT name FROM dependent WHERE deviceId = d.id ORDER BY name)) AS deps
        FROM device d
        """

    /// Entries matching a `WHERE` clause on `device d`, ordered by primary name.
    static func entries(_ db: Database, where clause: String = "1", arguments: StatementArguments = []) throws
        -> [DeviceEntry]
    {
        var result: [DeviceEntry] = []
        let cursor = try db.rowCursor(sql: listingSQL + " WHERE " + clause + " ORDER BY d.name", arguments: arguments)
        while let row = try cursor.next() {
            result.append(entry(row))
        }
        return result
    }

    static func entry(_ row: Row) -> DeviceEntry {
        let primary: String = row["name"]
        let names = JSONStrings.flat(row["names"]).nonEmpty ?? [primary]
        var attributes: [String: String] = [:]
        for pair in JSONStrings.nested(row["attrs"]) where pair.count == 2 {
            attributes[pair[0]] = pair[1]
        }
        let wwid: String? = row["wwid"]
        return DeviceEntry(
            id: row["id"], type: EntryType(rawValue: row["type"]) ?? .gdev,
            names: names,
            devType: DeviceKind(rawValue: row["devType"]) ?? .unknown, exists: row["exist"] as Bool,
            wwid: wwid.flatMap(WWID.init), identityKey: row["identityKey"], containerKey: row["containerKey"],
            resolvedPath: row["resolvedPath"], transport: row["transport"], ignoreWWID: row["ignoreWWID"] as Bool, attributes: attributes,
            dependents: JSONStrings.flat(row["deps"]))
    }

    /// The entry one of whose names is `name`.
    static func entry(named name: String, _ db: Database) throws -> DeviceEntry? {
        // A cheap look-up first: most names are not in the registry.
        guard let id = try db.fetchOne(Int64.self, sql: "SELECT deviceId FROM deviceName WHERE name = ?", arguments: [name])
        else { return nil }
        return try entry(id: id, db)
    }

    static func entry(id: Int64, _ db: Database) throws -> DeviceEntry? {
        try entries(db, where: "d.id = ?", arguments: [id]).first
    }

    /// Entries that are the same device as `identity`, or hold it, or are held by it.
    static func sameDevice(as identity: StorageIdentity, _ db: Database) throws -> [DeviceEntry] {
        let own = Array(Set([identity.key(), identity.key(ignoringWWID: true)]))
        let keys = own + (identity.containerKey.map { [$0] } ?? [])
        let ids = try db.fetchAll(Int64.self, sql: """
                SELECT id FROM device WHERE identityKey IN (\(marks(keys.count)))
                UNION SELECT id FROM device WHERE containerKey IN (\(marks(own.count)))
                """,
            arguments: StatementArguments(keys + own))
        return try entries(ids: ids, db)
    }

    /// The entries with these ids, ordered by primary name.
    static func entries(ids: [Int64], _ db: Database) throws -> [DeviceEntry] {
        guard !ids.isEmpty else { return [] }
        return try entries(db, where: "d.id IN (\(marks(ids.count)))", arguments: StatementArguments(ids))
    }

    static func marks(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ",")
    }

    static func insert(
        _ db: Database, type: EntryType, names: [String], identity: StorageIdentity, extents: StorageExtents,
        ignoreWWID: Bool, attributes: [String: String], now: String
    ) throws -> Int64 {
        try db.run(sql: """
                INSERT INTO device (type, name, devType, exist, wwid, identityKey, containerKey, transport,
                                    resolvedPath, ignoreWWID, createdAt, updatedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                type.rawValue, names[0], identity.kind.rawValue, identity.exists, identity.wwid?.normalized,
                identity.key(ignoringWWID: ignoreWWID), identity.containerKey, identity.transport?.rawValue,
                identity.resolvedPath, ignoreWWID, now, now,
            ])
        let id = db.lastInsertedRowID
        for (position, name) in names.enumerated() {
            try db.run(sql: "INSERT INTO deviceName (deviceId, name, position) VALUES (?, ?, ?)",
                arguments: [id, name, position])
        }
        for (name, value) in attributes {
            try setAttribute(db, id: id, name: name, value: value)
        }
        try setExtents(db, id: id, extents, new: true)
        return id
    }

    /// Records the storage an entry occupies, replacing what was recorded.
    static func setExtents(_ db: Database, id: Int64, _ extents: StorageExtents, new: Bool = false) throws {
        if !new { try db.run(sql: "DELETE FROM deviceExtent WHERE deviceId = ?", arguments: [id]) }
        var rows: [(String, String, Int)] = extents.blocks.sorted().map { ("block", $0.unit, $0.part) }
        rows += extents.container.sorted().map { ("container", $0.unit, $0.part) }
        if let file = extents.file { rows.append(("file", file.description, 0)) }
        for (role, unit, part) in rows {
            try db.run(
                sql: "INSERT OR IGNORE INTO deviceExtent (deviceId, role, unit, part) VALUES (?, ?, ?, ?)",
                arguments: [id, role, unit, part])
        }
    }

    static func setAttribute(_ db: Database, id: Int64, name: String, value: String) throws {
        try db.run(sql: """
                INSERT INTO deviceAttribute (deviceId, name, value) VALUES (?, ?, ?)
                ON CONFLICT (deviceId, name) DO UPDATE SET value = excluded.value
                """,
            arguments: [id, name, value])
    }

    static func removeAttribute(_ db: Database, id: Int64, name: String) throws {
        try db.run(sql: "DELETE FROM deviceAttribute WHERE deviceId = ? AND name = ?", arguments: [id, name])
    }

    static func touch(_ db: Database, id: Int64, now: String) throws {
        try db.run(sql: "UPDATE device SET updatedAt = ? WHERE id = ?", arguments: [now, id])
    }

    static func addName(_ db: Database, id: Int64, name: String) throws {
        let position = try db.fetchOne(Int.self, sql: "SELECT coalesce(max(position), -1) + 1 FROM deviceName WHERE deviceId = ?", arguments: [id]) ?? 1
        try db.run(sql: "INSERT INTO deviceName (deviceId, name, position) VALUES (?, ?, ?)", arguments: [id, name, position])
    }

    /// Replaces an entry's names, keeping `names[0]` as the primary name.
    static func setNames(_ db: Database, id: Int64, names: [String]) throws {
        try db.run(sql: "DELETE FROM deviceName WHERE deviceId = ?", arguments: [id])
        try db.run(sql: "UPDATE device SET name = ? WHERE id = ?", arguments: [names[0], id])
        for (position, name) in names.enumerated() {
            try db.run(sql: "INSERT INTO deviceName (deviceId, name, position) VALUES (?, ?, ?)",
                arguments: [id, name, position])
        }
    }

    static func updateIdentity(
        _ db: Database, id: Int64, identity: StorageIdentity, extents: StorageExtents, ignoreWWID: Bool, now: String
    ) throws {
        try setExtents(db, id: id, extents)
        try db.run(sql: """
                UPDATE device SET devType = ?, exist = ?, wwid = ?, identityKey = ?, containerKey = ?, transport = ?,
                                  resolvedPath = ?, ignoreWWID = ?, updatedAt = ?
                WHERE id = ?
                """,
            arguments: [
                identity.kind.rawValue, identity.exists, identity.wwid?.normalized,
                identity.key(ignoringWWID: ignoreWWID), identity.containerKey, identity.transport?.rawValue,
                identity.resolvedPath, ignoreWWID, now, id,
            ])
    }

    static func delete(_ db: Database, id: Int64) throws {
        try db.run(sql: "DELETE FROM device WHERE id = ?", arguments: [id])
    }

    static func guestExists(_ db: Database, _ name: String) throws -> Bool {
        try db.fetchOne(Bool.self, sql: "SELECT EXISTS (SELECT 1 FROM guest WHERE name = ?)", arguments: [name]) ?? false
    }

    /// Guests whose resource statements name `location`.
    static func guestsUsing(location: String, _ db: Database) throws -> [String] {
        try db.fetchAll(String.self, sql: """
                SELECT DISTINCT g.name FROM guestResource r JOIN guest g ON g.id = r.guestId
                WHERE r.location = ? ORDER BY g.name
                """,
            arguments: [location])
    }
}

/// Reads the JSON arrays of strings that SQLite's `json_group_array` makes (`["a","b"]`, and
/// `[["SHARE","NO"]]` for pairs), with the registry's one JSON reader (``AuditJSON``).
enum JSONStrings {
    /// `["a","b"]` → ["a", "b"]; nil or malformed → [].
    static func flat(_ text: String?) -> [String] {
        guard let text, let value = try? AuditJSON.parse(text) else { return [] }
        return value.strings
    }

    /// `[["a","b"],["c","d"]]` → [["a", "b"], ["c", "d"]].
    static func nested(_ text: String?) -> [[String]] {
        guard let text, let value = try? AuditJSON.parse(text), case let .array(items) = value else { return [] }
        return items.map(\.strings)
    }
}

extension Array {
    /// The array, or nil when it is empty.
    var nonEmpty: [Element]? { isEmpty ? nil : self }
}
