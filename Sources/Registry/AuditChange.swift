internal import GRDB

/// What audit rows record beyond their action, so that `hpvmaudit verify` can replay them: the
/// device row's columns that come from the host (they cannot be recomputed from the log), and a
/// guest resource row as stored.
extension DeviceTable {
    /// The device row's host-derived columns as a JSON object (`"device":{…}` in an audit change).
    static func identityJSON(_ db: Database, id: Int64) throws -> String {
        guard let row = try db.row(
            sql: """
                SELECT devType, exist, wwid, identityKey, containerKey, transport, resolvedPath, ignoreWWID
                FROM device WHERE id = ?
                """,
            arguments: [id])
        else { return "null" }
        let exist: Bool = row["exist"]
        let ignore: Bool = row["ignoreWWID"]
        return "{" + [
            #""devType":\#(json(row["devType"] as String?))"#,
            #""exist":\#(exist)"#,
            #""wwid":\#(json(row["wwid"] as String?))"#,
            #""identityKey":\#(json(row["identityKey"] as String?))"#,
            #""containerKey":\#(json(row["containerKey"] as String?))"#,
            #""transport":\#(json(row["transport"] as String?))"#,
            #""resolvedPath":\#(json(row["resolvedPath"] as String?))"#,
            #""ignoreWWID":\#(ignore)"#,
        ].joined(separator: ",") + "}"
    }

    /// The entry's id by one of its names.
    static func id(named name: String, _ db: Database) throws -> Int64? {
        try db.fetchOne(Int64.self, sql: "SELECT deviceId FROM deviceName WHERE name = ?", arguments: [name])
    }
}

extension GuestRegistry {
    /// A guestResource row as stored, as a JSON object (`"row":{…}` in an attach row).
    static func resourceJSON(_ db: Database, guestID: Int64, position: Int) throws -> String {
        guard let row = try db.row(
            sql: "SELECT * FROM guestResource WHERE guestId = ? AND position = ?", arguments: [guestID, position])
        else { return "null" }
        func int(_ name: String) -> String { (row[name] as Int64?).map(String.init) ?? "null" }
        return "{" + [
            #""position":\#(position)"#,
            #""deviceType":\#(json(row["deviceType"] as String?))"#,
            #""adapterType":\#(json(row["adapterType"] as String?))"#,
            #""bus":\#(int("bus"))"#, #""device":\#(int("device"))"#, #""target":\#(int("target"))"#,
            #""mac":\#(json(row["mac"] as String?))"#,
            #""storageType":\#(json(row["storageType"] as String?))"#,
            #""location":\#(json(row["location"] as String?))"#,
        ].joined(separator: ",") + "}"
    }
}
