#if canImport(Glibc)
internal import Glibc
#endif

/// The few file-system calls the inventory needs, as thin wrappers over libc.
///
/// Everything here takes real (already rooted) paths; ``HostRoot`` turns host paths into them.
enum FileSystem {
    enum Kind: Equatable {
        case regular, directory, symlink, blockDevice, characterDevice, other
    }

    /// The kind of the object at `path` without following a final symlink, or nil when absent.
    ///
    /// The corresponding C function is `lstat`.
    static func lkind(_ path: String) -> Kind? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return kind(of: st.st_mode)
    }

    /// The kind of the object at `path`, following symlinks, or nil when absent.
    ///
    /// The corresponding C function is `stat`.
    static func kind(_ path: String) -> Kind? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return kind(of: st.st_mode)
    }

    static func kind(of mode: mode_t) -> Kind {
        switch mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        case S_IFBLK: return .blockDevice
        case S_IFCHR: return .characterDevice
        default: return .other
        }
    }

    /// Major and minor number of a block or character device node.
    static func deviceNumber(_ path: String) -> (major: UInt32, minor: UInt32)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let kind = kind(of: st.st_mode)
        guard kind == .blockDevice || kind == .characterDevice else { return nil }
        let dev = UInt64(st.st_rdev)
        let major = UInt32(((dev >> 32) & 0xFFFF_F000) | ((dev >> 8) & 0x0000_0FFF))
        let minor = UInt32(((dev >> 12) & 0xFFFF_FF00) | (dev & 0x0000_00FF))
        return (major, minor)
    }

    /// The target of a symlink.
    ///
    /// The corresponding C function is `readlink`.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The contents of a small file (sysfs attribute, /proc table), at most `limit` bytes.
    static func read(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The names in a directory, without `.` and `..`, or an empty list when it cannot be read.
    ///
    /// The corresponding C functions are `opendir` and `readdir`.
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func exists(_ path: String) -> Bool { lkind(path) != nil }
}
