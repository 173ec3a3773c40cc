/// One line of `/proc/self/mountinfo`.
public struct Mount: Sendable, Equatable {
    /// `major:minor` of the mounted device.
    public let deviceNumber: String
    /// Where it is mounted, as a host path.
    public let mountPoint: String
    /// The file-system type (`ext4`, `xfs`, `tmpfs`).
    public let fsType: String
    /// The mount source (`/dev/sda1`, `/dev/mapper/vg-root`, `tmpfs`).
    public let source: String
    /// The folder of the file system that the mount shows (`/` unless it is a bind mount).
    public var root: String = "/"
}

/// The host's mounts and swap areas, read from `proc/self/mountinfo` and `proc/swaps` under the root.
public struct MountTable: Sendable {
    public let mounts: [Mount]
    /// Host paths of swap devices and files, from `proc/swaps`.
    public let swaps: [String]

    public init(mounts: [Mount], swaps: [String]) {
        self.mounts = mounts
        self.swaps = swaps
    }

    /// Reads the tables under `root`; missing files give empty tables (one file system, no swap).
    public init(root: HostRoot) {
        let mountinfo = FileSystem.read(root.real("/proc/self/mountinfo")) ?? ""
        let swapText = FileSystem.read(root.real("/proc/swaps")) ?? ""
        self.init(mounts: MountTable.parseMountInfo(mountinfo), swaps: MountTable.parseSwaps(swapText))
    }

    /// The text of the mount and swap tables under `root`: equal texts, equal tables.
    public static func signature(root: HostRoot) -> String {
        (FileSystem.read(root.real("/proc/self/mountinfo")) ?? "") + "\u{0}" + (FileSystem.read(root.real("/proc/swaps")) ?? "")
    }

    /// Parses mountinfo (`36 35 98:0 / /mnt rw - ext4 /dev/sdb1 rw`); malformed lines are skipped.
    public static func parseMountInfo(_ text: String) -> [Mount] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 3 else {
                return nil
            }
            return Mount(
                deviceNumber: fields[2], mountPoint: unescape(fields[4]), fsType: fields[dash + 1],
                source: unescape(fields[dash + 2]), root: unescape(fields[3]))
        }
    }

    /// Parses `/proc/swaps` (a header line, then `Filename Type Size Used Priority`).
    public static func parseSwaps(_ text: String) -> [String] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).first.map { unescape(String($0)) }
        }
    }

    /// The kernel's octal escapes (`\040` for a space) turned back into characters.
    static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        let source = Array(field.utf8)
        var i = 0
        while i < source.count {
            if source[i] == UInt8(ascii: "\\"), i + 3 < source.count {
                let digits = source[(i + 1)...(i + 3)]
                if digits.allSatisfy({ $0 >= 48 && $0 <= 55 }) {
                    let value = digits.reduce(0) { $0 * 8 + Int($1 - 48) }
                    bytes.append(UInt8(truncatingIfNeeded: value))
                    i += 4
                    continue
                }
            }
            bytes.append(source[i])
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The mount point of the file system holding `hostPath`: the longest mount point that is
    /// `hostPath` or one of its ancestors; `/` when there is no table.
    public func mountPoint(of hostPath: String) -> String {
        var best = "/"
        for mount in mounts where HostPath.isSameOrBelow(hostPath, mount.mountPoint) {
            if mount.mountPoint.count > best.count { best = mount.mountPoint }
        }
        return best
    }
}

/// Helpers for host paths as strings.
public enum HostPath {
    /// Whether `path` is `ancestor` or lies below it, comparing whole components.
    public static func isSameOrBelow(_ path: String, _ ancestor: String) -> Bool {
        if ancestor == "/" { return path.hasPrefix("/") }
        return path == ancestor || path.hasPrefix(ancestor + "/")
    }
}
