import Foundation
import HPVMTestSupport
import Host
import Testing

/// Issue 8 row 10: `-t` gives each LUN a stable name on the target: the name the target's registry
/// uses, else `/dev/mapper/<alias>`, else `/dev/disk/by-id/wwn-…`; never `dm-N`, `M:N` or one path
/// of a multipath LUN.
@Suite(.requiresRootAndSSHD, .serialized) struct TranslationTests {
    static let wwid = "naa.600508b4000115d00000000000000abc"

    /// g1 on A with one disk of `wwid` at `/dev/rdisk/disk9` (a path B does not have).
    func ready() throws -> TwoHosts {
        let hosts = try TwoHosts()
        let disk = try hosts.rootA.scsiDisk(wwid: Self.wwid, transport: .fibreChannel)
        try hosts.rootA.link("/dev/rdisk/disk9", to: "/dev/\(disk)")
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor::disk:/dev/rdisk/disk9"]).status == 0)
        return hosts
    }

    /// On B, the LUN over two paths under a multipath map `mpathx`.
    func multipathOnB(_ hosts: TwoHosts) throws -> String {
        let a = try hosts.rootB.scsiDisk(wwid: Self.wwid, transport: .fibreChannel)
        let b = try hosts.rootB.scsiDisk(wwid: Self.wwid, transport: .fibreChannel)
        return try hosts.rootB.multipath(name: "mpathx", wwid: Self.wwid, paths: [a, b])
    }

    func translated(_ hosts: TwoHosts) throws -> String {
        let result = try hosts.migrate("-P", "g1", "-t")
        #expect(result.status == 0, "\(result.stderr)")
        return try hosts.on("B", "hpvmstatus", ["-P", "g1", "-d"]).stdout
    }

    @Test func aMultipathLUNBecomesItsMapperAlias() throws {
        let hosts = try ready()
        try multipathOnB(hosts)
        #expect(try translated(hosts) == "disk:avio_stor:0,0,0:disk:/dev/mapper/mpathx\n")
    }

    @Test func theNameTheTargetsRegistryUsesWins() throws {
        let hosts = try ready()
        let dm = try multipathOnB(hosts)
        try hosts.rootB.link("/dev/rdisk/lunx", to: "/dev/\(dm)")
        #expect(try hosts.on("B", "hpvmdevmgmt", ["-a", "gdev:/dev/rdisk/lunx"]).status == 0)
        #expect(try translated(hosts) == "disk:avio_stor:0,0,0:disk:/dev/rdisk/lunx\n")
    }

    @Test func aSinglePathLUNBecomesItsByIDLink() throws {
        let hosts = try ready()
        let disk = try hosts.rootB.scsiDisk(wwid: Self.wwid, transport: .fibreChannel)
        try hosts.rootB.link("/dev/disk/by-id/wwn-0x600508b4000115d00000000000000abc", to: "/dev/\(disk)")
        // another link that sorts first, which a first-path choice would take
        try hosts.rootB.link("/dev/disk/by-diskseq/17", to: "/dev/\(disk)")
        #expect(try translated(hosts) == "disk:avio_stor:0,0,0:disk:/dev/disk/by-id/wwn-0x600508b4000115d00000000000000abc\n")
    }

    @Test func aLUNWithOnlyKernelNamesIsNotTranslated() throws {
        let hosts = try ready()
        let disk = try hosts.rootB.scsiDisk(wwid: Self.wwid, transport: .fibreChannel)
        let result = try hosts.migrate("-P", "g1", "-t")
        #expect(result.status == 1)
        #expect(result.stderr.contains("has no stable name there"), "\(result.stderr)")
        #expect(result.stderr.contains("/dev/\(disk)"))
        #expect(try hosts.runnable("B", "g1") == nil)
    }
}
