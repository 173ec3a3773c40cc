import Foundation
import HPVMTestSupport
import Testing

/// `-m ... -C`: backing stores copied over the migration's own connection, holes kept as holes,
/// checked by a checksum of what reached the target's disk.
@Suite(.requiresRootAndSSHD, .serialized) struct CopyTests {
    /// A 64 MiB sparse file with three data regions.
    func makeSparse(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(fd) }
        ftruncate(fd, 64 << 20)
        for (offset, byte) in [(0, UInt8(0x11)), (10 << 20, 0x22), (63 << 20, 0x33)] {
            let block = [UInt8](repeating: byte, count: 300_000)
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, block.count, off_t(offset)) }
        }
    }

    func allocated(_ path: String) -> Int {
        var st = stat()
        stat(path, &st)
        return Int(st.st_blocks) * 512
    }

    @Test func aSparseFileIsCopiedWithItsHoles() throws {
        let hosts = try TwoHosts()
        try makeSparse(hosts.rootA.path + "/hpvm/disks/g1.img")
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g1", "-r", "1G", "-a", "disk:avio_stor:0,0,0:file:/hpvm/disks/g1.img"]).status == 0)
        // Without -C the file is not on the target
        let refused = try hosts.migrate("-P", "g1")
        #expect(refused.status == 1 && refused.stderr.contains("Target VM Host error - Device does not exist."))
        // With -C it is copied, then the guest moves
        let moved = try hosts.migrate("-P", "g1", "-m", "disk:avio_stor:0,0,0:file:/hpvm/disks/g1.img", "-C")
        #expect(moved.status == 0, "\(moved.stderr)")
        let source = try Data(contentsOf: URL(fileURLWithPath: hosts.rootA.path + "/hpvm/disks/g1.img"))
        let target = try Data(contentsOf: URL(fileURLWithPath: hosts.rootB.path + "/hpvm/disks/g1.img"))
        #expect(source == target)
        #expect(allocated(hosts.rootB.path + "/hpvm/disks/g1.img") < 8 << 20, "holes were filled on the target")
        #expect(try hosts.runnable("B", "g1") == true)
    }

    @Test func directAttachedStorageIsRefusedUnlessCopied() throws {
        let hosts = try TwoHosts()
        // /dev/sde is host A's SAS disk; fill it with data
        try Data(repeating: 0x5A, count: 2 << 20).write(to: URL(fileURLWithPath: hosts.rootA.path + "/dev/sde"))
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g2", "-r", "1G", "-a", "disk:avio_stor:0,0,0:disk:/dev/sde"]).status == 0)
        let refused = try hosts.migrate("-P", "g2")
        #expect(refused.status == 1 && refused.stderr.contains("das: /dev/sde is SAS storage on the source"))
        let moved = try hosts.migrate("-P", "g2", "-m", "disk:avio_stor:0,0,0:file:/hpvm/disks/g2.img", "-C")
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: hosts.rootB.path + "/hpvm/disks/g2.img")) == Data(repeating: 0x5A, count: 2 << 20))
        #expect(try hosts.on("B", "hpvmstatus", ["-P", "g2", "-d"]).stdout == "disk:avio_stor:0,0,0:file:/hpvm/disks/g2.img\n")
    }

    @Test func aCopyIntoTheTargetsRegistryOrASharedDiskIsRefusedByTheCheckAndTheMigration() throws {
        let hosts = try TwoHosts()
        try Data(repeating: 0x11, count: 1 << 20).write(to: URL(fileURLWithPath: hosts.rootA.path + "/hpvm/disks/g4.img"))
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g4", "-r", "1G", "-a", "disk:avio_stor:0,0,0:file:/hpvm/disks/g4.img"]).status == 0)
        // On B: a disk two guests share
        #expect(try hosts.on("B", "hpvmcreate", ["-P", "b1", "-r", "1G", "-a", "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk2"]).status == 0)
        #expect(try hosts.on("B", "hpvmdevmgmt", ["-m", "gdev:/dev/rdisk/disk2:attr:SHARE=YES"]).status == 0)
        #expect(try hosts.on("B", "hpvmcreate", ["-P", "b2", "-r", "1G", "-a", "disk:avio_stor:0,0,0:disk:/dev/rdisk/disk2"]).status == 0)
        let registryB = hosts.rootB.path + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
        let before = try Data(contentsOf: URL(fileURLWithPath: registryB))
        for destination in ["file:/var/opt/hpvm/common/hpvm_mgmtdb.sqlite", "disk:/dev/rdisk/disk2"] {
            let check = try hosts.migrate("-P", "g4", "-m", "disk:avio_stor:0,0,0:\(destination)", "-C", "-s")
            #expect(check.status == 1 && check.stderr.contains("cannot copy into"), "\(destination): \(check.stderr)")
            let moved = try hosts.migrate("-P", "g4", "-m", "disk:avio_stor:0,0,0:\(destination)", "-C")
            #expect(moved.status == 1 && moved.stderr.contains("cannot copy into"), "\(destination): \(moved.stderr)")
        }
        // B's registry is intact: the refused checks changed nothing
        #expect(try Data(contentsOf: URL(fileURLWithPath: registryB)) == before)
        #expect(try hosts.on("B", "hpvmstatus", ["-P", "b1", "-d"]).status == 0)
        #expect(try hosts.runnable("A", "g4") == true)
    }

    @Test func copyWithoutAMappedDeviceIsAUsageError() throws {
        let hosts = try TwoHosts()
        #expect(try hosts.on("A", "hpvmcreate", ["-P", "g3", "-r", "1G"]).status == 0)
        let result = try hosts.migrate("-P", "g3", "-C")
        #expect(result.status == 64 && result.stderr.contains("-C goes with -m"))
    }

    @Test func theTargetWritesNothingItDidNotCheck() throws {
        // A source that asks the target half to copy into a path no check allowed is refused,
        // and the file is not created.
        let root = try HostBuilder.temporary(prefix: "hpvm-target")
        defer { root.remove() }
        let requests = [
            #"{"type":"hello","version":1}"#,
            #"{"type":"copy","migrationID":"x","path":"/etc/evil","size":4}"#,
        ].joined(separator: "\n") + "\n"
        let result = try TwoHosts.capture(
            "/bin/sh", ["-c", "printf '%s' \"$1\" | \"$0\" --target", TwoHosts.bin + "/hpvmmigrate", requests],
            environment: ["HPVM_ROOT": root.path, "PATH": "/usr/bin:/bin"])
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.last?.contains(#""type":"error""#) == true)
        #expect(lines.last?.contains("was not checked as a copy target") == true)
        #expect(!FileManager.default.fileExists(atPath: root.path + "/etc/evil"))
    }
}
