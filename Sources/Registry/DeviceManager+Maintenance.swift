internal import GRDB
internal import Host
#if canImport(Glibc)
internal import Glibc
#endif

extension DeviceManager {
    /// What `-I` found and changed.
    public struct RescanReport: Sendable, Equatable {
        public var checked = 0
        public var existChanged: [String] = []
        public var wwidsRecorded: [String] = []
        /// Entries whose path now reports another WWID than the one recorded (left for `-r`).
        public var wwidMismatches: [String] = []
        public var aliasesAdded: [String] = []
        public var aliasesRemoved: [String] = []
        /// Paths that reach an entry's LUN but cannot be named on a command line (a udev `by-path`
        /// name holds `:`): not recorded as aliases; the rules know the LUN by its WWID anyway.
        public var skippedNames: [String] = []

        public init() {}
    }

    /// Rescans the host and refreshes every entry's EXIST, DEVTYPE, WWID and aliases.
    ///
    /// A WWID is recorded when the entry had none; a WWID that changed is *not* overwritten —
    /// the path now reaches another LUN, and silently following it could hand a guest the wrong
    /// disk — but reported, and `-r` writes the repair. Aliases: every `/dev` path reaching the
    /// entry's WWID is added; aliases that are gone or reach another device are removed unless a
    /// guest resource names them.
    public func rescan() throws(RegistryError) -> RescanReport {
        let scan = rules.inventory.scan()
        let byWWID = scan.pathsByWWID()
        return try store.write { db in
            var report = RescanReport()
            let now = audit.now()
            var taken = Set(try db.fetchAll(String.self, sql: "SELECT name FROM deviceName"))
            try rules.ready(db)
            var recorded: [Int64: Set<String>] = [:]
            for row in try db.rows(sql: "SELECT deviceId, role, unit, part FROM deviceExtent") {
                let role: String = row["role"], unit: String = row["unit"], part: Int = row["part"]
                recorded[row["deviceId"], default: []].insert("\(role) \(unit) \(part)")
            }
            let mounts = rules.mounts
            var auditRows: [(String, String, String)] = []
            for entry in try DeviceTable.entries(db) {
                report.checked += 1
                let identity = rules.inventory.identify(entry.name, scan: scan)
                var changes: [String] = []
                var wwid = entry.wwid
                if identity.exists, let found = identity.wwid, !entry.ignoreWWID {
                    if wwid == nil {
                        wwid = found
                        report.wwidsRecorded.append(entry.name)
                        changes.append(#""wwid":\#(json(found.description))"#)
                    } else if wwid != found {
                        report.wwidMismatches.append(
                            "\(Display.safe(entry.name)) now reaches WWID \(found), the registry has \(wwid!); run hpvmdevmgmt -r")
                    }
                }
                let mismatch = identity.exists && identity.wwid != nil && wwid != nil && identity.wwid != wwid
                    && !entry.ignoreWWID
                if identity.exists != entry.exists {
                    report.existChanged.append(entry.name)
                    changes.append(#""EXIST":"\#(identity.exists ? "YES" : "NO")""#)
                }
                let key = wwid.map { entry.ignoreWWID ? identity.key(ignoringWWID: true) : "wwid:" + $0.normalized }
                    ?? identity.key(ignoringWWID: entry.ignoreWWID)
                let unchanged = entry.exists && entry.devType == identity.kind && entry.wwid == wwid && entry.identityKey == key
                    && entry.containerKey == identity.containerKey && entry.transport == identity.transport?.rawValue
                    && entry.resolvedPath == identity.resolvedPath
                var deviceChanged = false
                if identity.exists && !mismatch && !unchanged {
                    deviceChanged = true
                    try db.run(sql: """
                            UPDATE device SET devType = ?, exist = 1, wwid = ?, identityKey = ?, containerKey = ?,
                                              transport = ?, resolvedPath = ? WHERE id = ?
                            """,
                        arguments: [
                            identity.kind.rawValue, wwid?.normalized, key, identity.containerKey,
                            identity.transport?.rawValue, identity.resolvedPath, entry.id,
                        ])
                }
                if identity.exists && !mismatch {
                    // The storage it occupies, as the host has it now (an LV moved, a file replaced).
                    let extents = rules.inventory.extents(of: identity, mounts: mounts, scan: scan)
                    if Self.rows(extents) != recorded[entry.id] ?? [] {
                        try DeviceTable.setExtents(db, id: entry.id, extents)
                    }
                }
                if !identity.exists && entry.exists {
                    deviceChanged = true
                    try db.run(sql: "UPDATE device SET exist = 0 WHERE id = ?", arguments: [entry.id])
                }
                // Aliases: one key each for those removed and added, so the change is JSON without repeated keys.
                var names = entry.names
                var removedAliases: [String] = []
                var addedAliases: [String] = []
                for alias in entry.names.dropFirst() {
                    let aliasIdentity = rules.inventory.identify(alias, scan: scan)
                    let same = aliasIdentity.exists
                        && aliasIdentity.key(ignoringWWID: entry.ignoreWWID)
                            == Self.deviceKey(entry, identity: identity, wwid: wwid)
                    if !same, try DeviceTable.guestsUsing(location: alias, db).isEmpty {
                        names.removeAll { $0 == alias }
                        taken.remove(alias)
                        report.aliasesRemoved.append(alias)
                        removedAliases.append(alias)
                    }
                }
                if let wwid, !entry.ignoreWWID, !mismatch {
                    for path in byWWID[wwid] ?? [] where !taken.contains(path) {
                        guard NameRules.isNameable(path) else {
                            if !report.skippedNames.contains(path) { report.skippedNames.append(path) }
                            continue
                        }
                        names.append(path)
                        taken.insert(path)
                        report.aliasesAdded.append(path)
                        addedAliases.append(path)
                    }
                }
                if names != entry.names {
                    if Array(names.prefix(entry.names.count)) == entry.names {
                        // Only new aliases: append them after the existing names.
                        for (offset, name) in names.dropFirst(entry.names.count).enumerated() {
                            try db.run(
                                sql: "INSERT INTO deviceName (deviceId, name, position) VALUES (?, ?, ?)",
                                arguments: [entry.id, name, entry.names.count + offset])
                        }
                    } else {
                        try DeviceTable.setNames(db, id: entry.id, names: names)
                    }
                }
                if !removedAliases.isEmpty { changes.append(#""removedAliases":\#(json(removedAliases))"#) }
                if !addedAliases.isEmpty { changes.append(#""addedAliases":\#(json(addedAliases))"#) }
                if !changes.isEmpty || deviceChanged {
                    // The device's columns as they are now: the replay of the log cannot ask the host.
                    changes.append(#""device":\#(try DeviceTable.identityJSON(db, id: entry.id))"#)
                    try DeviceTable.touch(db, id: entry.id, now: now)
                    auditRows.append(("rescan", entry.name, "{" + changes.joined(separator: ",") + "}"))
                }
            }
            try AuditLog.append(db, audit, rows: auditRows)
            return report
        }
    }

    /// Extents as the rows `deviceExtent` holds, for comparing.
    static func rows(_ extents: StorageExtents) -> Set<String> {
        var rows = Set(extents.blocks.map { "block \($0.unit) \($0.part)" })
        rows.formUnion(extents.container.map { "container \($0.unit) \($0.part)" })
        if let file = extents.file { rows.insert("file \(file.description) 0") }
        return rows
    }

    /// The key an entry's names must share: the recorded WWID's, else the primary name's device.
    static func deviceKey(_ entry: DeviceEntry, identity: StorageIdentity, wwid: WWID?) -> String {
        if let wwid, !entry.ignoreWWID { return "wwid:" + wwid.normalized }
        return identity.exists ? identity.key(ignoringWWID: entry.ignoreWWID) : entry.identityKey
    }

    /// A POSIX shell script of `hpvmdevmgmt` commands that repairs what is inconsistent now.
    ///
    /// It removes dependents that name no guest, aliases that are gone or reach another device,
    /// and entries whose device is gone; it follows a LUN that moved to another path with `-n`;
    /// what needs a person (a used device that is gone) becomes a comment. Every value is
    /// single-quoted, and the script pins `HPVM_ROOT` to the root it was made for.
    public func repairScript() throws(RegistryError) -> String {
        let scan = rules.inventory.scan()
        let byWWID = scan.pathsByWWID()
        // A rehearsal, not a read: the rules may record missing extents, and that is rolled back.
        return try store.rehearse { db in
            let q = ShellQuote.quote
            let lines = [
                "#!/bin/sh",
                "# hpvmdevmgmt repair script, written \(audit.now()) by \(Display.safe(audit.user)).",
                "# Review every line before running it; each command is checked again when it runs.",
                "HPVM_ROOT=\(q(root.path)); export HPVM_ROOT",
            ]
            var repairs: [String] = []
            let names = Set(try db.fetchAll(String.self, sql: "SELECT name FROM deviceName"))
            for entry in try DeviceTable.entries(db) {
                let type = entry.type.rawValue
                for dependent in entry.dependents where !(try DeviceTable.guestExists(db, dependent)) {
                    repairs.append("# \(Display.safe(dependent)) is a dependent of \(Display.safe(entry.name)) but no such guest exists.")
                    repairs.append("hpvmdevmgmt -d \(q("gdev:\(entry.name):depend:\(dependent)"))")
                }
                let identity = rules.inventory.identify(entry.name, scan: scan)
                let wwidChanged = !entry.ignoreWWID && entry.wwid != nil && identity.wwid != nil && identity.wwid != entry.wwid
                for alias in entry.names.dropFirst() {
                    let aliasIdentity = rules.inventory.identify(alias, scan: scan)
                    let same = aliasIdentity.exists
                        && aliasIdentity.key(ignoringWWID: entry.ignoreWWID)
                            == Self.deviceKey(entry, identity: identity, wwid: entry.wwid)
                    if !same && !wwidChanged {
                        repairs.append("# alias \(Display.safe(alias)) of \(Display.safe(entry.name)) is gone or reaches another device.")
                        repairs.append("hpvmdevmgmt -d \(q("gdev_alias:\(alias)"))")
                    }
                }
                guard !identity.exists || wwidChanged else { continue }
                let why = identity.exists
                    ? "now reaches WWID \(identity.wwid!), not \(entry.wwid!)"
                    : "no longer exists"
                // Where did the LUN go? A live alias first, then any free path with its WWID.
                var moved: String?
                if let wwid = entry.wwid, !entry.ignoreWWID {
                    moved = entry.names.dropFirst().first { rules.inventory.identify($0, scan: scan).wwid == wwid }
                        ?? (byWWID[wwid] ?? []).first { !names.contains($0) }
                }
                if let moved, type == "gdev" || type == "rdev" {
                    repairs.append("# \(type) entry \(Display.safe(entry.name)) \(why); its LUN is reachable as \(Display.safe(moved)).")
                    repairs.append("hpvmdevmgmt -n \(q("\(type):\(entry.name):\(moved)"))")
                } else if entry.dependents.isEmpty {
                    repairs.append("# \(type) entry \(Display.safe(entry.name)) \(why) and nothing depends on it.")
                    repairs.append("hpvmdevmgmt -d \(q("\(type):\(entry.name)"))")
                } else {
                    repairs.append(
                        "# MANUAL: \(type) entry \(Display.safe(entry.name)) \(why) and is used by \(Display.list(entry.dependents, separator: ", ")).")
                    repairs.append("#   give it its replacement with: hpvmdevmgmt -n \(q("\(type):\(entry.name):NEW-PATH"))")
                }
            }
            repairs += try promiseViolations(db)
            if repairs.isEmpty { repairs.append("# Nothing to repair.") }
            return (lines + repairs).joined(separator: "\n") + "\n"
        }
    }

    /// What breaks the promise now, as comments for a person (which guest keeps a device is
    /// theirs to decide), with the command that would fix the rest: guests on storage the host
    /// keeps or uses, guests overlapping without SHARE=YES on every claim, and dependents out of
    /// step with the guests' resources — also in a registry edited by hand.
    func promiseViolations(_ db: Database) throws -> [String] {
        let q = ShellQuote.quote
        var lines: [String] = []
        for entry in try DeviceTable.entries(db, where: "d.type = 'gdev'") {
            // Dependents that no resource of their guest backs, and resources without their dependent.
            for dependent in entry.dependents where try DeviceTable.guestExists(db, dependent) {
                if try rules.dependentRefusal(entry: entry, dependent: dependent, db) == nil {
                    lines.append("# \(Display.safe(dependent)) is a dependent of \(Display.safe(entry.name)) but has no resource on it.")
                    lines.append("hpvmdevmgmt -d \(q("gdev:\(entry.name):depend:\(dependent)"))")
                }
            }
            let users = try db.fetchAll(
                String.self,
                sql: """
                    SELECT DISTINCT g.name FROM guestResource r JOIN guest g ON g.id = r.guestId
                    WHERE r.location IN (\(DeviceTable.marks(entry.names.count))) ORDER BY g.name
                    """,
                arguments: StatementArguments(entry.names))
            for user in users where !entry.dependents.contains(user) {
                lines.append(
                    "# VIOLATION: guest \(Display.safe(user)) uses \(Display.safe(entry.name)) but is not its dependent; take the device from the guest and give it again (hpvmmodify -P \(Display.safe(user)) -d …, then -a …).")
            }
            let holders = Set(users).union(entry.dependents.filter { (try? DeviceTable.guestExists(db, $0)) == true }).sorted()
            guard !holders.isEmpty, entry.devType != .vswitch else { continue }
            let claim = rules.claim(entry.names[0])
            guard claim.identity.exists else { continue }
            let who = "guest\(holders.count > 1 ? "s" : "") \(Display.list(holders))"
            if let why = try rules.restriction(of: claim, db) {
                lines.append("# VIOLATION: \(who) use\(holders.count > 1 ? "" : "s") \(Display.safe(entry.name)), which is restricted, \(why).")
            }
            if let why = rules.hostUse(of: claim) {
                lines.append("# VIOLATION: \(who) use\(holders.count > 1 ? "" : "s") \(Display.safe(entry.name)), which is \(why).")
            }
            // Each overlapping pair shows from both sides: one line for each entry.
            for guest in holders {
                guard let why = try rules.otherGuests(of: claim, guest: guest, ownEntry: entry, db) else { continue }
                lines.append("# VIOLATION: \(Display.safe(entry.name)) of guest \(Display.safe(guest)) is \(why).")
                break
            }
        }
        if !lines.isEmpty && lines.contains(where: { $0.hasPrefix("# VIOLATION") }) {
            lines.append("# Each VIOLATION needs a person: decide which guest keeps the storage, and take it from the others.")
        }
        return lines
    }

    // MARK: - Files

    /// Parses a `-S` size: a whole number followed by `M` (MiB) or `G` (GiB), upper or lower case.
    public static func parseSize(_ text: String) throws(RegistryError) -> Int64 {
        let shown = Display.safe(text)
        guard let unit = text.last, "MmGg".contains(unit) else {
            throw RegistryError(.badSize, "-S '\(shown)': the size must be a number followed by M or G (for example 512M or 2G).")
        }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            let number = Int64(digits), number > 0
        else {
            throw RegistryError(.badSize, "-S '\(shown)': the size must be a whole number greater than 0 followed by M or G.")
        }
        let shift: Int64 = "Mm".contains(unit) ? 20 : 30
        let (bytes, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow, bytes <= 1 << 50 else {
            throw RegistryError(.badSize, "-S '\(shown)': the size is larger than 1 PiB.")
        }
        return bytes
    }

    /// Creates a fully allocated file of `bytes` bytes to use as a virtual disk (`-S`), and with
    /// `addEntry` (`-A`) records it as a gdev entry with `USAGE=DISK`.
    ///
    /// The file must not exist, its folder must, and it must not be restricted. If recording the
    /// entry fails, the file is removed again.
    public func createFile(path rawPath: String, bytes: Int64, addEntry: Bool) throws(RegistryError) -> Outcome {
        guard rawPath.hasPrefix("/") else {
            throw RegistryError(.badName, "-S '\(Display.safe(rawPath))': give an absolute path.")
        }
        let path = try NameRules.entryName(rawPath)
        guard let (claim, folder, base) = rules.plannedFile(path) else {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            throw RegistryError(.notFound, "cannot create \(Display.safe(path)): folder \(Display.safe(parent.isEmpty ? "/" : parent)) does not exist.")
        }
        var existing = stat()
        if lstat(root.real(claim.identity.resolvedPath), &existing) == 0 || rules.inventory.identify(path).exists {
            throw RegistryError(.duplicate, "\(Display.safe(path)) already exists; hpvmdevmgmt -S never overwrites a file.")
        }
        // Never where a guest could not be given the file: the rules judge the file it would be.
        try store.rehearse { db in
            if let why = try rules.restriction(of: claim, db) {
                throw StorageRules.restricted("cannot create \(Display.safe(path))", why)
            }
        }
        let fd = try HostFiles.create(in: folder, base: base, root: root, shown: path)
        let real = root.real(claim.identity.resolvedPath)
        let rc = posix_fallocate(fd, 0, off_t(bytes))
        close(fd)
        guard rc == 0 else {
            unlink(real)
            throw RegistryError(.io, "cannot allocate \(bytes) bytes for \(Display.safe(path)): \(String(cString: strerror(rc))).")
        }
        var outcome = Outcome(notes: ["created \(Display.safe(path)), \(bytes) bytes."])
        if addEntry {
            do {
                let added = try add(.gdev, path, attribute: AttributeSetting(name: "USAGE", value: "DISK"))
                outcome.notes += added.notes
            } catch {
                unlink(real)
                throw error
            }
        }
        return outcome
    }
}
