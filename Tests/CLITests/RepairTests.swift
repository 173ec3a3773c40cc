import Foundation
import HPVMTestSupport
import Host
import Registry
import Testing

@Suite struct RepairTests {
    @Test func theRepairScriptRunsAndLeavesARepairedRegistry() throws {
        // Given a registry that has gone out of step with the host:
        let cli = try CLIHost(sanDisks: 8, multipathMaps: 0)
        let scratch = cli.root + "/cwd"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let hostile = "/hpvm/disks/a;$(touch${IFS}PWNED)'x"
        try cli.host.file(hostile, contents: "")
        for spec in ["gdev:/dev/rdisk/disk1", "gdev:/dev/rdisk/disk2", "rdev:/dev/rdisk/disk3", "gdev:\(hostile)", "gdev:/dev/rdisk/disk5"] {
            #expect(try cli.devmgmt("-a", spec).status == 0, "\(spec)")
        }
        #expect(try cli.devmgmt("-a", "gdev:/dev/sde").status == 0)  // an alias of disk5
        try cli.withRegistry { store, guests in
            try guests.createGuest(name: "g1")
            try guests.attach(disk("/dev/rdisk/disk1"), to: "g1")
            try guests.createGuest(name: "gone")
            try guests.attach(disk("/dev/rdisk/disk2"), to: "gone")
            try store.executeForTesting("DELETE FROM guest WHERE name = 'gone'")  // a dependent naming no guest
        }
        // - the LUN of disk3 moved: /dev/rdisk/disk3 now reaches disk4's LUN, /dev/rdisk/disk13 reaches it
        try cli.host.link("/dev/rdisk/disk3", to: "/dev/sdd")
        try cli.host.link("/dev/rdisk/disk13", to: "/dev/sdc")
        // - the hostile file is gone, and so is the alias /dev/sde (disk5 itself stays)
        cli.host.removeItem(hostile)
        cli.host.removeItem("/dev/sde")
        try cli.host.file("/dev/rdisk/disk5.keep", contents: "")
        // When the repair script is written and run
        let script = try cli.devmgmt("-r")
        #expect(script.status == 0)
        #expect(script.stdout.hasPrefix("#!/bin/sh\n"))
        #expect(script.stdout.contains("HPVM_ROOT='\(cli.root)'") || script.stdout.contains("HPVM_ROOT=\(cli.root);"))
        #expect(script.stdout.contains("hpvmdevmgmt -d gdev:/dev/rdisk/disk2:depend:gone"))
        #expect(script.stdout.contains("hpvmdevmgmt -n rdev:/dev/rdisk/disk3:/dev/rdisk/disk13"))
        #expect(script.stdout.contains("hpvmdevmgmt -d 'gdev:/hpvm/disks/a;$(touch${IFS}PWNED)'\\''x'"))
        #expect(script.stdout.contains("hpvmdevmgmt -d gdev_alias:/dev/sde"))
        try script.stdout.write(toFile: scratch + "/repair.sh", atomically: true, encoding: .utf8)
        let ran = try runProcess(
            "/bin/sh", [scratch + "/repair.sh"], environment: ["PATH": binDirectory + ":/usr/bin:/bin", "HPVM_ROOT": "/"],
            directory: scratch)
        #expect(ran.status == 0, "\(ran.stderr)")
        // Then nothing was executed from the names, and the registry is repaired
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch) == ["repair.sh"])
        let lines = try cli.devmgmt("-l", "all").lines
        #expect(lines.contains { $0.hasPrefix("/dev/rdisk/disk13:CONFIG=rdev,EXIST=YES,") })
        #expect(lines.contains { $0.hasPrefix("/dev/rdisk/disk2:") && $0.contains(",SHARE=NO::") })
        #expect(lines.contains { $0.hasPrefix("/dev/rdisk/disk1:") && $0.contains(":g1:") })
        #expect(!lines.contains { $0.contains("PWNED") || $0.contains("/dev/sde") })
        #expect(try cli.devmgmt("-r").stdout.contains("# Nothing to repair."))
    }

    @Test func theRepairScriptReportsEveryBrokenPromiseInAHandEditedRegistry() throws {
        // Given guests g1..g4 on their own disks, and a registry then edited by hand with sqlite3
        let cli = try CLIHost(sanDisks: 6, multipathMaps: 0)
        for (guest, disk) in [("g1", 1), ("g2", 2), ("g3", 3), ("g4", 4)] {
            #expect(try cli.tool("hpvmcreate", "-P", guest, "-a", "disk:avio_stor::disk:/dev/rdisk/disk\(disk)").status == 0)
        }
        #expect(try cli.devmgmt("-r").stdout.contains("# Nothing to repair."))
        let sql = """
            INSERT INTO guestResource (guestId, position, deviceType, adapterType, bus, device, target, storageType, location)
              SELECT id, 9, 'disk', 'avio_stor', 0, 0, 9, 'disk', '/dev/rdisk/disk1' FROM guest WHERE name = 'g2';
            INSERT INTO dependent (deviceId, name) SELECT deviceId, 'g2' FROM deviceName WHERE name = '/dev/rdisk/disk1';
            INSERT INTO device (type, name, devType, exist, identityKey, createdAt, updatedAt)
              SELECT 'rdev', '/dev/sdc', 'DISK', 1, identityKey, 'now', 'now' FROM device WHERE name = '/dev/rdisk/disk3';
            INSERT INTO deviceName (deviceId, name, position) SELECT id, name, 0 FROM device WHERE name = '/dev/sdc';
            DELETE FROM dependent WHERE name = 'g4';
            """
        #expect(try runProcess("/usr/bin/sqlite3", [cli.registryPath, sql]).status == 0)
        // and the host has started to mount g2's disk
        try cli.host.mount("sdb", at: "/srv")
        // When the repair script is written
        let script = try cli.devmgmt("-r").stdout
        // Then every broken promise is there, for a person to decide
        #expect(script.contains("# VIOLATION: /dev/rdisk/disk1 of guest g1 is") && script.contains("used by g2 and not SHARE=YES"))
        #expect(script.contains("# VIOLATION: guest g3 uses /dev/rdisk/disk3, which is restricted") && script.contains("rdev entry /dev/sdc"))
        #expect(script.contains("# VIOLATION: guest g4 uses /dev/rdisk/disk4 but is not its dependent"))
        #expect(script.contains("# VIOLATION: guest g2 uses /dev/rdisk/disk2, which is the host's own storage") && script.contains("mounted on /srv"))
        #expect(!script.contains("# Nothing to repair."))
    }

    @Test func aGoneDeviceThatAGuestUsesIsLeftToAPerson() throws {
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 0)
        try cli.withRegistry { _, guests in
            try guests.createGuest(name: "g1")
            try guests.attach(disk("/dev/rdisk/disk1"), to: "g1")
        }
        cli.host.removeItem("/dev/rdisk/disk1")
        cli.host.removeItem("/dev/sda")
        let script = try cli.devmgmt("-r").stdout
        #expect(script.contains("# MANUAL: gdev entry /dev/rdisk/disk1 no longer exists and is used by g1."))
        #expect(!script.contains("hpvmdevmgmt -d gdev:/dev/rdisk/disk1\n"))
    }

    @Test func rescanRefreshesThroughTheCommand() throws {
        let cli = try CLIHost(sanDisks: 2, multipathMaps: 1)
        let map = cli.layout.multipathMaps[0]
        #expect(try cli.devmgmt("-a", "rdev:\(map.path)").status == 0)
        #expect(try cli.devmgmt("-a", "gdev:/dev/rdisk/disk1").status == 0)
        cli.host.removeItem("/dev/rdisk/disk1")
        let result = try cli.devmgmt("-I", "-V")
        #expect(result.status == 0)
        #expect(result.stdout.contains("1 changed EXIST"))
        let lines = try cli.devmgmt("-l", "all").lines
        let mapLine = try #require(lines.first { $0.hasPrefix(map.path) })
        let names = mapLine.split(separator: ":")[0].split(separator: ",").map(String.init)
        #expect(Set(names) == Set(map.paths))
        #expect(lines.contains { $0.hasPrefix("/dev/rdisk/disk1,/dev/sda:CONFIG=gdev,EXIST=NO,") || $0.hasPrefix("/dev/rdisk/disk1:CONFIG=gdev,EXIST=NO,") })
    }
}

@Suite struct ConcurrencyTests {
    @Test func parallelAddsAllLandWithoutErrors() throws {
        // Given 4 processes each adding 25 entries at once
        let cli = try CLIHost(sanDisks: 0, multipathMaps: 0)
        for worker in 0..<4 {
            for index in 0..<25 { try cli.host.file("/hpvm/disks/w\(worker)-\(index).img", contents: "") }
        }
        #expect(try cli.devmgmt("-l", "all").status == 0)
        let script = """
            i=0; while [ $i -lt 25 ]; do "$0" -a "gdev:/hpvm/disks/w$1-$i.img" || echo "failed $1-$i" >&2; i=$((i+1)); done
            """
        let root = cli.root
        let group = DispatchGroup()
        let results = LockedResults()
        for worker in 0..<4 {
            group.enter()
            DispatchQueue.global().async {
                let result = try? runProcess(
                    "/bin/sh", ["-c", script, binDirectory + "/hpvmdevmgmt", "\(worker)"], environment: ["HPVM_ROOT": root])
                results.append(result)
                group.leave()
            }
        }
        group.wait()
        // Then every add succeeded and every entry is there, with an intact audit chain
        for result in results.all {
            #expect(result?.status == 0)
            #expect(result?.stderr == "", "\(result?.stderr ?? "")")
        }
        #expect(try cli.devmgmt("-l", "gdev").lines.count == 100)
        try cli.withRegistry { store, _ in
            try store.verifyAuditLog()
            #expect(try store.auditLog().count == 100)
        }
    }
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [CommandResult?] = []
    func append(_ result: CommandResult?) { lock.withLock { results.append(result) } }
    var all: [CommandResult?] { lock.withLock { results } }
}
