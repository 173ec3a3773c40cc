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

    public init(user: String, command: String, now: @escaping @Sendable () -> String = AuditContext.utcNow) {
        self.user = user
        self.command = command
        self.now = now
    }

    /// The context of the running process: the real user's name and `arguments` quoted for a shell.
    public static func current(arguments: [String]) -> AuditContext {
        var name = "uid \(getuid())"
        if let entry = getpwuid(getuid()), let pwName = entry.pointee.pw_name {
            name = String(cString: pwName)
        }
        return AuditContext(user: name, command: arguments.map(ShellQuote.quote).joined(separator: " "))
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
        let prev = try db.fetchOne(String.self, sql: "SELECT hash FROM auditLog ORDER BY id DESC LIMIT 1") ?? genesis
        let at = context.now()
        let hash = digest(
            prevHash: prev, at: at, user: context.user, command: context.command, action: action, object: object,
            change: change)
        try db.run(sql: """
                INSERT INTO auditLog (at, user, command, action, object, change, prevHash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [at, context.user, context.command, action, object, change, prev, hash])
    }

    /// Appends several changes in order, chained in memory: one look-up of the last hash for all.
    static func append(_ db: Database, _ context: AuditContext, rows: [(action: String, object: String, change: String)]) throws {
        guard !rows.isEmpty else { return }
        var prev = try db.fetchOne(String.self, sql: "SELECT hash FROM auditLog ORDER BY id DESC LIMIT 1") ?? genesis
        for row in rows {
            let at = context.now()
            let hash = digest(
                prevHash: prev, at: at, user: context.user, command: context.command, action: row.action, object: row.object,
                change: row.change)
            try db.run(
                sql: """
                    INSERT INTO auditLog (at, user, command, action, object, change, prevHash, hash)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [at, context.user, context.command, row.action, row.object, row.change, prev, hash])
            prev = hash
        }
    }

    static func digest(
        prevHash: String, at: String, user: String, command: String, action: String, object: String, change: String
    ) -> String {
        // Length-prefixed fields, so no two different rows hash the same text.
        let fields = [prevHash, at, user, command, action, object, change]
        return SHA256.hex(fields.map { "\($0.utf8.count):\($0)" }.joined(separator: "|"))
    }
}

extension RegistryStore {
    /// Every audit row, oldest first.
    public func auditLog() throws(RegistryError) -> [AuditRecord] {
        try read { db in
            try db.rows(sql: "SELECT * FROM auditLog ORDER BY id").map { row in
                AuditRecord(
                    id: row["id"], at: row["at"], user: row["user"], command: row["command"], action: row["action"],
                    object: row["object"], change: row["change"], prevHash: row["prevHash"], hash: row["hash"])
            }
        }
    }

    /// Checks the audit log's hash chain from the first row to the last.
    ///
    /// - Throws: ``RegistryError/Code-swift.struct/tampered`` naming the first row whose
    ///   contents or link no longer match.
    public func verifyAuditLog() throws(RegistryError) {
        var previous = AuditLog.genesis
        for record in try auditLog() {
            guard record.prevHash == previous else {
                throw RegistryError(
                    .tampered,
                    "audit log row \(record.id) does not follow the row before it: rows were removed or reordered.")
            }
            let expected = AuditLog.digest(
                prevHash: record.prevHash, at: record.at, user: record.user, command: record.command,
                action: record.action, object: record.object, change: record.change)
            guard expected == record.hash else {
                throw RegistryError(.tampered, "audit log row \(record.id) was changed after it was written.")
            }
            previous = record.hash
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
