import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A block extent of promise-spec.md: a unit (a WWID, or `dev:<name>` for a disk without one)
/// and a partition number, 0 for the whole unit.
struct Extent: Hashable, CustomStringConvertible {
    let unit: String
    let part: Int

    /// Whether two extents share storage: one unit, and either is whole or both are one partition.
    func overlaps(_ other: Extent) -> Bool {
        unit == other.unit && (part == 0 || other.part == 0 || part == other.part)
    }

    var description: String { part == 0 ? unit : "\(unit)#\(part)" }
}

/// A regular file or a directory as the kernel knows it: (st_dev, st_ino).
struct FileID: Hashable, CustomStringConvertible {
    let device: UInt64
    let inode: UInt64
    var description: String { "inode \(device):\(inode)" }
}

/// One line of `proc/self/mountinfo`.
struct MountEntry {
    /// `major:minor` (field 3).
    let number: String
    /// The folder of the file system shown at the mount point (field 4).
    let root: String
    /// Where it is mounted (field 5).
    let mountPoint: String
    /// The mount source after the ` - ` separator (`/dev/sda1`, `tmpfs`).
    let source: String
}

/// The oracle's own reader of a host root: symlinks, sysfs, mountinfo and swaps, following
/// promise-spec.md and sharing nothing with the project's inventory code.
///
/// The host root does not change during a walk, so every answer is cached.
final class HostReader {
    /// The real path of the host root.
    let root: String
    private(set) lazy var mounts: [MountEntry] = readMounts()
    private var resolveCache: [String: String?] = [:]
    private var extentCache: [String: Set<Extent>] = [:]
    private var inodeCache: [String: Set<FileID>] = [:]

    init(root: String) {
        self.root = root
    }

    // MARK: - Paths

    /// The host path `hostPath` resolves to, following every symlink under the root (an absolute
    /// target `/a` means `root/a`); nil when some component does not exist or links loop.
    func resolve(_ hostPath: String) -> String? {
        if let cached = resolveCache[hostPath] { return cached }
        let result = resolveUncached(hostPath)
        resolveCache[hostPath] = result
        return result
    }

    private func resolveUncached(_ hostPath: String) -> String? {
        var pending = hostPath.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            var st = stat()
            guard lstat(root + candidate, &st) == 0 else { return nil }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                hops += 1
                guard hops <= 40, let target = readLink(root + candidate) else { return nil }
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
            } else {
                resolved.append(component)
            }
        }
        return "/" + resolved.joined(separator: "/")
    }

    private func readLink(_ real: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(real, &buffer, 4096)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `stat` of a resolved host path.
    func status(_ resolved: String) -> stat? {
        var st = stat()
        return stat(root + resolved, &st) == 0 ? st : nil
    }

    func exists(_ hostPath: String) -> Bool { resolve(hostPath) != nil }

    /// A small text file under the root (following links), trimmed; nil when absent.
    func text(_ hostPath: String) -> String? {
        guard let resolved = resolve(hostPath),
              let data = FileManager.default.contents(atPath: root + resolved)
        else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Names in a folder under the root (following links to it); empty when absent.
    func list(_ hostPath: String) -> [String] {
        guard let resolved = resolve(hostPath) else { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: root + resolved)) ?? []).sorted()
    }

    static func isUnder(_ path: String, _ folder: String) -> Bool {
        folder == "/" || path == folder || path.hasPrefix(folder + "/")
    }

    // MARK: - Block devices

    /// The kernel block device a host path names: it resolves to `/dev/X` with `sys/block/X` or
    /// `sys/class/block/X` present, or it is a real block node known to `sys/dev/block`.
    func blockName(_ hostPath: String) -> String? {
        guard let resolved = resolve(hostPath) else { return nil }
        let parts = resolved.split(separator: "/").map(String.init)
        if parts.count == 2 && parts[0] == "dev" {
            let name = parts[1]
            if exists("/sys/block/\(name)") || exists("/sys/class/block/\(name)") { return name }
        }
        if let st = status(resolved), (st.st_mode & S_IFMT) == S_IFBLK {
            let dev = UInt64(st.st_rdev)
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
            let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
            let number = "\(major):\(minor)"
            return blockName(numbered: number)
        }
        return nil
    }

    /// The kernel name of block device `major:minor`, through `sys/dev/block`.
    func blockName(numbered number: String) -> String? {
        guard let resolved = resolve("/sys/dev/block/\(number)") else { return nil }
        return resolved.split(separator: "/").last.map(String.init)
    }

    /// The block extents of kernel device `name`, followed to the bottom.
    func extents(ofBlock name: String) -> Set<Extent> {
        if let cached = extentCache[name] { return cached }
        extentCache[name] = []  // a loop in slaves/ ends here
        let result = extentsUncached(name)
        extentCache[name] = result
        return result
    }

    private func extentsUncached(_ name: String) -> Set<Extent> {
        if let uuid = text("/sys/block/\(name)/dm/uuid") ?? text("/sys/class/block/\(name)/dm/uuid") {
            if uuid.hasPrefix("mpath-") {
                return [Extent(unit: Self.mpathWWID(String(uuid.dropFirst(6))), part: 0)]
            }
            if uuid.hasPrefix("part"), let dash = uuid.firstIndex(of: "-"),
               let number = Int(uuid[uuid.index(uuid.startIndex, offsetBy: 4)..<dash]),
               uuid[dash...].hasPrefix("-mpath-")
            {
                let id = String(uuid[uuid.index(dash, offsetBy: 7)...])
                return [Extent(unit: Self.mpathWWID(id), part: number)]
            }
            return slaveExtents(name)
        }
        if !exists("/sys/block/\(name)"), let number = text("/sys/class/block/\(name)/partition").flatMap({ Int($0) }),
           let folder = resolve("/sys/class/block/\(name)")
        {
            let diskFolder = String(folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)])
            let diskName = diskFolder.split(separator: "/").last.map(String.init) ?? name
            return [Extent(unit: unit(diskFolder: diskFolder, name: diskName), part: number)]
        }
        if !list("/sys/block/\(name)/slaves").isEmpty {
            return slaveExtents(name)
        }
        guard let folder = resolve("/sys/block/\(name)") ?? resolve("/sys/class/block/\(name)") else { return [] }
        return [Extent(unit: unit(diskFolder: folder, name: name), part: 0)]
    }

    private func slaveExtents(_ name: String) -> Set<Extent> {
        var result: Set<Extent> = []
        let folder = exists("/sys/block/\(name)") ? "/sys/block/\(name)" : "/sys/class/block/\(name)"
        for slave in list(folder + "/slaves") { result.formUnion(extents(ofBlock: slave)) }
        return result
    }

    /// The names under `sys/block/<name>/slaves/`.
    func slaves(_ name: String) -> [String] {
        list(exists("/sys/block/\(name)") ? "/sys/block/\(name)/slaves" : "/sys/class/block/\(name)/slaves")
    }

    private func unit(diskFolder: String, name: String) -> String {
        if let wwid = text(diskFolder + "/device/wwid") ?? text(diskFolder + "/wwid"), !wwid.isEmpty {
            return Self.normalisedWWID(wwid)
        }
        return "dev:\(name)"
    }

    /// Lower-case hex without `naa.`, `eui.`, `0x` or `-`.
    static func normalisedWWID(_ text: String) -> String {
        var value = text.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)
        for prefix in ["naa.", "eui.", "0x"] where value.hasPrefix(prefix) {
            value = String(value.dropFirst(prefix.count))
        }
        return value.replacingOccurrences(of: "-", with: "")
    }

    /// The WWID in a multipath uuid's id: a leading `3` before an NAA id (16 or 32 hex digits) is dropped.
    static func mpathWWID(_ id: String) -> String {
        let value = normalisedWWID(id)
        let rest = value.dropFirst()
        if value.hasPrefix("3") && (rest.count == 16 || rest.count == 32) && rest.allSatisfy(\.isHexDigit) {
            return String(rest)
        }
        return value
    }

    // MARK: - Mounts

    private func readMounts() -> [MountEntry] {
        guard let data = FileManager.default.contents(atPath: root + "/proc/self/mountinfo") else { return [] }
        var entries: [MountEntry] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 5, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { continue }
            entries.append(MountEntry(
                number: fields[2], root: Self.unescape(fields[3]), mountPoint: Self.unescape(fields[4]),
                source: Self.unescape(fields[dash + 2])))
        }
        return entries
    }

    private static func unescape(_ field: String) -> String {
        field.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
            .replacingOccurrences(of: "\\012", with: "\n").replacingOccurrences(of: "\\134", with: "\\")
    }

    /// The mount holding a resolved host path: the longest mount point that is a prefix of it
    /// (the last such line wins, as the kernel stacks mounts).
    func mount(of resolved: String) -> MountEntry? {
        var best: MountEntry?
        for entry in mounts where Self.isUnder(resolved, entry.mountPoint) {
            if best == nil || entry.mountPoint.count >= (best?.mountPoint.count ?? 0) { best = entry }
        }
        return best
    }

    /// The block device of a mount: `major:minor` through `sys/dev/block`, else its `/dev` source.
    func blockName(of entry: MountEntry) -> String? {
        if let name = blockName(numbered: entry.number) { return name }
        if entry.source.hasPrefix("/dev/") { return blockName(entry.source) }
        return nil
    }

    /// The other host paths that show `resolved` through bind mounts translated back (mountinfo
    /// field 4): a path under a mount whose root is `/x` is also `/x` below a mount of the same
    /// file system with root `/`.
    func bindTranslations(of resolved: String) -> [String] {
        var found: [String] = [resolved]
        var index = 0
        while index < found.count && found.count < 8 {
            let path = found[index]
            index += 1
            for entry in mounts where entry.root != "/" && Self.isUnder(path, entry.mountPoint) {
                let rest = String(path.dropFirst(entry.mountPoint == "/" ? 0 : entry.mountPoint.count))
                for base in mounts where base.number == entry.number && base.root == "/" {
                    let shown = (base.mountPoint == "/" ? "" : base.mountPoint) + entry.root
                    let translated = shown + rest
                    if !found.contains(translated) { found.append(translated) }
                }
            }
        }
        return found
    }

    /// Every regular file below a folder (not following symlinks), as inodes; with `sameFS`, only
    /// the files on the same file system (mountinfo `major:minor`) as the folder.
    func inodes(below folder: String, sameFS: Bool) -> Set<FileID> {
        let key = "\(sameFS):\(folder)"
        if let cached = inodeCache[key] { return cached }
        var result: Set<FileID> = []
        let fsNumber = mount(of: folder)?.number
        var pending = [folder]
        while let current = pending.popLast() {
            if sameFS && mount(of: current)?.number != fsNumber { continue }
            var st = stat()
            guard lstat(root + current, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let names = (try? FileManager.default.contentsOfDirectory(atPath: root + current)) ?? []
                pending += names.map { (current == "/" ? "" : current) + "/" + $0 }
            case S_IFREG:
                result.insert(FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)))
            default:
                break
            }
        }
        inodeCache[key] = result
        return result
    }

    // MARK: - The host's own use

    /// Whole-unit extents of every block device mounted or used as swap, and everything below
    /// them through `slaves/`.
    private(set) lazy var hostOwn: Set<Extent> = {
        var names: [String] = []
        for entry in mounts {
            if let name = blockName(of: entry) { names.append(name) }
        }
        if let swaps = FileManager.default.contents(atPath: root + "/proc/swaps") {
            for line in String(decoding: swaps, as: UTF8.self).split(separator: "\n").dropFirst() {
                if let path = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first,
                   let name = blockName(String(path))
                {
                    names.append(name)
                }
            }
        }
        var seen: Set<String> = []
        var result: Set<Extent> = []
        while let name = names.popLast() {
            guard seen.insert(name).inserted else { continue }
            for extent in extents(ofBlock: name) { result.insert(Extent(unit: extent.unit, part: 0)) }
            names += slaves(name)
        }
        return result
    }()
}
