import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 7: a per-phase deadline of silence with SSH keepalives, messages that say what
/// happened and where each host stands, and line reading that is linear and capped at 1 MiB.
@Suite(.requiresRootAndSSHD, .serialized) struct DeadlineTests {
    func ready() throws -> TwoHosts {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        return hosts
    }

    func script(_ hosts: TwoHosts, _ body: String) throws -> String {
        let path = hosts.scratch + "/target.sh"
        try ("#!/bin/sh\nread line\necho '{\"type\":\"hello\",\"version\":1,\"host\":\"b\"}'\nread line\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func timed(_ body: () throws -> TwoHosts.Result) rethrows -> (TwoHosts.Result, Double) {
        let start = Date()
        let result = try body()
        return (result, Date().timeIntervalSince(start))
    }

    @Test func aTargetThatStopsAnsweringIsGivenUpAfterTheDeadline() throws {
        let hosts = try ready()
        let target = try script(hosts, "sleep 20\n")
        let (result, elapsed) = try timed { try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": target, "HPVM_MIGRATE_TIMEOUT": "2"]) }
        #expect(result.status == 1)
        #expect(elapsed < 15, "took \(elapsed) s")  // the target sleeps 20 s; no deadline waited 31 s
        #expect(result.stderr.contains("198.51.100.2 stopped answering: nothing for 2 s"), "\(result.stderr)")
        #expect(result.stderr.contains("Guest g1 stays runnable on this host"))
        #expect(!result.stderr.contains("Make sure ssh is setup right"))
        #expect(try hosts.runnable("A", "g1") == true)
    }

    @Test func theGuestsInitPhaseTimeoutIsTheDeadlineWhenNothingElseSetsOne() throws {
        // Given g1 with migrate_init_phase_timeout=4 (issue 14 row 8), and a target that stops answering
        // (deadlines of a few seconds: the SSH handshake counts against them, and takes over 1 s on a busy CI machine)
        let hosts = try ready()
        #expect(try hosts.on("A", "hpvmmodify", ["-P", "g1", "-x", "migrate_init_phase_timeout=4"]).status == 0)
        let target = try script(hosts, "sleep 20\n")
        // When it is migrated with no --timeout and no HPVM_MIGRATE_TIMEOUT
        let (result, elapsed) = try timed { try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": target]) }
        // Then the guest's own setting is the deadline
        #expect(result.status == 1 && elapsed < 15, "\(elapsed) s: \(result.stderr)")  // the target sleeps 20 s
        #expect(result.stderr.contains("nothing for 4 s"), "\(result.stderr)")
        // and the option still wins over it
        let (forced, _) = try timed { try hosts.migrate("-P", "g1", "--timeout", "2", environment: ["HPVM_REMOTE_COMMAND": target]) }
        #expect(forced.stderr.contains("nothing for 2 s"), "\(forced.stderr)")
    }

    @Test func theOptionOverridesTheEnvironmentAndBadValuesAreUsageErrors() throws {
        let hosts = try ready()
        let target = try script(hosts, "sleep 20\n")
        let (result, elapsed) = try timed {
            try hosts.migrate("-P", "g1", "--timeout", "2", environment: ["HPVM_REMOTE_COMMAND": target, "HPVM_MIGRATE_TIMEOUT": "30"])
        }
        #expect(result.status == 1 && elapsed < 15, "\(elapsed) s: \(result.stderr)")  // the target sleeps 20 s
        #expect(result.stderr.contains("nothing for 2 s"), "\(result.stderr)")
        #expect(try hosts.migrate("-P", "g1", "--timeout", "0").status == 64)
        #expect(try hosts.migrate("-P", "g1", environment: ["HPVM_MIGRATE_TIMEOUT": "soon"]).status == 64)
    }

    @Test func aLostLinkIsNamedAndTheSourceRollsBack() throws {
        let hosts = try ready()
        // The target half cuts its own link after the hello, in its namespace, and says which
        // processes to stop afterwards (its sshd session cannot end over a dead link).
        let pids = hosts.scratch + "/target.pids"
        let target = try script(hosts, "echo $$ $PPID > \(pids)\n/usr/sbin/ip link set vb-\(hosts.tag) down\nexec sleep 30\n")
        let (result, elapsed) = try timed { try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": target, "HPVM_MIGRATE_TIMEOUT": "2"]) }
        for pid in ((try? String(contentsOfFile: pids, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) {
            kill(pid, SIGKILL)
        }
        #expect(result.status == 1)
        #expect(elapsed < 25, "took \(elapsed) s")  // the target sleeps 30 s; a cut link waited 121 s
        #expect(result.stderr.contains("the link to 198.51.100.2 was lost"), "\(result.stderr)")
        #expect(result.stderr.contains("Guest g1 stays runnable on this host"))
        #expect(try hosts.runnable("A", "g1") == true)
    }

    @Test func aHugeLineIsRefusedQuicklyAtOneMebibyte() throws {
        let hosts = try ready()
        let target = try script(hosts, "head -c 100000000 /dev/zero | tr '\\\\000' x\n")
        let (result, elapsed) = try timed { try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": target]) }
        #expect(result.status == 1)
        #expect(elapsed < 20, "took \(elapsed) s")  // the quadratic reader took 52 s
        #expect(result.stderr.contains("a line longer than 1048576 bytes"), "\(result.stderr)")
        #expect(try hosts.runnable("A", "g1") == true)
    }

    @Test func theTargetRefusesAHugeRequestLine() throws {
        // The target half reads its standard input the same way: a 100 MB line is cut at 1 MiB.
        let hosts = try ready()
        let start = Date()
        let result = try TwoHosts.capture(
            "/bin/sh", ["-c", "head -c 100000000 /dev/zero | tr '\\000' x | \(TwoHosts.bin)/hpvmmigrate --target"],
            environment: ["HPVM_ROOT": hosts.rootB.path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(result.stdout.contains("a line longer than 1048576 bytes"), "\(result.stdout)")
    }
}
