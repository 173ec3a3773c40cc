import Foundation
import HPVMTestSupport
import Testing

/// The oracle's own reading of a walk host, checked against what the host was built to be, so a
/// finding of the walk is the project's and not the oracle's.
@Suite struct OracleSelfTests {
    @Test func extentsFollowTheSpec() throws {
        var random = SplitMix64(seed: 7)
        let host = try WalkHost(random: &random)
        defer { host.remove() }
        let oracle = Oracle(root: host.root)
        func blocks(_ path: String) -> Set<Extent> { oracle.claim(path).blocks }
        func overlap(_ a: String, _ b: String) -> Bool {
            blocks(a).contains { x in blocks(b).contains { $0.overlaps(x) } }
        }

        // A map, its paths and its by-id name are one unit; its kpartx partitions are parts of it.
        let map = try #require(blocks("/dev/mapper/mpatha").first)
        #expect(map.part == 0 && !map.unit.hasPrefix("dev:") && !map.unit.hasPrefix("3"))
        #expect(blocks("/dev/mapper/mpatha-part1") == [Extent(unit: map.unit, part: 1)])
        #expect(overlap("/dev/mapper/mpatha-part1", "/dev/mapper/mpatha"))
        #expect(!overlap("/dev/mapper/mpatha-part1", "/dev/mapper/mpatha-part2"))
        #expect(!overlap("/dev/mapper/mpatha", "/dev/mapper/mpathb"))

        // The LV on sda2 is (sda's WWID, 2): it overlaps sda and /dev/rdisk/disk1, not sda1.
        #expect(overlap("/dev/vg0/data", "/dev/rdisk/disk1"))
        #expect(overlap("/dev/mapper/vg0-data", "/dev/sda2"))
        #expect(!overlap("/dev/vg0/data", "/dev/sda1"))
        #expect(blocks("/dev/mapper/vg1-big").count == 2)
        #expect(blocks("/dev/md0").count == 2)
        #expect(overlap("/dev/md0", "/dev/rdisk/disk2"))

        // The host's own: the boot disk (/ and swap) and the disk under /hpvm's LV, whole.
        let own = oracle.host.hostOwn
        #expect(own.count == 2)
        #expect(own.allSatisfy { $0.part == 0 })
        #expect(blocks("/dev/vgimg/images").allSatisfy { x in own.contains { $0.overlaps(x) } })
        #expect(!blocks("/dev/vg0/data").contains { x in own.contains { $0.overlaps(x) } })

        // Files: hard links, the symlinked folder and the bind-mount view are one inode.
        let a = try #require(oracle.claim("/hpvm/disks/a.img").file)
        #expect(oracle.claim("/vm/a-hard.img").file == a)
        #expect(oracle.claim("/srv/private/secret.img").file == oracle.claim("/hpvm/private/secret.img").file)
        #expect(oracle.claim("/hpvm/disks/a.img").container == blocks("/dev/vgimg/images"))
        #expect(oracle.claim("/srv/private/other.img").container == blocks("/dev/vgimg/images"))
        #expect(oracle.claim("/hpvm/private/scratch/tmp.img").container.isEmpty)
        let rootFS = oracle.claim("/iso/install.iso").container
        #expect(rootFS.count == 1 && rootFS.first?.part == 1 && rootFS.allSatisfy { x in own.contains { $0.overlaps(x) } })

        // RECURSIVE folders.
        #expect(oracle.covers(folder: "/hpvm/private", mode: "FS", path: "/hpvm/disks/priv/secret.img"))
        #expect(oracle.covers(folder: "/hpvm/private", mode: "FS", path: "/srv/private/secret.img"))
        #expect(oracle.covers(folder: "/hpvm/private", mode: "FS", path: "/hpvm/disks/p-hard.img"))
        #expect(!oracle.covers(folder: "/hpvm/private", mode: "FS", path: "/hpvm/private/scratch/tmp.img"))
        #expect(oracle.covers(folder: "/hpvm/private", mode: "DIR", path: "/hpvm/private/scratch/tmp.img"))
        #expect(!oracle.covers(folder: "/hpvm/private", mode: "DIR", path: "/hpvm/disks/a.img"))
        #expect(oracle.covers(folder: "/srv/private", mode: "DIR", path: "/hpvm/private/other.img"))
        #expect(oracle.covers(folder: "/vm", mode: "DIR", path: "/hpvm/disks/b.img"))
        #expect(!oracle.covers(folder: "/hpvm/disks", mode: "FS", path: "/dev/sda"))
    }
}

/// The oracle's judgement of single states, on registries written here with the `sqlite3` shell.
@Suite struct OracleJudgementTests {
    @Test func refusedStepThatChangedTheFileIsAFinding() {
        let oracle = Oracle(root: "/nonexistent")
        let same = (main: Optional(Data([1, 2, 3])), wal: Optional(Data()))
        let changed = (main: Optional(Data([1, 2, 4])), wal: Optional<Data>.none)
        #expect(oracle.stepFindings(status: 1, before: same, after: same).isEmpty)
        #expect(oracle.stepFindings(status: 0, before: same, after: changed).isEmpty)
        #expect(oracle.stepFindings(status: 1, before: same, after: changed).first?.hasPrefix("[c]") == true)
        #expect(oracle.stepFindings(status: 0, before: same, after: (main: same.main, wal: Data([0])))
            .first?.hasPrefix("[c:wal]") == true)
    }

    @Test func sharedAliasesAreFineAndUnsharedOnesAreNot() throws {
        var random = SplitMix64(seed: 11)
        let host = try WalkHost(random: &random)
        defer { host.remove() }
        let oracle = Oracle(root: host.root)
        let registry = oracle.registryPath
        try FileManager.default.createDirectory(
            atPath: (registry as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let schema = try String(contentsOfFile: #filePath.replacingOccurrences(
            of: "Tests/PromiseTests/OracleSelfTests.swift", with: "schema/registry.sql"), encoding: .utf8)
        let now = "'2026-01-01'"
        func sql(_ text: String) throws {
            let result = try ChildProcess.run("/usr/bin/sqlite3", [registry, "\n" + text], environment: ["PATH": "/usr/bin:/bin"])
            guard result.status == 0 else { throw OracleError(result.stderr) }
        }
        try sql(schema)
        try sql("""
            INSERT INTO guest (id, name, vmNumber, createdAt, updatedAt) VALUES (1, 'g1', 1, \(now), \(now)), (2, 'g2', 2, \(now), \(now));
            INSERT INTO device (id, type, name, devType, exist, identityKey, createdAt, updatedAt)
                VALUES (1, 'gdev', '/dev/mapper/mpatha', 'DISK', 1, 'k', \(now), \(now));
            INSERT INTO deviceName (deviceId, name, position) VALUES (1, '/dev/mapper/mpatha', 0), (1, '/dev/mapper/mpatha-part1', 1);
            INSERT INTO dependent (deviceId, name) VALUES (1, 'g1'), (1, 'g2');
            INSERT INTO guestResource (guestId, position, deviceType, adapterType, storageType, location)
                VALUES (1, 0, 'disk', 'avio_stor', 'disk', '/dev/mapper/mpatha'),
                       (2, 0, 'disk', 'avio_stor', 'disk', '/dev/mapper/mpatha-part1');
            """)
        let unshared = oracle.findings(try RegistrySnapshot.read(registry))
        #expect(unshared.count == 1 && unshared.first?.hasPrefix("[a] guests g1 and g2") == true)
        try sql("INSERT INTO deviceAttribute (deviceId, name, value) VALUES (1, 'SHARE', 'YES');")
        #expect(oracle.findings(try RegistrySnapshot.read(registry)).isEmpty)
        try sql("INSERT INTO device (id, type, name, devType, exist, identityKey, createdAt, updatedAt) "
            + "VALUES (2, 'rdev', '/hpvm/private', 'DIR', 1, 'p', \(now), \(now)); "
            + "INSERT INTO deviceAttribute (deviceId, name, value) VALUES (2, 'RECURSIVE', 'DIR'); "
            + "INSERT INTO guestResource (guestId, position, deviceType, adapterType, storageType, location) "
            + "VALUES (1, 1, 'disk', 'avio_stor', 'file', '/vm/p-hard.img');")
        let found = oracle.findings(try RegistrySnapshot.read(registry))
        #expect(found.contains { $0.hasPrefix("[b:recursive] guest g1 holds /vm/p-hard.img") })
        #expect(found.contains { $0.hasPrefix("[d] guest g1 has resource /vm/p-hard.img, which names no gdev entry") })
    }
}
