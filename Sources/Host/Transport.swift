/// How a block device reaches the host, read from its sysfs device path as udev's `path_id` does.
public enum Transport: String, Sendable, Codable, CaseIterable {
    case fibreChannel = "fc"
    case iscsi
    case sas
    case ata
    case virtio
    case nvme
    case nvmeFabric = "nvme-fabric"
    case usb
    case multipath
    case logicalVolume = "lv"
    case unknown

    /// Whether the device is storage-area-network storage another host can also reach.
    ///
    /// Fibre Channel, iSCSI, NVMe over fabrics and multipath maps are SAN; everything else,
    /// including an unknown transport, counts as direct-attached.
    public var isSAN: Bool {
        switch self {
        case .fibreChannel, .iscsi, .nvmeFabric, .multipath: return true
        default: return false
        }
    }

    /// Classifies a resolved sysfs device path (`/sys/devices/…/host3/rport-3:0-0/…`).
    ///
    /// - Parameter nvmeTransport: the contents of the NVMe controller's `transport` file, if any.
    public static func classify(devicePath: String, nvmeTransport: String? = nil) -> Transport {
        if devicePath.contains("/rport-") { return .fibreChannel }
        if devicePath.contains("/session") { return .iscsi }
        if devicePath.contains("/end_device-") { return .sas }
        if devicePath.contains("/usb") { return .usb }
        if devicePath.contains("/ata") { return .ata }
        if devicePath.contains("virtio") { return .virtio }
        if devicePath.contains("nvme") {
            switch nvmeTransport?.trimmingWhitespace() {
            case "fc", "tcp", "rdma": return .nvmeFabric
            default: return .nvme
            }
        }
        return .unknown
    }
}
