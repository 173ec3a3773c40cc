internal import GRDB
internal import Host
#if canImport(Glibc)
internal import Glibc
#endif

/// The one home of DESIGN.md §4: every rule that keeps guests off each other's storage and off
/// the host's, each as one function with its refusal beside it. Every entry point — `hpvmdevmgmt`,
/// the guest commands, `hpvmhostrdev`, the migration check and the target's prepare — asks these
/// functions and nothing else.
///
/// **The promise:** no two guests hold overlapping storage unless every claim on it is
/// `SHARE=YES`; no guest holds storage that overlaps an `rdev`, `server` or `env` entry or the
/// host's own use. Overlap is judged on extents (``Host/StorageExtents``): a LUN by WWID, a
/// partition of it, what an LV or md array is built on, a file by inode and the block storage
/// of its file system, a `RECURSIVE` folder and everything under it. `IGNOREWWID` changes how
/// paths are grouped into one entry (aliases); it never weakens a rule.
struct StorageRules {
    let inventory: StorageInventory
    private let cache = RulesCache()

    init(root: HostRoot) {
        inventory = StorageInventory(root: root)
    }

    /// The host's mounts and swap areas (read again when they change).
    var mounts: MountTable { cache.mounts(inventory.root) { MountTable(root: inventory.root) } }

    // MARK: - Claims

    /// A path as the rules see it: who it is, and the storage it occupies.
    struct Claim {
        let identity: StorageIdentity
        let extents: StorageExtents
        /// The path as given.
        var path: String { identity.path }
        /// Whether the path names raw block storage (a guest writing it writes the device).
        var isBlock: Bool { !extents.blocks.isEmpty }
    }

    /// The claim a path makes.
    func claim(_ path: String) -> Claim {
        let identity = inventory.identify(path)
        return Claim(identity: identity, extents: inventory.extents(of: identity, mounts: mounts))
    }

    /// Whether two paths name the same storage: one LUN by any of its paths (its WWID), one file
    /// by any link to it. A guest's resource is found by what it is, not by how it is spelled, so
    /// `hpvmmodify -d disk:…:/dev/sdf` finds the guest's `/dev/rdisk/disk5` when both are one LUN.
    func sameStorage(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let first = inventory.identify(a)
        guard first.exists else { return false }
        let second = inventory.identify(b)
        return second.exists && first.kind == second.kind && first.key() == second.key()
    }

    /// The claim a regular file that does not exist yet would make at `path`: its folder's
    /// resolution (symlinks followed inside the root), mount and file-system storage. Nil when the
    /// folder does not exist.
    func plannedFile(_ path: String) -> (claim: Claim, folder: StorageIdentity, base: String)? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let parent = slash == path.startIndex ? "/" : String(path[..<slash])
        let base = String(path[path.index(after: slash)...])
        let folder = inventory.identify(parent)
        guard folder.exists, folder.kind == .directory, !base.isEmpty, base != ".", base != ".." else { return nil }
        let hostPath = (folder.resolvedPath == "/" ? "" : folder.resolvedPath) + "/" + base
        let identity = StorageIdentity(path: path, resolvedPath: hostPath, exists: true, kind: .file)
        let table = mounts
        var extents = StorageExtents(location: table.location(of: hostPath))
        if let mount = table.mount(of: hostPath) {
            extents.container = inventory.blockExtents(deviceNumber: mount.deviceNumber, source: mount.source)
        }
        return (Claim(identity: identity, extents: extents), folder, base)
    }

    // MARK: - How two claims meet

    /// How an entry's storage meets a claim's.
    enum Relation: Equatable {
        /// The same device by identity (an equal key: the same WWID, kernel device or path).
        case same
        /// Block storage that overlaps: the entry's extent.
        case blocks(BlockExtent)
        /// The same file (through a hard link, a bind mount or a symlinked folder).
        case sameFile
        /// The claim is raw storage under the file system that holds the entry's file.
        case underEntryFile
        /// The claim is a file on a file system that the entry's raw storage holds.
        case fileOnEntry
    }

    /// Every entry whose storage meets the claim's, with how it meets it: by identity key (aliases,
    /// vswitches) or by stored extents. An entry meeting it in several ways is listed once, by its
    /// most direct relation.
    func meeting(_ claim: Claim, _ db: Database) throws -> [(DeviceEntry, Relation)] {
        try ready(db)
        var relations: [Int64: Relation] = [:]
        func note(_ id: Int64, _ relation: Relation) {
            if relations[id] == nil { relations[id] = relation }
        }
        if claim.identity.exists {
            for entry in try DeviceTable.sameDevice(as: claim.identity, db)
            where entry.identityKey == claim.identity.key() || entry.identityKey == claim.identity.key(ignoringWWID: true)
                || entry.names.contains(claim.path)
            {
                note(entry.id, .same)
            }
        }
        if let file = claim.extents.file {
            for id in try db.fetchAll(Int64.self, sql: "SELECT deviceId FROM deviceExtent WHERE role = 'file' AND unit = ?", arguments: [file.description]) {
                note(id, .sameFile)
            }
        }
        for extent in claim.extents.blocks.sorted() {
            for row in try db.rows(
                sql: """
                    SELECT deviceId, role, part FROM deviceExtent
                    WHERE unit = ? AND role IN ('block', 'container') AND (part = 0 OR ? = 0 OR part = ?)
                    """,
                arguments: [extent.unit, extent.part, extent.part])
            {
                let role: String = row["role"]
                note(row["deviceId"], role == "block" ? .blocks(BlockExtent(unit: extent.unit, part: row["part"])) : .underEntryFile)
            }
        }
        for extent in claim.extents.container.sorted() {
            for id in try db.fetchAll(
                Int64.self,
                sql: "SELECT deviceId FROM deviceExtent WHERE unit = ? AND role = 'block' AND (part = 0 OR ? = 0 OR part = ?)",
                arguments: [extent.unit, extent.part, extent.part])
            {
                note(id, .fileOnEntry)
            }
        }
        // The most telling first: the same device, the same file, the disk that holds it, then the rest.
        func rank(_ relation: Relation) -> Int {
            switch relation {
            case .same: return 0
            case .sameFile: return 1
            case .blocks(let theirs): return theirs.part == 0 && claim.extents.blocks.contains { $0.unit == theirs.unit } ? 2 : 3
            case .underEntryFile: return 4
            case .fileOnEntry: return 5
            }
        }
        return try DeviceTable.entries(ids: Array(relations.keys), db).map { ($0, relations[$0.id]!) }
            .enumerated().sorted { (rank($0.element.1), $0.offset) < (rank($1.element.1), $1.offset) }.map(\.element)
    }

    /// How an entry relates to a claim, in words: "the same device (WWID …) as rdev entry X".
    func describe(_ entry: DeviceEntry, _ relation: Relation, for claim: Claim) -> String {
        let named = "\(entry.type.rawValue) entry \(Display.safe(entry.name))"
        let identity = claim.identity
        if identity.path == entry.name { return named }
        if entry.names.contains(identity.path) { return "an alias of \(named)" }
        switch relation {
        case .same:
            if let wwid = identity.wwid, entry.identityKey == "wwid:" + wwid.normalized {
                return "the same device (WWID \(wwid)) as \(named)"
            }
            return "the same device as \(named)"
        case .sameFile:
            return "the same file as \(named) (a hard link, bind mount or symlinked folder)"
        case .blocks(let theirs):
            let mine = claim.extents.blocks.sorted().first { $0.overlaps(theirs) }
            if let mine, mine.part != 0, theirs.part == 0 { return "a partition of the disk that is \(named)" }
            if let mine, mine.part == 0, theirs.part != 0 { return "the disk holding partition \(named)" }
            if let wwid = identity.wwid, theirs.unit == "wwid:" + wwid.normalized, mine?.part == 0, theirs.part == 0 {
                return "the same device (WWID \(wwid)) as \(named)"
            }
            return "storage that overlaps \(named) (\(Self.shown(theirs)))"
        case .underEntryFile:
            return "the storage under the file system holding \(named)"
        case .fileOnEntry:
            return "a file on the file system of \(named)"
        }
    }

    /// An extent as people read it: `WWID 6005-…`, `partition 2 of WWID 6005-…`, `disk sdb`.
    static func shown(_ extent: BlockExtent) -> String {
        var unit = extent.unit
        if unit.hasPrefix("wwid:"), let wwid = WWID(String(unit.dropFirst(5))) {
            unit = "WWID \(wwid)"
        } else if unit.hasPrefix("dev:") {
            unit = "disk " + Display.safe(String(unit.dropFirst(4)))
        }
        return extent.part == 0 ? unit : "partition \(extent.part) of \(unit)"
    }

    // MARK: - Rule: restricted (rdev, server, env)

    /// Whether `type` keeps guests away from its storage: every entry type but `gdev`.
    static func isHostKept(_ type: EntryType) -> Bool { type != .gdev }

    /// Why a guest may not have the claim because the host keeps it, or nil: an `rdev`, `server`
    /// or `env` entry whose storage overlaps it (by any path, any overlap, whatever IGNOREWWID
    /// says), or a `RECURSIVE` folder above it. A guest's file on a file system whose disk the host
    /// keeps is not restricted: the host hands out files on its own file systems.
    func restriction(of claim: Claim, _ db: Database, met: [(DeviceEntry, Relation)]? = nil) throws -> String? {
        for (entry, relation) in try met ?? meeting(claim, db) where Self.isHostKept(entry.type) && relation != .fileOnEntry {
            return describe(entry, relation, for: claim)
        }
        return try recursiveCover(of: claim, db)
    }

    /// The refusal for a restricted claim: "<action>: it is restricted, <why>."
    static func restricted(_ action: String, _ why: String) -> RegistryError {
        RegistryError(.restricted, "\(action): it is restricted, \(why).")
    }

    /// The `RECURSIVE` rdev folder that covers a claim, in words, or nil. `DIR` covers every path
    /// below the folder, `FS` those on the folder's file system; both cover the folder's files
    /// through hard links and bind mounts.
    func recursiveCover(of claim: Claim, _ db: Database) throws -> String? {
        let folders = try DeviceTable.entries(
            db, where: "d.type = 'rdev' AND d.id IN (SELECT deviceId FROM deviceAttribute WHERE name = 'RECURSIVE')")
        for folder in folders {
            let mode = folder.attributes["RECURSIVE"] ?? "DIR"
            if covers(folder: folder.resolvedPath ?? folder.name, mode: mode, claim: claim) {
                let scope = mode == "FS" ? " on the same file system" : ""
                return "under \(Display.safe(folder.name))\(scope) (rdev, RECURSIVE=\(mode))"
            }
        }
        return nil
    }

    /// Whether a recursive restriction of `folder` covers the claim.
    func covers(folder: String, mode: String, claim: Claim) -> Bool {
        let target = claim.identity.resolvedPath
        guard claim.identity.exists, target != folder else { return false }
        let table = mounts
        let folderLocation = table.location(of: folder)
        if HostPath.isSameOrBelow(target, folder) {
            if mode != "FS" { return true }
            if table.mountPoint(of: target) == table.mountPoint(of: folder) { return true }
        }
        // DIR covers everything below the folder wherever either is seen (bind mounts), whatever
        // file systems are mounted inside it.
        if mode != "FS" {
            let folders = table.aliases(of: folder)
            for shown in table.aliases(of: target) where folders.contains(where: { HostPath.isSameOrBelow(shown, $0) && shown != $0 }) {
                return true
            }
        }
        // Seen through a bind mount: the same place on the same file system.
        if let location = claim.extents.location, location != folderLocation, !folderLocation.deviceNumber.isEmpty,
            location.isSameOrBelow(folderLocation)
        {
            return true
        }
        // A hard link of a file below the folder (a folder too large to search counts as holding
        // it: the rules fail closed).
        if let file = claim.extents.file, claim.identity.kind == .file, linkCount(target) > 1 {
            return Self.tree(inventory.root.real(folder), contains: file, mode: mode) != false
        }
        return false
    }

    private func linkCount(_ hostPath: String) -> UInt64 {
        var status = stat()
        guard stat(inventory.root.real(hostPath), &status) == 0 else { return 0 }
        return UInt64(status.st_nlink)
    }

    /// Whether a folder tree holds the file (by device and inode), looking at most at 200,000
    /// entries; nil when it is larger than that and the file was not found.
    static func tree(_ real: String, contains file: FileID, mode: String) -> Bool? {
        var budget = 200_000
        var folderStatus = stat()
        guard lstat(real, &folderStatus) == 0 else { return false }
        var pending = [real]
        while let folder = pending.popLast(), budget > 0 {
            guard let handle = opendir(folder) else { continue }
            defer { closedir(handle) }
            while let entry = readdir(handle), budget > 0 {
                budget -= 1
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name == "." || name == ".." { continue }
                let path = folder + "/" + name
                var status = stat()
                guard lstat(path, &status) == 0 else { continue }
                if UInt64(status.st_dev) == file.device && UInt64(status.st_ino) == file.inode { return true }
                if (status.st_mode & S_IFMT) == S_IFDIR && (mode != "FS" || status.st_dev == folderStatus.st_dev) {
                    pending.append(path)
                }
            }
        }
        return budget > 0 ? false : nil
    }

    // MARK: - Rule: the host's own use

    /// Why a guest may not have the claim because the host itself uses that storage (mounted,
    /// swap, or below either), or nil. Only raw storage can overlap the host's use: a file on a
    /// mounted file system is the host handing out a file.
    func hostUse(of claim: Claim) -> String? {
        guard claim.isBlock else { return nil }
        for (extent, device) in cache.hostUse(inventory.root, { HostUsage(root: inventory.root).extents() })
        where claim.extents.blocks.contains(where: { $0.overlaps(extent) }) {
            let which = device.path == claim.identity.resolvedPath || device.path == claim.path
                ? "" : " (\(Display.safe(device.path)), \(Self.shown(extent)))"
            return "the host's own storage\(which): \(Display.safe(device.reason))"
        }
        return nil
    }

    /// The refusal for a claim the host uses.
    static func hostsOwn(_ action: String, _ why: String) -> RegistryError {
        RegistryError(
            .restricted, "\(action): it is \(why). Guests never get the host's own disks (see hpvmhostrdev).")
    }

    // MARK: - Rule: used by other guests (SHARE)

    /// A gdev entry that other guests use and whose storage meets the claim, when sharing it is not
    /// allowed: the claim's own entry (`own`, the one the guest would be added to as a dependent)
    /// must be SHARE=YES, and so must every other overlapping entry and the claim's own.
    ///
    /// - Parameter running: when given, only these guests count as users (HP checks sharing among
    ///   the guests that run when one starts, ``startRefusal(_:guest:running:_:)``); otherwise
    ///   every guest that has the storage does.
    func otherGuests(
        of claim: Claim, guest: String, ownEntry: DeviceEntry?, _ db: Database, met: [(DeviceEntry, Relation)]? = nil,
        running: Set<String>? = nil
    ) throws -> String? {
        for (entry, relation) in try met ?? meeting(claim, db) where entry.type == .gdev {
            let others = entry.dependents.filter { $0 != guest && running?.contains($0) != false }
            guard !others.isEmpty else { continue }
            let holders = running == nil ? "" : others.count == 1 ? "running guest " : "running guests "
            let users = "\(describe(entry, relation, for: claim)), used by \(holders)\(Display.list(others))"
            if entry.id == ownEntry?.id {
                if !entry.isShared { return users + " and not SHARE=YES" }
            } else if !entry.isShared {
                return users + " and not SHARE=YES"
            } else if ownEntry?.isShared != true {
                return users + "; overlapping entries are shared only when both are SHARE=YES"
            }
        }
        return nil
    }

    /// The refusal for storage other guests hold: "<action>: it is <why>."
    static func inUse(_ action: String, _ why: String) -> RegistryError {
        RegistryError(.inUse, "\(action): it is \(why).")
    }

    // MARK: - Rule: every check for giving a guest a path

    /// Every rule for giving `guest` the claim, in the order people expect to read them: the
    /// host keeps it, the host uses it, other guests hold it. Returns the first refusal, or nil.
    func guestRefusal(_ claim: Claim, guest: String, ownEntry: DeviceEntry?, action: String, _ db: Database) throws
        -> RegistryError?
    {
        let met = try meeting(claim, db)
        if let why = try restriction(of: claim, db, met: met) { return Self.restricted(action, why) }
        if let why = hostUse(of: claim) { return Self.hostsOwn(action, why) }
        if let why = try otherGuests(of: claim, guest: guest, ownEntry: ownEntry, db, met: met) {
            return Self.inUse(action, why)
        }
        return nil
    }

    // MARK: - Rule: starting a guest (hpvmstart)

    /// Why `guest` may not start with one of its resources, or nil. HP checks sharing when a guest
    /// starts (hpvm-reference.md a.6, rule 1), and so does `hpvmstart`, with the same rules as when
    /// the guest was given the device, read from the host as it is now: the backing store or vswitch
    /// must exist and be of the kind its statement names; the storage may be neither kept nor used
    /// by the host; and it may overlap the storage of a *running* guest only when both claims are
    /// SHARE=YES. Before asking, ``refreshExtents(usedBy:_:)`` reads the running guests' storage
    /// from the host again (a LUN presented anew under another path, a WWID that changed), so
    /// both sides are judged as they are at the start.
    ///
    /// - Parameter running: the guests whose QEMU runs now (from the live processes).
    func startRefusal(_ statement: ResourceStatement, guest: String, running: Set<String>, _ db: Database) throws
        -> RegistryError?
    {
        let location = statement.location
        let claim = claim(location)
        guard claim.identity.exists else {
            return RegistryError(
                .notFound,
                statement.deviceType == .network
                    ? "cannot start guest \(guest): no vswitch named \(Display.safe(location)) exists on this host (\(Display.safe(statement.description))); create the bridge or change the guest with hpvmmodify."
                    : "cannot start guest \(guest): its backing store \(Display.safe(location)) does not exist on this host (\(Display.safe(statement.description))).")
        }
        let action = "cannot start guest \(guest) with \(Display.safe(location))"
        guard Self.kinds(forStorage: statement.storage).contains(claim.identity.kind) else {
            return Self.wrongKind(action, location: location, kind: claim.identity.kind, storage: statement.storage)
        }
        guard statement.deviceType != .network else { return nil }
        let met = try meeting(claim, db)
        if let why = try restriction(of: claim, db, met: met) { return Self.restricted(action, why) }
        if let why = hostUse(of: claim) { return Self.hostsOwn(action, why) }
        let own = try DeviceTable.entry(named: location, db)
        if let why = try otherGuests(of: claim, guest: guest, ownEntry: own, db, met: met, running: running) {
            return Self.inUse(action, why)
        }
        return nil
    }

    /// Records, inside the caller's transaction, the extents the host shows now for every entry a
    /// running guest depends on. `hpvmstart` runs it in a transaction it rolls back: the start is
    /// judged on the host as it is, and the registry is left as it was.
    func refreshExtents(usedBy guests: Set<String>, _ db: Database) throws {
        guard !guests.isEmpty else { return }
        try ready(db)
        for entry in try DeviceTable.entries(db, where: "d.type = 'gdev' AND d.id IN (SELECT deviceId FROM dependent)")
        where entry.dependents.contains(where: guests.contains) {
            try DeviceTable.setExtents(db, id: entry.id, claim(entry.names[0]).extents)
        }
    }

    /// Why a guest may not start at all, or nil: a migration holds it, or it is Not Runnable (the
    /// source copy of a migration, or switched off with `-x register_status=disabled`).
    ///
    /// - Parameter migrationID: the online migration bringing the guest here: the guest may then
    ///   start (paused, for the stream) only as that migration's Not Runnable arrival.
    static func startGuard(_ guest: Guest, arriving migrationID: String? = nil) -> RegistryError? {
        if let migrationID {
            guard guest.migrationLock == migrationID else {
                return RegistryError(.notModifiable, "guest \(guest.name) is not arriving by migration \(Display.safe(migrationID)) on this host.")
            }
            return nil
        }
        if let lock = guest.migrationLock {
            return RegistryError(
                .notModifiable,
                "cannot start guest \(guest.name): it is being migrated (\(Display.safe(lock))); try again when hpvmmigrate is done.")
        }
        guard guest.runnable else {
            let why = guest.statusSetBy == "Migrate" ? " (it was migrated to another host)" : ""
            return RegistryError(
                .notAllowed,
                "cannot start guest \(guest.name): it is Not Runnable\(why). If it runs on no other host, hpvmmodify -P \(guest.name) -x register_status=enabled makes it runnable.")
        }
        return nil
    }

    /// The refusal of a change that a running guest's QEMU would not follow: taking a device away
    /// (the QEMU keeps it, and the registry would let another guest have it), renaming the guest
    /// (its QEMU runs under the old name), removing it, or migrating it offline (it would run here
    /// and be runnable there).
    static func runningRefusal(_ guest: String, _ action: String) -> RegistryError {
        RegistryError(.inUse, "cannot \(action) guest \(guest) while it runs; stop it first (hpvmstop -P \(guest)).")
    }

    /// Why a guest that runs, or does not, may not be migrated the way `policy` asks: offline a
    /// running guest is refused (it would run here and be runnable there), online one that does
    /// not run. Nil when it may.
    static func migrationRefusal(_ guest: String, policy: RunningGuestPolicy, isRunning: Bool) -> RegistryError? {
        switch (policy, isRunning) {
        case (.refuse, true):
            RegistryError(
                .inUse,
                "cannot migrate guest \(guest) offline while it runs: migrate it online (-o), have the migration stop it (-d), or stop it first (hpvmstop -P \(guest)).")
        case (.require, false):
            RegistryError(.notAllowed, "guest \(guest) is not running, so there is nothing to migrate online; migrate it offline (without -o).")
        default:
            nil
        }
    }

    /// The kinds of object a storage type takes (`disk` a disk, `lv` a logical volume, `file` a
    /// file, `null` a folder, a network a vswitch).
    static func kinds(forStorage storage: String) -> [DeviceKind] {
        switch storage {
        case "disk": return [.disk]
        case "lv": return [.logicalVolume]
        case "file": return [.file]
        case "null": return [.directory]
        default: return [.vswitch]
        }
    }

    /// The refusal for an object of the wrong kind for its storage type.
    static func wrongKind(_ action: String, location: String, kind: DeviceKind, storage: String) -> RegistryError {
        RegistryError(
            .conflict,
            "\(action): \(Display.safe(location)) is \(kind.rawValue), not what storage type '\(Display.safe(storage))' needs.")
    }

    // MARK: - Rule: a copy's destination (hpvmmigrate -m … -C)

    /// The folder of the registry and of hpvm's own state: never a guest's storage, never written by a copy.
    static let stateFolder = "/var/opt/hpvm"

    /// Why a migration's copy may not write the claim, or nil. A copy overwrites the destination,
    /// so sharing does not help: the destination must be free of every other guest (SHARE=YES or
    /// not), of the host's claims and use, and outside hpvm's own folder. `guest` is the arriving
    /// guest, whose own claim on the destination (made before the copy) does not count.
    func copyRefusal(_ claim: Claim, guest: String, _ db: Database) throws -> RegistryError? {
        let action = "cannot copy into \(Display.safe(claim.path))"
        let resolved = claim.identity.resolvedPath
        if HostPath.isSameOrBelow(resolved, Self.stateFolder) || HostPath.isSameOrBelow(claim.path, Self.stateFolder) {
            return RegistryError(.restricted, "\(action): it is under \(Self.stateFolder), where hpvm keeps its registry and state.")
        }
        let met = try meeting(claim, db)
        if let why = try restriction(of: claim, db, met: met) { return Self.restricted(action, why) }
        if let why = hostUse(of: claim) { return Self.hostsOwn(action, why) }
        for (entry, relation) in met where entry.type == .gdev {
            let others = entry.dependents.filter { $0 != guest }
            guard !others.isEmpty else { continue }
            return RegistryError(
                .inUse,
                "\(action): it is \(describe(entry, relation, for: claim)), used by \(Display.list(others)); a copy would overwrite it\(entry.isShared ? " (SHARE=YES lets guests share a disk, not overwrite it)" : "").")
        }
        return nil
    }

    // MARK: - Rule: restricting (rdev, server, env)

    /// Why the host may not keep the claim, or nil: a guest uses storage that overlaps it (a
    /// guest's file on the claim's file system does not count), or a gdev entry is the same
    /// storage.
    func hostClaimRefusal(_ claim: Claim, action: String, _ db: Database) throws -> RegistryError? {
        let met = try meeting(claim, db).filter { $0.0.type == .gdev && $0.1 != .underEntryFile }
        if let (entry, relation) = met.first(where: { !$0.0.dependents.isEmpty }) {
            return RegistryError(
                .inUse,
                "\(action): it is \(describe(entry, relation, for: claim)), used by guest \(Display.list(entry.dependents, separator: ", ")).")
        }
        if let (entry, relation) = met.first {
            return RegistryError(
                .conflict,
                "\(action): it is \(describe(entry, relation, for: claim)); delete that entry first (hpvmdevmgmt -d gdev:\(Display.safe(entry.name))).")
        }
        return nil
    }

    /// The gdev entries a new rdev entry takes the place of: every gdev entry whose storage the
    /// claim meets, when none of them has a dependent. HP's advice after `hpvmmigrate -D` is to
    /// "restrict them with `hpvmdevmgmt -a rdev:`" — the devices a removed guest left behind are
    /// still gdev entries (PRESERVE=YES, or registered by hand), and restricting one turns it into
    /// the restriction rather than asking for a delete first. A used entry is never taken over:
    /// ``hostClaimRefusal(_:action:_:)`` refuses the claim, naming the guest.
    func restrictionTakesOver(_ claim: Claim, type: EntryType, _ db: Database) throws -> [DeviceEntry] {
        guard type == .rdev else { return [] }
        let met = try meeting(claim, db).filter { $0.0.type == .gdev && $0.1 != .underEntryFile }
        guard met.allSatisfy({ $0.0.dependents.isEmpty }) else { return [] }
        return met.map(\.0)  // meeting lists each entry once
    }

    /// Used gdev entries that a recursive restriction of `folder` would cover.
    func guestUse(under folder: String, mode: String, _ db: Database) throws -> [DeviceEntry] {
        try DeviceTable.entries(db, where: "d.type = 'gdev' AND d.id IN (SELECT deviceId FROM dependent)").filter { entry in
            covers(folder: folder, mode: mode, claim: claim(entry.names[0]))
        }
    }

    /// The refusal for a recursive restriction over a used guest device.
    static func recursiveOverGuest(_ action: String, _ entry: DeviceEntry) -> RegistryError {
        RegistryError(
            .inUse,
            "\(action): guest device \(Display.safe(entry.name)) under it is used by \(Display.list(entry.dependents, separator: ", ")).")
    }

    // MARK: - Rules: unshare, delete, dependents, guards

    /// SHARE=NO is refused while several guests share the entry.
    static func unshareRefusal(_ entry: DeviceEntry) -> RegistryError? {
        guard entry.dependents.count > 1 else { return nil }
        return RegistryError(
            .inUse,
            "cannot set SHARE=NO on \(Display.safe(entry.name)): guests \(Display.list(entry.dependents, separator: ", ")) share it. Remove it from all but one first.")
    }

    /// An entry with dependents is not deleted.
    static func deleteRefusal(_ entry: DeviceEntry) -> RegistryError? {
        guard !entry.dependents.isEmpty else { return nil }
        return RegistryError(
            .hasDependents,
            "cannot delete \(entry.type.rawValue) entry \(Display.safe(entry.name)): it has dependents \(Display.list(entry.dependents, separator: ", ")). Remove the device from those guests first (hpvmmodify -P GUEST -d …).")
    }

    /// A dependent is removed by hand only when it no longer matches a guest's resources: a guest
    /// that still has the device keeps its dependent (remove the resource with `hpvmmodify -d`).
    func dependentRefusal(entry: DeviceEntry, dependent: String, _ db: Database) throws -> RegistryError? {
        let names = entry.names
        let uses = try db.fetchOne(
            Bool.self,
            sql: """
                SELECT EXISTS (SELECT 1 FROM guestResource r JOIN guest g ON g.id = r.guestId
                               WHERE g.name = ? AND r.location IN (\(DeviceTable.marks(names.count))))
                """,
            arguments: StatementArguments([dependent] + names)) ?? false
        guard uses else { return nil }
        return RegistryError(
            .inUse,
            "cannot remove dependent \(Display.safe(dependent)) from \(Display.safe(entry.name)): guest \(Display.safe(dependent)) still has the device. Take it from the guest with hpvmmodify -P \(Display.safe(dependent)) -d … instead.")
    }

    /// A guest that a migration holds, or that is Not Modify, refuses changes; `-x
    /// modify_status=enabled` (or `register_status=enabled`) is the one change a Not Modify guest
    /// takes, and `hpvmremove -F` removes one.
    ///
    /// - Parameter migratedAway: the guest is the source copy of a finished migration
    ///   (``migratedAway(_:_:)``): HP's procedure removes it with a plain `hpvmremove` once it will
    ///   not come back, so removing it needs no `-F`.
    static func guardRefusal(
        _ guest: Guest, removing: Bool = false, onlyReenables: Bool = false, force: Bool = false, migratedAway: Bool = false
    ) -> RegistryError? {
        if let lock = guest.migrationLock {
            return RegistryError(
                .notModifiable,
                "guest \(guest.name) is being migrated (\(Display.safe(lock))); \(removing ? "remove it" : "try again") when hpvmmigrate is done.")
        }
        guard !guest.modifiable && !onlyReenables && !force && !(removing && migratedAway) else { return nil }
        if removing {
            return RegistryError(
                .notModifiable,
                "guest \(guest.name) is Not Modify; remove it with hpvmremove -F -P \(guest.name) if it is really gone from every host.")
        }
        return RegistryError(
            .notModifiable,
            "guest \(guest.name) is Not Modify; the only change it accepts is -x modify_status=enabled (or register_status=enabled).")
    }

    /// Whether the guest is the source copy of a migration that finished: Not Runnable by the
    /// migration's own hand, and its last source journal row is `done`. A migration that stopped
    /// after the point of no return (the copy may still be the one to keep) does not count.
    static func migratedAway(_ guest: Guest, _ db: Database) throws -> Bool {
        guard !guest.runnable, guest.statusSetBy == "Migrate", guest.migrationLock == nil else { return false }
        let phase = try db.fetchOne(
            String.self,
            sql: "SELECT phase FROM migrationJournal WHERE guestName = ? AND role = 'source' ORDER BY id DESC LIMIT 1",
            arguments: [guest.name])
        return phase == "done"
    }

    // MARK: - Extents in the registry

    /// Makes sure every entry's extents are recorded: entries made before extents were kept get
    /// them from the host now, inside the caller's transaction (so a refused command still changes
    /// nothing).
    func ready(_ db: Database) throws {
        if try db.fetchOne(String.self, sql: "SELECT value FROM hostSetting WHERE name = 'extents'") != nil { return }
        if db.configuration.readonly {
            // A reader may not write the file: the extents go to a TEMP table of the same name,
            // which SQLite finds first, for as long as the connection lasts.
            if try db.tableExists("deviceExtent", in: "temp") { return }
            try db.execute(sql: """
                CREATE TEMP TABLE deviceExtent (
                    id INTEGER PRIMARY KEY, deviceId INTEGER NOT NULL, role TEXT NOT NULL, unit TEXT NOT NULL,
                    part INTEGER NOT NULL DEFAULT 0, UNIQUE (deviceId, role, unit, part));
                CREATE INDEX temp.deviceExtent_unit ON deviceExtent(unit, part);
                """)
        }
        for entry in try DeviceTable.entries(db) {
            try DeviceTable.setExtents(db, id: entry.id, claim(entry.names[0]).extents)
        }
        if !db.configuration.readonly {
            try db.run(sql: "INSERT INTO hostSetting (name, value) VALUES ('extents', '1')")
        }
    }
}

/// What the rules read from the host's mount and swap tables, kept while those tables stay the
/// same: a long-lived caller (the migration's target half) sees a mount made after it started.
final class RulesCache: @unchecked Sendable {
    private var key: String?
    private var mountTable: MountTable?
    private var used: [(BlockExtent, HostDevice)]?

    /// Forgets what was read when the tables changed since.
    private func check(_ root: HostRoot) {
        let now = MountTable.signature(root: root)
        if now != key {
            key = now
            mountTable = nil
            used = nil
        }
    }

    func mounts(_ root: HostRoot, _ make: () -> MountTable) -> MountTable {
        check(root)
        if let mountTable { return mountTable }
        let made = make()
        mountTable = made
        return made
    }

    func hostUse(_ root: HostRoot, _ make: () -> [(BlockExtent, HostDevice)]) -> [(BlockExtent, HostDevice)] {
        check(root)
        if let used { return used }
        let made = make()
        used = made
        return made
    }
}
