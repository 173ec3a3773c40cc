public import Registry

#if canImport(Glibc)
internal import Glibc
#endif

/// A guest as QEMU will run it: processors, memory, drives and network cards, each with what the
/// host gives it. Built from the registry's start plan; ``QEMUCommandLine`` turns it into QEMU's
/// arguments.
public struct GuestMachine: Sendable, Equatable {
    public var name: String
    public var uuid: String?
    public var vcpus: Int
    public var memoryMB: Int
    public var drives: [Drive] = []
    public var nics: [NIC] = []

    public init(name: String, uuid: String? = nil, vcpus: Int, memoryMB: Int, drives: [Drive] = [], nics: [NIC] = []) {
        self.name = name
        self.uuid = uuid
        self.vcpus = vcpus
        self.memoryMB = memoryMB
        self.drives = drives
        self.nics = nics
    }

    /// One disk or DVD drive.
    public struct Drive: Sendable, Equatable {
        /// How the guest sees the drive.
        public enum Media: Sendable, Equatable {
            case disk
            case cdrom
        }

        /// The controller the drive hangs on.
        public enum Bus: Sendable, Equatable {
            /// A virtio-blk PCI device of its own (HP's AVIO storage).
            case virtioBlock
            /// A target of a virtio-scsi controller, one controller per HP slot (`bus,device`).
            case virtioSCSI(bus: Int, device: Int, target: Int)
        }

        public var media: Media
        public var bus: Bus
        /// The real path of the backing store; nil for an empty DVD drive.
        public var path: String?
        /// Whether the backing store is a block device (QEMU's `host_device`) rather than a file.
        public var isBlockDevice: Bool
        /// SHARE=YES: other guests may write it at the same time, so QEMU must not lock it for itself.
        public var shared: Bool

        public init(media: Media, bus: Bus, path: String?, isBlockDevice: Bool = false, shared: Bool = false) {
            self.media = media
            self.bus = bus
            self.path = path
            self.isBlockDevice = isBlockDevice
            self.shared = shared
        }

        public var readOnly: Bool { media == .cdrom }
    }

    /// One network card, on a tap interface on its vswitch's bridge.
    public struct NIC: Sendable, Equatable {
        /// The emulated card.
        public enum Model: String, Sendable, Equatable {
            /// HP's AVIO LAN: virtio-net.
            case virtio = "virtio-net-pci"
            /// HP's emulated LAN: an Intel e1000.
            case e1000 = "e1000"
        }

        public var model: Model
        /// 12 lower-case hex digits.
        public var mac: String
        /// The vswitch (Linux bridge) the tap goes on.
        public var bridge: String
        /// The tap interface's name (at most 15 bytes).
        public var tapName: String

        public init(model: Model, mac: String, bridge: String, tapName: String) {
            self.model = model
            self.mac = mac
            self.bridge = bridge
            self.tapName = tapName
        }

        /// The MAC as QEMU takes it: `02:00:00:00:00:01`.
        public var colonMAC: String {
            stride(from: 0, to: mac.count, by: 2).map { offset in
                let start = mac.index(mac.startIndex, offsetBy: offset)
                return String(mac[start..<mac.index(start, offsetBy: 2)])
            }.joined(separator: ":")
        }
    }
}

extension GuestMachine {
    /// The machine for a registry start plan.
    ///
    /// Storage on `avio_stor` is virtio-blk; on `scsi`, and every DVD, a target of the virtio-scsi
    /// controller of its slot. A network on `avio_lan` is virtio-net, on `lan` an e1000; its tap
    /// is named `hpvm<VM #>n<index>`.
    public init(plan: GuestStartPlan) {
        let guest = plan.guest
        self.init(name: guest.name, uuid: guest.uuid, vcpus: guest.vcpus, memoryMB: guest.memoryMB)
        for resource in plan.resources {
            let statement = resource.statement
            switch statement.deviceType {
            case .network:
                nics.append(
                    NIC(
                        model: statement.adapter == "lan" ? .e1000 : .virtio, mac: statement.mac ?? "",
                        bridge: statement.location, tapName: "hpvm\(guest.vmNumber)n\(nics.count)"))
            case .disk, .dvd:
                let media: Drive.Media = statement.deviceType == .dvd ? .cdrom : .disk
                let bus: Drive.Bus =
                    statement.adapter == "avio_stor" && media == .disk
                    ? .virtioBlock
                    : .virtioSCSI(bus: statement.bus ?? 0, device: statement.device ?? 0, target: statement.target ?? 0)
                var status = stat()
                let isBlock = resource.backingPath.map { stat($0, &status) == 0 && (status.st_mode & S_IFMT) == S_IFBLK } ?? false
                drives.append(Drive(media: media, bus: bus, path: resource.backingPath, isBlockDevice: isBlock, shared: resource.shared))
            }
        }
    }
}
