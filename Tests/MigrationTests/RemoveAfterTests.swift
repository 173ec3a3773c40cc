import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 6: `-D` is journaled like the other phases: interrupted, recovery finishes it.
@Suite(.requiresRootAndSSHD, .serialized) struct RemoveAfterTests {
    @Test func anInterruptedRemovalIsFinishedByRecovery() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        // When -D stops after the migration finished and before the source copy is removed
        let stopped = try hosts.migrate("-P", "g1", "-D", environment: ["HPVM_FAILPOINT": "source-before-remove"])
        #expect(stopped.status != 0)
        #expect(try hosts.runnable("A", "g1") == false)
        #expect(try hosts.runnable("B", "g1") == true)
        // Then recovery removes it, and says so; once
        let recovered = try hosts.on("A", "hpvmmigrate", ["--recover"])
        #expect(recovered.status == 0, "\(recovered.stderr)")
        #expect(recovered.stdout.contains("removed from this host (-D)"), "\(recovered.stdout)")
        #expect(try hosts.runnable("A", "g1") == nil)
        #expect(try hosts.on("A", "hpvmdevmgmt", ["-l", "gdev"]).stdout == "")
        #expect(try hosts.runnable("B", "g1") == true)
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover"]).stdout.contains("nothing to recover"))
    }

    @Test func recoveryFinishesTheJournalWhenTheGuestIsAlreadyGone() throws {
        // A removal that was done but not yet recorded: recovery records it without failing.
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", "-D", environment: ["HPVM_FAILPOINT": "source-before-remove"]).status != 0)
        #expect(try hosts.on("A", "hpvmremove", ["-P", "g1", "-F", "-Q"]).status == 0)
        let recovered = try hosts.on("A", "hpvmmigrate", ["--recover"])
        #expect(recovered.status == 0, "\(recovered.stderr)")
        #expect(try hosts.on("A", "hpvmmigrate", ["--recover"]).stdout.contains("nothing to recover"))
    }
}
