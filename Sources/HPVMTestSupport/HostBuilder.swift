public import Host
#if canImport(Glibc)
internal import Glibc
#endif

/// Builds a host root of real files, directories and symlinks that the inventory reads exactly
/// as it reads a real host: `sys/block`, `sys/devices/…`, `dev/…`, `proc/self/mountinfo`.
///
/// One call to ``make(at:sanDisks:aliasedSANDisks:multipathMaps:nvmeDisks:dasDisks:)`` gives a
/// host with SAN disks, aliases, multipath maps and DAS disks; the other methods add single parts.
public final class HostBuilder {
    /// The real path of the root.
    public let path: String
    public var root: HostRoot { HostRoot(path) }
    private var nextMinor: [Int: Int] = [:]
    private var nextSCSI = 0
    private var nextDM = 0
    private var nextMount = 100
    private var mountLines: [String] = []
    private var swapLines: [String] = []

    /// Uses (creating it if needed) the folder at `path`.
    public init(at path: String) throws {
        self.path = path
        try HostBuilder.makeFolders(path)
        try HostBuilder.makeFolders(path + "/dev")
        try HostBuilder.makeFolders(path + "/sys/block")
        try HostBuilder.makeFolders(path + "/sys/class/block")
        try HostBuilder.makeFolders(path + "/sys/dev/block")
        try HostBuilder.makeFolders(path + "/proc/self")
    }

    /// A new, empty root in a fresh temporary folder.
    public static func temporary(prefix: String = "hpvm-root") throws -> HostBuilder {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BuilderError("mkdtemp failed: \(errno)") }
        return try HostBuilder(at: String(cString: made))
    }

    /// Removes the whole root.
    public func remove() {
        HostBuilder.removeTree(path)
    }

    // MARK: - One call

    /// What ``make(at:sanDisks:aliasedSANDisks:multipathMaps:nvmeDisks:dasDisks:)`` built.
    public struct Layout: Sendable {
        public init() {}
        /// Plain SAN disks: `/dev/rdisk/diskN` → `/dev/sdX`, one path each.
        public var sanDisks: [Disk] = []
        /// SAN disks reached by two paths (`/dev/sdX` and `/dev/sdY`), both with one WWID.
        public var aliasedDisks: [Disk] = []
        /// Multipath maps (`/dev/mapper/mpathN`) over two SCSI paths each.
        public var multipathMaps: [Disk] = []
        /// NVMe namespaces over Fibre Channel fabrics.
        public var nvmeDisks: [Disk] = []
        /// Direct-attached disks (SAS).
        public var dasDisks: [Disk] = []
    }

    /// A disk as built: the paths that name it and its WWID.
    public struct Disk: Sendable, Equatable {
        /// The path a user would give (`/dev/rdisk/disk3`, `/dev/mapper/mpatha`, `/dev/nvme0n1`).
        public let path: String
        /// Every `/dev` path that reaches the device, including `path`.
        public let paths: [String]
        /// Kernel names (`sdb`, `dm-0`).
        public let names: [String]
        /// The WWID as the kernel reports it (`naa.…`, `eui.…`), or nil.
        public let wwid: String?
    }

    /// Builds a host with the given numbers of each kind of disk, in one call.
    @discardableResult
    public static func make(
        at builder: HostBuilder, sanDisks: Int = 0, aliasedSANDisks: Int = 0, multipathMaps: Int = 0,
        nvmeDisks: Int = 0, dasDisks: Int = 0, wwidSeed: Int = 0
    ) throws -> Layout {
        var layout = Layout()
        var serial = wwidSeed
        func nextWWID() -> String {
            serial += 1
            return "naa.600508b4000115d0" + hex(serial, width: 16)
        }
        for index in 0..<sanDisks {
            let wwid = nextWWID()
            let name = try builder.scsiDisk(wwid: wwid, transport: .fibreChannel)
            let path = "/dev/rdisk/disk\(index + 1)"
            try builder.link(path, to: "/dev/\(name)")
            layout.sanDisks.append(Disk(path: path, paths: [path, "/dev/\(name)"], names: [name], wwid: wwid))
        }
        for _ in 0..<aliasedSANDisks {
            let wwid = nextWWID()
            let first = try builder.scsiDisk(wwid: wwid, transport: .fibreChannel)
            let second = try builder.scsiDisk(wwid: wwid, transport: .fibreChannel)
            layout.aliasedDisks.append(
                Disk(path: "/dev/\(first)", paths: ["/dev/\(first)", "/dev/\(second)"], names: [first, second], wwid: wwid))
        }
        for index in 0..<multipathMaps {
            let wwid = nextWWID()
            let a = try builder.scsiDisk(wwid: wwid, transport: .fibreChannel)
            let b = try builder.scsiDisk(wwid: wwid, transport: .iscsi)
            let mapName = "mpath" + letters(index)
            let dm = try builder.multipath(name: mapName, wwid: wwid, paths: [a, b])
            layout.multipathMaps.append(
                Disk(
                    path: "/dev/mapper/\(mapName)", paths: ["/dev/mapper/\(mapName)", "/dev/\(dm)", "/dev/\(a)", "/dev/\(b)"],
                    names: [dm, a, b], wwid: wwid))
        }
        for _ in 0..<nvmeDisks {
            serial += 1
            let wwid = "eui.0025388b91b5" + hex(serial, width: 4)
            let name = try builder.nvmeDisk(wwid: wwid, fabric: true)
            layout.nvmeDisks.append(Disk(path: "/dev/\(name)", paths: ["/dev/\(name)"], names: [name], wwid: wwid))
        }
        for _ in 0..<dasDisks {
            serial += 1
            let wwid = "naa.5000c500" + hex(serial, width: 8)
            let name = try builder.scsiDisk(wwid: wwid, transport: .sas)
            layout.dasDisks.append(Disk(path: "/dev/\(name)", paths: ["/dev/\(name)"], names: [name], wwid: wwid))
        }
        return layout
    }

    // MARK: - Parts

    /// Adds a SCSI disk (`sdX`) on the given transport, with its WWID in `device/wwid`.
    ///
    /// - Returns: the kernel name.
    @discardableResult
    public func scsiDisk(name: String? = nil, wwid: String?, transport: Transport = .fibreChannel) throws -> String {
        let number = nextSCSI
        nextSCSI += 1
        let name = name ?? "sd" + HostBuilder.letters(number)
        let host = 3 + number / 4096
        let lun = number % 4096
        let scsiID = "\(host):0:0:\(lun)"
        let parent: String
        switch transport {
        case .iscsi: parent = "/sys/devices/platform/host\(host)/session\(host)/target\(host):0:0"
        case .sas: parent = "/sys/devices/pci0000:00/0000:00:07.0/host\(host)/port-\(host):0/end_device-\(host):0/target\(host):0:0"
        case .ata: parent = "/sys/devices/pci0000:00/0000:00:1f.2/ata\(host)/host\(host)/target\(host):0:0"
        case .usb: parent = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/host\(host)/target\(host):0:0"
        default: parent = "/sys/devices/pci0000:00/0000:00:05.0/host\(host)/rport-\(host):0-0/target\(host):0:0"
        }
        let deviceDir = parent + "/" + scsiID
        try folders(deviceDir)
        if let wwid { try write(deviceDir + "/wwid", wwid + "\n") }
        try blockDevice(name: name, directory: deviceDir + "/block/\(name)", major: 8, deviceLink: "../../../\(scsiID)")
        return name
    }

    /// Adds an NVMe namespace (`nvmeNn1`), on PCIe or over a Fibre Channel fabric.
    @discardableResult
    public func nvmeDisk(wwid: String?, fabric: Bool) throws -> String {
        let controller = (nextMinor[259] ?? 0)
        let name = "nvme\(controller)n1"
        let controllerDir = fabric
            ? "/sys/devices/virtual/nvme-fabrics/ctl/nvme\(controller)"
            : "/sys/devices/pci0000:00/0000:00:06.0/nvme/nvme\(controller)"
        try folders(controllerDir)
        try write(controllerDir + "/transport", fabric ? "fc\n" : "pcie\n")
        let directory = controllerDir + "/\(name)"
        try blockDevice(name: name, directory: directory, major: 259, deviceLink: "../../nvme\(controller)")
        if let wwid { try write(directory + "/wwid", wwid + "\n") }
        return name
    }

    /// Adds a virtio disk (`vdX`), which has no WWID.
    @discardableResult
    public func virtioDisk(name: String) throws -> String {
        let directory = "/sys/devices/pci0000:00/0000:00:04.0/virtio1/block/\(name)"
        try folders("/sys/devices/pci0000:00/0000:00:04.0/virtio1")
        try blockDevice(name: name, directory: directory, major: 252, deviceLink: "../../../virtio1")
        return name
    }

    /// Adds a multipath map `dm-N` named `name` (`/dev/mapper/<name>`) over the given paths.
    @discardableResult
    public func multipath(name: String, wwid: String, paths: [String]) throws -> String {
        let hexWWID = wwid.hasPrefix("naa.") ? "3" + wwid.dropFirst(4) : wwid
        return try deviceMapper(name: name, uuid: "mpath-\(hexWWID)", slaves: paths)
    }

    /// Adds partition `number` of a multipath map as kpartx makes it: a device-mapper device
    /// `<map>-part<N>` (`/dev/mapper/mpatha-part1`) with UUID `part<N>-mpath-…` over the map.
    @discardableResult
    public func multipathPartition(of map: String, number: Int) throws -> String {
        guard let uuid = try? read("/sys/block/\(map)/dm/uuid").trimmingNewline(),
            let name = try? read("/sys/block/\(map)/dm/name").trimmingNewline()
        else { throw BuilderError("no multipath map \(map)") }
        return try deviceMapper(name: "\(name)-part\(number)", uuid: "part\(number)-\(uuid)", slaves: [map])
    }

    /// Adds partition `number` of multipath map `map` (`/dev/mapper/<map>-part<number>`), made by
    /// kpartx: a dm device with uuid `part<number>-mpath-<id>` whose slave is the map `dm`.
    @discardableResult
    public func kpartxPartition(ofMap map: String, dm: String, wwid: String, number: Int) throws -> String {
        let hexWWID = wwid.hasPrefix("naa.") ? "3" + wwid.dropFirst(4) : wwid
        return try deviceMapper(name: "\(map)-part\(number)", uuid: "part\(number)-mpath-\(hexWWID)", slaves: [dm])
    }

    /// Adds an LVM logical volume `vg-lv` on the given physical volumes (disks or partitions).
    @discardableResult
    public func logicalVolume(vg: String, lv: String, on physicalVolumes: [String]) throws -> String {
        let uuid = "LVM-" + HostBuilder.hex(vg.hashValue & 0xFFFF, width: 8) + "\(vg)\(lv)"
        return try deviceMapper(name: "\(vg)-\(lv)", uuid: uuid, slaves: physicalVolumes)
    }

    /// Adds an md RAID array `mdN` over the given members.
    @discardableResult
    public func mdArray(name: String, members: [String]) throws -> String {
        let directory = "/sys/devices/virtual/block/\(name)"
        try blockDevice(name: name, directory: directory, major: 9, deviceLink: nil)
        try folders(directory + "/slaves")
        for member in members {
            try link("/sys/block/\(name)/slaves/\(member)", to: "/sys/class/block/\(member)")
            try folders(holdersDir(of: member))
            try link(holdersDir(of: member) + "/\(name)", to: "/sys/block/\(name)")
        }
        return name
    }

    /// Adds partition `number` of `disk` (`sdb1`).
    @discardableResult
    public func partition(of disk: String, number: Int) throws -> String {
        let name = disk.last?.isNumber == true ? "\(disk)p\(number)" : "\(disk)\(number)"
        guard let diskDir = resolvedSys("/sys/block/\(disk)") else { throw BuilderError("no disk \(disk)") }
        let directory = diskDir + "/\(name)"
        try folders(directory + "/holders")
        try write(directory + "/partition", "\(number)\n")
        try link("/sys/class/block/\(name)", to: directory)
        let minor = allocateMinor(major: disk.hasPrefix("nvme") ? 259 : 8)
        try link("/sys/dev/block/\(disk.hasPrefix("nvme") ? 259 : 8):\(minor)", to: directory)
        try write(directory + "/dev", "\(disk.hasPrefix("nvme") ? 259 : 8):\(minor)\n")
        try write("/dev/\(name)", "")
        return name
    }

    /// Records a mount in `proc/self/mountinfo`.
    public func mount(_ device: String, at mountPoint: String, fsType: String = "ext4") throws {
        let number = (try? read("/sys/class/block/\(device)/dev"))?.trimmingNewline() ?? "0:\(nextMount)"
        nextMount += 1
        mountLines.append("\(nextMount) 1 \(number) / \(mountPoint) rw,relatime shared:1 - \(fsType) /dev/\(device) rw")
        try write("/proc/self/mountinfo", mountLines.joined(separator: "\n") + "\n")
        try folders(mountPoint)
    }

    /// Records a bind mount in `proc/self/mountinfo`: folder `root` of the file system on
    /// `device` shown at `mountPoint` (field 4 of the line is `root`).
    public func bindMount(_ device: String, root: String, at mountPoint: String, fsType: String = "ext4") throws {
        let number = (try? read("/sys/class/block/\(device)/dev"))?.trimmingNewline() ?? "0:\(nextMount)"
        nextMount += 1
        mountLines.append("\(nextMount) 1 \(number) \(root) \(mountPoint) rw,relatime shared:1 - \(fsType) /dev/\(device) rw")
        try write("/proc/self/mountinfo", mountLines.joined(separator: "\n") + "\n")
        try folders(mountPoint)
    }

    /// Records a file system that is not a block device (`tmpfs`), so mount points split paths.
    public func mountVirtual(at mountPoint: String, fsType: String = "tmpfs") throws {
        nextMount += 1
        mountLines.append("\(nextMount) 1 0:\(nextMount) / \(mountPoint) rw - \(fsType) \(fsType) rw")
        try write("/proc/self/mountinfo", mountLines.joined(separator: "\n") + "\n")
        try folders(mountPoint)
    }

    /// Records a swap device in `proc/swaps`.
    public func swap(_ device: String) throws {
        swapLines.append("/dev/\(device)                               partition\t8388604\t0\t-2")
        try write("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" + swapLines.joined(separator: "\n") + "\n")
    }

    /// Adds a Linux bridge (a vswitch) `sys/class/net/<name>/bridge`.
    public func bridge(_ name: String) throws {
        try folders("/sys/class/net/\(name)/bridge")
    }

    /// A symlink at host path `path` pointing at host path `target`, written relative like udev's.
    public func link(_ path: String, to target: String) throws {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        try folders(parent.isEmpty ? "/" : parent)
        let relative = HostBuilder.relativePath(from: parent.isEmpty ? "/" : parent, to: target)
        unlink(path.realUnder(self.path))
        guard symlink(relative, path.realUnder(self.path)) == 0 else {
            throw BuilderError("symlink \(path) -> \(relative): errno \(errno)")
        }
    }

    /// A symlink with exactly the given target text.
    public func rawLink(_ path: String, target: String) throws {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        try folders(parent.isEmpty ? "/" : parent)
        unlink(path.realUnder(self.path))
        guard symlink(target, path.realUnder(self.path)) == 0 else { throw BuilderError("symlink \(path): errno \(errno)") }
    }

    /// A regular file with the given contents.
    public func file(_ path: String, contents: String = "") throws {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        try folders(parent.isEmpty ? "/" : parent)
        try write(path, contents)
    }

    /// A hard link at host path `path` to the existing file at host path `existing`.
    public func hardLink(_ path: String, to existing: String) throws {
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        try folders(parent.isEmpty ? "/" : parent)
        unlink(path.realUnder(self.path))
        guard Glibc.link(existing.realUnder(self.path), path.realUnder(self.path)) == 0 else {
            throw BuilderError("link \(path) -> \(existing): errno \(errno)")
        }
    }

    /// A directory and its parents.
    public func folders(_ hostPath: String) throws {
        try HostBuilder.makeFolders(hostPath.realUnder(path))
    }

    /// Removes the object at a host path (a file, a link, or a whole folder).
    public func removeItem(_ hostPath: String) {
        HostBuilder.removeTree(hostPath.realUnder(path))
    }

    /// Overwrites a SCSI disk's reported WWID, as when a LUN behind a path is replaced.
    public func setWWID(ofSCSIDisk name: String, to wwid: String) throws {
        try write("/sys/block/\(name)/device/wwid", wwid + "\n")
    }

    // MARK: - Internals

    private func deviceMapper(name: String, uuid: String, slaves: [String]) throws -> String {
        let dm = "dm-\(nextDM)"
        nextDM += 1
        let directory = "/sys/devices/virtual/block/\(dm)"
        try blockDevice(name: dm, directory: directory, major: 253, deviceLink: nil)
        try folders(directory + "/dm")
        try write(directory + "/dm/uuid", uuid + "\n")
        try write(directory + "/dm/name", name + "\n")
        try folders(directory + "/slaves")
        for slave in slaves {
            try link(directory + "/slaves/\(slave)", to: "/sys/class/block/\(slave)")
            try folders(holdersDir(of: slave))
            try link(holdersDir(of: slave) + "/\(dm)", to: directory)
        }
        try link("/dev/mapper/\(name)", to: "/dev/\(dm)")
        return dm
    }

    private func holdersDir(of name: String) -> String {
        (resolvedSys("/sys/class/block/\(name)") ?? "/sys/block/\(name)") + "/holders"
    }

    private func blockDevice(name: String, directory: String, major: Int, deviceLink: String?) throws {
        try folders(directory + "/holders")
        try folders(directory + "/slaves")
        if let deviceLink { try rawLink(directory + "/device", target: deviceLink) }
        let minor = allocateMinor(major: major)
        try write(directory + "/dev", "\(major):\(minor)\n")
        try link("/sys/block/\(name)", to: directory)
        try link("/sys/class/block/\(name)", to: directory)
        try link("/sys/dev/block/\(major):\(minor)", to: directory)
        try write("/dev/\(name)", "")
    }

    private func allocateMinor(major: Int) -> Int {
        let minor = nextMinor[major] ?? 0
        nextMinor[major] = minor + 1
        return minor
    }

    private func resolvedSys(_ hostPath: String) -> String? {
        guard let resolved = realpath(hostPath.realUnder(path), nil) else { return nil }
        defer { free(resolved) }
        return String(String(cString: resolved).dropFirst(path.count))
    }

    private func write(_ hostPath: String, _ text: String) throws {
        let real = hostPath.realUnder(path)
        let fd = open(real, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BuilderError("cannot write \(real): errno \(errno)") }
        defer { close(fd) }
        var text = text
        let written = text.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == text.utf8.count else { throw BuilderError("short write to \(real)") }
    }

    private func read(_ hostPath: String) throws -> String {
        let fd = open(hostPath.realUnder(path), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BuilderError("cannot read \(hostPath)") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(fd, &buffer, 4096)
        return String(decoding: buffer[0..<max(0, n)], as: UTF8.self)
    }

    static func makeFolders(_ real: String) throws {
        var current = ""
        for component in real.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw BuilderError("mkdir \(current): errno \(errno)")
            }
        }
    }

    static func removeTree(_ real: String) {
        var st = stat()
        guard lstat(real, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(real) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { removeTree(real + "/" + name) }
            }
            rmdir(real)
        } else {
            unlink(real)
        }
    }

    /// `target` relative to the folder `from`, both host paths.
    static func relativePath(from: String, to target: String) -> String {
        let a = from.split(separator: "/")
        let b = target.split(separator: "/")
        var common = 0
        while common < a.count && common < b.count && a[common] == b[common] { common += 1 }
        let ups = Array(repeating: "..", count: a.count - common)
        let rest = b[common...].map(String.init)
        let parts = ups + rest
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// Kernel-style disk letters: 0 → a, 25 → z, 26 → aa.
    public static func letters(_ index: Int) -> String {
        var n = index
        var result = ""
        repeat {
            result = String(UnicodeScalar(UInt8(97 + n % 26))) + result
            n = n / 26 - 1
        } while n >= 0
        return result
    }

    /// `value` as lower-case hex, zero-padded to `width`.
    public static func hex(_ value: Int, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// A failure to build a host root.
public struct BuilderError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension String {
    func realUnder(_ root: String) -> String { root + (hasPrefix("/") ? self : "/" + self) }
    func trimmingNewline() -> String { split(separator: "\n").first.map(String.init) ?? "" }
}
