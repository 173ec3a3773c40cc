#if canImport(Glibc)
internal import Glibc
#endif

/// One block device as the kernel lists it under `sys/block`.
public struct BlockDevice: Sendable, Equatable {
    public let name: String
    public let kind: DeviceKind
    public let wwid: WWID?
    public let stableID: String?
    public let transport: Transport
    /// Kernel names of the devices this one is built on (`slaves/`).
    public let slaves: [String]
    /// Kernel names of the devices built on this one (`holders/`).
    public let holders: [String]
}

/// Everything the host has, as found by one scan: block devices and the `/dev` paths naming them.
public struct StorageScan: Sendable {
    /// Block devices by kernel name.
    public let devices: [String: BlockDevice]
    /// Host paths under `/dev` that reach each kernel name, sorted.
    public let pathsByName: [String: [String]]

    /// The host paths of every block device with this WWID, sorted.
    public func paths(wwid: WWID) -> [String] {
        devices.values.filter { $0.wwid == wwid }.flatMap { pathsByName[$0.name] ?? [] }.sorted()
    }

    /// Host paths by WWID, for every device that has one.
    public func pathsByWWID() -> [WWID: [String]] {
        var result: [WWID: [String]] = [:]
        for device in devices.values {
            guard let wwid = device.wwid else { continue }
            result[wwid, default: []].append(contentsOf: pathsByName[device.name] ?? [])
        }
        for key in result.keys { result[key]?.sort() }
        return result
    }
}

/// Reads storage identity and transport under a host root (DESIGN.md §3).
///
/// The same rules apply to a real host (`/`) and to a test root built of files and symlinks.
public struct StorageInventory: Sendable {
    public let root: HostRoot

    public init(root: HostRoot) {
        self.root = root
    }

    // MARK: - One path

    /// Identifies what a host path or vswitch name is.
    ///
    /// - Parameter scan: a scan made just before, whose block devices are used instead of
    ///   reading `sys/block` again (for rescans of many entries).
    /// A name without `/` is a vswitch: it exists when `sys/class/net/<name>/bridge` does.
    public func identify(_ path: String, scan: StorageScan? = nil) -> StorageIdentity {
        guard path.hasPrefix("/") else {
            let exists = FileSystem.kind(root.real("/sys/class/net/\(path)/bridge")) == .directory
            return StorageIdentity(path: path, resolvedPath: path, exists: exists, kind: .vswitch)
        }
        guard let resolution = root.resolve(path) else {
            return StorageIdentity(path: path, resolvedPath: path, exists: false, kind: .unknown)
        }
        let resolved = resolution.hostPath
        guard resolution.exists, let kind = FileSystem.kind(root.real(resolved)) else {
            return StorageIdentity(path: path, resolvedPath: resolved, exists: false, kind: .unknown)
        }
        if resolved.hasPrefix("/dev/"), let name = blockName(resolved, kind: kind) {
            return identifyBlock(path: path, resolved: resolved, name: name, scan: scan)
        }
        switch kind {
        case .regular: return StorageIdentity(path: path, resolvedPath: resolved, exists: true, kind: .file)
        case .directory: return StorageIdentity(path: path, resolvedPath: resolved, exists: true, kind: .directory)
        default: return StorageIdentity(path: path, resolvedPath: resolved, exists: true, kind: .unknown)
        }
    }

    /// The kernel name behind a `/dev` path: from the node's device number for a real block device,
    /// otherwise from its name when `sys/class/block/<name>` or `sys/block/<name>` exists.
    private func blockName(_ resolved: String, kind: FileSystem.Kind) -> String? {
        if kind == .blockDevice, let number = FileSystem.deviceNumber(root.real(resolved)),
            let target = FileSystem.readLink(root.real("/sys/dev/block/\(number.major):\(number.minor)"))
        {
            return String(target.split(separator: "/").last ?? "")
        }
        guard let name = resolved.split(separator: "/").last.map(String.init), !name.isEmpty else { return nil }
        if FileSystem.exists(root.real("/sys/block/\(name)")) || FileSystem.exists(root.real("/sys/class/block/\(name)")) {
            return name
        }
        return nil
    }

    private func identifyBlock(path: String, resolved: String, name: String, scan: StorageScan?) -> StorageIdentity {
        if let device = scan?.devices[name] ?? (FileSystem.exists(root.real("/sys/block/\(name)")) ? blockDevice(name) : nil) {
            return StorageIdentity(
                path: path, resolvedPath: resolved, exists: true, kind: device.kind, blockName: name,
                wwid: device.wwid, stableID: device.stableID, transport: device.transport)
        }
        // A partition: sys/class/block/sdb1 -> ../../devices/…/block/sdb/sdb1.
        let parent = partitionParent(name)
        let parentDevice = parent.map { blockDevice($0) }
        let containerKey = parentDevice.map { device in
            StorageIdentity(
                path: "/dev/\(device.name)", resolvedPath: "/dev/\(device.name)", exists: true, kind: device.kind,
                blockName: device.name, wwid: device.wwid, stableID: device.stableID
            ).key()
        }
        return StorageIdentity(
            path: path, resolvedPath: resolved, exists: true, kind: parentDevice?.kind ?? .disk, blockName: name,
            wholeDiskName: parent, transport: parentDevice?.transport, containerKey: containerKey,
            partitionNumber: parent == nil ? nil : partitionNumber(name))
    }

    /// The disk holding a partition, or nil when `name` is not a partition.
    public func partitionParent(_ name: String) -> String? {
        guard FileSystem.exists(root.real("/sys/class/block/\(name)/partition")),
            let resolved = realPath("/sys/class/block/\(name)")
        else { return nil }
        let parts = resolved.split(separator: "/")
        guard parts.count >= 2 else { return nil }
        return String(parts[parts.count - 2])
    }

    /// Asks the kernel to look for new LUNs: writes `- - -` to every `sys/class/scsi_host/*/scan`.
    public func requestSCSIRescan() {
        for host in FileSystem.list(root.real("/sys/class/scsi_host")) {
            let fd = open(root.real("/sys/class/scsi_host/\(host)/scan"), O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            _ = "- - -\n".withCString { write(fd, $0, 6) }
            close(fd)
        }
    }

    // MARK: - Block devices

    /// Reads one block device's WWID, transport, slaves and holders from `sys/block/<name>`.
    public func blockDevice(_ name: String) -> BlockDevice {
        let base = "/sys/block/\(name)"
        let slaves = FileSystem.list(root.real(base + "/slaves")).sorted()
        let holders = FileSystem.list(root.real(base + "/holders")).sorted()
        if let uuid = FileSystem.read(root.real(base + "/dm/uuid"), limit: 4096)?.trimmingWhitespace() {
            if let (_, rest) = StorageInventory.kpartxPartition(uuid) {
                // A partition of a multipath map (or of another dm disk) made by kpartx: a disk's partition.
                return BlockDevice(
                    name: name, kind: .disk, wwid: nil, stableID: sanitize(uuid),
                    transport: rest.hasPrefix("mpath-") ? .multipath : .logicalVolume, slaves: slaves, holders: holders)
            }
            if uuid.hasPrefix("mpath-") {
                return BlockDevice(
                    name: name, kind: .disk, wwid: WWID(uuid), stableID: nil, transport: .multipath, slaves: slaves,
                    holders: holders)
            }
            return BlockDevice(
                name: name, kind: .logicalVolume, wwid: nil, stableID: uuid.isEmpty ? nil : sanitize(uuid),
                transport: .logicalVolume, slaves: slaves, holders: holders)
        }
        let wwidText =
            FileSystem.read(root.real(base + "/device/wwid"), limit: 4096)
            ?? FileSystem.read(root.real(base + "/wwid"), limit: 4096)
        let devicePath = realPath(base + "/device") ?? ""
        let nvmeTransport = FileSystem.read(root.real(base + "/device/transport"), limit: 64)
        return BlockDevice(
            name: name, kind: .disk, wwid: wwidText.flatMap(WWID.init), stableID: nil,
            transport: Transport.classify(devicePath: devicePath, nvmeTransport: nvmeTransport), slaves: slaves,
            holders: holders)
    }

    /// Scans every block device and every `/dev` path that names one.
    ///
    /// `/dev` is walked four levels deep (`/dev/sdb`, `/dev/mapper/mpatha`, `/dev/rdisk/disk3`,
    /// `/dev/disk/by-id/wwn-0x…`); `pts`, `shm`, `fd` and `char` are skipped.
    public func scan() -> StorageScan {
        var devices: [String: BlockDevice] = [:]
        for name in FileSystem.list(root.real("/sys/block")) {
            devices[name] = blockDevice(name)
        }
        var paths: [String: [String]] = [:]
        walkDev("/dev", depth: 0, devices: devices, into: &paths)
        for key in paths.keys { paths[key]?.sort() }
        return StorageScan(devices: devices, pathsByName: paths)
    }

    private func walkDev(_ dir: String, depth: Int, devices: [String: BlockDevice], into paths: inout [String: [String]]) {
        let skipped: Set<String> = ["pts", "shm", "fd", "char", "mqueue", "hugepages"]
        for entry in FileSystem.list(root.real(dir)) where !(depth == 0 && skipped.contains(entry)) {
            let hostPath = dir + "/" + entry
            guard let kind = FileSystem.lkind(root.real(hostPath)) else { continue }
            switch kind {
            case .directory:
                if depth < 3 { walkDev(hostPath, depth: depth + 1, devices: devices, into: &paths) }
            case .symlink:
                guard let resolution = root.resolve(hostPath), resolution.exists,
                    resolution.hostPath.hasPrefix("/dev/")
                else { continue }
                let target = resolution.hostPath
                let finalKind = FileSystem.kind(root.real(target)) ?? .other
                if let name = nodeName(target, kind: finalKind, devices: devices) {
                    paths[name, default: []].append(hostPath)
                }
            default:
                if let name = nodeName(hostPath, kind: kind, devices: devices) {
                    paths[name, default: []].append(hostPath)
                }
            }
        }
    }

    private func nodeName(_ hostPath: String, kind: FileSystem.Kind, devices: [String: BlockDevice]) -> String? {
        if kind == .blockDevice, let number = FileSystem.deviceNumber(root.real(hostPath)),
            let target = FileSystem.readLink(root.real("/sys/dev/block/\(number.major):\(number.minor)"))
        {
            let name = String(target.split(separator: "/").last ?? "")
            return devices[name] == nil ? nil : name
        }
        guard kind == .regular, let name = hostPath.split(separator: "/").last.map(String.init) else { return nil }
        return devices[name] == nil ? nil : name
    }

    /// The host path a sysfs path resolves to (sysfs links are relative, so the kernel can follow them).
    private func realPath(_ hostPath: String) -> String? {
        guard let resolved = realpath(root.real(hostPath), nil) else { return nil }
        defer { free(resolved) }
        let full = String(cString: resolved)
        guard full.hasPrefix(root.prefix) else { return nil }
        let host = String(full.dropFirst(root.prefix.count))
        return host.isEmpty ? "/" : host
    }

    private func sanitize(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") ? $0 : "_" })
    }
}
