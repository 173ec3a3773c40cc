/// A block device the host itself uses, and why.
public struct HostDevice: Sendable, Equatable {
    /// The host path to restrict (`/dev/sda`, `/dev/mapper/vg0-root`).
    public let path: String
    /// The kernel name.
    public let name: String
    /// Why the host needs it (`mounted on /`, `swap`, `LVM member of dm-0`).
    public let reason: String
}

/// Finds the disks and volumes the host uses: mounted file systems, swap, and the members of
/// LVM, md and multipath devices below them (DESIGN.md §1, `hpvmhostrdev`).
public struct HostUsage: Sendable {
    public let root: HostRoot
    let inventory: StorageInventory

    public init(root: HostRoot) {
        self.root = root
        self.inventory = StorageInventory(root: root)
    }

    /// Every whole disk or logical volume the host uses, sorted by path, one entry per device.
    ///
    /// Partitions count as their whole disk. A device's `slaves` are followed down (an LV's
    /// physical volumes, a multipath map's paths, an md array's members), and the volumes on a
    /// used disk's partitions are the host's too. A volume group or md array that nothing mounts
    /// or swaps on is not the host's own: its volumes may go to guests.
    public func devices() -> [HostDevice] {
        let table = MountTable(root: root)
        var found: [String: String] = [:]
        var order: [String] = []
        func note(_ name: String, _ reason: String) {
            let whole = inventory.partitionParent(name) ?? name
            guard FileSystem.exists(root.real("/sys/block/\(whole)")), found[whole] == nil else { return }
            found[whole] = reason
            order.append(whole)
        }
        // What the host uses directly comes first, so each device keeps its most telling reason.
        for mount in table.mounts {
            if let name = nameFromNumber(mount.deviceNumber) ?? nameFromSource(mount.source) {
                note(name, "mounted on \(mount.mountPoint)")
            }
        }
        for swap in table.swaps {
            if let name = nameFromSource(swap) { note(name, "swap") }
        }
        // Then everything below them: an LV's physical volumes, a map's paths, an array's members,
        // and the other volumes on a used disk's partitions.
        var index = 0
        while index < order.count {
            let whole = order[index]
            index += 1
            for slave in FileSystem.list(root.real("/sys/block/\(whole)/slaves")).sorted() {
                note(slave, "member of \(whole)")
            }
            for partition in partitions(of: whole).sorted() {
                for holder in FileSystem.list(root.real("/sys/block/\(whole)/\(partition)/holders")).sorted() {
                    note(holder, "volume on \(partition)")
                }
            }
        }
        return order.map { HostDevice(path: devicePath($0), name: $0, reason: found[$0] ?? "") }
            .sorted { $0.path < $1.path }
    }

    /// The block storage the host uses, each extent with the device it belongs to; whole units.
    public func extents() -> [(BlockExtent, HostDevice)] {
        var result: [(BlockExtent, HostDevice)] = []
        for device in devices() {
            for extent in inventory.blockExtents(device.name).sorted() {
                result.append((extent.whole, device))
            }
        }
        return result
    }

    private func partitions(of disk: String) -> [String] {
        FileSystem.list(root.real("/sys/block/\(disk)")).filter {
            FileSystem.exists(root.real("/sys/block/\(disk)/\($0)/partition"))
        }
    }

    private func nameFromNumber(_ number: String) -> String? {
        guard let target = FileSystem.readLink(root.real("/sys/dev/block/\(number)")) else { return nil }
        return target.split(separator: "/").last.map(String.init)
    }

    private func nameFromSource(_ source: String) -> String? {
        guard source.hasPrefix("/dev/") else { return nil }
        return inventory.identify(source).blockName
    }

    /// The path to record: `/dev/mapper/<name>` for a device-mapper device that has one, else `/dev/<name>`.
    private func devicePath(_ name: String) -> String {
        if let dmName = FileSystem.read(root.real("/sys/block/\(name)/dm/name"), limit: 512)?.trimmingWhitespace(),
            !dmName.isEmpty, FileSystem.exists(root.real("/dev/mapper/\(dmName)"))
        {
            return "/dev/mapper/\(dmName)"
        }
        return "/dev/\(name)"
    }
}
