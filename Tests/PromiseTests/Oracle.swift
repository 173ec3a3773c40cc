import Foundation
import HPVMTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a path occupies, by promise-spec.md: block extents, or a regular file (its inode and the
/// block extents of the file system holding it), or a folder.
struct Claim {
    let path: String
    /// The resolved host path, nil when the path does not exist.
    let resolved: String?
    var blocks: Set<Extent> = []
    var file: FileID?
    var container: Set<Extent> = []
    var isFolder = false

    var isBlock: Bool { !blocks.isEmpty }
}

/// The registry as the oracle reads it, with its own SQL through the `sqlite3` shell.
struct RegistrySnapshot {
    /// A device entry: every name it has, its attributes and its dependents.
    struct Entry {
        let id: String
        let type: String
        var names: [String]
        var attributes: [String: String] = [:]
        var dependents: [String] = []
    }

    /// A guest resource.
    struct Resource {
        let guest: String
        let deviceType: String
        let storageType: String
        let location: String
    }

    var entries: [Entry] = []
    var resources: [Resource] = []
    var guests: [String] = []

    func entries(named name: String, type: String? = nil) -> [Entry] {
        entries.filter { ($0.type == type || type == nil) && $0.names.contains(name) }
    }

    static let query = """
        SELECT 'dev' AS k, CAST(id AS TEXT) AS a, type AS b, name AS c FROM device
        UNION ALL SELECT 'name', CAST(deviceId AS TEXT), '', name FROM deviceName
        UNION ALL SELECT 'attr', CAST(deviceId AS TEXT), name, value FROM deviceAttribute
        UNION ALL SELECT 'dep', CAST(deviceId AS TEXT), kind, name FROM dependent
        UNION ALL SELECT 'guest', name, '', '' FROM guest
        UNION ALL SELECT 'res', g.name, r.deviceType || '|' || r.storageType, r.location
            FROM guestResource r JOIN guest g ON g.id = r.guestId;
        """

    /// Reads the registry at `path` (read-only); an absent file is an empty registry.
    static func read(_ path: String) throws -> RegistrySnapshot {
        guard FileManager.default.fileExists(atPath: path) else { return RegistrySnapshot() }
        let result = try ChildProcess.run(
            "/usr/bin/sqlite3", ["-readonly", "-json", path, query], environment: ["PATH": "/usr/bin:/bin"])
        guard result.status == 0 else {
            throw OracleError("sqlite3 failed (\(result.status)): \(result.stderr)")
        }
        var snapshot = RegistrySnapshot()
        let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return snapshot }
        guard let rows = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
            throw OracleError("sqlite3 printed no JSON array")
        }
        var byID: [String: Int] = [:]
        var later: [(String, String, String, String)] = []
        for row in rows {
            let k = row["k"] as? String ?? ""
            let a = row["a"] as? String ?? ""
            let b = row["b"] as? String ?? ""
            let c = row["c"] as? String ?? ""
            switch k {
            case "dev":
                byID[a] = snapshot.entries.count
                snapshot.entries.append(Entry(id: a, type: b, names: [c]))
            case "guest":
                snapshot.guests.append(a)
            case "res":
                let kinds = b.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                snapshot.resources.append(Resource(
                    guest: a, deviceType: kinds.first ?? "", storageType: kinds.count > 1 ? kinds[1] : "", location: c))
            default:
                later.append((k, a, b, c))
            }
        }
        for (k, a, b, c) in later {
            guard let index = byID[a] else { continue }
            switch k {
            case "name": if !snapshot.entries[index].names.contains(c) { snapshot.entries[index].names.append(c) }
            case "attr": snapshot.entries[index].attributes[b] = c
            case "dep": if b == "guest" { snapshot.entries[index].dependents.append(c) }
            default: break
            }
        }
        return snapshot
    }
}

/// A failure of the oracle itself (not a finding about the project).
struct OracleError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The independent judge of the storage promise (promise-spec.md). It reads the host root with its
/// own ``HostReader`` and the registry with its own SQL; it shares no code with the rules.
final class Oracle {
    let host: HostReader
    let registryPath: String
    private var claimCache: [String: Claim] = [:]

    init(root: String) {
        host = HostReader(root: root)
        registryPath = root + "/var/opt/hpvm/common/hpvm_mgmtdb.sqlite"
    }

    // MARK: - Extents of a claim

    /// What `path` occupies.
    func claim(_ path: String) -> Claim {
        if let cached = claimCache[path] { return cached }
        var claim = Claim(path: path, resolved: host.resolve(path))
        if let resolved = claim.resolved {
            if let name = host.blockName(path) {
                claim.blocks = host.extents(ofBlock: name)
                if claim.blocks.isEmpty { claim.blocks = [Extent(unit: "dev:\(name)", part: 0)] }
            } else if let st = host.status(resolved) {
                let kind = st.st_mode & S_IFMT
                if kind == S_IFREG {
                    claim.file = FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
                    if let entry = host.mount(of: resolved), let name = host.blockName(of: entry) {
                        claim.container = host.extents(ofBlock: name)
                    }
                } else if kind == S_IFDIR {
                    claim.isFolder = true
                }
            }
        }
        claimCache[path] = claim
        return claim
    }

    /// Whether an rdev folder `folder` with `RECURSIVE=<mode>` covers `path`.
    func covers(folder: String, mode: String, path: String) -> Bool {
        guard let folderResolved = host.resolve(folder), host.status(folderResolved).map({ ($0.st_mode & S_IFMT) == S_IFDIR }) == true,
              let pathResolved = host.resolve(path)
        else { return false }
        let sameFS = mode.uppercased() == "FS"
        let folderNumber = host.mount(of: folderResolved)?.number
        let folders = host.bindTranslations(of: folderResolved)
        for candidate in host.bindTranslations(of: pathResolved) {
            for shown in folders where HostReader.isUnder(candidate, shown) {
                if !sameFS || host.mount(of: candidate)?.number == folderNumber { return true }
            }
        }
        if let file = claim(path).file {
            for shown in folders where host.inodes(below: shown, sameFS: sameFS).contains(file) {
                if !sameFS || host.mount(of: shown)?.number == folderNumber { return true }
            }
        }
        return false
    }

    // MARK: - The checks

    /// Every way the registry breaks the promise now: (a) guest vs guest, (b) guest vs host-kept
    /// entries and the host's own use, (d) dependents vs resources.
    func findings(_ registry: RegistrySnapshot) -> [String] {
        var found: [String] = []
        struct Held {
            let guest: String
            let location: String
            let claim: Claim
            let shared: Bool
        }
        var held: [Held] = []
        for resource in registry.resources where resource.location.contains("/") {
            let shared = registry.entries(named: resource.location, type: "gdev")
                .contains { $0.attributes["SHARE"]?.uppercased() == "YES" }
            held.append(Held(guest: resource.guest, location: resource.location, claim: claim(resource.location), shared: shared))
        }

        // (a) guest vs guest
        for i in held.indices {
            for j in held.indices where j > i && held[i].guest != held[j].guest {
                let x = held[i]
                let y = held[j]
                guard let why = conflict(x.claim, y.claim, guestPair: true) else { continue }
                if x.shared && y.shared { continue }
                found.append(
                    "[a] guests \(x.guest) and \(y.guest) both hold storage: \(x.location) and \(y.location) \(why)"
                        + " (SHARE=YES: \(x.location) \(x.shared ? "yes" : "no"), \(y.location) \(y.shared ? "yes" : "no"))")
            }
        }

        // (b) guest vs host-kept entries
        for entry in registry.entries where ["rdev", "server", "env"].contains(entry.type) {
            let recursive = entry.attributes["RECURSIVE"]
            for name in entry.names {
                let kept = claim(name)
                for h in held {
                    if let why = conflict(h.claim, kept, guestPair: false) {
                        found.append("[b:\(entry.type)] guest \(h.guest) holds \(h.location), which \(why) \(entry.type) entry \(name)")
                    } else if let recursive, covers(folder: name, mode: recursive, path: h.location) {
                        found.append(
                            "[b:recursive] guest \(h.guest) holds \(h.location), covered by \(entry.type) entry \(name) RECURSIVE=\(recursive)")
                    }
                }
            }
        }

        // (b) guest vs the host's own use
        for h in held {
            let own = h.claim.blocks.filter { extent in host.hostOwn.contains { $0.overlaps(extent) } }
            if !own.isEmpty {
                found.append(
                    "[b:host] guest \(h.guest) holds \(h.location) (\(own.map(\.description).sorted().joined(separator: ", "))), "
                        + "which the host itself uses (mounted or swap)")
            }
        }

        // (d) dependents vs resources
        for entry in registry.entries where entry.type == "gdev" {
            let users = Set(registry.resources.filter { entry.names.contains($0.location) }.map(\.guest))
            let dependents = Set(entry.dependents)
            for guest in dependents.subtracting(users).sorted() {
                found.append("[d] gdev entry \(entry.names[0]) has dependent \(guest), which has no resource on it")
            }
            for guest in users.subtracting(dependents).sorted() {
                found.append("[d] guest \(guest) has a resource on gdev entry \(entry.names[0]) but is not its dependent")
            }
        }
        for resource in registry.resources where resource.location.contains("/") {
            if registry.entries(named: resource.location, type: "gdev").isEmpty {
                found.append("[d] guest \(resource.guest) has resource \(resource.location), which names no gdev entry")
            }
        }
        return found
    }

    /// Why two claims conflict, or nil. With `guestPair`, both are guests' (containers count both
    /// ways); otherwise `kept` is a host-kept entry, and a guest's file on a kept disk is fine.
    func conflict(_ guest: Claim, _ kept: Claim, guestPair: Bool) -> String? {
        if let a = guest.blocks.first(where: { a in kept.blocks.contains { $0.overlaps(a) } }) {
            return "overlaps (\(a))"
        }
        if let a = guest.file, a == kept.file { return "is the same file (\(a)) as" }
        if let a = guest.blocks.first(where: { a in kept.container.contains { $0.overlaps(a) } }) {
            return "overlaps (\(a)) the file system holding"
        }
        if guestPair, let a = kept.blocks.first(where: { a in guest.container.contains { $0.overlaps(a) } }) {
            return "lives on the file system (\(a)) of"
        }
        return nil
    }

    // MARK: - (c) refused steps

    /// The registry file's bytes and its write-ahead log's (nil when absent).
    func registryState() -> (main: Data?, wal: Data?) {
        (FileManager.default.contents(atPath: registryPath), FileManager.default.contents(atPath: registryPath + "-wal"))
    }

    /// Finding (c) for a step: a refused step changed the file; any step left a non-empty WAL.
    func stepFindings(status: Int32, before: (main: Data?, wal: Data?), after: (main: Data?, wal: Data?)) -> [String] {
        var found: [String] = []
        if let wal = after.wal, !wal.isEmpty {
            found.append("[c:wal] a non-empty write-ahead log (\(wal.count) bytes) was left beside the registry")
        }
        if status != 0 {
            if before.main != after.main {
                switch (before.main, after.main) {
                case (nil, _): found.append("[c] the refused command created the registry file")
                case (_, nil): found.append("[c] the refused command removed the registry file")
                default: found.append("[c] the refused command changed the registry file (\(before.main?.count ?? 0) -> \(after.main?.count ?? 0) bytes)")
                }
            }
        }
        return found
    }
}
