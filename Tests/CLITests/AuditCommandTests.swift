import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

/// A registry after a dozen ordinary commands, and the tools an attacker with `sqlite3` has.
final class AuditedHost {
    let cli: CLIHost
    var db: String { cli.registryPath }

    /// - Parameter afterEach: run after every command (a test's syslog socket drains itself there).
    init(environment: [String: String] = [:], afterEach: () -> Void = {}) throws {
        cli = try CLIHost()
        try cli.host.file("/hpvm/disks/g2.img", contents: "disk")
        let commands: [[String]] = [
            ["hpvmdevmgmt", "-a", "rdev:/dev/rdisk/disk1"],
            ["hpvmdevmgmt", "-a", "gdev:/dev/rdisk/disk2"],
            ["hpvmdevmgmt", "-m", "gdev:/dev/rdisk/disk2:attr:SHARE=YES"],
            ["hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk3", "-a", "network:avio_lan::vswitch:vsw1"],
            ["hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2"],
            ["hpvmdevmgmt", "-I"],
            ["hpvmcreate", "-P", "g2", "-c", "2"],
            ["hpvmmodify", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4", "-a", "disk:avio_stor::file:/hpvm/disks/g2.img"],
            ["hpvmmodify", "-P", "g2", "-d", "disk:avio_stor::disk:/dev/rdisk/disk4"],
            ["hpvmdevmgmt", "-a", "gdev:/dev/rdisk/disk5"],
            ["hpvmdevmgmt", "-n", "gdev:/dev/rdisk/disk5:/dev/rdisk/disk6"],
            ["hpvmdevmgmt", "-d", "gdev:/dev/rdisk/disk6"],
        ]
        for command in commands {
            let result = try cli.run(command[0], Array(command.dropFirst()), environment: environment)
            #expect(result.status == 0, "\(command): \(result.stderr)")
            afterEach()
        }
    }

    func audit(_ arguments: String...) throws -> CommandResult { try cli.run("hpvmaudit", arguments) }

    /// Runs SQL with the sqlite3 shell, as an attacker would (writable, no hpvm code).
    @discardableResult
    func sqlite(_ sql: String) throws -> CommandResult { try runProcess("/usr/bin/sqlite3", [db, sql]) }

    func strings(_ sql: String) throws -> [String] {
        try runProcess("/usr/bin/sqlite3", ["-readonly", db, sql]).stdout.split(separator: "\n").map(String.init)
    }

    var rowCount: Int { (try? strings("SELECT count(*) FROM auditLog").first.flatMap { Int($0) }) ?? 0 }

    /// The hash hpvm gives a row, computed apart from hpvm (the attacker's own code): SHA-256 of the
    /// length-prefixed fields, format 2 adding the format and who.
    func digest(_ fields: [String]) throws -> String {
        let text = fields.map { "\($0.utf8.count):\($0)" }.joined(separator: "|")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hpvm-digest-\(UUID().uuidString)")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        return String(try runProcess("/usr/bin/sha256sum", [file.path]).stdout.prefix(64))
    }

    /// Row `id`'s fields as stored: prevHash, at, user, command, action, object, change, format, sudoUser, loginUID.
    func row(_ id: Int) throws -> [String: String?] {
        let out = try runProcess(
            "/usr/bin/sqlite3",
            ["-readonly", "-json", db, "SELECT prevHash, at, user, command, action, object, change, format, sudoUser, loginUID FROM auditLog WHERE id = \(id)"]
        ).stdout
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        var result: [String: String?] = [:]
        for (key, value) in try #require(rows.first) {
            result[key] = value is NSNull ? .some(nil) : "\(value)"
        }
        return result
    }

    func hash(of row: [String: String?], prevHash: String? = nil, user: String? = nil) throws -> String {
        func v(_ key: String) -> String? { row[key] ?? nil }
        var fields = [prevHash ?? v("prevHash")!, v("at")!, user ?? v("user")!, v("command")!, v("action")!, v("object")!, v("change")!]
        if v("format") == "2" {
            fields += ["2", v("sudoUser").map { "s" + $0 } ?? "n", v("loginUID").map { "s" + $0 } ?? "n"]
        }
        return try digest(fields)
    }

    func quoted(_ text: String?) -> String { text.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL" }

    /// Rewrites rows `from`… so the chain holds again (row `from` with `user`), by UPDATE.
    func recompute(from: Int, user: String) throws {
        var prev = try strings("SELECT hash FROM auditLog WHERE id = \(from - 1)").first ?? String(repeating: "0", count: 64)
        for id in from...rowCount {
            let fields = try row(id)
            let name = id == from ? user : (fields["user"] ?? nil)!
            let hash = try hash(of: fields, prevHash: prev, user: name)
            #expect(try sqlite("UPDATE auditLog SET user = \(quoted(name)), prevHash = '\(prev)', hash = '\(hash)' WHERE id = \(id)").status == 0)
            prev = hash
        }
    }
}

@Suite struct AuditCommandTests {
    @Test func anUntouchedRegistryVerifiesAndHeadAndListWork() throws {
        let host = try AuditedHost()
        let verify = try host.audit("verify")
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.contains("audit log intact: \(host.rowCount) rows"))
        let head = try host.audit("head")
        #expect(head.status == 0)
        let kept = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(kept.hasPrefix("\(host.rowCount):") && kept.count == "\(host.rowCount):".count + 64)
        #expect(try host.audit("verify", "--head", kept).status == 0)
        // list, filtered
        let all = try host.audit("list")
        #expect(all.lines.count == host.rowCount)
        let g2 = try host.audit("list", "--guest", "g2").lines
        #expect(g2.contains { $0.contains("\tcreate-guest\tg2\t") })
        #expect(g2.allSatisfy { $0.contains("g2") })
        let disk2 = try host.audit("list", "--device", "/dev/rdisk/disk2").lines.map { $0.split(separator: "\t")[3] }
        #expect(Array(disk2.prefix(3)) == ["add", "modify", "attach"])
        #expect(try host.audit("list", "--since", "2999-01-01").stdout.isEmpty)
        let json = try host.audit("list", "--json", "--device", "/dev/rdisk/disk6")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["action"] as? String } == ["rename", "delete"])
        #expect((rows[0]["change"] as? [String: Any])?["new"] as? [String] == ["/dev/rdisk/disk6"])
    }

    @Test func malformedArgumentsExit64() throws {
        let host = try AuditedHost()
        #expect(try host.audit("verify", "--head", "12").status == 64)
        #expect(try host.audit("verify", "--head", "x:abc").status == 64)
        #expect(try host.audit("list", "--since", "yesterday").status == 64)
        #expect(try host.audit("frobnicate").status == 64)
    }

    @Test func theRescanRowsAreJSONWithoutRepeatedKeys() throws {
        let host = try AuditedHost()
        for change in try host.strings("SELECT change FROM auditLog WHERE action = 'rescan'") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(change.utf8)) as? [String: Any])
            // JSONSerialization keeps one of repeated keys: count them in the text too.
            let keys = change.components(separatedBy: "\":").count - 1
            #expect(keys >= object.count)
            #expect(!change.contains("\"addedAlias\":") && !change.contains("\"removedAlias\":"))
        }
    }

    @Test func whoIsRecordedBesideTheUser() throws {
        let host = try AuditedHost(environment: ["SUDO_USER": "alice"])
        let rows = try host.strings("SELECT DISTINCT coalesce(sudoUser, '-') || '|' || coalesce(loginUID, '-') || '|' || format FROM auditLog")
        let loginUID = (try? String(contentsOfFile: "/proc/self/loginuid", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(rows == ["alice|\(loginUID ?? "-")|2"])
        #expect(try host.audit("verify").status == 0)
        #expect(try host.audit("list").lines.allSatisfy { $0.contains("(sudo alice)") })
    }

    /// The attacks of audit-attacks.md, each followed by `hpvmaudit verify` (with the head kept
    /// before the attack where the attack is truncation or recomputation).
    @Test(arguments: 1...19)
    func attackIsCaught(number: Int) throws {
        let host = try AuditedHost()
        let n = host.rowCount
        #expect(n >= 12)
        let kept = try host.audit("head").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let middle = 3
        /// An attack the triggers stop now: refused, nothing changed, the log still verifies.
        func blocked(_ sql: String) throws {
            let before = try host.cli.registryBytes()
            let result = try host.sqlite(sql)
            #expect(result.status != 0, "attack \(number) was not refused by the triggers")
            #expect(result.stderr.contains("append-only"), "\(result.stderr)")
            #expect(try host.cli.registryBytes() == before)
            #expect(try host.audit("verify").status == 0)
        }
        let dropAll = "DROP TRIGGER auditLog_appendOnly_update; DROP TRIGGER auditLog_appendOnly_delete; DROP TRIGGER auditLog_appendOnly_insert;"
        let columns = "id, at, user, command, action, object, change, prevHash, hash, format, sudoUser, loginUID"
        var expected: String
        var useHead = false
        switch number {
        case 1:
            try blocked("UPDATE auditLog SET user = 'mallory' WHERE id = \(middle)")
            try host.sqlite("\(dropAll) UPDATE auditLog SET user = 'mallory' WHERE id = \(middle)")
            expected = "audit log row \(middle) was changed"
        case 2:
            try blocked("DELETE FROM auditLog WHERE id = \(middle)")
            try host.sqlite("\(dropAll) DELETE FROM auditLog WHERE id = \(middle)")
            expected = "audit log row \(middle + 1) does not follow"
        case 3:
            let upsert = "INSERT INTO auditLog (\(columns)) SELECT \(columns) FROM auditLog WHERE id = \(middle) ON CONFLICT (id) DO UPDATE SET user = 'mallory'"
            try blocked(upsert)
            try host.sqlite("\(dropAll) \(upsert)")
            expected = "audit log row \(middle) was changed"
        case 4:
            let replace = "INSERT OR REPLACE INTO auditLog (\(columns)) SELECT id, at, 'mallory', command, action, object, change, prevHash, hash, format, sudoUser, loginUID FROM auditLog WHERE id = \(middle)"
            try blocked(replace)
            try host.sqlite("\(dropAll) \(replace)")
            expected = "audit log row \(middle) was changed"
        case 5:
            let replace = "INSERT OR REPLACE INTO auditLog (\(columns)) SELECT id, at, 'mallory', command, action, object, change, prevHash, hash, format, sudoUser, loginUID FROM auditLog WHERE id = \(middle)"
            try blocked(replace)
            try host.sqlite(dropAll)
            try host.recompute(from: middle, user: "mallory")
            useHead = true
            expected = "audit row \(n) has hash"
        case 6:
            let stolen = try host.strings("SELECT hash FROM auditLog WHERE id = \(middle)")[0]
            let last = try host.strings("SELECT hash FROM auditLog WHERE id = \(n)")[0]
            let forge = "INSERT OR REPLACE INTO auditLog (id, at, user, command, action, object, change, prevHash, hash) VALUES (\(n + 1), '2026-01-01T00:00:00.000Z', 'mallory', 'x', 'setting', 'x', '{}', '\(last)', '\(stolen)')"
            try blocked(forge)
            try host.sqlite("\(dropAll) \(forge)")
            expected = "audit log row \(middle + 1) does not follow"
        case 7:
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_update; UPDATE auditLog SET change = '{\"attribute\":\"SHARE\",\"value\":\"NO\",\"was\":null}' WHERE id = \(middle)")
            expected = "audit log row \(middle) was changed"
        case 8:
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_update; UPDATE auditLog SET user = 'nobody' WHERE id = \(middle)")
            expected = "audit log row \(middle) was changed"
        case 9:
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_delete; DELETE FROM auditLog WHERE id = \(middle)")
            expected = "audit log row \(middle + 1) does not follow"
        case 10:
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_delete; DELETE FROM auditLog WHERE id = 1")
            expected = "audit log row 2 does not follow"
        case 11:
            try host.sqlite(
                "DROP TRIGGER auditLog_appendOnly_update; UPDATE auditLog SET id = -1 WHERE id = \(middle); UPDATE auditLog SET id = \(middle) WHERE id = \(middle + 1); UPDATE auditLog SET id = \(middle + 1) WHERE id = -1;")
            expected = "audit log row \(middle) does not follow"
        case 12:
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_delete; DELETE FROM auditLog WHERE id > \(n - 5)")
            useHead = true
            expected = "the kept head \(kept) is no longer in the log, which ends at row \(n - 5)"
        case 13:
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_delete; DELETE FROM auditLog")
            useHead = true
            expected = "is no longer in the log, which ends at row 0"
        case 14:
            // A forged row, correctly chained and hashed, saying disk2 is no longer shared.
            let last = try host.strings("SELECT hash FROM auditLog WHERE id = \(n)")[0]
            let change = #"{"attribute":"SHARE","value":"NO","was":"YES"}"#
            let fields: [String: String?] = [
                "at": "2026-11-28T10:00:00.000Z", "user": "root", "command": "hpvmdevmgmt -m gdev:/dev/rdisk/disk2:attr:SHARE=NO",
                "action": "modify", "object": "/dev/rdisk/disk2", "change": change, "format": "2", "sudoUser": String?.none, "loginUID": String?.none,
            ]
            let hash = try host.hash(of: fields, prevHash: last)
            let result = try host.sqlite(
                "INSERT INTO auditLog (\(columns)) VALUES (\(n + 1), '2026-11-28T10:00:00.000Z', 'root', \(host.quoted(fields["command"]!)), 'modify', '/dev/rdisk/disk2', \(host.quoted(change)), '\(last)', '\(hash)', 2, NULL, NULL)")
            #expect(result.status == 0, "\(result.stderr)")
            expected = "attribute SHARE is YES, the log says NO (last changed by audit row \(n + 1))"
        case 15:
            let trigger = try host.strings("SELECT sql FROM sqlite_master WHERE name = 'auditLog_appendOnly_update'").joined(separator: "\n")
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_update")
            try host.recompute(from: 1, user: "mallory")
            #expect(try host.sqlite(trigger + ";").status == 0)
            #expect(try host.cli.run("hpvmaudit", ["verify"]).status == 0)  // without a kept head it holds together
            useHead = true
            expected = "audit row \(n) has hash"
        case 16:
            try host.sqlite(
                "UPDATE deviceAttribute SET value = 'NO' WHERE name = 'SHARE' AND deviceId = (SELECT deviceId FROM deviceName WHERE name = '/dev/rdisk/disk2')")
            expected = "table device: device /dev/rdisk/disk2 (id 2): attribute SHARE is NO, the log says YES"
        case 17:
            let result = try host.sqlite(
                "PRAGMA writable_schema = ON; DELETE FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'auditLog'; PRAGMA writable_schema = OFF;")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try host.sqlite("UPDATE auditLog SET user = 'mallory' WHERE id = \(middle)").status == 0)
            expected = "trigger auditLog_appendOnly_delete is missing"
        case 18:
            let forge = "INSERT INTO auditLog (id, at, user, command, action, object, change, prevHash, hash) VALUES (\(n + 1), '2026-01-01T00:00:00.000Z', 'mallory', 'x', 'setting', 'x', '{}', '\(String(repeating: "1", count: 64))', '\(String(repeating: "2", count: 64))')"
            try blocked(forge)
            try host.sqlite("\(dropAll) \(forge)")
            expected = "audit log row \(n + 1) does not follow"
        default:
            // 19: an attack, then an ordinary command: the command still works, and verify still
            // names the row the attack changed.
            try host.sqlite("DROP TRIGGER auditLog_appendOnly_update; UPDATE auditLog SET user = 'nobody' WHERE id = \(middle)")
            #expect(try host.cli.devmgmt("-a", "gdev:/dev/rdisk/disk7").status == 0)
            expected = "audit log row \(middle) was changed"
        }
        let result = useHead ? try host.audit("verify", "--head", kept) : try host.audit("verify")
        #expect(result.status == 1, "attack \(number) went unnoticed: \(result.stdout)")
        #expect(result.stderr.contains(expected), "attack \(number): \(result.stderr)")
        #expect(result.stderr.hasPrefix("hpvmaudit: "))
    }
}
