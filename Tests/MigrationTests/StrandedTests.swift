import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 5: no orphan a person must remove with SQL, and the documented fixes work.
@Suite(.requiresRootAndSSHD, .serialized) struct StrandedTests {
    func journalB(_ hosts: TwoHosts) throws -> String {
        let db = hosts.rootB.path + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
        let result = try TwoHosts.capture("/usr/bin/sqlite3", [db, "SELECT role || ':' || phase FROM migrationJournal ORDER BY id"], environment: [:])
        return result.stdout + result.stderr
    }

    @Test func aPrepareThatFinishesAfterTheSourceLeftIsRolledBackByTheTarget() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.on("B", "hpvmdevmgmt", ["-a", "rdev:/dev/rdisk/disk3"]).status == 0)
        // Given B's registry held by another writer from 1.5 s to 9.5 s, while the source pauses
        // after its checks (so its prepare meets the held registry)
        let db = hosts.rootB.path + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
        let holder = try ChildProcess.start("/bin/sh", ["-c", "sleep 1.5; (echo 'BEGIN IMMEDIATE;'; sleep 8; echo 'COMMIT;') | /usr/bin/sqlite3 \(db)"])
        defer {
            kill(holder, SIGKILL)
            var status: Int32 = 0
            waitpid(holder, &status, 0)
        }
        // When the source gives up waiting for the prepare
        let result = try hosts.migrate("-P", "g1", environment: ["HPVM_MIGRATE_TIMEOUT": "2", "HPVM_FAILPOINT": "source-after-check:hold=3"])
        #expect(result.status == 1)
        #expect(try hosts.runnable("A", "g1") == true)
        // Then the target, once its prepare went through, sees the source gone and rolls it back
        var journal = ""
        for _ in 0..<60 where !journal.contains("target:aborted") {
            usleep(250_000)
            journal = (try? journalB(hosts)) ?? ""
        }
        #expect(journal.contains("target:prepared\ntarget:aborted"), "\(journal)")
        #expect(try hosts.runnable("B", "g1") == nil)
        // and the source's recovery has nothing left to fix on either host
        let recovered = try hosts.on("A", "hpvmmigrate", ["--recover"])
        #expect(recovered.status == 0, "\(recovered.stderr)")
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.migrate("-P", "g1").status == 0)
    }

    @Test func afterTheTargetLostTheMigrationTheDocumentedFixWorks() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", environment: ["HPVM_FAILPOINT": "source-after-disable"]).status != 0)
        try FileManager.default.removeItem(atPath: hosts.rootB.path + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite")
        let result = try hosts.on("A", "hpvmmigrate", ["--recover", "-P", "g1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("hpvmmodify -P g1 -x register_status=enabled"))
        // The command the message gives works
        let fix = try hosts.on("A", "hpvmmodify", ["-P", "g1", "-x", "register_status=enabled"])
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover"]).stdout.contains("nothing to recover"))
    }

    @Test func recoveryOnTheTargetRollsBackAnArrivalTheSourceNeverDisabled() throws {
        // Given a migration whose target half died right after its prepare
        let hosts = try TwoHosts(failpointOnTarget: "target-after-prepare")
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1").status != 0)
        #expect(try hosts.runnable("B", "g1") == false)
        try hosts.withSSHDOnA {
            // When --recover runs on the target, it asks the source and rolls the arrival back
            let recovered = try hosts.on("B", "hpvmmigrate", ["--recover"])
            #expect(recovered.status == 0, "\(recovered.stderr)")
            #expect(recovered.stdout.contains("rolled back migration"), "\(recovered.stdout)")
            #expect(try hosts.runnable("B", "g1") == nil)
            #expect(try hosts.on("B", "hpvmmigrate", ["--recover"]).stdout.contains("nothing to recover"))
        }
        // and the source's recovery finishes its side
        try hosts.restartSSHD(failpoint: nil)
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover"]).status == 0)
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.migrate("-P", "g1").status == 0)
    }

    @Test func recoveryOnTheTargetCommitsAnArrivalPastThePointOfNoReturn() throws {
        // Given a source that died right after disabling its copy
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", environment: ["HPVM_FAILPOINT": "source-after-disable"]).status != 0)
        try hosts.withSSHDOnA {
            let recovered = try hosts.on("B", "hpvmmigrate", ["--recover", "-P", "g1"])
            #expect(recovered.status == 0, "\(recovered.stderr)")
            #expect(recovered.stdout.contains("finished migration"), "\(recovered.stdout)")
            #expect(try hosts.runnable("B", "g1") == true)
            #expect(try hosts.runnable("A", "g1") == false)
        }
        let closed = try hosts.on("A", "hpvmmigrate", ["--recover"])
        #expect(closed.status == 0, "\(closed.stderr)")
        #expect(try hosts.on("A", "hpvmstatus", ["-P", "g1", "-V"]).stdout.contains("Migration:            -"))
    }

    @Test func aRetryDropsTheCopyAnAbortThatNeverReachedTheTargetLeft() throws {
        // Given a target that died after its prepare: the source rolled back without telling it
        let hosts = try TwoHosts(failpointOnTarget: "target-after-prepare")
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1").status != 0)
        #expect(try hosts.runnable("B", "g1") == false)
        try hosts.restartSSHD(failpoint: nil)
        // When the migration is simply tried again, it drops that copy first and goes through
        let retry = try hosts.migrate("-P", "g1")
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(try hosts.runnable("B", "g1") == true)
        #expect(try hosts.runnable("A", "g1") == false)
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover"]).stdout.contains("nothing to recover"))
    }
}
