/// QEMU's argument vector for a guest: built from the registry's values, never passed through a
/// shell. Every value that comes from the registry is either checked by it (the guest's name, a
/// MAC of 12 hex digits) or written as a JSON string (a backing store's path in `-blockdev`), so
/// it can neither split an argument nor add an option.
public enum QEMUCommandLine {
    /// The machine type, pinned: a guest keeps its hardware across QEMU updates and migrations
    /// (`microvm` hung in 4 of 5 boots on these hosts; the newest `pc` would change with QEMU).
    public static let machineType = "pc-i440fx-7.2"

    /// How the guest's processors run.
    public enum Accelerator: String, Sendable, CaseIterable {
        /// The host's KVM (the default on a VM host).
        case kvm
        /// QEMU's own translator, slow but everywhere (tests; `/dev/kvm` that runs no normal guest).
        case tcg
    }

    /// What is not the guest's own: how QEMU runs it.
    public struct Options: Sendable, Equatable {
        public var accelerator: Accelerator
        public var machineType: String
        /// Start paused and wait for a migration stream (`-S -incoming defer`), for the target of
        /// an online migration.
        public var incoming: Bool
        /// Detach once started (`-daemonize`): QEMU's parent exits when the monitors listen.
        public var daemonize: Bool

        public init(accelerator: Accelerator, machineType: String = QEMUCommandLine.machineType, incoming: Bool = false, daemonize: Bool = true) {
            self.accelerator = accelerator
            self.machineType = machineType
            self.incoming = incoming
            self.daemonize = daemonize
        }
    }

    /// The descriptor number the child holds the tap of network card `index` on.
    public static func tapDescriptor(_ index: Int) -> Int32 { Int32(3 + index) }

    /// The arguments (without the program's name), with the run folder's files named relative to
    /// it: QEMU is started inside the folder.
    public static func arguments(_ machine: GuestMachine, options: Options) -> [String] {
        var arguments = [
            "-name", "guest=\(machine.name),debug-threads=on",
            "-no-user-config", "-nodefaults",
            "-machine", options.machineType,
            "-accel", options.accelerator.rawValue,
            "-smp", String(machine.vcpus),
            "-m", "\(machine.memoryMB)M",
            "-display", "none",
        ]
        if let uuid = machine.uuid, isUUID(uuid) { arguments += ["-uuid", uuid] }
        for (id, file) in [("qmp", RunFolder.File.monitor), ("qmp-status", .statusMonitor)] {
            arguments += ["-chardev", "socket,id=\(id),path=\(file.rawValue),server=on,wait=off", "-mon", "chardev=\(id),mode=control"]
        }
        arguments += ["-chardev", "socket,id=console,path=\(RunFolder.File.console.rawValue),server=on,wait=off", "-serial", "chardev:console"]
        var controllers: [String] = []
        for (index, drive) in machine.drives.enumerated() {
            var device: String
            switch drive.bus {
            case .virtioBlock:
                device = "virtio-blk-pci,id=disk\(index)"
            case .virtioSCSI(let bus, let slot, let target):
                let controller = "scsi\(bus)_\(slot)"
                if !controllers.contains(controller) {
                    controllers.append(controller)
                    arguments += ["-device", "virtio-scsi-pci,id=\(controller)"]
                }
                device = "\(drive.media == .cdrom ? "scsi-cd" : "scsi-hd"),id=disk\(index),bus=\(controller).0,scsi-id=\(target)"
            }
            if let path = drive.path {
                let file = JSONValue.object([
                    ("driver", .string(drive.isBlockDevice ? "host_device" : "file")),
                    ("filename", .string(path)),
                    ("cache", .object([("direct", .bool(true)), ("no-flush", .bool(false))])),
                    ("read-only", .bool(drive.readOnly)),
                ])
                let node = JSONValue.object([
                    ("driver", .string("raw")), ("node-name", .string("drive\(index)")), ("read-only", .bool(drive.readOnly)),
                    ("cache", .object([("direct", .bool(true)), ("no-flush", .bool(false))])), ("file", file),
                ])
                arguments += ["-blockdev", node.description]
                device += ",drive=drive\(index)"
                if drive.shared { device += ",share-rw=on" }
            }
            arguments += ["-device", device]
        }
        for (index, nic) in machine.nics.enumerated() {
            arguments += [
                "-netdev", "tap,id=net\(index),fd=\(tapDescriptor(index))",
                "-device", "\(nic.model.rawValue),id=nic\(index),netdev=net\(index),mac=\(nic.colonMAC)",
            ]
        }
        arguments += ["-pidfile", RunFolder.File.pid.rawValue]
        if options.incoming { arguments += ["-S", "-incoming", "defer"] }
        if options.daemonize { arguments.append("-daemonize") }
        return arguments
    }

    /// `8-4-4-4-12` hex digits.
    static func isUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }
}
