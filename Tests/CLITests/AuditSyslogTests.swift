import Foundation
import Glibc
import HPVMTestSupport
import Registry
import Testing

/// A Unix datagram socket the test serves in place of `/dev/log`: the commands find it through
/// `HPVM_AUDIT_SYSLOG_SOCKET`, so no test depends on the machine's own journal.
final class SyslogSocket {
    let folder: String
    let path: String
    private let fd: Int32

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hpvm-syslog-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/log"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    deinit {
        close(fd)
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Every message received so far.
    func messages() -> [String] {
        var result: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n <= 0 { break }
            result.append(String(decoding: buffer.prefix(n), as: UTF8.self))
        }
        return result
    }
}

@Suite struct AuditSyslogTests {
    @Test func eachWriteSendsItsHeadAndVerifyChecksTheExtract() throws {
        // Given a syslog socket the test serves, and twelve commands that write
        let syslog = try SyslogSocket()
        var messages: [String] = []
        let host = try AuditedHost(environment: ["HPVM_AUDIT_SYSLOG_SOCKET": syslog.path]) { messages += syslog.messages() }
        // And a command that only reads, which sends nothing
        #expect(try host.cli.run("hpvmstatus", [], environment: ["HPVM_AUDIT_SYSLOG_SOCKET": syslog.path]).status == 0)
        messages += syslog.messages()
        // Then each write sent one head, as LOG_AUTHPRIV|LOG_NOTICE under the command's name
        #expect(messages.count == 12)
        #expect(messages.allSatisfy { $0.hasPrefix("<\(10 << 3 | 5)>") && $0.contains(" hpvm-audit-head id=") })
        #expect(messages[0].contains(" hpvmdevmgmt[") && messages[3].contains(" hpvmcreate["))
        let head = try host.audit("head").stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":")
        #expect(messages.last?.contains("id=\(head[0]) hash=\(head[1]) ") == true)
        // And verify --from-log finds every logged head in the chain
        let extract = syslog.folder + "/extract.log"
        try messages.joined(separator: "\n").write(toFile: extract, atomically: true, encoding: .utf8)
        let verified = try host.audit("verify", "--from-log", extract)
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("12 logged heads found"))
        // When rows are appended without a command (a forged row, correctly chained)
        let n = host.rowCount
        let last = try host.strings("SELECT hash FROM auditLog WHERE id = \(n)")[0]
        let fields: [String: String?] = [
            "at": "2026-11-28T10:00:00.000Z", "user": "root", "command": "x", "action": "setting", "object": "hostrdev.autorun",
            "change": #"{"value":"NO"}"#, "format": "1",
        ]
        let hash = try host.hash(of: fields, prevHash: last)
        #expect(try host.sqlite(
            "INSERT INTO auditLog (id, at, user, command, action, object, change, prevHash, hash) VALUES (\(n + 1), '2026-11-28T10:00:00.000Z', 'root', 'x', 'setting', 'hostrdev.autorun', '{\"value\":\"NO\"}', '\(last)', '\(hash)')"
        ).status == 0)
        // Then only the logged heads tell
        #expect(try host.audit("verify").status == 0)
        let forged = try host.audit("verify", "--from-log", extract)
        #expect(forged.status == 1)
        #expect(forged.stderr.contains("audit rows \(n + 1) to \(n + 1) are in no head the system log holds"))
        // And cutting rows off is caught the same way
        #expect(try host.sqlite("DROP TRIGGER auditLog_appendOnly_delete; DELETE FROM auditLog WHERE id > \(n - 3)").status == 0)
        let cut = try host.audit("verify", "--from-log", extract)
        #expect(cut.status == 1)
        #expect(cut.stderr.contains("is no longer in the log, which ends at row \(n - 3): rows were cut off"))
        // And an extract with no head of this registry is malformed
        try "Nov 28 nothing here\n".write(toFile: extract, atomically: true, encoding: .utf8)
        #expect(try host.audit("verify", "--from-log", extract).status == 64)
    }

    /// Without `HPVM_AUDIT_SYSLOG_SOCKET` the head goes through syslog(3) to `/dev/log`: here a
    /// private mount namespace gives the command a `/dev` of its own whose `log` is the test's
    /// socket (the machine's `/dev` is never touched).
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs root and unshare"))
    func theSystemLogGetsTheHeadAsText() throws {
        // Given a host and a socket in place of /dev/log
        let syslog = try SyslogSocket()
        let cli = try CLIHost(sanDisks: 1, multipathMaps: 0)
        let script = """
            mkdir -p "$1/dev" && mount --bind /dev "$1/dev" && mount -t tmpfs tmpfs /dev \
              && for n in null zero urandom random; do touch /dev/$n && mount --bind "$1/dev/$n" /dev/$n; done \
              && ln -s "$2" /dev/log && exec "$0" -a rdev:/dev/rdisk/disk1
            """
        // When a command writes
        let result = try runProcess(
            "/usr/bin/unshare", ["--mount", "/bin/sh", "-c", script, binDirectory + "/hpvmdevmgmt", syslog.folder, syslog.path],
            environment: ["HPVM_ROOT": cli.root])
        #expect(result.status == 0, "\(result.stderr)")
        // Then the system log got the new head, as text, under the command's name
        let head = try cli.run("hpvmaudit", ["head"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":")
        let messages = syslog.messages()
        #expect(messages.count == 1, "\(messages)")
        let message = try #require(messages.first)
        #expect(message.hasPrefix("<\(10 << 3 | 5)>") && message.contains(" hpvmdevmgmt["), "\(message)")
        #expect(message.hasSuffix(": hpvm-audit-head id=\(head[0]) hash=\(head[1]) registry=\(cli.registryPath) command=hpvmdevmgmt -a rdev:/dev/rdisk/disk1"), "\(message)")
    }
}
