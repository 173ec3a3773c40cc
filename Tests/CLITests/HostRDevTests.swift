import Foundation
import HPVMTestSupport
import Registry
import Testing

@Suite struct HostRDevTests {
    @Test func plainRunRestrictsTheHostsDisksAndRescansIO() throws {
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0, demo: true)
        try cli.host.file("/sys/class/scsi_host/host0/scan", contents: "")
        let result = try cli.run("hpvmhostrdev", ["-V"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines == [
            "restricted /dev/mapper/vg00-root (AUTORDEV=YES)", "restricted /dev/mapper/vg00-swap (AUTORDEV=YES)",
            "restricted /dev/vda (AUTORDEV=YES)",
        ])
        let scan = try String(contentsOfFile: cli.root + "/sys/class/scsi_host/host0/scan", encoding: .utf8)
        #expect(scan == "- - -\n")
        // A partition of the boot disk is now refused to guests
        let refused = try cli.devmgmt("-a", "gdev:/dev/vda1")
        #expect(refused.status == 1 && refused.stderr.contains("a partition of the disk that is rdev entry /dev/vda"))
        // A second run changes nothing
        #expect(try cli.run("hpvmhostrdev", ["-u", "-V"]).stdout == "")
    }

    @Test func aHostDiskRegisteredForAGuestStopsTheRunAndChangesNothing() throws {
        // Given guest g1 on the partition /dev/vda1 while nothing mounts it
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0, demo: false)
        let vda = try cli.host.virtioDisk(name: "vda")
        let vda1 = try cli.host.partition(of: vda, number: 1)
        #expect(try cli.tool("hpvmcreate", "-P", "g1", "-a", "disk:avio_stor::disk:/dev/\(vda1)").status == 0)
        // When the host starts to use it (mounted on /boot): no other guest can have the disk now
        try cli.host.mount(vda1, at: "/boot")
        let hostDisk = try cli.tool("hpvmcreate", "-P", "g2", "-a", "disk:avio_stor::disk:/dev/\(vda)")
        #expect(hostDisk.status == 1 && hostDisk.stderr.contains("the host's own storage"))
        // and hpvmhostrdev runs
        let before = try cli.registryBytes()
        let result = try cli.run("hpvmhostrdev", ["-u"])
        // Then it refuses all or nothing, naming the guest
        #expect(result.status == 1)
        #expect(result.stderr.contains("/dev/vda (mounted on /boot): it is the disk holding partition gdev entry /dev/\(vda1), used by guest g1"))
        #expect(result.stderr.contains("nothing was changed"))
        #expect(try cli.registryBytes() == before)
        // and hpvmdevmgmt gives the same answer for the same state
        let same = try cli.devmgmt("-a", "rdev:/dev/vda")
        #expect(same.status == 1 && same.stderr.contains("used by guest g1"))
    }

    @Test func handMadeEntriesAreNeverTouched() throws {
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0, demo: true)
        #expect(try cli.devmgmt("-a", "rdev:/dev/vda").status == 0)
        #expect(try cli.run("hpvmhostrdev", ["-u"]).status == 0)
        #expect(try cli.run("hpvmhostrdev", ["-d"]).status == 0)
        #expect(try cli.devmgmt("-l", "rdev").lines == ["/dev/vda:CONFIG=rdev,EXIST=YES,DEVTYPE=DISK,SHARE=NO::"])
        // and hpvmdevmgmt refuses to set AUTORDEV by hand
        #expect(try cli.devmgmt("-m", "rdev:/dev/vda:attr:AUTORDEV=YES").status == 1)
    }

    @Test func enableDisableAndUsage() throws {
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0, demo: true)
        #expect(try cli.run("hpvmhostrdev", ["-D"]).status == 0)
        let off = try cli.withRegistry { store, _ in
            try HostRestrictions(store: store, root: cli.host.root, audit: AuditContext(user: "t", command: "t")).isAutomatic()
        }
        #expect(!off)
        #expect(try cli.run("hpvmhostrdev", ["-E"]).status == 0)
        let on = try cli.withRegistry { store, _ in
            try HostRestrictions(store: store, root: cli.host.root, audit: AuditContext(user: "t", command: "t")).isAutomatic()
        }
        #expect(on)
        #expect(try cli.run("hpvmhostrdev", ["-h"]).stdout.hasPrefix("usage: hpvmhostrdev [-D | -E | -d | -h | -r | -u]"))
        let bad = try cli.run("hpvmhostrdev", ["-x"])
        #expect(bad.status == 1 && bad.stderr.hasPrefix("hpvmhostrdev: "))
        let none = try cli.run("hpvmhostrdev", ["-r"])
        #expect(none.status == 1 && none.stderr.contains("no backup"))
    }

    @Test func theSavedBackupHasItsAuditRowAndTheLogStillVerifies() throws {
        // Given the demo host, restricted twice (the second run saves the first run's set)
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0, demo: true)
        #expect(try cli.run("hpvmhostrdev", ["-u"]).status == 0)
        #expect(try cli.run("hpvmhostrdev", ["-u"]).status == 0)
        // Then each saved backup is an audit row naming what it saved
        let rows = try runProcess("/usr/bin/sqlite3", [cli.registryPath, "SELECT change FROM auditLog WHERE object = 'hostrdev.backup'"])
        #expect(rows.stdout.split(separator: "\n").count == 2, "\(rows.stdout)")
        #expect(rows.stdout.contains(#""saved":["/dev/mapper/vg00-root","/dev/mapper/vg00-swap","/dev/vda"]"#), "\(rows.stdout)")
        // and the log still replays into the tables
        #expect(try cli.run("hpvmaudit", ["verify"]).status == 0)
        // and a refused run writes nothing, not even its backup
        let before = try cli.registryBytes()
        #expect(try cli.run("hpvmhostrdev", ["-u", "-d"]).status != 0)
        #expect(try cli.registryBytes() == before)
    }
}
