internal import GRDB
#if canImport(Glibc)
internal import Glibc
#endif

/// What `hpvmaudit verify` found.
public struct AuditReport: Sendable {
    /// The number of audit rows.
    public var rows: Int = 0
    /// The last row's id and hash, nil for an empty log.
    public var head: AuditHead?
    /// Where the log, the kept heads and the tables part, most telling first; empty when intact.
    public var findings: [AuditFinding] = []
    /// The heads taken from a log extract that were checked.
    public var anchoredHeads = 0

    public var isIntact: Bool { findings.isEmpty }
}

/// Which rows `hpvmaudit list` shows.
public struct AuditQuery: Sendable {
    /// Rows at or after this time: an ISO 8601 prefix (`2026-11-28`, `2026-11-28T09:30`).
    public var since: String?
    public var guest: String?
    public var device: String?

    public init(since: String? = nil, guest: String? = nil, device: String? = nil) {
        self.since = since
        self.guest = guest
        self.device = device
    }
}

extension RegistryStore {
    /// The last audit row's id and hash, nil for an empty log.
    public func auditHead() throws(RegistryError) -> AuditHead? {
        try read { db in
            try db.row(sql: "SELECT id, hash FROM auditLog ORDER BY id DESC LIMIT 1").map { AuditHead(id: $0["id"], hash: $0["hash"]) }
        }
    }

    /// Checks the audit log as `hpvmaudit verify` does: the append-only triggers are in place, the
    /// hash chain holds from the first row to the last, every kept head (`heads`, and those in the
    /// syslog extract `logFile`) is still in it, and replaying the log from its first row rebuilds
    /// the device and guest tables exactly.
    ///
    /// - Throws: ``RegistryError/Code-swift.struct/badSpec`` when `logFile` cannot be read or holds
    ///   no head of this registry; other codes when the registry cannot be read.
    public func verifyAudit(heads: [AuditHead] = [], logFile: String? = nil) throws(RegistryError) -> AuditReport {
        var anchors = heads
        var fromLog: [AuditHead] = []
        if let logFile {
            fromLog = try AuditLogExtract.heads(inFile: logFile, registry: path ?? "")
            anchors += fromLog
        }
        return try read { db in
            var report = AuditReport()
            // The whole log is read once: mapping the file saves a copy of every page.
            _ = try? String.fetchOne(db, sql: "PRAGMA mmap_size = 1073741824")
            report.findings += try AuditVerifier.triggerFindings(db)
            // One pass, one row held at a time: the chain, the kept heads, the replay.
            var chain = AuditLog.Chain()
            var chainBroken: AuditFinding?
            var wanted: [Int64: [String]] = [:]
            for head in anchors { wanted[head.id, default: []].append(head.hash) }
            var headFindings: [AuditFinding] = []
            var replay = AuditReplay()
            var replayFailure: AuditFinding?
            var last: AuditRecord?
            try AuditLog.forEachRecord(db) { record in
                report.rows += 1
                if chainBroken == nil { chainBroken = chain.check(record) }
                if let hashes = wanted.removeValue(forKey: record.id) {
                    for hash in hashes where hash != record.hash {
                        headFindings.append(AuditFinding(
                            row: record.id,
                            message: "audit row \(record.id) has hash \(record.hash), not the kept head's \(hash): the log was rewritten up to that row."))
                    }
                }
                if replayFailure == nil {
                    do { try replay.apply(record) } catch {
                        replayFailure = AuditFinding(row: record.id, message: (error as? AuditReplay.ReplayError)?.message ?? "\(error)")
                    }
                }
                last = record
            }
            report.head = last.map { AuditHead(id: $0.id, hash: $0.hash) }
            if let chainBroken { report.findings.append(chainBroken) }
            for (id, hashes) in wanted.sorted(by: { $0.key < $1.key }) {
                for hash in hashes {
                    headFindings.append(AuditFinding(
                        row: id,
                        message: "the kept head \(AuditHead(id: id, hash: hash)) is no longer in the log, which ends at row \(last?.id ?? 0): rows were cut off."))
                }
            }
            report.findings += headFindings.sorted { $0.row < $1.row }
            if logFile != nil {
                report.anchoredHeads = fromLog.count
                let newest = fromLog.map(\.id).max() ?? 0
                if let last, last.id > newest {
                    report.findings.append(AuditFinding(
                        row: newest + 1,
                        message: "audit rows \(newest + 1) to \(last.id) are in no head the system log holds: they were written without a command, or the log was cut and rewritten."))
                }
            }
            if let replayFailure {
                report.findings.append(replayFailure)
            } else {
                report.findings += try replay.compare(db)
            }
            return report
        }
    }

    /// The audit rows a query selects, oldest first.
    public func auditEntries(_ query: AuditQuery) throws(RegistryError) -> [AuditRecord] {
        try read { db in
            var clauses: [String] = []
            var arguments = StatementArguments()
            if let since = query.since {
                clauses.append("at >= ?")
                arguments += [since]
            }
            if let device = query.device {
                // Cheap pre-filter; the exact test reads the change.
                clauses.append("(object = ? OR instr(change, ?) > 0)")
                arguments += [device, json(device).dropFirst().dropLast().description]
            }
            if let guest = query.guest {
                clauses.append("(object = ? OR instr(change, ?) > 0)")
                arguments += [guest, json(guest)]
            }
            let records = try AuditLog.records(db, where: clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), arguments: arguments)
            return records.filter { record in
                let change = try? AuditJSON.parse(record.change)
                if let device = query.device, record.object != device, change?.mentions(device) != true { return false }
                if let guest = query.guest {
                    let guestActions: Set = ["create-guest", "status", "modify-guest", "remove-guest", "migration"]
                    let own = record.object == guest && guestActions.contains(record.action)
                    if !own && change?["guest"]?.string != guest { return false }
                }
                return true
            }
        }
    }
}

extension AuditRecord {
    /// The row as one JSON object, for `hpvmaudit list --json`; `change` is embedded as it is stored.
    public var jsonText: String {
        let fields = [
            "\"id\":\(id)", "\"at\":" + json(at), "\"user\":" + json(user), "\"sudoUser\":" + json(sudoUser),
            "\"loginUID\":" + json(loginUID), "\"command\":" + json(command), "\"action\":" + json(action),
            "\"object\":" + json(object),
            "\"change\":" + ((try? AuditJSON.parse(change)) != nil ? change : json(change)),
            "\"format\":\(format)", "\"prevHash\":" + json(prevHash), "\"hash\":" + json(hash),
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }
}

enum AuditVerifier {
    /// The append-only triggers a registry must have, as a fresh registry has them.
    static let expectedTriggers: [String: String] = {
        guard let queue = try? DatabaseQueue(),
            (try? RegistryMigrator.migrator.migrate(queue)) != nil,
            let rows = try? queue.read({ db in
                try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'auditLog'")
            })
        else { return [:] }
        var result: [String: String] = [:]
        for row in rows { result[row["name"]] = normalized(row["sql"]) }
        return result
    }()

    static func normalized(_ sql: String) -> String {
        sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    static func triggerFindings(_ db: Database) throws -> [AuditFinding] {
        var actual: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'auditLog'") {
            actual[row["name"]] = normalized(row["sql"] ?? "")
        }
        let applied = Set(
            (try? String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")) ?? [])
        var findings: [AuditFinding] = []
        for (name, sql) in expectedTriggers.sorted(by: { $0.key < $1.key }) {
            if name == "auditLog_appendOnly_insert" && !applied.contains(M0004AuditChainTrigger.identifier) { continue }
            guard let found = actual[name] else {
                findings.append(AuditFinding(row: 0, message: "trigger \(name) is missing: the audit log is no longer append-only."))
                continue
            }
            if found != sql {
                findings.append(AuditFinding(row: 0, message: "trigger \(name) was changed: the audit log is no longer append-only."))
            }
        }
        return findings
    }
}

/// Heads in a saved system log extract (`journalctl -t hpvmdevmgmt … > FILE`, or a syslog file).
enum AuditLogExtract {
    static func heads(inFile path: String, registry: String) throws(RegistryError) -> [AuditHead] {
        guard let text = readFile(path) else {
            throw RegistryError(.badSpec, "cannot read the log extract \(Display.safe(path)).")
        }
        let heads = heads(in: text, registry: registry)
        guard !heads.isEmpty else {
            throw RegistryError(
                .badSpec, "the log extract \(Display.safe(path)) holds no \(AuditAnchor.marker) line for the registry \(Display.safe(registry)).")
        }
        return heads
    }

    static func heads(in text: String, registry: String) -> [AuditHead] {
        let wanted = "registry=" + ShellQuote.quote(registry) + " "
        var heads: [AuditHead] = []
        for line in text.split(separator: "\n") {
            guard let range = line.firstRange(of: AuditAnchor.marker + " id=") else { continue }
            let rest = line[range.upperBound...]
            if rest.contains("registry="), !rest.contains(wanted) { continue }
            let fields = rest.split(separator: " ")
            guard fields.count >= 2, let id = Int64(fields[0]), fields[1].hasPrefix("hash=") else { continue }
            heads.append(AuditHead(id: id, hash: String(fields[1].dropFirst(5))))
        }
        return heads
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
            if n < 0 { return nil }
            if n == 0 { break }
            data += buffer.prefix(n)
        }
        return String(decoding: data, as: UTF8.self)
    }
}
