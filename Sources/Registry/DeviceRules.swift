internal import GRDB
internal import Host

/// The rules of DESIGN.md §4 as they apply to devices, checked against the device a path reaches,
/// whichever alias names it.
struct DeviceRules {
    let inventory: StorageInventory

    init(root: HostRoot) {
        inventory = StorageInventory(root: root)
    }

    /// The host's mounts, read when a recursive restriction needs them.
    var mounts: MountTable { MountTable(root: inventory.root) }

    /// How a registered entry relates to a device.
    func describe(_ entry: DeviceEntry, for identity: StorageIdentity) -> String {
        let named = "\(entry.type.rawValue) entry \(Display.safe(entry.name))"
        if identity.path == entry.name { return named }
        if entry.names.contains(identity.path) { return "an alias of \(named)" }
        if let wwid = identity.wwid, entry.identityKey == "wwid:" + wwid.normalized {
            return "the same device (WWID \(wwid)) as \(named)"
        }
        if identity.containerKey != nil && entry.identityKey == identity.containerKey {
            return "a partition of the disk that is \(named)"
        }
        if entry.containerKey != nil && entry.containerKey == identity.key() {
            return "the disk holding partition \(named)"
        }
        return "the same device as \(named)"
    }

    /// The restricted entry that keeps guests away from `identity`, and why; nil when none does.
    ///
    /// A device is restricted when an `rdev` entry is the same device (by any alias), holds it
    /// (a partition of a restricted disk), or is a directory with `RECURSIVE=DIR` above it, or with
    /// `RECURSIVE=FS` above it on the same file system.
    func restriction(of identity: StorageIdentity, _ db: Database) throws -> (DeviceEntry, String)? {
        for entry in try DeviceTable.sameDevice(as: identity, db) where entry.type == .rdev {
            if entry.containerKey != nil && entry.containerKey == identity.key() { continue }
            return (entry, describe(entry, for: identity))
        }
        let target = identity.resolvedPath
        let recursiveIDs = try db.fetchAll(Int64.self, sql: """
                SELECT d.id FROM device d JOIN deviceAttribute a ON a.deviceId = d.id AND a.name = 'RECURSIVE'
                WHERE d.type = 'rdev'
                """)
        guard !recursiveIDs.isEmpty else { return nil }
        let mounts = self.mounts
        for entry in try DeviceTable.entries(ids: recursiveIDs, db) {
            let directory = entry.resolvedPath ?? entry.name
            guard target != directory, HostPath.isSameOrBelow(target, directory) else { continue }
            switch entry.attributes["RECURSIVE"] {
            case "DIR":
                return (entry, "under \(Display.safe(entry.name)) (rdev, RECURSIVE=DIR)")
            case "FS" where mounts.mountPoint(of: target) == mounts.mountPoint(of: directory):
                return (
                    entry,
                    "under \(Display.safe(entry.name)) on the same file system (rdev, RECURSIVE=FS)"
                )
            default:
                continue
            }
        }
        return nil
    }

    /// Guest-device entries for `identity` that guests use, for refusing to restrict it.
    func guestUse(of identity: StorageIdentity, _ db: Database) throws -> [DeviceEntry] {
        try DeviceTable.sameDevice(as: identity, db).filter { $0.type == .gdev && !$0.dependents.isEmpty }
    }

    /// Used guest-device entries that a recursive restriction of `directory` would cover.
    func guestUse(under directory: String, recursive: String, _ db: Database) throws -> [DeviceEntry] {
        let mounts = self.mounts
        return try DeviceTable.entries(db, where: "d.type = 'gdev' AND d.id IN (SELECT deviceId FROM dependent)").filter {
            entry in
            let path = entry.resolvedPath ?? entry.name
            guard path != directory, HostPath.isSameOrBelow(path, directory) else { return false }
            return recursive == "DIR" || mounts.mountPoint(of: path) == mounts.mountPoint(of: directory)
        }
    }
}
