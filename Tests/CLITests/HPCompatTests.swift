import Foundation
import HPVMTestSupport
import Testing

/// Issue 14: HP compatibility for the procedures and the scripts administrators already run.
/// Each test is one row of the issue.
@Suite struct HPCompatTests {
    // MARK: - Row 4: getopt(3C) forms

    @Test func row4AttachedValuesAndClusteredFlagsWork() throws {
        let cli = try CLIHost()
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk3").status == 0)
        #expect(try cli.tool("hpvmcreate", "-Ph1", "-c2").status == 0)
        let list = try cli.devmgmt("-lall")
        #expect(list.status == 0)
        #expect(list.stdout.hasPrefix("/dev/rdisk/disk3:CONFIG=rdev,"))
        #expect(try cli.devmgmt("-lrdev:/dev/rdisk/disk3").stdout == list.stdout)
        let status = try cli.tool("hpvmstatus", "-Ph1")
        #expect(status.status == 0 && status.stdout.contains("Virtual Machine Name: h1"))
        #expect(try cli.tool("hpvmstatus", "-MPh1").stdout == cli.tool("hpvmstatus", "-M", "-P", "h1").stdout)
        #expect(try cli.tool("hpvmstatus", "-dPh1").status == 0)
        #expect(try cli.tool("hpvmmodify", "-Ph1", "-r4G").status == 0)
        #expect(try cli.tool("hpvmstatus", "-P", "h1").stdout.contains("Memory:               4 GB"))
        // -QF: quiet and force, clustered.
        #expect(try cli.tool("hpvmremove", "-QFPh1").status == 0)
        #expect(try cli.tool("hpvmstatus", "-P", "h1").status == 1)
        // A letter the command does not know is still named.
        let unknown = try cli.tool("hpvmstatus", "-Pq", "-Z")
        #expect(unknown.status == 64 && unknown.stderr.contains("-Z"))
    }

    // MARK: - Row 5: repeated single-valued options

    @Test func row5ASingleValuedOptionGivenTwiceIsRefused() throws {
        let cli = try CLIHost()
        let before = try? cli.registryBytes()
        let create = try cli.tool("hpvmcreate", "-P", "c1", "-P", "c2")
        #expect(create.status == 64)
        #expect(create.stderr.contains("hpvmcreate: -P given more than once"))
        #expect(try cli.tool("hpvmstatus", "-P", "c2").status == 1)
        #expect(try cli.tool("hpvmcreate", "-Pc1", "-Pc2").status == 64)
        #expect((try? cli.registryBytes()) == before)
        #expect(try cli.tool("hpvmcreate", "-P", "m1").status == 0)
        let migrate = try cli.tool("hpvmmigrate", "-P", "m1", "-h", "host2", "-P", "m2")
        #expect(migrate.status == 64)
        #expect(migrate.stderr.contains("hpvmmigrate: -P given more than once"))
        #expect(try cli.tool("hpvmmodify", "-P", "m1", "-c", "2", "-c", "3").status == 64)
        #expect(try cli.tool("hpvmremove", "-Q", "-P", "m1", "-P", "m1").status == 64)
        #expect(try cli.devmgmt("-S", "1M", "-S", "2M", "/hpvm/disks/a.img").status == 64)
        // Repeatable options still repeat.
        #expect(try cli.tool("hpvmmodify", "-P", "m1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk1",
                             "-a", "disk:avio_stor::disk:/dev/rdisk/disk2").status == 0)
    }
}
