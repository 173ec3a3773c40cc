import Foundation
import Testing

/// hpvm-reference.md (e) examples 15-20 between two sealed hosts with a real sshd.
@Suite(.requiresRootAndSSHD, .serialized) struct MigrationExampleTests {
    @Test func example15AMigrationLeavesTheSourceNotRunnable() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1", "-a", "network:avio_lan::vswitch:vsw1"]).status == 0)
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "hpvmmigrate: Guest migrated successfully.\n")
        #expect(try hosts.on("A", "hpvmstatus", []).stdout.contains("Off (NR)"))
        #expect(try hosts.runnable("A", "g1") == false)
        #expect(try hosts.runnable("B", "g1") == true)
        #expect(try hosts.on("B", "hpvmstatus", ["-P", "g1", "-d"]).stdout.hasPrefix("disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1\nnetwork:avio_lan:0,1,0x"))
        #expect(try hosts.on("B", "hpvmdevmgmt", ["-l", "gdev:/dev/rdisk/disk1"]).stdout.contains(":g1:"))
        // exactly one SSH connection
        let log = try String(contentsOfFile: hosts.scratch + "/sshd.log", encoding: .utf8)
        #expect(log.components(separatedBy: "Accepted publickey").count - 1 == 1)
    }

    @Test func example16AMissingVswitchStopsTheMigration() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "network:avio_lan::vswitch:vsw2"]).status == 0)
        let before = (try hosts.registryBytes("B"))
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("hpvmmigrate: Target VM Host error - vswitch validation failed.\nhpvmmigrate: The target's findings follow, one a line (hpvmmigrate -s --json prints them as JSON).\n"))
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.registryBytes("B") == before)
    }

    @Test func example17ADifferentWWIDStopsItUnlessTranslatedOrForced() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4"]).status == 0)
        let refused = try hosts.migrate("-P", "g1")
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("hpvmmigrate: Device WWID does not match.\n"))
        #expect(refused.stderr.contains("it is /dev/rdisk/disk5 there (use -t to translate)"))
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.runnable("B", "g1") == nil)
        // -F goes ahead despite the mismatch
        #expect(try hosts.migrate("-P", "g1", "-F").status == 0)
        #expect(try hosts.on("B", "hpvmstatus", ["-P", "g1", "-d"]).stdout == "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk4\n")
    }

    @Test func example17TranslationUsesThePathWithTheLUNsWWID() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4"]).status == 0)
        let translated = try hosts.migrate("-P", "g1", "-t")
        #expect(translated.status == 0, "\(translated.stderr)")
        #expect(try hosts.on("B", "hpvmstatus", ["-P", "g1", "-d"]).stdout == "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk5\n")
    }

    @Test func example18AGuestWithASharedDeviceIsRefused() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2"]).status == 0)
        #expect(try hosts.on("A", "hpvmdevmgmt", ["-m", "gdev:/dev/rdisk/disk2:attr:SHARE=YES"]).status == 0)
        let before = try hosts.registryBytes("A")
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 1)
        #expect(result.stderr == "hpvmmigrate: Device /dev/rdisk/disk2 is shared.  Guest with shared storage devices cannot be migrated.\n")
        #expect(try hosts.registryBytes("A") == before)
    }

    @Test func example19ACheckChangesNothingOnEitherHost() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        #expect(try hosts.on("B", "hpvmdevmgmt", ["-a", "rdev:/dev/rdisk/disk3"]).status == 0)
        let (a, b) = (try hosts.registryBytes("A"), try hosts.registryBytes("B"))
        let result = try hosts.migrate("-P", "g1", "-s")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("can be migrated"))
        let json = try hosts.migrate("-P", "g1", "-s", "--json")
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((report?["errors"] as? [Any])?.isEmpty == true)
        #expect(report?["map"] as? [String] == ["disk:avio_stor:0,0,0:disk:/dev/rdisk/disk1"])
        #expect(try hosts.registryBytes("A") == a)
        #expect(try hosts.registryBytes("B") == b)
    }

    @Test func example20RemoveFromTheSourceAfterwards() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        // -b starts the guest on the target once it is there (under TCG here)
        let moved = try hosts.migrate("-P", "g1", "-D", "-b")
        defer { _ = try? hosts.on("B", "hpvmstop", ["-P", "g1", "-F", "-Q"]) }
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout.contains("hpvmmigrate: started guest g1 on 198.51.100.2 (-b): QEMU pid "), "\(moved.stdout)")
        #expect(try hosts.on("B", "hpvmstatus", ["-M"]).stdout.split(separator: "\n").first { $0.hasPrefix("g1:") }?
            .split(separator: ":", omittingEmptySubsequences: false)[10] == "On")
        #expect(try hosts.runnable("A", "g1") == nil)
        #expect(try hosts.on("A", "hpvmdevmgmt", ["-l", "gdev"]).stdout == "")
        #expect(try hosts.runnable("B", "g1") == true)
        #expect(try hosts.on("A", "hpvmmodify", ["-P", "g1", "-x", "register_status=enabled"]).status == 1)
    }
}
