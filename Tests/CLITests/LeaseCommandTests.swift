import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Fleet leases (issue 11): real sanlock daemons, one lease file shared by two host roots, real
/// QEMUs under TCG. Every daemon and QEMU is stopped by its id.
@Suite(.serialized) struct LeaseCommandTests {
    /// A host with guest g1 and a daemon; `lease` is the shared lease file (made on the first host).
    static func host(daemon: SanlockDaemon, lease: String?) throws -> CLIHost {
        let cli = try RuntimeCommandTests.hostWithGuest()
        if let lease {
            try FileManager.default.createDirectory(atPath: cli.root + "/hpvm", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: cli.root + "/hpvm/leases", withDestinationPath: lease)
        } else {
            FileManager.default.createFile(atPath: cli.root + "/hpvm/leases", contents: Data(count: 8 << 20))
        }
        return cli
    }

    func lease(_ cli: CLIHost, _ daemon: SanlockDaemon, _ arguments: String...) throws -> CommandResult {
        try cli.run("hpvmlease", arguments, environment: daemon.environment)
    }

    func start(_ cli: CLIHost, _ daemon: SanlockDaemon) throws -> CommandResult {
        try cli.runtime("hpvmstart", "-P", "g1", "-V", environment: daemon.environment)
    }

    @Test func aGuestRunsOnOneHostOfTheFleetAndMovesOnlyAfterTheDeadOwnersLeaseExpires() throws {
        // Given two hosts A (id 1) and B (id 2), each with its daemon, sharing one lease file
        let daemonA = try SanlockDaemon()
        let daemonB = try SanlockDaemon()
        defer { daemonA.stop(); daemonB.stop() }
        let a = try Self.host(daemon: daemonA, lease: nil)
        let b = try Self.host(daemon: daemonB, lease: a.root + "/hpvm/leases")
        defer { a.stopQEMUs(); b.stopQEMUs() }
        let began = Date()
        let joinedA = try lease(a, daemonA, "-i", "/hpvm/leases", "-H", "1", "-T", "2", "-V")
        #expect(joinedA.status == 0, "\(joinedA.stderr)")
        #expect(joinedA.stdout.contains("initialised the lockspace") && joinedA.stdout.contains("as host 1 (io_timeout 2 s)"))
        print("hpvmlease -i on A (initialise and join): \(String(format: "%.1f", Date().timeIntervalSince(began))) s")
        let joinedB = try lease(b, daemonB, "-i", "/hpvm/leases", "-H", "2", "-T", "2")
        #expect(joinedB.status == 0, "\(joinedB.stderr)")
        // and g1 on both registries, B's edited with sqlite3 to be the same guest (its UUID) and runnable
        let uuid = try #require(try runProcess("/usr/bin/sqlite3", [a.registryPath, "SELECT uuid FROM guest WHERE name = 'g1'"]).lines.first)
        let edited = try runProcess(
            "/usr/bin/sqlite3", [b.registryPath, "UPDATE guest SET uuid = '\(uuid)', runnable = 1 WHERE name = 'g1'"])
        #expect(edited.status == 0, "\(edited.stderr)")
        // When g1 starts on A, its QEMU holds the lease
        let startedA = try start(a, daemonA)
        #expect(startedA.status == 0, "\(startedA.stderr)")
        let pidA = try #require(a.qemuPID("g1"))
        let status = try runProcess("/usr/sbin/sanlock", ["client", "status"], environment: daemonA.environment)
        #expect(status.stdout.contains("guest-\(uuid)") && status.stdout.contains("p \(pidA)"))
        let listed = try lease(a, daemonA, "-l", "--json")
        #expect(listed.stdout.contains(#""ownerHostID":1"#), "\(listed.stdout)")
        // Then B's hpvmstart of the same guest is refused, naming host 1, at once
        let refusedAt = Date()
        let refused = try start(b, daemonB)
        let refusedIn = Date().timeIntervalSince(refusedAt)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("held by host 1, which is alive"), "\(refused.stderr)")
        #expect(b.qemuPID("g1") == nil)
        print("hpvmstart on B refused in \(String(format: "%.0f", refusedIn * 1000)) ms")
        // When host A dies (its daemon killed; its QEMU too, as A's watchdog would have reset A)
        daemonA.kill()
        kill(pidA, SIGKILL)
        let died = Date()
        // Then B starts g1 only once A's lease expired, and said how long it would wait
        var said = ""
        var startedB: CommandResult?
        while Date().timeIntervalSince(died) < 150 {
            let attempt = try start(b, daemonB)
            if attempt.stderr.contains("waiting up to") { said = attempt.stderr }
            if attempt.status == 0 {
                startedB = attempt
                break
            }
            #expect(attempt.stderr.contains("held by host 1"), "\(attempt.stderr)")
            sleep(2)
        }
        let waited = Date().timeIntervalSince(died)
        print("hpvmstart on B succeeded \(String(format: "%.0f", waited)) s after host A died; it said: \(said)")
        #expect(startedB?.status == 0)
        #expect(said.contains("lease is held by host 1, which stopped renewing its host lease; waiting up to"))
        #expect(waited > 30)
        #expect(b.qemuPID("g1") != nil)
        // and hpvmstop ends B's QEMU, which frees the lease
        #expect(try b.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
        #expect(b.qemuPID("g1") == nil)
    }

    @Test func theLeaseStorageIsAnRdevEntryNoGuestCanBeGiven() throws {
        // Given a host that joined with its lease file
        let daemon = try SanlockDaemon()
        defer { daemon.stop() }
        let cli = try Self.host(daemon: daemon, lease: nil)
        #expect(try lease(cli, daemon, "-i", "/hpvm/leases", "-H", "7", "-T", "2").status == 0)
        // Then the lease file is an rdev entry, and a guest is refused it
        #expect(try cli.devmgmt("-l", "rdev:/hpvm/leases").status == 0)
        let refused = try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/leases")
        #expect(refused.status != 0)
        // and hpvmstatus -V says leases are on; a file a guest uses is refused as lease storage
        #expect(try cli.tool("hpvmstatus", "-V").stdout.contains("Fleet leases: on, host 7"))
        FileManager.default.createFile(atPath: cli.root + "/hpvm/disks/g1.img", contents: Data(count: 8 << 20))
        let other = try lease(cli, daemon, "-i", "/hpvm/disks/g1.img", "-H", "7")
        #expect(other.status == 1 && other.stderr.contains("/hpvm/leases"), "\(other.stderr)")
    }

    @Test func withoutSanlockNothingChangesAndStatusSaysLeasesAreOff() throws {
        let cli = try RuntimeCommandTests.hostWithGuest()
        #expect(try cli.tool("hpvmstatus", "-V").stdout.contains("Fleet leases: off"))
        #expect(try cli.tool("hpvmstatus", "-P", "g1", "-V").stdout.contains("Fleet leases: off"))
        #expect(try cli.run("hpvmlease", ["-l"]).stdout.contains("Fleet leases are off"))
        #expect(try cli.runtime("hpvmstart", "-P", "g1").status == 0)
        #expect(cli.qemuPID("g1") != nil)
        #expect(try cli.runtime("hpvmstop", "-P", "g1", "-F", "-Q").status == 0)
    }

    @Test(arguments: [
        (["-i", "relative/leases", "-H", "1"], "must be absolute"),
        (["-i", "/hpvm/leases", "-H", "0"], "-H 0"),
        (["-i", "/hpvm/leases", "-H", "2001"], "-H 2001"),
        (["-i", "/hpvm/leases", "-H", "abc"], "abc"),
        (["-i", "/hpvm/leases", "-H", "99999999999999999999999"], "-H"),
        (["-i", "/hpvm/lea\u{1B}[2Jses", "-H", "1"], "control character"),
        (["-i", "/" + String(repeating: "x", count: 5000), "-H", "1"], "5001 bytes"),
        (["-i", "/hpvm/../etc/leases", "-H", "1"], "'..'"),
        (["-i", "/hpvm/leases", "-H", "1", "-T", "0"], "-T 0"),
        (["-i", "/hpvm/leases"], "-i needs -H"),
        (["-l", "-i", "/hpvm/leases"], "not both"),
        (["--json"], "--json goes with -l"),
    ])
    func badInputIsRefusedAndChangesNothing(arguments: [String], named: String) throws {
        let cli = try RuntimeCommandTests.hostWithGuest()
        let before = try cli.registryBytes()
        let result = try cli.run("hpvmlease", arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(named), "\(result.stderr)")
        #expect(!result.stderr.contains("\u{1B}"))
        #expect(result.stderr.utf8.count < 2000)
        #expect(try cli.registryBytes() == before)
    }
}
