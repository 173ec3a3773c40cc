import Foundation
import HPVMTestSupport
import Testing

/// Issue 8 row 12: the check report is always printed with --json, every transport is named, a
/// bridge without IPv4 fails the subnet check, every -m matches a device or is refused, and no
/// message points to something that does not exist.
@Suite(.requiresRootAndSSHD, .serialized) struct CheckReportTests {
    @Test func jsonPrintsTheReportWhenTheCheckFails() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "network:avio_lan::vswitch:vsw2"]).status == 0)
        let result = try hosts.migrate("-P", "g1", "-s", "--json")
        #expect(result.status == 1)
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let errors = try #require(report?["errors"] as? [[String: Any]], "\(result.stdout)")
        #expect(errors.first?["kind"] as? String == "vswitch")
        #expect(report?["map"] as? [String] != nil)
    }

    @Test func nvmeIsNamedAsATransport() throws {
        let hosts = try TwoHosts()
        let name = try hosts.rootA.nvmeDisk(wwid: "eui.0025388b91b0a001", fabric: false)
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/\(name)"]).status == 0)
        let result = try hosts.migrate("-P", "g1", "-s")
        #expect(result.status == 1)
        #expect(result.stderr.contains("/dev/\(name) is PCIe NVMe storage on the source"), "\(result.stderr)")
        #expect(!result.stderr.contains("unknown storage"))
    }

    @Test func aBridgeWithoutIPv4FailsTheSubnetCheck() throws {
        let hosts = try TwoHosts()
        try hosts.rootA.bridge("vsw3")
        try hosts.rootB.bridge("vsw3")
        try hosts.run("/usr/sbin/ip", "-n", hosts.nsA, "link", "add", "vsw3", "type", "bridge")
        try hosts.run("/usr/sbin/ip", "-n", hosts.nsA, "addr", "add", "192.0.2.1/24", "dev", "vsw3")
        try hosts.run("/usr/sbin/ip", "-n", hosts.nsB, "link", "add", "vsw3", "type", "bridge")
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "network:avio_lan::vswitch:vsw3"]).status == 0)
        let result = try hosts.migrate("-P", "g1", "-s")
        #expect(result.status == 1, "\(result.stdout)")
        #expect(result.stderr.contains("vswitch vsw3 has no IPv4 subnet here, 192.0.2.0/24 on the source"), "\(result.stderr)")
    }

    @Test func anOverrideThatMatchesNoDeviceIsRefused() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1"]).status == 0)
        for extra in [[], ["-s"]] {
            let result = try hosts.migrate(["-P", "g1", "-m", "disk:avio_stor:0,5,0:disk:/dev/rdisk/disk2"] + extra)
            #expect(result.status == 1)
            #expect(result.stderr.contains("-m disk:avio_stor:0,5,0:disk:/dev/rdisk/disk2 matches no device of g1"), "\(result.stderr)")
        }
        #expect(try hosts.runnable("A", "g1") == true)
        #expect(try hosts.runnable("B", "g1") == nil)
        #expect(try hosts.on("A", "hpvmstatus", ["-P", "g1", "-V"]).stdout.contains("Migration:            -"))
    }

    @Test func noMessagePointsToALogFileThatDoesNotExist() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "network:avio_lan::vswitch:vsw2"]).status == 0)
        let result = try hosts.migrate("-P", "g1")
        #expect(result.status == 1)
        #expect(!result.stderr.contains("log file"), "\(result.stderr)")
        #expect(result.stderr.contains("The target's findings follow"))
    }
}

extension TwoHosts {
    @discardableResult
    func migrate(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try on("A", "hpvmmigrate", arguments + ["-h", addressB], environment: environment)
    }
}
