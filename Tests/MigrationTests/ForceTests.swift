import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 11: `-F` passes exactly the errors the target marks forceable (a WWID that differs
/// at an existing path, a vswitch's subnets, memory) and never DAS; `-s -F` gives `-F`'s verdict.
@Suite(.requiresRootAndSSHD, .serialized) struct ForceTests {
    @Test func forceNeverMovesAGuestOnDirectAttachedStorage() throws {
        let hosts = try TwoHosts()
        // /dev/sde is host A's SAS disk; host B has another disk at that path.
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/sde"]).status == 0)
        let check = try hosts.migrate("-P", "g1", "-s", "-F")
        #expect(check.status == 1)
        #expect(check.stderr.contains("direct-attached storage"), "\(check.stderr)")
        let forced = try hosts.migrate("-P", "g1", "-F")
        #expect(forced.status == 1, "\(forced.stdout)")
        #expect(forced.stderr.contains("direct-attached storage"))
        #expect(forced.stderr.contains("-F does not override these errors"))
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.runnable("B", "g1") == nil)
    }

    @Test func checkWithForceGivesForcesVerdict() throws {
        let hosts = try TwoHosts()
        // disk4 is another LUN on B: a WWID mismatch at an existing path, which -F passes.
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4"]).status == 0)
        #expect(try hosts.migrate("-P", "g1", "-s").status == 1)
        let check = try hosts.migrate("-P", "g1", "-s", "-F")
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("forced past (-F): storage: /dev/rdisk/disk4 is WWID"))
        #expect(check.stdout.contains("can be migrated to 198.51.100.2 with -F"))
        let json = try hosts.migrate("-P", "g1", "-s", "-F", "--json")
        #expect(json.status == 0)
        #expect(json.stdout.contains("\"forceable\":true"))
        #expect(try hosts.migrate("-P", "g1", "-F").status == 0)
        #expect(try hosts.runnable("B", "g1") == true)
    }

    @Test func forceDoesNotPassAMissingVswitchAndSaysSoBeforeAnythingChanges() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "network:avio_lan::vswitch:vsw2"]).status == 0)
        let before = try hosts.registryBytes("B")
        let check = try hosts.migrate("-P", "g1", "-s", "-F")
        let forced = try hosts.migrate("-P", "g1", "-F")
        #expect(check.status == 1 && forced.status == 1)
        #expect(forced.stderr.contains("there is no vswitch (bridge) vsw2"))
        #expect(try hosts.registryBytes("B") == before)
        #expect(try hosts.runnable("A", "g1") == true)
    }
}
