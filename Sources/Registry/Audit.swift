internal import GRDB
#if canImport(Glibc)
internal import Glibc
#endif

/// Who is changing the registry, with which command line, and when: stamped on every audit row.
public struct AuditContext: Sendable {
    /// The login name of the user running the command.
    public let user: String
    /// The command line, as typed (arguments quoted where needed).
    public let command: String
    /// The clock: returns the current time as an ISO 8601 UTC string.
    public let now: @Sendable () -> String
    /// The user who ran the command through `sudo` (`SUDO_USER`), if any.
    public let sudoUser: String?
    /// The login uid the kernel's audit keeps across `su` and `sudo` (`/proc/self/loginuid`), if readable.
    public let loginUID: String?
    /// Where the new head of the log goes after each committed write (the system log, or nowhere).
    public let anchor: AuditAnchor

    public init(
        user: String, command: String, now: @escaping @Sendable () -> String = AuditContext.utcNow,
        sudoUser: String? = nil, loginUID: String? = nil, anchor: AuditAnchor = .none
    ) {
        self.user = user
        self.command = command
        self.now = now
        self.sudoUser = sudoUser
        self.loginUID = loginUID
        self.anchor = anchor
    }

    /// The context of the running process: the real user's name and `arguments` quoted for a
    /// shell, `SUDO_USER`, the login uid, and the system log as the anchor of the log's head.
    public static func current(arguments: [String]) -> AuditContext {
        var name = "uid \(getuid())"
        if let entry = getpwuid(getuid()), let pwName = entry.pointee.pw_name {
            name = String(cString: pwName)
        }
        let sudo = getenv("SUDO_USER").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        let program = arguments.first.map { String($0.split(separator: "/").last ?? Substring($0)) } ?? "hpvm"
        return AuditContext(
            user: name, command: arguments.map(ShellQuote.quote).joined(separator: " "), sudoUser: sudo,
            loginUID: readLoginUID(), anchor: .system(identity: program))
    }

    /// `/proc/self/loginuid` as written there (`4294967295` when no login set it), nil when unreadable.
    static func readLoginUID() -> String? {
        let fd = open("/proc/self/loginuid", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 32) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer.prefix(n).filter { $0 != 0x0A && $0 != 0x20 }, as: UTF8.self)
        return text.isEmpty ? nil : text
    }

    /// The current time, `2026-11-27T10:21:05.123Z`.
    @Sendable public static func utcNow() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}

/// One row of the audit log.
public struct AuditRecord: Sendable, Equatable, Codable {
    public let id: Int64
    public let at: String
    public let user: String
    public let command: String
    public let action: String
    public let object: String
    public let change: String
    public let prevHash: String
    public let hash: String
    /// 1 for rows written before schema migration 0004, 2 after: its hash covers the next two.
    public var format: Int = 1
    public var sudoUser: String? = nil
    public var loginUID: String? = nil
}

/// Quoting for a POSIX shell: safe to paste, never interpreted.
public enum ShellQuote {
    /// `value` unchanged when it holds only harmless characters, otherwise in single quotes.
    public static func quote(_ value: String) -> String {
        let safe = value.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (CharacterSetLite.isAlnum(scalar) || "/_.,:=+-@%".unicodeScalars.contains(scalar))
        }
        if safe && !value.isEmpty { return value }
        var quoted = "'"
        for character in value {
            if character == "'" { quoted += "'\\''" } else { quoted.append(character) }
        }
        return quoted + "'"
    }
}

enum CharacterSetLite {
    static func isAlnum(_ scalar: Unicode.Scalar) -> Bool {
        (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
    }
}

// MARK: - Writing and checking the log

enum AuditLog {
    /// The hash that starts the chain.
    static let genesis = String(repeating: "0", count: 64)

    /// Appends one change, chained to the row before it. Must run inside the command's transaction.
    static func append(
        _ db: Database, _ context: AuditContext, action: String, object: String, change: String
    ) throws {
        try append(db, context, rows: [(action, object, change)])
    }

    /// Appends several changes in order, chained in memory: one look-up of the last row for all.
    ///
    /// Each row takes the next id explicitly (M0004's insert trigger checks it), and after the
    /// transaction commits the new head goes to the context's anchor.
    static func append(_ db: Database, _ context: AuditContext, rows: [(action: String, object: String, change: String)]) throws {
        guard !rows.isEmpty else { return }
        let last = try db.row(sql: "SELECT id, hash FROM auditLog ORDER BY id DESC LIMIT 1")
        var id: Int64 = last?["id"] ?? 0
        var prev: String = last?["hash"] ?? genesis
        for row in rows {
            id += 1
            let at = context.now()
            let hash = digest(
                prevHash: prev, at: at, user: context.user, command: context.command, action: row.action, object: row.object,
                change: row.change, format: 2, sudoUser: context.sudoUser, loginUID: context.loginUID)
            try db.run(
                sql: """
                    INSERT INTO auditLog (id, at, user, command, action, object, change, prevHash, hash, format, sudoUser, loginUID)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 2, ?, ?)
                    """,
                arguments: [id, at, context.user, context.command, row.action, row.object, row.change, prev, hash,
                            context.sudoUser, context.loginUID])
            prev = hash
        }
        let anchor = context.anchor
        guard anchor.isActive else { return }
        let head = AuditHead(id: id, hash: prev)
        let command = context.command
        let path = (try? String.fetchOne(db, sql: "SELECT file FROM pragma_database_list WHERE name = 'main'")) ?? ""
        db.afterNextTransaction(onCommit: { db in
            // Only the transaction's last append sends: the head once per write.
            guard (try? Int64.fetchOne(db, sql: "SELECT max(id) FROM auditLog")) == head.id else { return }
            anchor.send(head: head, registry: path, command: command)
        })
    }

    /// - Parameter fast: hash with libcrypto, for a check of many rows; one row is hashed in Swift.
    static func digest(
        prevHash: String, at: String, user: String, command: String, action: String, object: String, change: String,
        format: Int = 1, sudoUser: String? = nil, loginUID: String? = nil, fast: Bool = false
    ) -> String {
        // Length-prefixed fields joined by '|', so no two different rows hash the same text.
        var text: [UInt8] = []
        text.reserveCapacity(prevHash.utf8.count + at.utf8.count + user.utf8.count + command.utf8.count
            + action.utf8.count + object.utf8.count + change.utf8.count + 96)
        func add(_ field: String, prefix: UInt8? = nil) {
            if !text.isEmpty { text.append(UInt8(ascii: "|")) }
            text += String(field.utf8.count + (prefix == nil ? 0 : 1)).utf8
            text.append(UInt8(ascii: ":"))
            if let prefix { text.append(prefix) }
            text += field.utf8
        }
        for field in [prevHash, at, user, command, action, object, change] { add(field) }
        if format != 1 {
            // Format 2 on: the format and who, a missing value ("n") told apart from an empty one ("s").
            add(String(format))
            if let sudoUser { add(sudoUser, prefix: UInt8(ascii: "s")) } else { add("n") }
            if let loginUID { add(loginUID, prefix: UInt8(ascii: "s")) } else { add("n") }
        }
        return fast ? SHA256.fastHex(text) : SHA256.hex(text)
    }

    /// The digest a record should have (by libcrypto: checks hash many rows).
    static func digest(of record: AuditRecord) -> String {
        digest(
            prevHash: record.prevHash, at: record.at, user: record.user, command: record.command, action: record.action,
            object: record.object, change: record.change, format: record.format, sudoUser: record.sudoUser,
            loginUID: record.loginUID, fast: true)
    }
}

extension RegistryStore {
    /// Every audit row, oldest first.
    public func auditLog() throws(RegistryError) -> [AuditRecord] {
        try read { db in try AuditLog.records(db) }
    }

    /// Checks the audit log's hash chain from the first row to the last.
    ///
    /// - Throws: ``RegistryError/Code-swift.struct/tampered`` naming the first row whose
    ///   contents or link no longer match.
    public func verifyAuditLog() throws(RegistryError) {
        if let broken = AuditLog.chainBreak(try auditLog()) { throw RegistryError(.tampered, broken.message) }
    }
}

extension AuditLog {
    /// Every row, oldest first; a registry from before M0004 (read-only, not migrated) has format 1 rows only.
    static func records(_ db: Database, where clause: String = "1", arguments: StatementArguments = []) throws -> [AuditRecord] {
        var result: [AuditRecord] = []
        try forEachRecord(db, where: clause, arguments: arguments) { result.append($0) }
        return result
    }

    /// Calls `body` with every row, oldest first, holding one row at a time.
    static func forEachRecord(
        _ db: Database, where clause: String = "1", arguments: StatementArguments = [], _ body: (AuditRecord) throws -> Void
    ) throws {
        let hasFormat = try db.columns(in: "auditLog").contains { $0.name == "format" }
        let extra = hasFormat ? ", format, sudoUser, loginUID" : ""
        let cursor = try db.rowCursor(
            sql: "SELECT id, at, user, command, action, object, change, prevHash, hash\(extra) FROM auditLog WHERE \(clause) ORDER BY id",
            arguments: arguments)
        while let row = try cursor.next() {
            var record = AuditRecord(
                id: row[0], at: row[1], user: row[2], command: row[3], action: row[4], object: row[5], change: row[6],
                prevHash: row[7], hash: row[8])
            if hasFormat {
                record.format = row[9]
                record.sudoUser = row[10]
                record.loginUID = row[11]
            }
            try body(record)
        }
    }

    /// The first place the chain breaks, if any: a row that does not follow the one before, or
    /// whose contents no longer give its hash.
    static func chainBreak(_ records: [AuditRecord]) -> AuditFinding? {
        var chain = Chain()
        for record in records {
            if let broken = chain.check(record) { return broken }
        }
        return nil
    }

    /// The chain checked one row at a time.
    struct Chain {
        var previous = AuditLog.genesis
        var expectedID: Int64 = 1

        mutating func check(_ record: AuditRecord) -> AuditFinding? {
            defer {
                previous = record.hash
                expectedID = record.id + 1
            }
            guard record.prevHash == previous else {
                return AuditFinding(
                    row: record.id,
                    message: "audit log row \(record.id) does not follow the row before it: rows were removed, inserted or reordered.")
            }
            guard digest(of: record) == record.hash else {
                return AuditFinding(row: record.id, message: "audit log row \(record.id) was changed after it was written.")
            }
            guard record.id == expectedID else {
                return AuditFinding(
                    row: record.id, message: "audit log row \(record.id) should be row \(expectedID): rows were renumbered.")
            }
            guard record.format == 1 || record.format == 2 else {
                return AuditFinding(row: record.id, message: "audit log row \(record.id) has an unknown format \(record.format).")
            }
            return nil
        }
    }
}

extension RegistryStore {
    /// Appends one audit row for something done outside the registry's tables — host keys that
    /// `hpvmsshsetup` accepted, for example — chained like every other row, in its own transaction.
    public func recordAuditEvent(_ context: AuditContext, action: String, object: String, change: String)
        throws(RegistryError)
    {
        try write { db in try AuditLog.append(db, context, action: action, object: object, change: change) }
    }
}
