import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

/// hpvm-reference.md (e), the examples about hpvmdevmgmt and hpvmhostrdev, through the real commands.
@Suite struct DevMgmtExampleTests {
    func wwid(_ disk: HostBuilder.Disk) -> String { WWID(disk.wwid ?? "")?.description ?? "" }

    @Test func example1RestrictADiskAndListIt() throws {
        let cli = try CLIHost()
        let disk3 = cli.layout.sanDisks[2]
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk3").status == 0)
        let listed = try cli.devmgmt("-l", "rdev")
        #expect(listed.status == 0)
        #expect(listed.lines == ["/dev/rdisk/disk3:CONFIG=rdev,EXIST=YES,DEVTYPE=DISK,SHARE=NO::\(wwid(disk3))"])
        #expect(wwid(disk3).hasPrefix("6005-08b4-0001-15d0-"))
    }

    /// Example 4's state: guest g1 uses /dev/rdisk/disk7.
    func hostWithG1OnDisk7() throws -> CLIHost {
        let cli = try CLIHost()
        try cli.withRegistry { _, guests in
            try guests.createGuest(name: "g1")
            try guests.attach(disk("/dev/rdisk/disk7"), to: "g1")
        }
        return cli
    }

    @Test func example4DeletingAnEntryWithDependentsIsRefused() throws {
        let cli = try hostWithG1OnDisk7()
        let before = try cli.registryBytes()
        let result = try cli.devmgmt("-d", "gdev:/dev/rdisk/disk7")
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("hpvmdevmgmt: cannot delete gdev entry /dev/rdisk/disk7: it has dependents g1."))
        #expect(try cli.registryBytes() == before)
    }

    @Test func example5ADependentFollowsTheGuestsResources() throws {
        // Given g1 using disk7: its dependent cannot be taken away while g1 still has the disk
        let cli = try hostWithG1OnDisk7()
        let before = try cli.registryBytes()
        let refused = try cli.devmgmt("-d", "gdev:/dev/rdisk/disk7:depend:g1")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("guest g1 still has the device") && refused.stderr.contains("hpvmmodify -P g1 -d"))
        #expect(try cli.registryBytes() == before)
        // When the registry is edited by hand so that g1 no longer lists the disk
        #expect(try runProcess("/usr/bin/sqlite3", [cli.registryPath, "DELETE FROM guestResource"]).status == 0)
        // Then the stale dependent goes, and g1 is left alone
        #expect(try cli.devmgmt("-d", "gdev:/dev/rdisk/disk7:depend:g1").status == 0)
        let line = try #require(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk7").lines.first)
        #expect(line.split(separator: ":", omittingEmptySubsequences: false)[2] == "")
        #expect(try cli.withRegistry { _, guests in try guests.guest(named: "g1") } != nil)
    }

    @Test func example6ShareAndFilterByAttribute() throws {
        let cli = try hostWithG1OnDisk7()
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:SHARE=YES").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk7").stdout.contains(",SHARE=YES"))
        let shared = try cli.devmgmt("-l", "gdev:SHARE=YES").lines
        #expect(shared.count == 1 && shared[0].hasPrefix("/dev/rdisk/disk7:"))
    }

    @Test func example7PreserveKeepsTheISO() throws {
        let cli = try CLIHost()
        try cli.host.file("/iso/hpux.iso", contents: "iso")
        try cli.host.file("/iso/other.iso", contents: "iso")
        #expect(try cli.devmgmt("-a", "gdev:/iso/hpux.iso:attr:USAGE=DVD").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/iso/hpux.iso:attr:PRESERVE=YES").status == 0)
        try cli.withRegistry { _, guests in
            try guests.createGuest(name: "g1")
            for iso in ["/iso/hpux.iso", "/iso/other.iso"] {
                let dvd = ResourceStatement(deviceType: .dvd, adapter: "avio_stor", storage: "file", location: iso)
                try guests.attach(dvd, to: "g1")
                try guests.detach(location: iso, from: "g1")
            }
        }
        #expect(try cli.devmgmt("-l", "gdev:/iso/hpux.iso").lines
            == ["/iso/hpux.iso:CONFIG=gdev,EXIST=YES,DEVTYPE=FILE,SHARE=NO,USAGE=DVD,PRESERVE=YES::"])
        #expect(try cli.devmgmt("-l", "gdev:/iso/other.iso").stdout == "")
    }

    @Test func example8UsageIsOnlyForFiles() throws {
        let cli = try hostWithG1OnDisk7()
        let before = try cli.registryBytes()
        let result = try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:USAGE=DISK")
        #expect(result.status != 0)
        #expect(result.stderr.contains("USAGE is valid only on gdev entries for files"))
        #expect(try cli.registryBytes() == before)
    }

    @Test func example10ReplaceADevice() throws {
        let cli = try hostWithG1OnDisk7()
        #expect(try cli.devmgmt("-n", "gdev:/dev/rdisk/disk7:/dev/rdisk/disk9").status == 0)
        let lines = try cli.devmgmt("-l", "gdev").lines
        #expect(lines == ["/dev/rdisk/disk9:CONFIG=gdev,EXIST=YES,DEVTYPE=DISK,SHARE=NO:g1:\(wwid(cli.layout.sanDisks[8]))"])
        #expect(try cli.withRegistry { _, guests in try guests.resources(of: "g1").map { $0.location } } == ["/dev/rdisk/disk9"])
    }

    @Test func example11CreateAFileOfTwoGiB() throws {
        let cli = try CLIHost()
        #expect(try cli.devmgmt("-S", "2G", "/hpvm/disks/g3.img").status == 0)
        let size = try FileManager.default.attributesOfItem(atPath: cli.root + "/hpvm/disks/g3.img")[.size] as? Int
        #expect(size == 2 << 30)
        let bad = try cli.devmgmt("-S", "2X", "/hpvm/disks/g4.img")
        #expect(bad.status != 0 && bad.stderr.contains("M or G"))
        #expect(!FileManager.default.fileExists(atPath: cli.root + "/hpvm/disks/g4.img"))
        // -A also records it; an existing file is never overwritten
        #expect(try cli.devmgmt("-A", "-S", "1M", "/hpvm/disks/g5.img").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:USAGE=DISK").lines.first?.hasPrefix("/hpvm/disks/g5.img:CONFIG=gdev,EXIST=YES,DEVTYPE=FILE") == true)
        #expect(try cli.devmgmt("-S", "1M", "/hpvm/disks/g3.img").status == 1)
        #expect(try FileManager.default.attributesOfItem(atPath: cli.root + "/hpvm/disks/g3.img")[.size] as? Int == 2 << 30)
    }

    @Test func example12IgnoreWWIDOnAndOff() throws {
        let cli = try hostWithG1OnDisk7()
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:IGNOREWWID=YES").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk7").stdout.contains(",IGNOREWWID=YES:"))
        #expect(try cli.devmgmt("-d", "gdev:/dev/rdisk/disk7:IGNOREWWID").status == 0)
        #expect(!(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk7").stdout.contains("IGNOREWWID")))
    }

    @Test func example13FormatVersionThenEveryEntry() throws {
        let cli = try CLIHost()
        try cli.devmgmt("-a", "rdev:/dev/rdisk/disk1")
        try cli.devmgmt("-a", "gdev:vsw1")
        let result = try cli.devmgmt("-v", "-l", "all")
        #expect(result.lines == [
            "hpvmdevmgmt output format version 1",
            "/dev/rdisk/disk1:CONFIG=rdev,EXIST=YES,DEVTYPE=DISK,SHARE=NO::\(wwid(cli.layout.sanDisks[0]))",
            "vsw1:CONFIG=gdev,EXIST=YES,DEVTYPE=VSWITCH,SHARE=YES::",
        ])
    }

    @Test func example14HostRDevOneOptionAndOnlyItsOwnEntries() throws {
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0, demo: true)
        let two = try cli.run("hpvmhostrdev", ["-u", "-d"])
        #expect(two.status == 1 && two.stderr.contains("one option at a time"))
        #expect(try cli.run("hpvmhostrdev", ["-u"]).status == 0)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk2").status == 0)
        let auto = try cli.devmgmt("-l", "rdev:AUTORDEV=YES").lines.map { String($0.prefix { $0 != ":" && $0 != "," }) }
        #expect(auto == ["/dev/mapper/vg00-root", "/dev/mapper/vg00-swap", "/dev/vda"])
        #expect(try cli.run("hpvmhostrdev", ["-d"]).status == 0)
        let left = try cli.devmgmt("-l", "rdev").lines
        #expect(left.count == 1 && left[0].hasPrefix("/dev/rdisk/disk2:"))
        // -r puts back what -d removed
        #expect(try cli.run("hpvmhostrdev", ["-r"]).status == 0)
        #expect(try cli.devmgmt("-l", "rdev:AUTORDEV=YES").lines.count == 3)
    }
}
