import HPVMTestSupport
import Host
import Testing

@Suite struct StorageInventoryTests {
    @Test func scsiAliasAndRdiskLinkShareOneIdentity() throws {
        // Given a host with a SAN disk under /dev/rdisk and a LUN reached by two paths
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let layout = try HostBuilder.make(at: host, sanDisks: 1, aliasedSANDisks: 1)
        let inventory = StorageInventory(root: host.root)
        // When each path is identified
        let disk = inventory.identify(layout.sanDisks[0].path)
        let direct = inventory.identify(layout.sanDisks[0].paths[1])
        let first = inventory.identify(layout.aliasedDisks[0].paths[0])
        let second = inventory.identify(layout.aliasedDisks[0].paths[1])
        // Then each pair is one device, SAN, a disk
        #expect(disk.exists && disk.kind == .disk && disk.transport == .fibreChannel)
        #expect(disk.key() == direct.key())
        #expect(first.key() == second.key())
        #expect(first.key() != disk.key())
        #expect(disk.resolvedPath == layout.sanDisks[0].paths[1])
    }

    @Test func multipathMapAndItsPathsShareTheWWID() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let layout = try HostBuilder.make(at: host, multipathMaps: 1)
        let inventory = StorageInventory(root: host.root)
        let map = inventory.identify(layout.multipathMaps[0].path)
        #expect(map.transport == .multipath)
        #expect(map.transport?.isSAN == true)
        for path in layout.multipathMaps[0].paths {
            #expect(inventory.identify(path).key() == map.key(), "\(path)")
        }
    }

    @Test func nvmeNamespaceReadsItsOwnWWIDAndFabricTransport() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let fabric = try host.nvmeDisk(wwid: "eui.0025388b91b5d7e1", fabric: true)
        let local = try host.nvmeDisk(wwid: "eui.0025388b91b5d7e2", fabric: false)
        let inventory = StorageInventory(root: host.root)
        let f = inventory.identify("/dev/\(fabric)")
        let l = inventory.identify("/dev/\(local)")
        #expect(f.wwid?.normalized == "0025388b91b5d7e1")
        #expect(f.transport == .nvmeFabric && f.isDirectAttached == false)
        #expect(l.transport == .nvme && l.isDirectAttached)
    }

    @Test(arguments: [Transport.sas, .ata, .usb, .iscsi, .fibreChannel])
    func transportIsReadFromTheSysfsDevicePath(transport: Transport) throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let name = try host.scsiDisk(wwid: "naa.5000c50012345678", transport: transport)
        let identity = StorageInventory(root: host.root).identify("/dev/\(name)")
        #expect(identity.transport == transport)
        #expect(identity.isDirectAttached == !transport.isSAN)
    }

    @Test func aDiskWithoutWWIDIsIdentifiedByKernelNameNotAsUnique() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        _ = try host.virtioDisk(name: "vda")
        try host.link("/dev/disk/by-path/virtio-pci-0000:00:04.0", to: "/dev/vda")
        let inventory = StorageInventory(root: host.root)
        let a = inventory.identify("/dev/vda")
        let b = inventory.identify("/dev/disk/by-path/virtio-pci-0000:00:04.0")
        #expect(a.wwid == nil)
        #expect(a.key() == "dev:vda" && a.key() == b.key())
    }

    @Test func partitionKnowsItsDisk() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let disk = try host.scsiDisk(wwid: "naa.600508b4000115d0000000000000aaaa")
        let part = try host.partition(of: disk, number: 1)
        let inventory = StorageInventory(root: host.root)
        let identity = inventory.identify("/dev/\(part)")
        #expect(identity.wholeDiskName == disk)
        #expect(identity.containerKey == inventory.identify("/dev/\(disk)").key())
    }

    @Test func absoluteSymlinksStayUnderTheRootAndLoopsDoNotHang() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        try host.file("/images/a.img", contents: "x")
        try host.rawLink("/dev/guestdisk", target: "/images/a.img")
        try host.rawLink("/dev/escape", target: "../../../../../../etc/passwd")
        try host.rawLink("/loop/a", target: "b")
        try host.rawLink("/loop/b", target: "a")
        let inventory = StorageInventory(root: host.root)
        let file = inventory.identify("/dev/guestdisk")
        #expect(file.exists && file.kind == .file && file.resolvedPath == "/images/a.img")
        // /etc/passwd of the real machine is not under this root
        #expect(!inventory.identify("/dev/escape").exists)
        #expect(!inventory.identify("/loop/a").exists)
    }

    @Test func scanFindsEveryDevPathOfEachDevice() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        let layout = try HostBuilder.make(at: host, sanDisks: 2, multipathMaps: 1)
        let scan = StorageInventory(root: host.root).scan()
        let wwid = try #require(WWID(layout.multipathMaps[0].wwid ?? ""))
        #expect(Set(scan.paths(wwid: wwid)) == Set(layout.multipathMaps[0].paths))
        let sanWWID = try #require(WWID(layout.sanDisks[0].wwid ?? ""))
        #expect(Set(scan.paths(wwid: sanWWID)) == Set(layout.sanDisks[0].paths))
    }

    @Test func vswitchExistsWhenTheBridgeDoes() throws {
        let host = try HostBuilder.temporary()
        defer { host.remove() }
        try host.bridge("vsw1")
        let inventory = StorageInventory(root: host.root)
        #expect(inventory.identify("vsw1").exists && inventory.identify("vsw1").kind == .vswitch)
        #expect(!inventory.identify("vsw9").exists)
    }
}
