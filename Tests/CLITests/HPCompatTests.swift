import Foundation
import HPVMTestSupport
import Registry
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

    // MARK: - Row 10: 64 for a malformed line, 1 for a refusal

    @Test func row10RuleRefusalsExitOneMalformedFiltersExit64() throws {
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk7").status == 0)
        let usage = try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:USAGE=DISK")
        #expect(usage.status == 1)
        #expect(usage.stderr.contains("USAGE is valid only on gdev entries for files"))
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:DEVTYPE=FILE").status == 1)
        #expect(try cli.devmgmt("-a", "rdev:/dev/rdisk/disk2:attr:RECURSIVE=FS").status == 1)
        // Malformed: an unknown attribute or a bad value.
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:COLOR=RED").status == 64)
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk7:attr:SHARE=MAYBE").status == 64)
        let filter = try cli.devmgmt("-l", "gdev:FOO=BAR")
        #expect(filter.status == 64)
        #expect(filter.stderr.contains("unknown attribute 'FOO'"))
        #expect(filter.stdout.isEmpty)
        // Known attributes still filter.
        #expect(try cli.devmgmt("-l", "gdev:SHARE=NO").stdout.hasPrefix("/dev/rdisk/disk7:"))
        #expect(try cli.devmgmt("-l", "gdev:DEVTYPE=DISK").status == 0)
    }

    // MARK: - Row 11: an unused gdev becomes the rdev

    @Test func row11RestrictingAnUnusedGuestDeviceReplacesItsEntry() throws {
        let cli = try CLIHost()
        // What a guest removed after hpvmmigrate -D leaves behind: a PRESERVE=YES gdev entry.
        #expect(try cli.tool("hpvmcreate", "-P", "m1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk4").status == 0)
        #expect(try cli.devmgmt("-m", "gdev:/dev/rdisk/disk4:attr:PRESERVE=YES").status == 0)
        // Used: still refused, naming the guest.
        let used = try cli.devmgmt("-a", "rdev:/dev/rdisk/disk4")
        #expect(used.status == 1 && used.stderr.contains("used by guest m1"))
        #expect(try cli.tool("hpvmremove", "-Q", "-P", "m1").status == 0)
        #expect(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk4").lines.count == 1)
        // HP's advice: "restrict them with hpvmdevmgmt -a rdev:" — by the same name, or by another path.
        let restricted = try cli.devmgmt("-a", "rdev:/dev/rdisk/disk4", "-V")
        #expect(restricted.status == 0)
        #expect(restricted.stdout.contains("unused gdev entry /dev/rdisk/disk4 is the same storage"))
        #expect(try cli.devmgmt("-l", "gdev").stdout == "")
        #expect(try cli.devmgmt("-l", "rdev").stdout.hasPrefix("/dev/rdisk/disk4:CONFIG=rdev,"))
        #expect(try cli.devmgmt("-a", "gdev:/dev/rdisk/disk6").status == 0)
        let alias = cli.layout.sanDisks[5].paths[1]
        #expect(try cli.devmgmt("-a", "rdev:" + alias).status == 0)
        #expect(try cli.devmgmt("-l", "rdev:" + alias).stdout.hasPrefix(alias + ":CONFIG=rdev,"))
        #expect(try cli.devmgmt("-l", "gdev").stdout == "")
        let refused = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/rdisk/disk6")
        #expect(refused.status == 1 && refused.stderr.contains("restricted"))
    }

    // MARK: - Row 12: resources matched by device identity

    @Test func row12ADeviceIsFoundByAnyOfItsNames() throws {
        let cli = try CLIHost()
        let alias = cli.layout.sanDisks[4].paths[1]  // /dev/sdX: the same LUN as /dev/rdisk/disk5
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk5").status == 0)
        let removed = try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::disk:" + alias)
        #expect(removed.status == 0)
        #expect(try cli.tool("hpvmstatus", "-P", "g1", "-d").stdout == "")
        #expect(try cli.devmgmt("-l", "gdev:/dev/rdisk/disk5").stdout == "")
        // Another LUN is still not found.
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/rdisk/disk5").status == 0)
        let other = try cli.tool("hpvmmodify", "-P", "g1", "-d", "disk:avio_stor::disk:" + cli.layout.sanDisks[3].paths[1])
        #expect(other.status == 1 && other.stderr.contains("has no resource"))
    }

    // MARK: - Row 8: online migration settings

    @Test func row8OnlineMigrationSettingsAreStored() throws {
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "g1").status == 0)
        let set = try cli.tool(
            "hpvmmodify", "-P", "g1", "-x", "online_migration=disabled", "-x", "migrate_init_phase_timeout=30",
            "-x", "migrate_copy_phase_timeout=0", "-x", "migrate_io_quiesce_phase_timeout=20",
            "-x", "migrate_frozen_phase_timeout=45")
        #expect(set.status == 0, "\(set.stderr)")
        let details = try cli.tool("hpvmstatus", "-P", "g1", "-V").lines
        #expect(details.contains("online_migration:                 disabled"))
        #expect(details.contains("migrate_init_phase_timeout:       30"))
        #expect(details.contains("migrate_io_quiesce_phase_timeout: 20"))
        #expect(details.contains("migrate_frozen_phase_timeout:     45"))
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "online_migration=enabled").status == 0)
        #expect(try cli.tool("hpvmstatus", "-P", "g1", "-V").lines.contains("online_migration:                 enabled"))
        // Malformed values are usage errors; the registry is unchanged.
        let before = try cli.registryBytes()
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "online_migration=maybe").status == 64)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "migrate_init_phase_timeout=-1").status == 64)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-x", "migrate_warp_phase_timeout=1").status == 64)
        #expect(try cli.registryBytes() == before)
    }

    // MARK: - Row 9: entitlement and boot attribute

    @Test func row9EntitlementAndStartTypeAreStored() throws {
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-e", "25:50", "-B", "auto").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-E", "1200").status == 0)
        var details = try cli.tool("hpvmstatus", "-P", "g1").lines
        #expect(details.contains("Entitlement:          25%:50%"))
        #expect(details.contains("Start type           : Auto"))
        #expect(try cli.tool("hpvmstatus", "-P", "g2").lines.contains("Entitlement:          1200MHz"))
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-e", "40", "-B", "manual").status == 0)
        details = try cli.tool("hpvmstatus", "-P", "g1").lines
        #expect(details.contains("Entitlement:          40%"))
        #expect(details.contains("Start type           : Manual"))
        #expect(try cli.tool("hpvmstatus", "-r").lines.contains { $0.hasPrefix("g1 ") && $0.contains("40%") })
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-e", "40", "-E", "100").status == 64)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-e", "101").status == 64)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-e", "50:40").status == 64)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-B", "sometimes").status == 64)
    }

    // MARK: - Row 6: hpvmremove on the source after a migration

    @Test func row6TheSourceCopyOfAFinishedMigrationIsRemovedWithoutForce() throws {
        let cli = try CLIHost()
        for name in ["m1", "m2", "a1"] {
            #expect(try cli.tool("hpvmcreate", "-P", name).status == 0)
        }
        // m1 migrated to host2 and finished (the source journal says done); m2 stopped after the
        // point of no return, before done; a1 was marked Not Runnable by an administrator.
        try cli.withRegistry { _, guests in
            _ = try guests.lockForMigration("m1", migrationID: "mig-1", peer: "host2")
            try guests.disableSource("m1", migrationID: "mig-1", peer: "host2")
            try guests.finishSource("m1", migrationID: "mig-1", peer: "host2", remove: false)
            _ = try guests.lockForMigration("m2", migrationID: "mig-2", peer: "host2")
            try guests.disableSource("m2", migrationID: "mig-2", peer: "host2")
        }
        #expect(try cli.tool("hpvmmodify", "-P", "a1", "-x", "register_status=disabled").status == 0)
        #expect(try cli.tool("hpvmstatus", "-P", "m1").stdout.contains("Off (NR)"))
        // HP's procedure: "run hpvmremove on the source" once the guest will not come back.
        let removed = try cli.tool("hpvmremove", "-P", "m1", "-Q")
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try cli.tool("hpvmstatus", "-P", "m1").status == 1)
        // An unfinished migration's copy, and a guest an administrator disabled, still need -F.
        let unfinished = try cli.tool("hpvmremove", "-P", "m2", "-Q")
        #expect(unfinished.status == 1)
        let byHand = try cli.tool("hpvmremove", "-P", "a1", "-Q")
        #expect(byHand.status == 1 && byHand.stderr.contains("hpvmremove -F"))
        #expect(try cli.tool("hpvmremove", "-P", "a1", "-Q", "-F").status == 0)
    }

    // MARK: - Row 7: the host command log

    @Test func row7CommandsThatChangeTheHostAreInCommandLog() throws {
        let cli = try CLIHost()
        let log = cli.root + "/var/opt/hpvm/common/command.log"
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-c", "2").status == 0)
        #expect(try cli.devmgmt("-ardev:/dev/rdisk/disk1").status == 0)
        #expect(try cli.tool("hpvmmodify", "-P", "g1", "-l", "web server").status == 0)
        let before = try #require(try? String(contentsOfFile: log, encoding: .utf8), "no \(log)")
        // Readers and refused commands add nothing.
        #expect(try cli.tool("hpvmstatus").status == 0)
        #expect(try cli.devmgmt("-l", "all").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "g1").status == 1)
        #expect(try cli.tool("hpvmcreate", "-P", "g2", "-P", "g3").status == 64)
        #expect(try String(contentsOfFile: log, encoding: .utf8) == before)
        let lines = before.split(separator: "\n").map(String.init)
        try #require(lines.count == 3, "\(lines)")
        // HP's command.log: one line per command, with when, who, what and how it ended.
        #expect(lines[0].hasSuffix("]: hpvmcreate -P g1 -c 2: ok"))
        #expect(lines[1].hasSuffix("]: hpvmdevmgmt -ardev:/dev/rdisk/disk1: ok"))
        #expect(lines[2].hasSuffix("]: hpvmmodify -P g1 -l 'web server': ok"))
        #expect(lines.allSatisfy { $0.count > 25 && $0.dropFirst(4).hasPrefix("-") && $0.contains("T") })
    }
}
