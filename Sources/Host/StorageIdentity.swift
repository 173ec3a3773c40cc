/// What kind of object a device entry names; printed as `DEVTYPE=` in `hpvmdevmgmt -l`.
public enum DeviceKind: String, Sendable, Codable, CaseIterable {
    /// A whole disk, a partition or a multipath map: anything under `sys/block` that is not a volume.
    case disk = "DISK"
    /// An LVM or other device-mapper volume that is not a multipath map.
    case logicalVolume = "LV"
    /// A regular file, such as a disk image or an ISO.
    case file = "FILE"
    /// A directory.
    case directory = "DIR"
    /// A virtual switch (a Linux bridge), named without a `/`.
    case vswitch = "VSWITCH"
    /// A path that does not resolve, or an object of another kind.
    case unknown = "UNKNOWN"
}

/// Who a path is on this host: its kind, and for block devices the name, WWID and transport.
public struct StorageIdentity: Sendable, Equatable {
    /// The host path or vswitch name as given.
    public let path: String
    /// The host path after following symlinks (the vswitch name for a vswitch).
    public let resolvedPath: String
    /// Whether the object exists.
    public let exists: Bool
    /// The object's kind.
    public let kind: DeviceKind
    /// The kernel name under `sys/block` or `sys/class/block` (`sdb`, `dm-3`, `nvme0n1`, `sdb1`).
    public let blockName: String?
    /// For a partition, the kernel name of the disk that holds it.
    public let wholeDiskName: String?
    /// The world-wide identifier, when the device reports one.
    public let wwid: WWID?
    /// The device's own stable identifier when it has no WWID (a device-mapper UUID).
    public let stableID: String?
    /// How the device reaches the host.
    public let transport: Transport?
    /// The identity of the containing disk, for a partition.
    public let containerKey: String?
    /// For a partition, its number on the disk.
    public let partitionNumber: Int?

    public init(
        path: String, resolvedPath: String, exists: Bool, kind: DeviceKind, blockName: String? = nil,
        wholeDiskName: String? = nil, wwid: WWID? = nil, stableID: String? = nil, transport: Transport? = nil,
        containerKey: String? = nil, partitionNumber: Int? = nil
    ) {
        self.path = path
        self.resolvedPath = resolvedPath
        self.exists = exists
        self.kind = kind
        self.blockName = blockName
        self.wholeDiskName = wholeDiskName
        self.wwid = wwid
        self.stableID = stableID
        self.transport = transport
        self.containerKey = containerKey
        self.partitionNumber = partitionNumber
    }

    /// The key two names must share to be one device.
    ///
    /// `wwid:<hex>` when the device has a WWID (unless `ignoringWWID`), else the device-mapper
    /// UUID, else the kernel name, else the resolved path. A device without a WWID is never
    /// assumed unique: two paths reaching the same kernel device or file still share a key. A
    /// partition is its disk's key and its number (`wwid:<hex>#p1`), so partition 1 seen through
    /// two paths of one LUN is one device.
    public func key(ignoringWWID: Bool = false) -> String {
        if kind == .vswitch { return "vswitch:" + resolvedPath }
        if !ignoringWWID, let containerKey, let partitionNumber { return containerKey + "#p\(partitionNumber)" }
        if !ignoringWWID, let wwid { return "wwid:" + wwid.normalized }
        if let stableID { return "dm:" + stableID }
        if let blockName { return "dev:" + blockName }
        return "path:" + resolvedPath
    }

    /// Whether the device is direct-attached storage (a disk that is not on a SAN).
    public var isDirectAttached: Bool {
        guard kind == .disk, let transport else { return false }
        return !transport.isSAN
    }
}
