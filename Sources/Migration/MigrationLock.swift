public import Host
#if canImport(Glibc)
internal import Glibc
#endif

/// A migration's exclusive claim on its guest for the whole life of the `hpvmmigrate` process:
/// `flock` on a per-guest lock file beside the registry. The kernel drops it when the process
/// ends, however it ends, so a lock is never left behind; `--recover` refuses to touch a guest
/// whose lock is held, and says which process holds it.
public final class MigrationLock {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// The lock file of a guest: `/var/opt/hpvm/common/migrate.<guest>.lock` under the root.
    static func path(root: HostRoot, guest: String) -> String {
        root.real("/var/opt/hpvm/common/migrate.\(guest).lock")
    }

    /// Takes the guest's lock, or says who holds it. The lock file is made beside the registry,
    /// which must exist (there is nothing to migrate or recover without one).
    public static func acquire(root: HostRoot, guest: String, phase: String) throws(MigrationError) -> MigrationLock {
        let file = path(root: root, guest: guest)
        let fd = open(file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw MigrationError(.refused, ["cannot open the migration lock \(file): \(String(cString: strerror(errno)))."], phase: phase)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = holderText(fd)
            close(fd)
            throw MigrationError(
                .refused,
                ["guest \(guest) is being migrated by \(holder); wait for it to end (hpvmmigrate --recover refuses while it runs)."],
                phase: phase)
        }
        return MigrationLock(fd: fd)
    }

    /// Who holds the guest's lock now ("process 1234 (hpvmmigrate)"), or nil when nobody does.
    public static func holder(root: HostRoot, guest: String) -> String? {
        let fd = open(path(root: root, guest: guest), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) != 0 else {
            flock(fd, LOCK_UN)
            return nil
        }
        return holderText(fd)
    }

    /// The holder of the lock on `fd`'s file, found in `/proc/locks` by the file's inode.
    private static func holderText(_ fd: Int32) -> String {
        var status = stat()
        guard fstat(fd, &status) == 0, let locks = readAll("/proc/locks") else { return "another process" }
        let inode = String(status.st_ino)
        for line in locks.split(separator: "\n") {
            // 1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5].split(separator: ":").last.map(String.init) == inode,
                let pid = Int32(fields[4])
            else { continue }
            let name = readAll("/proc/\(pid)/comm")?.split(separator: "\n").first.map(String.init) ?? "?"
            return "process \(pid) (\(name))"
        }
        return "another process"
    }

    private static func readAll(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while bytes.count < 1 << 22 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 16384) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
