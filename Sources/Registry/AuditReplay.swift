internal import GRDB

/// The registry's device and guest tables rebuilt from the audit log alone: each row's recorded
/// change applied, from the first row, to an in-memory model, then the model compared with the
/// tables. Its own code: it shares nothing with the commands that write those tables.
///
/// Replayed: `device` (type, names in order, and the host-derived columns audit rows of format 2
/// record), `deviceName`, `deviceAttribute`, `dependent`, `guest` and `guestResource`. Not
/// replayed: ids and `createdAt`/`updatedAt` (the clock is read apart from the audit row's
/// `at`), and the derived tables `deviceExtent`, `hostSetting`, `migrationJournal` and
/// `autoRdevBackup`.
struct AuditReplay {
    /// The host-derived columns of `device` (format 2 rows record them; format 1 rows did not).
    static let deviceColumns = ["devType", "exist", "wwid", "identityKey", "containerKey", "transport", "resolvedPath", "ignoreWWID"]
    static let guestColumns = [
        "vmNumber", "label", "osType", "vcpus", "memoryMB", "runnable", "modifiable", "visible", "statusSetBy",
        "statusReason", "migrationLock",
    ]
    static let resourceColumns = ["deviceType", "adapterType", "bus", "device", "target", "mac", "storageType", "location"]

    struct Device {
        var type: String
        var names: [String]
        /// Known columns only: a column missing here is not compared.
        var columns: [String: String?] = [:]
        var attributes: [String: String] = [:]
        var dependents: [String: String] = [:]
        var lastRow: Int64
    }

    struct Guest {
        var columns: [String: String?]
        var resources: [Int: [String: String?]] = [:]
        var lastRow: Int64
    }

    struct ReplayError: Error { let message: String }

    var devices: [String: Device] = [:]
    /// Every name (primary or alias) to its entry's primary name.
    var owner: [String: String] = [:]
    var guests: [String: Guest] = [:]
    /// Whether any row predates format 2: its host-derived device columns are then not compared.
    var legacy = false

    // MARK: - Applying rows

    mutating func apply(_ record: AuditRecord) throws(ReplayError) {
        let change: AuditJSON
        do { change = try AuditJSON.parse(record.change) } catch {
            throw ReplayError(message: "audit row \(record.id)'s change is not JSON.")
        }
        if record.format == 1 { legacy = true }
        let row = record.id
        let object = record.object
        func fail(_ why: String) -> ReplayError { ReplayError(message: "audit row \(row) (\(record.action) \(Display.safe(object))) \(why)") }
        func device(_ name: String) throws(ReplayError) -> String {
            guard let primary = owner[name], devices[primary] != nil else {
                throw fail("names entry \(Display.safe(name)), which the rows before it never made or already deleted.")
            }
            return primary
        }
        func guest(_ name: String) throws(ReplayError) -> String {
            if guests[name] == nil {
                // Rows of format 1 made an arriving guest without a row of its own.
                guard record.format == 1 else {
                    throw fail("names guest \(Display.safe(name)), which the rows before it never made or already removed.")
                }
                guests[name] = Guest(columns: [:], lastRow: row)
            }
            return name
        }
        switch record.action {
        case "add":
            guard owner[object] == nil else { throw fail("adds \(Display.safe(object)), which the log already has.") }
            var attributes: [String: String] = [:]
            if let recorded = change["attributes"] {
                for (key, value) in recorded.pairs { attributes[key] = value.column }
            } else if change["AUTORDEV"]?.string == "YES" {
                attributes = ["SHARE": "NO", "AUTORDEV": "YES"]
            }
            var entry = Device(type: change["type"]?.string ?? "gdev", names: [object], attributes: attributes, lastRow: row)
            entry.columns = ["exist": "1", "ignoreWWID": "0"]
            if let kind = change["devType"]?.string { entry.columns["devType"] = kind }
            try setColumns(&entry, change["device"], record)
            insert(entry)
        case "add-alias":
            let primary = try device(object)
            guard let alias = change["alias"]?.string, owner[alias] == nil else { throw fail("adds an alias the log already has.") }
            devices[primary]!.names.append(alias)
            owner[alias] = primary
            for (key, value) in change["attribute"]?.pairs ?? [] { devices[primary]!.attributes[key] = value.column }
            devices[primary]!.lastRow = row
        case "delete":
            remove(try device(object))
        case "delete-dependent":
            let primary = try device(object)
            devices[primary]!.dependents[change["dependent"]?.string ?? ""] = nil
            devices[primary]!.lastRow = row
        case "delete-attribute":
            let primary = try device(object)
            let name = change["attribute"]?.string ?? ""
            if let value = change["value"]?.column {
                devices[primary]!.attributes[name] = value
            } else if name == "SHARE" && change["value"] == nil {
                // Format 1: SHARE falls back to its default.
                let kind = devices[primary]!.columns["devType"] ?? nil
                devices[primary]!.attributes[name] = kind == "VSWITCH" ? "YES" : "NO"
            } else {
                devices[primary]!.attributes[name] = nil
            }
            devices[primary]!.lastRow = row
        case "delete-alias":
            let primary = try device(object)
            guard let alias = change["alias"]?.string, owner[alias] == primary else { throw fail("removes a name the entry does not have.") }
            var entry = devices[primary]!
            remove(primary)
            entry.names.removeAll { $0 == alias }
            entry.lastRow = row
            if entry.names.first != primary { forget(&entry, ["resolvedPath"]) }
            try setColumns(&entry, change["device"], record)
            insert(entry)
        case "modify":
            let primary = try device(object)
            devices[primary]!.attributes[change["attribute"]?.string ?? ""] = change["value"]?.column
            devices[primary]!.lastRow = row
        case "set-ignorewwid", "clear-ignorewwid":
            let primary = try device(object)
            devices[primary]!.columns["ignoreWWID"] = record.action == "set-ignorewwid" ? "1" : "0"
            forget(&devices[primary]!, ["identityKey"])
            try setColumns(&devices[primary]!, change["device"], record)
            devices[primary]!.lastRow = row
        case "rename":
            let old = change["old"]?.strings ?? []
            let new = change["new"]?.strings ?? []
            guard let first = old.first, !new.isEmpty else { throw fail("does not say the old and new names.") }
            let primary = try device(first)
            var entry = devices[primary]!
            remove(primary)
            for name in new where owner[name] != nil { throw fail("gives \(Display.safe(name)), which another entry has.") }
            entry.names = new
            entry.lastRow = row
            forget(&entry, ["devType", "exist", "wwid", "identityKey", "containerKey", "transport", "resolvedPath"])
            try setColumns(&entry, change["device"], record)
            insert(entry)
            for (name, var guest) in guests {
                var touched = false
                for (position, resource) in guest.resources where old.contains((resource["location"] ?? nil) ?? "") {
                    guest.resources[position]!["location"] = new[0]
                    touched = true
                }
                if touched { guest.lastRow = row; guests[name] = guest }
            }
        case "rescan":
            let primary = try device(object)
            var entry = devices[primary]!
            remove(primary)
            let removed = change.all("removedAlias").compactMap(\.string) + (change["removedAliases"]?.strings ?? [])
            let added = change.all("addedAlias").compactMap(\.string) + (change["addedAliases"]?.strings ?? [])
            entry.names.removeAll { removed.contains($0) }
            entry.names += added
            if let exist = change["EXIST"]?.string { entry.columns["exist"] = exist == "YES" ? "1" : "0" }
            if change["device"] == nil { forget(&entry, ["devType", "wwid", "identityKey", "containerKey", "transport", "resolvedPath"]) }
            try setColumns(&entry, change["device"], record)
            entry.lastRow = row
            insert(entry)
        case "create-guest":
            guard guests[object] == nil else { throw fail("creates guest \(Display.safe(object)), which the log already has.") }
            var columns: [String: String?] = [
                "runnable": "1", "modifiable": "1", "visible": "1", "statusSetBy": nil, "statusReason": nil, "migrationLock": nil,
            ]
            for key in ["vmNumber", "vcpus", "memoryMB", "label", "osType", "runnable", "modifiable", "visible", "statusSetBy",
                        "statusReason", "migrationLock"]
            {
                if let value = change[key] { columns[key] = value.column }
            }
            guests[object] = Guest(columns: columns, lastRow: row)
        case "status":
            let name = try guest(object)
            for (key, value) in change.pairs {
                let flag: String? = value.string == "enabled" ? "1" : "0"
                let columns: [String]
                switch key {
                case "runnable_status": columns = ["runnable"]
                case "modify_status": columns = ["modifiable"]
                case "visible_status": columns = ["visible"]
                case "register_status": columns = ["runnable", "modifiable", "visible"]
                default: throw fail("sets an unknown status \(Display.safe(key)).")
                }
                for column in columns { guests[name]!.columns[column] = flag }
                guests[name]!.columns["statusSetBy"] = "Admin"
            }
            guests[name]!.lastRow = row
        case "modify-guest":
            let name = try guest(object)
            for key in ["vcpus", "memoryMB", "label", "osType"] {
                guard let value = change[key] else {
                    if key == "osType" && record.format == 1 { guests[name]!.columns[key] = nil }  // not recorded
                    continue
                }
                if value != .null { guests[name]!.columns[key] = value.column }
            }
            guests[name]!.lastRow = row
            if let newName = change["name"]?.string, newName != name {
                guard guests[newName] == nil else { throw fail("renames the guest to \(Display.safe(newName)), which the log already has.") }
                guests[newName] = guests.removeValue(forKey: name)
                for (primary, entry) in devices where entry.dependents[name] == "guest" {
                    devices[primary]!.dependents[name] = nil
                    devices[primary]!.dependents[newName] = "guest"
                }
            }
        case "remove-guest":
            guard guests.removeValue(forKey: try guest(object)) != nil else { break }
        case "attach":
            let name = try guest(change["guest"]?.string ?? "")
            var resource: [String: String?] = [:]
            let next = (guests[name]!.resources.keys.max() ?? -1) + 1
            if let recorded = change["row"] {
                for column in Self.resourceColumns { resource[column] = recorded[column]?.column }
                if let position = recorded["position"]?.column.flatMap({ Int($0) }), position != next {
                    throw fail("puts the resource at position \(position), where the rows before it leave \(next).")
                }
            } else {
                guard let text = change["resource"]?.string, let statement = try? ResourceStatement.parse(text) else {
                    throw fail("records no resource.")
                }
                resource = [
                    "deviceType": statement.deviceType.rawValue, "adapterType": statement.adapter,
                    "bus": statement.bus.map(String.init), "device": statement.device.map(String.init),
                    "target": statement.target.map(String.init), "mac": statement.mac, "storageType": statement.storage,
                    "location": statement.location,
                ]
            }
            guests[name]!.resources[next] = resource
            guests[name]!.lastRow = row
            let location = (resource["location"] ?? nil) ?? ""
            let primary: String
            if let created = change["created"] {
                guard owner[location] == nil else { throw fail("creates an entry for \(Display.safe(location)), which the log already has.") }
                var entry = Device(type: "gdev", names: [location], lastRow: row)
                entry.columns = ["exist": "1", "ignoreWWID": "0"]
                if let kind = created["devType"]?.string { entry.columns["devType"] = kind }
                try setColumns(&entry, created["device"], record)
                let kind = entry.columns["devType"] ?? nil
                entry.attributes["SHARE"] = kind == "VSWITCH" ? "YES" : "NO"
                insert(entry)
                primary = location
            } else {
                primary = try device(object)
                if owner[location] == nil {
                    devices[primary]!.names.append(location)
                    owner[location] = primary
                }
            }
            if devices[primary]!.dependents[name] == nil { devices[primary]!.dependents[name] = "guest" }
            devices[primary]!.lastRow = row
        case "detach":
            let name = try guest(change["guest"]?.string ?? "")
            let resources = guests[name]!.resources
            let position = change["position"]?.column.flatMap { Int($0) }
                ?? resources.keys.sorted().first { (resources[$0]!["location"] ?? nil) == object }
            guard let position, let resource = resources[position], (resource["location"] ?? nil) == object else {
                throw fail("takes away a resource guest \(Display.safe(name)) does not have.")
            }
            guests[name]!.resources[position] = nil
            guests[name]!.lastRow = row
            if let primary = owner[object], let entry = devices[primary] {
                let stillUses = guests[name]!.resources.values.contains { entry.names.contains(($0["location"] ?? nil) ?? "") }
                if !stillUses {
                    devices[primary]!.dependents[name] = nil
                    devices[primary]!.lastRow = row
                }
            }
        case "release-copy":
            let primary = try device(object)
            let name = change["guest"]?.string ?? ""
            let entry = devices[primary]!
            devices[primary]!.dependents[name] = nil
            devices[primary]!.lastRow = row
            if Array(entry.dependents.keys) == [name] && entry.attributes["PRESERVE"] != "YES" { remove(primary) }
        case "migration":
            try migration(record, change, fail: fail)
        case "setting", "ssh-host-key":
            break  // hostSetting is not replayed; a trusted host key (hpvmsshsetup) changes no table
        default:
            throw fail("has an action the replay does not know.")
        }
    }

    private mutating func migration(_ record: AuditRecord, _ change: AuditJSON, fail: (String) -> ReplayError) throws(ReplayError) {
        let name = record.object
        let id = change["migration"]?.string
        let phase = change["phase"]?.string ?? ""
        let role = change["role"]?.string ?? ""
        if role == "target" && phase == "copy-claimed" {
            guard let location = change["location"]?.string else {
                guard record.format == 1 else { throw fail("does not say which destination it claimed.") }
                return
            }
            let primary: String
            if let created = change["created"] {
                guard owner[location] == nil else { throw fail("creates an entry for \(Display.safe(location)), which the log already has.") }
                var entry = Device(type: "gdev", names: [location], attributes: ["SHARE": "NO"], lastRow: record.id)
                entry.columns = ["exist": "1", "ignoreWWID": "0"]
                try setColumns(&entry, created["device"], record)
                insert(entry)
                primary = location
            } else {
                let named = change["entry"]?.string ?? location
                guard let found = owner[named], devices[found] != nil else {
                    throw fail("claims entry \(Display.safe(named)), which the rows before it never made.")
                }
                primary = found
                if owner[location] == nil {
                    devices[primary]!.names.append(location)
                    owner[location] = primary
                }
            }
            if devices[primary]!.dependents[name] == nil { devices[primary]!.dependents[name] = "guest" }
            devices[primary]!.lastRow = record.id
            return
        }
        guard guests[name] != nil else {
            // A migration row about a guest that is not (or no longer) here changes no guest.
            return
        }
        var columns = guests[name]!.columns
        switch (role, phase) {
        case ("source", "preparing"):
            columns["migrationLock"] = id
        case ("source", "source-disabled"):
            columns["runnable"] = "0"; columns["modifiable"] = "0"; columns["visible"] = "0"
            columns["statusSetBy"] = "Migrate"
            columns["statusReason"] = "migrated to \(change["peer"]?.string ?? "")"
        case ("source", "done"), ("source", "aborted"), ("source", "aborting"):
            if let lock = columns["migrationLock"], lock != id { break }
            columns["migrationLock"] = .some(nil)
        case ("target", "prepared") where change["returning"] != nil:
            // The return trip: the Not Runnable copy here takes the arriving guest's place.
            columns["runnable"] = "0"; columns["modifiable"] = "0"; columns["visible"] = "0"
            columns["statusSetBy"] = "Migrate"
            columns["statusReason"] = "returning from \(change["peer"]?.string ?? "")"
            columns["migrationLock"] = id
        case ("target", "committed"):
            columns["runnable"] = "1"; columns["modifiable"] = "1"; columns["visible"] = "1"
            columns["statusSetBy"] = "Migrate"
            columns["statusReason"] = .some(nil)
            columns["migrationLock"] = .some(nil)
        default:
            return
        }
        guests[name]!.columns = columns
        guests[name]!.lastRow = record.id
    }

    private func setColumns(_ entry: inout Device, _ recorded: AuditJSON?, _ record: AuditRecord) throws(ReplayError) {
        guard let recorded, recorded != .null else { return }
        for column in Self.deviceColumns {
            guard let value = recorded[column] else {
                throw ReplayError(message: "audit row \(record.id) records the device without its \(column).")
            }
            entry.columns[column] = value.column
        }
    }

    private func forget(_ entry: inout Device, _ columns: [String]) {
        for column in columns { entry.columns.removeValue(forKey: column) }
    }

    private mutating func insert(_ entry: Device) {
        devices[entry.names[0]] = entry
        for name in entry.names { owner[name] = entry.names[0] }
    }

    private mutating func remove(_ primary: String) {
        guard let entry = devices.removeValue(forKey: primary) else { return }
        for name in entry.names { owner[name] = nil }
    }

    // MARK: - Comparing with the tables

    /// Where the tables and the model part, first by the audit row that last touched the object.
    func compare(_ db: Database) throws -> [AuditFinding] {
        var findings: [AuditFinding] = []
        func column(_ row: Row, _ name: String) -> String? {
            switch row[name] as DatabaseValue? {
            case .none: return nil
            case let .some(value):
                switch value.storage {
                case .null: return nil
                case let .int64(i): return String(i)
                case let .double(d): return String(d)
                case let .string(s): return s
                case let .blob(b): return "x'" + b.map { String($0, radix: 16) }.joined() + "'"
                }
            }
        }
        // Devices.
        var tableDevices: [Int64: Device] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM device") {
            var entry = Device(type: column(row, "type") ?? "", names: [], lastRow: 0)
            for name in Self.deviceColumns { entry.columns[name] = column(row, name) }
            entry.columns["name"] = column(row, "name")
            tableDevices[row["id"]] = entry
        }
        for row in try Row.fetchAll(db, sql: "SELECT deviceId, name FROM deviceName ORDER BY deviceId, position, id") {
            let id: Int64 = row["deviceId"]
            let name: String = row["name"]
            guard tableDevices[id] != nil else {
                findings.append(AuditFinding(row: 0, message: "table deviceName: \(Display.safe(name)) names device id \(id), which does not exist."))
                continue
            }
            tableDevices[id]!.names.append(name)
        }
        for row in try Row.fetchAll(db, sql: "SELECT deviceId, name, value FROM deviceAttribute") {
            let id: Int64 = row["deviceId"]
            guard tableDevices[id] != nil else {
                findings.append(AuditFinding(row: 0, message: "table deviceAttribute: a row for device id \(id), which does not exist."))
                continue
            }
            tableDevices[id]!.attributes[row["name"]] = row["value"]
        }
        for row in try Row.fetchAll(db, sql: "SELECT deviceId, name, kind FROM dependent") {
            let id: Int64 = row["deviceId"]
            guard tableDevices[id] != nil else {
                findings.append(AuditFinding(row: 0, message: "table dependent: a row for device id \(id), which does not exist."))
                continue
            }
            tableDevices[id]!.dependents[row["name"]] = row["kind"]
        }
        var seen: Set<String> = []
        for (id, table) in tableDevices.sorted(by: { $0.key < $1.key }) {
            let primary = (table.columns["name"] ?? nil) ?? ""
            let shown = "device \(Display.safe(primary)) (id \(id))"
            guard let model = devices[primary] else {
                findings.append(AuditFinding(row: 0, message: "table device: \(shown) is in the registry, but no audit row made it (or its rows were removed)."))
                continue
            }
            seen.insert(primary)
            var differences: [String] = []
            if table.type != model.type { differences.append("type is \(table.type), the log says \(model.type)") }
            if table.names != model.names {
                differences.append("names are \(Display.list(table.names, separator: ",")), the log says \(Display.list(model.names, separator: ","))")
            }
            for name in Self.deviceColumns where !(legacy && name != "ignoreWWID") {
                guard let expected = model.columns[name] else { continue }
                let actual = table.columns[name] ?? nil
                if actual != expected {
                    differences.append("\(name) is \(Display.safe(actual ?? "NULL")), the log says \(Display.safe(expected ?? "NULL"))")
                }
            }
            for name in Set(table.attributes.keys).union(model.attributes.keys).sorted() where table.attributes[name] != model.attributes[name] {
                differences.append("attribute \(name) is \(table.attributes[name] ?? "absent"), the log says \(model.attributes[name] ?? "absent")")
            }
            for name in Set(table.dependents.keys).union(model.dependents.keys).sorted() where table.dependents[name] != model.dependents[name] {
                differences.append(
                    "dependent \(Display.safe(name)) is \(table.dependents[name].map { "there (\($0))" } ?? "absent"), the log says \(model.dependents[name].map { "there (\($0))" } ?? "absent")")
            }
            if !differences.isEmpty {
                findings.append(AuditFinding(
                    row: model.lastRow,
                    message: "table device: \(shown): \(differences.joined(separator: "; ")) (last changed by audit row \(model.lastRow))."))
            }
        }
        for (primary, model) in devices where !seen.contains(primary) {
            findings.append(AuditFinding(
                row: model.lastRow,
                message: "table device: \(Display.safe(primary)), which audit row \(model.lastRow) left in the registry, is missing."))
        }
        // Guests and their resources.
        var tableGuests: [Int64: (name: String, guest: Guest)] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM guest") {
            var columns: [String: String?] = [:]
            for name in Self.guestColumns { columns[name] = column(row, name) }
            tableGuests[row["id"]] = (row["name"], Guest(columns: columns, lastRow: 0))
        }
        for row in try Row.fetchAll(db, sql: "SELECT * FROM guestResource") {
            let id: Int64 = row["guestId"]
            guard tableGuests[id] != nil else {
                findings.append(AuditFinding(row: 0, message: "table guestResource: a row for guest id \(id), which does not exist."))
                continue
            }
            var resource: [String: String?] = [:]
            for name in Self.resourceColumns { resource[name] = column(row, name) }
            tableGuests[id]!.guest.resources[row["position"]] = resource
        }
        var seenGuests: Set<String> = []
        for (id, table) in tableGuests.sorted(by: { $0.key < $1.key }) {
            let shown = "guest \(Display.safe(table.name)) (id \(id))"
            guard let model = guests[table.name] else {
                findings.append(AuditFinding(row: 0, message: "table guest: \(shown) is in the registry, but no audit row made it (or its rows were removed)."))
                continue
            }
            seenGuests.insert(table.name)
            var differences: [String] = []
            for name in Self.guestColumns {
                guard let expected = model.columns[name] else { continue }
                let actual = table.guest.columns[name] ?? nil
                if actual != expected {
                    differences.append("\(name) is \(Display.safe(actual ?? "NULL")), the log says \(Display.safe(expected ?? "NULL"))")
                }
            }
            for position in Set(table.guest.resources.keys).union(model.resources.keys).sorted() {
                let actual = table.guest.resources[position]
                let expected = model.resources[position]
                guard actual != expected else { continue }
                func text(_ resource: [String: String?]?) -> String {
                    guard let resource else { return "absent" }
                    return Self.resourceColumns.map { Display.safe((resource[$0] ?? nil) ?? "") }.joined(separator: ":")
                }
                differences.append("resource \(position) is \(text(actual)), the log says \(text(expected))")
            }
            if !differences.isEmpty {
                findings.append(AuditFinding(
                    row: model.lastRow,
                    message: "table guest: \(shown): \(differences.joined(separator: "; ")) (last changed by audit row \(model.lastRow))."))
            }
        }
        for (name, model) in guests where !seenGuests.contains(name) {
            findings.append(AuditFinding(
                row: model.lastRow,
                message: "table guest: \(Display.safe(name)), which audit row \(model.lastRow) left in the registry, is missing."))
        }
        return findings.sorted { ($0.row, $0.message) < ($1.row, $1.message) }
    }
}
