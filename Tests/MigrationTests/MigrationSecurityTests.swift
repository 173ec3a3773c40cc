import Foundation
import HPVMTestSupport
import Testing

/// Connection and protocol failures: a clear error, and nothing changed on either host.
@Suite(.requiresRootAndSSHD, .serialized) struct MigrationSecurityTests {
    /// Host A with g1 ready to go: A's guests and devices as the commands show them, and B's
    /// registry bytes, before the attempt.
    func ready() throws -> (TwoHosts, String, Data) {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.on("B", "hpvmdevmgmt", ["-a", "rdev:/dev/rdisk/disk3"]).status == 0)
        return (hosts, try sourceState(hosts), try hosts.registryBytes("B"))
    }

    /// Everything on the source but its journal and audit log, which record the refused attempt.
    func sourceState(_ hosts: TwoHosts) throws -> String {
        try hosts.on("A", "hpvmdevmgmt", ["-l", "all"]).stdout + (try hosts.on("A", "hpvmstatus", ["-M"]).stdout)
            + (try hosts.on("A", "hpvmstatus", ["-P", "g1", "-V"]).stdout)
    }

    func expectNothingChanged(_ hosts: TwoHosts, _ a: String, _ b: Data) throws {
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.runnable("B", "g1") == nil)
        #expect(try sourceState(hosts) == a)
        #expect(a.contains("Migration:            -"))
        #expect(try hosts.registryBytes("B") == b)
    }

    @Test func anUnknownHostKeyIsRefused() throws {
        let (hosts, a, b) = try ready()
        try "".write(toFile: hosts.scratch + "/known_hosts", atomically: true, encoding: .utf8)
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("hpvmmigrate: SSH execution error. Make sure ssh is setup right on both source and target systems.\nhpvmmigrate: Host key verification failed"))
        // the exact hpvmsshsetup command line that fixes it, with this run's key and known_hosts
        #expect(result.stderr.contains(
            "hpvmmigrate: Set up SSH for migration with: hpvmsshsetup -i \(hosts.scratch)/id_ed25519 --known-hosts \(hosts.scratch)/known_hosts 198.51.100.2\n"),
            "\(result.stderr)")
        try expectNothingChanged(hosts, a, b)
    }

    @Test func aWrongKeyIsRefused() throws {
        let (hosts, a, b) = try ready()
        try hosts.run("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hosts.scratch + "/stranger")
        let result = try hosts.migrate("-P", "g1", environment: ["HPVM_SSH_IDENTITY": hosts.scratch + "/stranger"])
        #expect(result.status == 1 && result.stderr.contains("refused the key"))
        #expect(result.stderr.contains("hpvmsshsetup -i \(hosts.scratch)/stranger --known-hosts \(hosts.scratch)/known_hosts 198.51.100.2"))
        try expectNothingChanged(hosts, a, b)
    }

    @Test func aServerThatOnlyOffersPasswordsIsRefused() throws {
        let (hosts, a, b) = try ready()
        var config = try String(contentsOfFile: hosts.scratch + "/sshd_config", encoding: .utf8)
        config = "PubkeyAuthentication no\nPasswordAuthentication yes\n" + config
        hosts.stopSSHD()
        try config.write(toFile: hosts.scratch + "/sshd_config", atomically: true, encoding: .utf8)
        hosts.sshdPID = try TwoHosts.spawn("/usr/sbin/ip", ["netns", "exec", hosts.nsB, "/usr/sbin/sshd", "-D", "-f", hosts.scratch + "/sshd_config", "-E", hosts.scratch + "/sshd2.log"])
        usleep(300_000)
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 1 && result.stderr.contains("offers only password"))
        try expectNothingChanged(hosts, a, b)
    }

    @Test func anUnreachableHostFailsWithinTheTimeout() throws {
        let (hosts, a, b) = try ready()
        hosts.stopSSHD()
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 1 && result.stderr.contains("cannot connect to 198.51.100.2"))
        try expectNothingChanged(hosts, a, b)
    }

    @Test func aTargetThatAnswersGarbageIsRefused() throws {
        let (hosts, a, b) = try ready()
        let script = hosts.scratch + "/garbage.sh"
        try "#!/bin/sh\necho 'HTTP/1.1 400 Bad Request'\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let result = try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": script])
        #expect(result.status == 1 && result.stderr.contains("not hpvmmigrate's protocol"))
        try expectNothingChanged(hosts, a, b)
    }

    @Test func aTargetWithAnOlderProtocolIsRefused() throws {
        let (hosts, a, b) = try ready()
        let script = hosts.scratch + "/old.sh"
        try "#!/bin/sh\nread line\necho '{\"type\":\"hello\",\"version\":0}'\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let result = try hosts.migrate("-P", "g1", environment: ["HPVM_REMOTE_COMMAND": script])
        #expect(result.status == 1 && result.stderr.contains("protocol version 0, this host 1"))
        try expectNothingChanged(hosts, a, b)
    }

    @Test func hostileDeviceNamesMigrateAndNothingRuns() throws {
        let hosts = try TwoHosts()
        let name = "/hpvm/disks/a;$(touch${IFS}/tmp/hpvm-PWNED)'\"`id`.img"
        for root in [hosts.rootA, hosts.rootB] { try root.file(name, contents: "disk") }
        unlink("/tmp/hpvm-PWNED")
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g-1.x", "-r", "1G", "-a", "disk:avio_stor::file:\(name)"]).status == 0)
        let result = try hosts.migrate("-P", "g-1.x")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try hosts.on("B", "hpvmstatus", ["-P", "g-1.x", "-d"]).stdout == "disk:avio_stor:0,0,0:file:\(name)\n")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/hpvm-PWNED"))
    }

    @Test func twoMigrationsAtOnceToOneTargetOfGuestsSharingALUNOneWins() throws {
        // g1 on host A and g2 on a second source host (its own root, in A's namespace) use the same
        // unshared LUN; both migrate to B at the same moment.
        let hosts = try TwoHosts()
        let second = try HostBuilder.temporary(prefix: "hpvm-hostA2")
        defer { second.remove() }
        try HostBuilder.make(at: second, sanDisks: 4)
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2"]).status == 0)
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g2", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2"], environment: ["HPVM_ROOT": second.path]).status == 0)
        let results = Results()
        let group = DispatchGroup()
        for (guest, root) in [("g1", hosts.rootA.path), ("g2", second.path)] {
            group.enter()
            DispatchQueue.global().async {
                let result = try? hosts.on("A", "hpvmmigrate", ["-P", guest, "-h", hosts.addressB], environment: ["HPVM_ROOT": root])
                results.add(guest, result?.status ?? -1, result?.stderr ?? "")
                group.leave()
            }
        }
        group.wait()
        // Then exactly one wins and the other is refused, naming the guest in the way
        let statuses = results.all
        #expect(statuses.filter { $0.1 == 0 }.count == 1, "\(statuses)")
        let loser = try #require(statuses.first { $0.1 != 0 })
        #expect(loser.2.contains("used by") || loser.2.contains("already"), "\(loser.2)")
        let winner = loser.0 == "g1" ? "g2" : "g1"
        #expect(try hosts.runnable("B", winner) == true)
        #expect(try hosts.runnable("B", loser.0) == nil)
    }

    @Test func aGuestBeingMigratedCannotBeModified() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", environment: ["HPVM_FAILPOINT": "source-after-check"]).status != 0)
        let refused = try hosts.on("A", "hpvmmodify", ["-P", "g1", "-c", "2"])
        #expect(refused.status == 1 && refused.stderr.contains("is being migrated"))
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover"]).status == 0)
        #expect(try hosts.on("A", "hpvmmodify", ["-P", "g1", "-c", "2"]).status == 0)
    }

    @Test func recoveryNeverRollsBackAMigrationThatIsStillRunning() throws {
        // Given a migration of g1 that is slow (held after its checks) and still running
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        let pid = try hosts.startMigration(["-P", "g1"], environment: ["HPVM_FAILPOINT": "source-after-check:hold"])
        var stopped = false
        defer {
            if !stopped {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
        }
        var locked = false
        for _ in 0..<100 where !locked {
            usleep(50_000)
            locked = (try? hosts.on("A", "hpvmmodify", ["-P", "g1", "-c", "2"]))?.stderr.contains("is being migrated") == true
        }
        try #require(locked, "the migration did not start")
        // When --recover runs meanwhile, and a second migration is tried
        let recover = try hosts.on("A", "hpvmmigrate", ["--recover"])
        let second = try hosts.migrate("-P", "g1")
        // Then both refuse, naming the process that holds the guest, and nothing changed
        #expect(recover.status == 1 && recover.stderr.contains("still running (process \(pid) (hpvmmigrate))"), "\(recover.stderr)")
        #expect(second.status == 1 && second.stderr.contains("is being migrated by process \(pid)"), "\(second.stderr)")
        #expect(try hosts.on("A", "hpvmmodify", ["-P", "g1", "-c", "2"]).stderr.contains("is being migrated"))
        // When the migration's process dies, the kernel drops its lock and recovery rolls it back
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        stopped = true
        let recovered = try hosts.on("A", "hpvmmigrate", ["--recover"])
        #expect(recovered.status == 0 && recovered.stdout.contains("rolled back"), "\(recovered.stdout)\(recovered.stderr)")
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.runnable("B", "g1") == nil)
    }
}

final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(String, Int32, String)] = []
    func add(_ guest: String, _ status: Int32, _ stderr: String) { lock.withLock { items.append((guest, status, stderr)) } }
    var all: [(String, Int32, String)] { lock.withLock { items } }
}
