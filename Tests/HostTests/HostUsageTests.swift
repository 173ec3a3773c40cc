import HPVMTestSupport
import Host
import Testing

@Suite struct HostUsageTests {
    @Test func findsMountedSwapAndLVMMembersButNotGuestLUNs() throws {
        // Given the demo host: vda1 on /boot, vda2 an LVM PV with root (on /) and swap
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        _ = try DemoHost.build(at: host.path)
        // When the host's own devices are listed
        let devices = HostUsage(root: host.root).devices()
        // Then the boot disk and both volumes are there, and no SAN LUN is
        let paths = Set(devices.map(\.path))
        #expect(paths == ["/dev/vda", "/dev/mapper/vg00-root", "/dev/mapper/vg00-swap"])
    }

    @Test func mountedArraysAndVolumesClaimTheirMembersButIdleOnesStayFreeForGuests() throws {
        // Given an md array mounted on /data, and a volume group that nothing mounts
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let a = try host.scsiDisk(wwid: nil, transport: .sas)
        let b = try host.scsiDisk(wwid: nil, transport: .sas)
        _ = try host.mdArray(name: "md0", members: [a, b])
        try host.mount("md0", at: "/data")
        let c = try host.scsiDisk(wwid: "naa.5000c500aaaaaaaa", transport: .sas)
        _ = try host.logicalVolume(vg: "data", lv: "lv1", on: [c])
        // When the host's own devices are listed
        let paths = Set(HostUsage(root: host.root).devices().map(\.path))
        // Then the array and both its members are the host's; the idle volume and its disk are not
        #expect(paths.isSuperset(of: ["/dev/\(a)", "/dev/\(b)", "/dev/md0"]))
        #expect(!paths.contains("/dev/\(c)") && !paths.contains("/dev/mapper/data-lv1"))
    }

    @Test func mountTableParsesEscapesAndFindsMountPoints() {
        let table = MountTable(
            mounts: MountTable.parseMountInfo(
                "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 22 0:40 / /hpvm/private/other\\040fs rw - tmpfs tmpfs rw\nbad line\n"),
            swaps: [])
        #expect(table.mounts.count == 2)
        #expect(table.mounts[1].mountPoint == "/hpvm/private/other fs")
        #expect(table.mountPoint(of: "/hpvm/private/other fs/x.img") == "/hpvm/private/other fs")
        #expect(table.mountPoint(of: "/hpvm/private/x.img") == "/")
    }
}
