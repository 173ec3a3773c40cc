import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

/// Issue 7, rows 1–8, 10 and 12: storage that overlaps without being equal, and rules that must
/// give one answer wherever they are asked. Each test runs the real commands on a host root of
/// real files and symlinks.
@Suite struct OverlapRuleTests {
    /// A host with ten SAN disks (`/dev/rdisk/diskN` → `/dev/sdX`), one multipath map and a DAS disk.
    func host() throws -> CLIHost { try CLIHost() }

    func sd(_ cli: CLIHost, _ index: Int) -> String { cli.layout.sanDisks[index].names[0] }

    // MARK: - Row 1: repeated operations

    @Test func row1RepeatedAddsAreAllAppliedInOneTransaction() throws {
        let cli = try host()
        let (f, g) = (sd(cli, 5), sd(cli, 6))
        let result = try cli.devmgmt("-a", "rdev:/dev/\(f)", "-a", "rdev:/dev/\(g)")
        #expect(result.status == 0)
        let restricted = try cli.devmgmt("-l", "rdev").lines.map { $0.split(separator: ":")[0] }
        #expect(restricted.contains("/dev/\(f)") && restricted.contains("/dev/\(g)"))
        // and a guest cannot have the first one
        let refused = try cli.tool("hpvmcreate", "-P", "p1", "-a", "disk:avio_stor::disk:/dev/\(f)")
        #expect(refused.status == 1 && refused.stderr.contains("it is restricted"))
    }

    @Test func row1ARefusedOperationAmongSeveralChangesNothing() throws {
        let cli = try host()
        #expect(try cli.devmgmt("-l", "all").status == 0)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk9").status == 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/rdisk/disk8").status == 0)
        let before = try cli.registryBytes()
        let result = try cli.devmgmt("-a", "rdev:/dev/rdisk/disk1", "-a", "rdev:/dev/rdisk/disk9", "-a", "rdev:/dev/rdisk/disk2")
        #expect(result.status == 1)
        #expect(result.stderr.contains("/dev/rdisk/disk9 is already in the registry"))
        #expect(try cli.registryBytes() == before)
        let twice = try cli.devmgmt("-m", "gdev:/dev/rdisk/disk8:attr:PRESERVE=YES", "-m", "gdev:/dev/nope:attr:PRESERVE=YES")
        #expect(twice.status == 1 && twice.stderr.contains("/dev/nope"))
        #expect(try cli.registryBytes() == before)
        // Mixing kinds of operation, or listing twice, is a usage error
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk1", "-d", "rdev:/dev/rdisk/disk9").status == 64)
        #expect(try cli.devmgmt("-l", "all", "-l", "rdev").status == 64)
        #expect(try cli.registryBytes() == before)
    }

    // MARK: - Row 2: a partition and its disk overlap, both ways

    @Test func row2ARestrictedPartitionKeepsGuestsOffItsDisk() throws {
        let cli = try host()
        let disk = sd(cli, 4)
        let partition = try cli.host.partition(of: disk, number: 1)
        #expect(try cli.devmgmt("-a", "rdev:/dev/\(partition)").status == 0)
        let before = try cli.registryBytes()
        let refused = try cli.tool("hpvmcreate", "-P", "p2", "-a", "disk:avio_stor::disk:/dev/\(disk)")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("it is restricted, the disk holding partition rdev entry /dev/\(partition)"))
        let byOtherName = try cli.tool("hpvmcreate", "-P", "p2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk5")
        #expect(byOtherName.status == 1 && byOtherName.stderr.contains("rdev entry /dev/\(partition)"))
        #expect(try cli.registryBytes() == before)
    }

    @Test func row2ADiskAndItsPartitionAreNotSharedBetweenGuests() throws {
        let cli = try host()
        let disk = sd(cli, 3)
        let one = try cli.host.partition(of: disk, number: 1)
        let two = try cli.host.partition(of: disk, number: 2)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/\(one)").status == 0)
        // Another partition of the same disk is other storage
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/\(two)").status == 0)
        // The whole disk overlaps both
        let whole = try cli.tool("hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4")
        #expect(whole.status == 1 && whole.stderr.contains("used by g1") && whole.stderr.contains("not SHARE=YES"))
        // Sharing one side is not enough: every claim on the storage must be SHARE=YES
        #expect(try cli.devmgmt("-a", "gdev:/dev/rdisk/disk4:attr:SHARE=YES").status == 0)
        let half = try cli.tool("hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4")
        #expect(half.status == 1)
        #expect(try cli.devmgmt("-m", "gdev:/dev/\(one):attr:SHARE=YES").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/dev/\(two):attr:SHARE=YES").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4").status == 0)
        // and once shared three ways, SHARE=NO on a partition is refused
        let unshare = try cli.devmgmt("-m", "gdev:/dev/\(one):attr:SHARE=NO")
        #expect(unshare.status == 1 && unshare.stderr.contains("used by g3"))
    }

    @Test func row2TheHostsOwnPartitionKeepsGuestsOffTheDiskBeforeAnyRdev() throws {
        let cli = try host()
        let vda = try cli.host.virtioDisk(name: "vda")
        let vda1 = try cli.host.partition(of: vda, number: 1)
        try cli.host.mount(vda1, at: "/boot")
        for path in ["/dev/\(vda)", "/dev/\(vda1)"] {
            let refused = try cli.tool("hpvmcreate", "-P", "p2", "-a", "disk:avio_stor::disk:\(path)")
            #expect(refused.status == 1 && refused.stderr.contains("the host's own storage"), "\(path)")
            #expect(refused.stderr.contains("mounted on /boot"), "\(path)")
        }
        #expect(try cli.devmgmt("-a", "gdev:/dev/\(vda)").status == 1)
        // A file on the host's file system is the host handing out a file, not its disk
        try cli.host.file("/boot/images/a.img", contents: "a")
        #expect(try cli.tool("hpvmcreate", "-P", "p3", "-a", "disk:avio_stor::file:/boot/images/a.img").status == 0)
    }

    @Test func row2VolumesAndMultipathPartitionsOverlapTheLUNsBelowThem() throws {
        let cli = try host()
        let map = cli.layout.multipathMaps[0]
        let dm = map.names[0]
        let part1 = try cli.host.multipathPartition(of: dm, number: 1)
        let part2 = try cli.host.multipathPartition(of: dm, number: 2)
        let lvDisk = sd(cli, 7)
        let lvPartition = try cli.host.partition(of: lvDisk, number: 2)
        let lv = try cli.host.logicalVolume(vg: "vgg", lv: "data", on: [lvPartition])
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/\(part1)").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/\(part2)").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::lv:/dev/mapper/vgg-data").status == 0)
        _ = lv
        // The map, and any SCSI path of it, overlaps both kpartx partitions
        for path in [map.path, map.paths[2], map.paths[3]] {
            let refused = try cli.tool("hpvmcreate", "-P", "g4", "-a", "disk:avio_stor::disk:\(path)")
            #expect(refused.status == 1 && refused.stderr.contains("used by g1"), "\(path)")
        }
        // The disk and the partition under the volume overlap it
        for path in ["/dev/\(lvDisk)", "/dev/\(lvPartition)", "/dev/rdisk/disk8"] {
            let refused = try cli.tool("hpvmcreate", "-P", "g4", "-a", "disk:avio_stor::disk:\(path)")
            #expect(refused.status == 1 && refused.stderr.contains("used by g3"), "\(path)")
        }
        // Restricting the LUN is refused while the volume on it is a guest's
        let restrict = try cli.devmgmt("-a", "rdev:/dev/rdisk/disk8")
        #expect(restrict.status == 1 && restrict.stderr.contains("used by guest g3"))
    }

    @Test func aRegistryFromBeforeExtentsGetsThemOnItsNextRuleCheck() throws {
        // Given g1 on a partition, in a registry whose extents were never recorded (an older hpvm)
        let cli = try host()
        let partition = try cli.host.partition(of: sd(cli, 2), number: 1)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/\(partition)").status == 0)
        let forget = "DELETE FROM deviceExtent; DELETE FROM hostSetting WHERE name = 'extents';"
        #expect(try runProcess("/usr/bin/sqlite3", [cli.registryPath, forget]).status == 0)
        let before = try cli.registryBytes()
        // When another guest asks for the disk under it
        let refused = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk3")
        // Then the overlap is seen, and the refused command recorded nothing
        #expect(refused.status == 1 && refused.stderr.contains("used by g1"))
        #expect(try cli.registryBytes() == before)
        // and the next command that succeeds records them
        #expect(try cli.tool("hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4").status == 0)
        let known = try runProcess("/usr/bin/sqlite3", [cli.registryPath, "SELECT count(*) FROM deviceExtent"])
        #expect(Int(known.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 2)
    }

    @Test func aRescanRecordsWhereAVolumeLivesNow() throws {
        // Given g1 on a volume over disk6, and the volume then moved to disk7 (pvmove)
        let cli = try host()
        let (from, to) = (sd(cli, 5), sd(cli, 6))
        let dm = try cli.host.logicalVolume(vg: "vgm", lv: "moving", on: [from])
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::lv:/dev/mapper/vgm-moving").status == 0)
        cli.host.removeItem("/sys/devices/virtual/block/\(dm)/slaves/\(from)")
        try cli.host.link("/sys/devices/virtual/block/\(dm)/slaves/\(to)", to: "/sys/class/block/\(to)")
        // When the registry is rescanned
        #expect(try cli.devmgmt("-I").status == 0)
        // Then the volume's new disk is g1's, and the old one is free
        let refused = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk7")
        #expect(refused.status == 1 && refused.stderr.contains("used by g1"), "\(refused.stderr)")
        #expect(try cli.tool("hpvmcreate", "-P", "g3", "-a", "disk:avio_stor::disk:/dev/rdisk/disk6").status == 0)
    }

    // MARK: - Row 4: a file is known by the file

    @Test func row4HardLinksSymlinkedFoldersAndBindMountsAreOneFile() throws {
        let cli = try host()
        try cli.host.file("/hpvm/disks/a.img", contents: "a")
        #expect(link(cli.root + "/hpvm/disks/a.img", cli.root + "/hpvm/disks/b.img") == 0)
        try cli.host.link("/hpvm/linked", to: "/hpvm/disks")
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/disks/a.img").status == 0)
        for path in ["/hpvm/disks/b.img", "/hpvm/linked/a.img", "/hpvm/linked/b.img"] {
            let refused = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::file:\(path)")
            #expect(refused.status == 1 && refused.stderr.contains("used by g1"), "\(path)")
        }
    }

    @Test func row4ARecursiveRestrictionFollowsHardLinksAndBindMounts() throws {
        let cli = try host()
        try cli.host.file("/hpvm/private/x.img", contents: "x")
        try cli.host.folders("/mnt/private-view")
        try cli.host.file("/mnt/private-view/y.img", contents: "y")
        // /hpvm/private is shown again at /mnt/private-view by a bind mount of the root file system
        let root = sd(cli, 9)
        let number = try String(contentsOfFile: cli.root + "/sys/class/block/\(root)/dev", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try cli.host.file(
            "/proc/self/mountinfo",
            contents: "20 1 \(number) / / rw - ext4 /dev/\(root) rw\n21 20 \(number) /hpvm/private /mnt/private-view rw - ext4 /dev/\(root) rw\n")
        #expect(try cli.devmgmt("-a", "rdev:/hpvm/private:attr:RECURSIVE=DIR").status == 0)
        #expect(link(cli.root + "/hpvm/private/x.img", cli.root + "/hpvm/disks/x-link.img") == 0)
        let hardLink = try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::file:/hpvm/disks/x-link.img")
        #expect(hardLink.status == 1 && hardLink.stderr.contains("under /hpvm/private"))
        let bind = try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::file:/mnt/private-view/y.img")
        #expect(bind.status == 1 && bind.stderr.contains("under /hpvm/private"))
        #expect(try cli.devmgmt("-a", "gdev:/hpvm/disks/x-link.img").status == 1)
    }

    // MARK: - Row 6: -n keeps every rule hpvmcreate applies

    @Test func row6ReplacingADeviceKeepsTheGuestRules() throws {
        let cli = try host()
        try cli.host.folders("/hpvm/somedir")
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk2").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk3").status == 0)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk4").status == 0)
        let before = try cli.registryBytes()
        let folder = try cli.devmgmt("-n", "gdev:/dev/rdisk/disk2:/hpvm/somedir")
        #expect(folder.status == 1 && folder.stderr.contains("is DIR, not what storage type 'disk' needs"))
        let restricted = try cli.devmgmt("-n", "gdev:/dev/rdisk/disk2:/dev/\(sd(cli, 3))")
        #expect(restricted.status == 1 && restricted.stderr.contains("it is restricted"))
        let taken = try cli.devmgmt("-n", "gdev:/dev/rdisk/disk2:/dev/\(sd(cli, 2))")
        #expect(taken.status == 1 && taken.stderr.contains("used by g2"))
        #expect(try cli.registryBytes() == before)
        #expect(try cli.tool("hpvmstatus", "-P", "g1", "-d").lines == ["disk:avio_stor:0,0,0:disk:/dev/rdisk/disk2"])
    }

    // MARK: - Row 7 and 8: IGNOREWWID never weakens; every entry type keeps every path

    @Test func row7IgnoreWWIDDoesNotOpenAnotherPathOfARestrictedLUN() throws {
        let cli = try host()
        let map = cli.layout.multipathMaps[0]
        #expect(try cli.devmgmt("-a", "rdev:\(map.path)").status == 0)
        #expect(try cli.devmgmt("-m", "rdev:\(map.path):IGNOREWWID=YES").status == 0)
        let before = try cli.registryBytes()
        let refused = try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:\(map.paths[2])")
        #expect(refused.status == 1 && refused.stderr.contains("rdev entry \(map.path)"))
        #expect(try cli.registryBytes() == before)
    }

    @Test func row8ServerAndEnvEntriesKeepEveryPathOfTheirLUN() throws {
        let cli = try host()
        let map = cli.layout.multipathMaps[0]
        #expect(try cli.devmgmt("-a", "server:\(map.paths[2])").status == 0)
        #expect(try cli.devmgmt("-a", "env:/dev/rdisk/disk6").status == 0)
        for path in [map.path, map.paths[3], map.paths[2]] {
            let refused = try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:\(path)")
            #expect(refused.status == 1 && refused.stderr.contains("server entry \(map.paths[2])"), "\(path)")
        }
        let env = try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/\(sd(cli, 5))")
        #expect(env.status == 1 && env.stderr.contains("env entry /dev/rdisk/disk6"))
        #expect(try cli.devmgmt("-a", "gdev:/dev/\(sd(cli, 5))").status == 1)
    }

    // MARK: - Row 10: the migration check and the prepare phase ask the same rules

    @Test func row10TheMigrationCheckAndPrepareAgreeOnASharedPartition() throws {
        let cli = try host()
        let diskName = sd(cli, 0)
        let partition = try cli.host.partition(of: diskName, number: 1)
        #expect(try cli.tool("hpvmcreate", "-P", "local", "-a", "disk:avio_stor::disk:/dev/\(partition)").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/dev/\(partition):attr:SHARE=YES").status == 0)
        try cli.withRegistry { _, guests in
            for location in ["/dev/\(diskName)", "/dev/rdisk/disk1", "/dev/\(partition)"] {
                let statement = disk(location)
                let obstacles = try guests.obstacles(for: statement, guest: "arriving")
                var spec = GuestSpec(name: "arriving")
                spec.resources = [statement]
                var prepared: String?
                do {
                    try guests.prepareArrival(spec, migrationID: "m-\(location.count)", peer: "hostA")
                    try guests.abortArrival("arriving", migrationID: "m-\(location.count)", peer: "hostA")
                } catch {
                    prepared = (error as? RegistryError)?.message ?? "\(error)"
                }
                // The check predicts the prepare phase exactly
                #expect(obstacles == (prepared.map { [$0] } ?? []), "\(location)")
            }
        }
    }

    // MARK: - Row 12: -S creates only inside the root, never where a guest could not have the file

    @Test func row12CreatingAFileNeverLeavesTheRootOrEntersARestrictedFolder() throws {
        let cli = try host()
        var template = Array("/tmp/hpvm-outside.XXXXXX".utf8CString)
        let outside = String(cString: try #require(mkdtemp(&template)))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try cli.host.rawLink("/hpvm/out", target: outside)
        try cli.host.rawLink("/hpvm/up", target: "../../../../../../../../" + outside)
        for path in ["/hpvm/out/x.img", "/hpvm/up/x.img"] {
            let result = try cli.devmgmt("-S", "1M", path)
            #expect(result.status == 1, "\(path)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        // Into a restricted folder, through a symlink or a bind mount of it
        try cli.host.folders("/hpvm/private")
        #expect(try cli.devmgmt("-a", "rdev:/hpvm/private:attr:RECURSIVE=DIR").status == 0)
        try cli.host.link("/hpvm/disks/p", to: "/hpvm/private")
        let root = sd(cli, 9)
        let number = try String(contentsOfFile: cli.root + "/sys/class/block/\(root)/dev", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try cli.host.folders("/mnt/view")
        try cli.host.file(
            "/proc/self/mountinfo",
            contents: "20 1 \(number) / / rw - ext4 /dev/\(root) rw\n21 20 \(number) /hpvm/private /mnt/view rw - ext4 /dev/\(root) rw\n")
        for path in ["/hpvm/disks/p/x.img", "/mnt/view/x.img"] {
            let result = try cli.devmgmt("-S", "1M", path)
            #expect(result.status == 1 && result.stderr.contains("under /hpvm/private"), "\(path)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.root + "/hpvm/private").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.root + "/mnt/view").isEmpty)
        // and where a guest may have it, it is made
        #expect(try cli.devmgmt("-A", "-S", "1M", "/hpvm/disks/ok.img").status == 0)
    }
}
