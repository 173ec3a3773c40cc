#if canImport(Glibc)
internal import Glibc
#endif

/// A stretch of block storage: a whole unit (a LUN by WWID, or a disk by kernel name when it has
/// none), or one partition of it.
public struct BlockExtent: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// `wwid:<hex>`, or `dev:<kernel name>` for a disk that reports no WWID.
    public let unit: String
    /// The partition number, 0 for the whole unit.
    public let part: Int

    public init(unit: String, part: Int = 0) {
        self.unit = unit
        self.part = part
    }

    /// Whether the two share any block: the same unit, and one of them whole or both the same partition.
    public func overlaps(_ other: BlockExtent) -> Bool {
        unit == other.unit && (part == 0 || other.part == 0 || part == other.part)
    }

    /// The same unit, whole.
    public var whole: BlockExtent { BlockExtent(unit: unit) }

    public var description: String { part == 0 ? unit : "\(unit) partition \(part)" }

    public static func < (lhs: BlockExtent, rhs: BlockExtent) -> Bool {
        (lhs.unit, lhs.part) < (rhs.unit, rhs.part)
    }
}

/// A file as the kernel knows it: the same through hard links, bind mounts and symlinked folders.
public struct FileID: Sendable, Hashable, CustomStringConvertible {
    public let device: UInt64
    public let inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// `ino:<dev>:<inode>`, the form the registry stores.
    public var description: String { "ino:\(device):\(inode)" }
}

/// Where a path lives on its file system, independent of the mount it is seen through: the
/// mounted device's number and the path inside that file system (a bind mount of `/a` at `/b`
/// shows `/b/x` as the file system's `/a/x`).
public struct FileSystemLocation: Sendable, Hashable {
    /// `major:minor` of the file system.
    public let deviceNumber: String
    /// The path inside the file system.
    public let path: String

    /// Whether `self` is `other` or lies below it on the same file system.
    public func isSameOrBelow(_ other: FileSystemLocation) -> Bool {
        deviceNumber == other.deviceNumber && HostPath.isSameOrBelow(path, other.path)
    }
}

/// The storage a path occupies (DESIGN.md §4): the block extents it is, the file it is, and for a
/// file the block extents of the file system it lives on.
public struct StorageExtents: Sendable, Equatable {
    /// Raw block storage: what the path *is* when it names a block device (followed down through
    /// device-mapper and md `slaves/`).
    public var blocks: Set<BlockExtent> = []
    /// The file or folder itself.
    public var file: FileID?
    /// For a file or folder: the block storage of the file system holding it.
    public var container: Set<BlockExtent> = []
    /// For a file or folder: where it lives on its file system.
    public var location: FileSystemLocation?

    public init(
        blocks: Set<BlockExtent> = [], file: FileID? = nil, container: Set<BlockExtent> = [],
        location: FileSystemLocation? = nil
    ) {
        self.blocks = blocks
        self.file = file
        self.container = container
        self.location = location
    }

    /// Whether the path occupies nothing the rules can see (a vswitch, a path that does not exist).
    public var isEmpty: Bool { blocks.isEmpty && file == nil }

    /// The extents of `blocks` that overlap any of `others`.
    public static func overlap(_ mine: Set<BlockExtent>, _ others: Set<BlockExtent>) -> BlockExtent? {
        mine.sorted().first { extent in others.contains { $0.overlaps(extent) } }
    }
}

extension StorageInventory {
    /// The storage a host path occupies.
    ///
    /// A block device is its unit (by WWID when it has one) or a partition of it; a multipath
    /// partition (`partN-mpath-…`) is partition N of the map's LUN; an LVM volume, md array or other
    /// device-mapper device is everything below it in `slaves/`. A file is its inode, on the block
    /// storage of its file system. A vswitch, or a path that does not exist, occupies nothing.
    ///
    /// - Parameter scan: a scan made just before, whose block devices are used instead of reading
    ///   `sys/block` again (for rescans of many entries).
    public func extents(of identity: StorageIdentity, mounts: MountTable? = nil, scan: StorageScan? = nil) -> StorageExtents {
        guard identity.exists, identity.kind != .vswitch else { return StorageExtents() }
        if let name = identity.blockName {
            var seen: Set<String> = []
            return StorageExtents(blocks: blockExtents(name, seen: &seen, scan: scan))
        }
        let real = root.real(identity.resolvedPath)
        var status = stat()
        guard stat(real, &status) == 0 else { return StorageExtents() }
        let table = mounts ?? MountTable(root: root)
        var result = StorageExtents(file: FileID(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
        if let mount = table.mount(of: identity.resolvedPath) {
            result.container = blockExtents(deviceNumber: mount.deviceNumber, source: mount.source)
            result.location = table.location(of: identity.resolvedPath)
        }
        return result
    }

    /// The block extents of a kernel block device, followed down through `slaves/`.
    public func blockExtents(_ name: String) -> Set<BlockExtent> {
        var seen: Set<String> = []
        return blockExtents(name, seen: &seen, scan: nil)
    }

    /// The block extents of a mounted device, by `major:minor` or by its source path.
    public func blockExtents(deviceNumber: String, source: String) -> Set<BlockExtent> {
        if let target = FileSystem.readLink(root.real("/sys/dev/block/\(deviceNumber)")),
            let name = target.split(separator: "/").last.map(String.init), !name.isEmpty
        {
            return blockExtents(name)
        }
        guard source.hasPrefix("/dev/") else { return [] }
        let identity = identify(source)
        guard let name = identity.blockName else { return [] }
        return blockExtents(name)
    }

    private func blockExtents(_ name: String, seen: inout Set<String>, scan: StorageScan?) -> Set<BlockExtent> {
        guard seen.insert(name).inserted, seen.count < 256 else { return [] }
        if let device = scan?.devices[name], device.stableID == nil, device.slaves.isEmpty || (device.transport == .multipath && device.wwid != nil) {
            // A plain disk or multipath map, as the scan read it.
            return [BlockExtent(unit: device.wwid.map { "wwid:" + $0.normalized } ?? "dev:" + name)]
        }
        let base = "/sys/block/\(name)"
        guard FileSystem.exists(root.real(base)) else {
            // A partition: partition N of its disk's unit.
            guard let parent = partitionParent(name), let number = partitionNumber(name) else {
                return [BlockExtent(unit: "dev:" + name)]
            }
            return Set(blockExtents(parent, seen: &seen, scan: scan).map { BlockExtent(unit: $0.unit, part: $0.part == 0 ? number : $0.part) })
        }
        let slaves = FileSystem.list(root.real(base + "/slaves")).sorted()
        if let uuid = FileSystem.read(root.real(base + "/dm/uuid"), limit: 4096)?.trimmingWhitespace() {
            if uuid.hasPrefix("mpath-"), let wwid = WWID(uuid) {
                return [BlockExtent(unit: "wwid:" + wwid.normalized)]
            }
            if let (number, rest) = Self.kpartxPartition(uuid) {
                // kpartx: partition N of the map (or disk) below it.
                var below: Set<BlockExtent> = []
                for slave in slaves { below.formUnion(blockExtents(slave, seen: &seen, scan: scan)) }
                if below.isEmpty, rest.hasPrefix("mpath-"), let wwid = WWID(rest) {
                    below = [BlockExtent(unit: "wwid:" + wwid.normalized)]
                }
                return Set(below.map { BlockExtent(unit: $0.unit, part: $0.part == 0 ? number : $0.part) })
            }
            var below: Set<BlockExtent> = []
            for slave in slaves { below.formUnion(blockExtents(slave, seen: &seen, scan: scan)) }
            return below.isEmpty ? [BlockExtent(unit: "dev:" + name)] : below
        }
        if !slaves.isEmpty {
            // md arrays and other stacked devices: everything they are built on.
            var below: Set<BlockExtent> = []
            for slave in slaves { below.formUnion(blockExtents(slave, seen: &seen, scan: scan)) }
            return below
        }
        let device = blockDevice(name)
        if let wwid = device.wwid { return [BlockExtent(unit: "wwid:" + wwid.normalized)] }
        return [BlockExtent(unit: "dev:" + name)]
    }

    /// `partN-<rest>` (kpartx's device-mapper UUID for partition N): N and the rest.
    static func kpartxPartition(_ uuid: String) -> (Int, String)? {
        guard uuid.hasPrefix("part"), let dash = uuid.firstIndex(of: "-") else { return nil }
        let digits = uuid[uuid.index(uuid.startIndex, offsetBy: 4)..<dash]
        guard !digits.isEmpty, digits.count <= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits),
            number > 0
        else { return nil }
        return (number, String(uuid[uuid.index(after: dash)...]))
    }

    /// The partition number of a partition (`sys/class/block/<name>/partition`).
    public func partitionNumber(_ name: String) -> Int? {
        guard let text = FileSystem.read(root.real("/sys/class/block/\(name)/partition"), limit: 32)?.trimmingWhitespace(),
            let number = Int(text), number > 0
        else { return nil }
        return number
    }
}

extension MountTable {
    /// The mount holding `hostPath`: the one with the longest mount point that is the path or an
    /// ancestor of it (the last one mounted there, when several are).
    public func mount(of hostPath: String) -> Mount? {
        var best: Mount?
        for mount in mounts where HostPath.isSameOrBelow(hostPath, mount.mountPoint) {
            if best == nil || mount.mountPoint.count >= best!.mountPoint.count { best = mount }
        }
        return best
    }

    /// Where `hostPath` lives on its file system: the mount's device and root (field 4 of
    /// mountinfo, `/` unless the mount is a bind mount of a folder) joined with the rest of the path.
    /// Without a mount table, the host's paths are one file system.
    public func location(of hostPath: String) -> FileSystemLocation {
        guard let mount = mount(of: hostPath) else { return FileSystemLocation(deviceNumber: "", path: hostPath) }
        let rest = mount.mountPoint == "/" ? hostPath : String(hostPath.dropFirst(mount.mountPoint.count))
        let base = mount.root == "/" ? "" : mount.root
        let joined = base + (rest.hasPrefix("/") || rest.isEmpty ? rest : "/" + rest)
        return FileSystemLocation(deviceNumber: mount.deviceNumber, path: joined.isEmpty ? "/" : joined)
    }

    /// Every host path that shows the same place as `hostPath`: the path itself, and the same spot
    /// of its file system through every other mount of it (a bind mount shows a folder again
    /// elsewhere; `/srv/private` bound from `/hpvm/private` makes them one place).
    public func aliases(of hostPath: String) -> [String] {
        let here = location(of: hostPath)
        guard !here.deviceNumber.isEmpty else { return [hostPath] }
        var result = [hostPath]
        for other in mounts where other.deviceNumber == here.deviceNumber && HostPath.isSameOrBelow(here.path, other.root) {
            let rest = other.root == "/" ? here.path : String(here.path.dropFirst(other.root.count))
            let path = other.mountPoint == "/" ? (rest.isEmpty ? "/" : rest) : other.mountPoint + (rest == "/" ? "" : rest)
            // Only where that mount is what one sees at the path (nothing mounted over it).
            if mount(of: path) == other, !result.contains(path) { result.append(path) }
        }
        return result
    }
}
