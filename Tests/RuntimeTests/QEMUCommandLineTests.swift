import Testing
@testable import Registry
@testable import Runtime

/// QEMU's argument vector, built from the registry's values without a shell.
@Suite struct QEMUCommandLineTests {
    static let options = QEMUCommandLine.Options(accelerator: .tcg)

    /// The value that follows each occurrence of `option`.
    func values(_ arguments: [String], _ option: String) -> [String] {
        arguments.indices.filter { arguments[$0] == option && $0 + 1 < arguments.count }.map { arguments[$0 + 1] }
    }

    @Test func firmwareOnlyGuestGetsPinnedMachineMonitorsConsoleAndPidfile() {
        // Given a guest with no devices
        let machine = GuestMachine(name: "g1", uuid: "0c6f4f8e-3b1a-4c5d-9e2f-0123456789ab", vcpus: 1, memoryMB: 64)
        // When its command line is built
        let arguments = QEMUCommandLine.arguments(machine, options: Self.options)
        // Then the machine type is pinned, the accelerator explicit, nothing is defaulted in
        #expect(values(arguments, "-machine") == ["pc-i440fx-7.2"])
        #expect(values(arguments, "-accel") == ["tcg"])
        #expect(arguments.contains("-nodefaults") && arguments.contains("-no-user-config"))
        #expect(values(arguments, "-display") == ["none"])
        #expect(values(arguments, "-m") == ["64M"] && values(arguments, "-smp") == ["1"])
        #expect(values(arguments, "-uuid") == ["0c6f4f8e-3b1a-4c5d-9e2f-0123456789ab"])
        #expect(values(arguments, "-name") == ["guest=g1,debug-threads=on"])
        // and two QMP monitors, a console socket and a pidfile, named relative to the run folder
        #expect(values(arguments, "-chardev") == [
            "socket,id=qmp,path=qmp,server=on,wait=off", "socket,id=qmp-status,path=qmp-status,server=on,wait=off",
            "socket,id=console,path=console,server=on,wait=off",
        ])
        #expect(values(arguments, "-mon") == ["chardev=qmp,mode=control", "chardev=qmp-status,mode=control"])
        #expect(values(arguments, "-serial") == ["chardev:console"])
        #expect(values(arguments, "-pidfile") == ["pid"])
        #expect(arguments.last == "-daemonize")
        #expect(!arguments.contains("-incoming") && !arguments.contains("-device"))
    }

    @Test func kvmIsChosenExplicitlyAndNeverTheFallback() {
        let arguments = QEMUCommandLine.arguments(GuestMachine(name: "g1", vcpus: 2, memoryMB: 2048), options: .init(accelerator: .kvm))
        #expect(values(arguments, "-accel") == ["kvm"])
        #expect(!arguments.joined(separator: " ").contains("kvm:tcg"))
        #expect(values(arguments, "-uuid").isEmpty)
        #expect(values(arguments, "-m") == ["2048M"] && values(arguments, "-smp") == ["2"])
    }

    @Test func avioDiskIsVirtioBlockWithCacheNoneOnItsBackingStore() {
        // Given an AVIO disk on a block device and a shared one on a file
        let machine = GuestMachine(
            name: "g1", vcpus: 1, memoryMB: 64,
            drives: [
                .init(media: .disk, bus: .virtioBlock, path: "/dev/sdb", isBlockDevice: true),
                .init(media: .disk, bus: .virtioBlock, path: "/hpvm/disks/shared.img", shared: true),
            ])
        let arguments = QEMUCommandLine.arguments(machine, options: Self.options)
        // Then each is a raw node with direct I/O (cache=none) on its file or device
        let blockdevs = values(arguments, "-blockdev")
        #expect(blockdevs == [
            #"{"driver":"raw","node-name":"drive0","read-only":false,"cache":{"direct":true,"no-flush":false},"file":{"driver":"host_device","filename":"/dev/sdb","cache":{"direct":true,"no-flush":false},"read-only":false}}"#,
            #"{"driver":"raw","node-name":"drive1","read-only":false,"cache":{"direct":true,"no-flush":false},"file":{"driver":"file","filename":"/hpvm/disks/shared.img","cache":{"direct":true,"no-flush":false},"read-only":false}}"#,
        ])
        // and a virtio-blk device, the shared one writable by other guests too
        #expect(values(arguments, "-device") == ["virtio-blk-pci,id=disk0,drive=drive0", "virtio-blk-pci,id=disk1,drive=drive1,share-rw=on"])
    }

    @Test func scsiDisksAndDVDsShareOneVirtioSCSIControllerPerSlot() {
        let machine = GuestMachine(
            name: "g1", vcpus: 1, memoryMB: 64,
            drives: [
                .init(media: .disk, bus: .virtioSCSI(bus: 0, device: 1, target: 0), path: "/dev/sdc", isBlockDevice: true),
                .init(media: .cdrom, bus: .virtioSCSI(bus: 0, device: 1, target: 1), path: "/iso/hpux.iso"),
                .init(media: .cdrom, bus: .virtioSCSI(bus: 0, device: 2, target: 3), path: nil),
            ])
        let arguments = QEMUCommandLine.arguments(machine, options: Self.options)
        #expect(values(arguments, "-device") == [
            "virtio-scsi-pci,id=scsi0_1", "scsi-hd,id=disk0,bus=scsi0_1.0,scsi-id=0,drive=drive0",
            "scsi-cd,id=disk1,bus=scsi0_1.0,scsi-id=1,drive=drive1",
            "virtio-scsi-pci,id=scsi0_2", "scsi-cd,id=disk2,bus=scsi0_2.0,scsi-id=3",
        ])
        // A DVD is read-only; an empty drive has no node
        let blockdevs = values(arguments, "-blockdev")
        #expect(blockdevs.count == 2)
        #expect(blockdevs[1].contains(#""read-only":true"#) && blockdevs[1].contains(#""filename":"/iso/hpux.iso""#))
    }

    @Test func aPathCannotSplitAnArgumentOrAddAnOption() {
        // Given backing-store paths with QEMU's separators and JSON's specials in them
        let hostile = #"/disks/a,file.locking=off,"x\y.img"#
        let machine = GuestMachine(name: "g1", vcpus: 1, memoryMB: 64, drives: [.init(media: .disk, bus: .virtioBlock, path: hostile)])
        let arguments = QEMUCommandLine.arguments(machine, options: Self.options)
        // Then the path stays one JSON string inside one argument
        let node = try? JSONValue.parse(values(arguments, "-blockdev")[0])
        #expect(node?["file"]?["filename"]?.string == hostile)
        #expect(!arguments.contains { $0.contains("locking=off") && !$0.hasPrefix("{") })
    }

    @Test func networkIsATapDescriptorWithTheGuestsMAC() {
        let machine = GuestMachine(
            name: "g1", vcpus: 1, memoryMB: 64,
            nics: [
                .init(model: .virtio, mac: "02a1b2c3d4e5", bridge: "vsw1", tapName: "hpvm1n0"),
                .init(model: .e1000, mac: "020000000002", bridge: "vsw2", tapName: "hpvm1n1"),
            ])
        let arguments = QEMUCommandLine.arguments(machine, options: Self.options)
        #expect(values(arguments, "-netdev") == ["tap,id=net0,fd=3", "tap,id=net1,fd=4"])
        #expect(values(arguments, "-device") == [
            "virtio-net-pci,id=nic0,netdev=net0,mac=02:a1:b2:c3:d4:e5", "e1000,id=nic1,netdev=net1,mac=02:00:00:00:00:02",
        ])
    }

    @Test func incomingMigrationTargetStartsPausedAndWaits() {
        let options = QEMUCommandLine.Options(accelerator: .tcg, incoming: true)
        let arguments = QEMUCommandLine.arguments(GuestMachine(name: "g1", vcpus: 1, memoryMB: 64), options: options)
        #expect(arguments.contains("-S") && values(arguments, "-incoming") == ["defer"])
    }

    @Test func planFromTheRegistryMapsAdaptersToDevices() {
        // Given a registry plan: an AVIO disk, a SCSI disk, a DVD, an AVIO LAN and a LAN
        let guest = Guest(
            id: 1, name: "g7", vmNumber: 7, label: nil, osType: nil, vcpus: 2, memoryMB: 128, runnable: true, modifiable: true,
            visible: true, statusSetBy: nil, migrationLock: nil, uuid: nil)
        func storage(_ type: ResourceStatement.DeviceType, _ adapter: String, _ address: (Int, Int, Int), _ path: String?) -> PlannedResource {
            PlannedResource(
                statement: ResourceStatement(
                    deviceType: type, adapter: adapter, bus: address.0, device: address.1, target: address.2, storage: path == nil ? "null" : "file",
                    location: path ?? "/iso"),
                backingPath: path, shared: false)
        }
        let lan = { (adapter: String, mac: String, slot: Int) in
            PlannedResource(
                statement: ResourceStatement(deviceType: .network, adapter: adapter, bus: 0, device: slot, mac: mac, storage: "vswitch", location: "vsw1"),
                backingPath: nil, shared: true)
        }
        let plan = GuestStartPlan(
            guest: guest,
            resources: [
                storage(.disk, "avio_stor", (0, 0, 0), "/r/a.img"), storage(.disk, "scsi", (0, 1, 2), "/r/b.img"),
                storage(.dvd, "avio_stor", (0, 0, 1), nil), lan("avio_lan", "020000000001", 3), lan("lan", "020000000002", 4),
            ])
        // When it becomes a machine
        let machine = GuestMachine(plan: plan)
        // Then AVIO storage is virtio-blk, SCSI and DVDs virtio-scsi targets, LANs taps named by VM number
        #expect(machine.drives.map(\.bus) == [.virtioBlock, .virtioSCSI(bus: 0, device: 1, target: 2), .virtioSCSI(bus: 0, device: 0, target: 1)])
        #expect(machine.drives.map(\.media) == [.disk, .disk, .cdrom])
        #expect(machine.drives[2].path == nil)
        #expect(machine.nics == [
            .init(model: .virtio, mac: "020000000001", bridge: "vsw1", tapName: "hpvm7n0"),
            .init(model: .e1000, mac: "020000000002", bridge: "vsw1", tapName: "hpvm7n1"),
        ])
        #expect(machine.vcpus == 2 && machine.memoryMB == 128)
    }
}
