public import Host
internal import Registry

#if canImport(Glibc)
internal import Glibc
#endif

/// Where a guest's QEMU keeps its files while it runs: `$HPVM_ROOT/var/opt/hpvm/run/<guest>/`,
/// readable by root only.
///
/// - `pid`: QEMU's pidfile. QEMU holds a lock on it for as long as it runs, so the process holding
///   that lock *is* the guest's QEMU: a pidfile left by a killed QEMU holds no lock, and a reused
///   pid holds none either.
/// - `qmp`: the QMP monitor for commands (`hpvmstop`, and later `hpvmmigrate -o`).
/// - `qmp-status`: a second QMP monitor for `hpvmstatus`, so a status query never waits behind a
///   command (a QMP socket serves one client at a time).
/// - `console`: the serial console (`hpvmconsole`).
/// - `qemu.log`: what QEMU printed while it started.
/// - `qmp.lock`, `qmp-status.lock`, `console.lock`: one client of each socket at a time.
///
/// QEMU is started inside the folder and given these names relative to it, and clients connect
/// through `/proc/self/fd`, so a long `HPVM_ROOT` never meets the 107-byte limit of a socket path.
public struct RunFolder: Sendable {
    /// The folder of every guest's run folder, under the host root.
    public static let base = "/var/opt/hpvm/run"

    /// The files of a run folder.
    public enum File: String, Sendable, CaseIterable {
        case pid
        case monitor = "qmp"
        case statusMonitor = "qmp-status"
        case console
        case log = "qemu.log"
    }

    public let guest: String
    /// The folder's real path.
    public let path: String

    /// The run folder of `guest` under `root`.
    ///
    /// - Throws: a ``RuntimeError`` when the name could not be a guest's (it would leave the folder).
    public init(root: HostRoot, guest: String) throws(RuntimeError) {
        guard (try? GuestRules.name(guest)) != nil else {
            throw RuntimeError(.badSetting, "'\(Display.safe(guest))' is not a guest name.")
        }
        self.guest = guest
        self.path = root.real(Self.base + "/" + guest)
    }

    /// The names of the run folders under `root`: every guest that runs, or ran, has one. Nil when
    /// the folder of run folders cannot be read (then every guest must be asked).
    public static func existing(root: HostRoot) -> Set<String>? {
        guard let handle = opendir(root.real(base)) else { return errno == ENOENT ? [] : nil }
        defer { closedir(handle) }
        var names: Set<String> = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.insert(name) }
        }
        return names
    }

    /// The real path of one of the folder's files.
    public func file(_ file: File) -> String { path + "/" + file.rawValue }

    // MARK: - Is it running?

    /// What the pidfile's lock says about the guest's QEMU.
    public enum Liveness: Sendable, Equatable {
        /// A QEMU holds the pidfile's lock: it runs, with this pid.
        case running(pid: Int32)
        /// No process holds the lock (no pidfile, or one left by a QEMU that was killed).
        case stopped
        /// The pidfile cannot be read (a user other than root asks).
        case unknown(String)
    }

    /// Whether a QEMU runs the guest, from the lock on its pidfile.
    ///
    /// The corresponding C function is `fcntl(F_GETLK)`.
    public func liveness() -> Liveness {
        let fd = open(file(.pid), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT || error == ENOTDIR { return .stopped }
            return .unknown("cannot read \(file(.pid)): \(SystemError(function: "open", number: error))")
        }
        defer { close(fd) }
        var probe = flock()
        probe.l_type = Int16(F_WRLCK)
        probe.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, F_GETLK, &probe) == 0 else {
            return .unknown("cannot test the lock on \(file(.pid)): \(SystemError(function: "fcntl", number: errno))")
        }
        return probe.l_type == Int16(F_UNLCK) ? .stopped : .running(pid: probe.l_pid)
    }

    /// The pid of the guest's QEMU, or nil when none runs (or it cannot be told).
    public var runningPID: Int32? {
        if case .running(let pid) = liveness() { return pid }
        return nil
    }

    // MARK: - Making it

    /// Makes the folder (root only) and removes what a QEMU that is gone left in it. Called under
    /// the registry's lock, once the guest is known not to run.
    func prepare() throws(RuntimeError) {
        var current = ""
        let parts = path.split(separator: "/")
        for (index, part) in parts.enumerated() {
            current += "/" + part
            if mkdir(current, index == parts.count - 1 ? 0o700 : 0o755) != 0 && errno != EEXIST {
                throw RuntimeError(
                    .io, "cannot make the run folder \(current): \(SystemError(function: "mkdir", number: errno)).")
            }
        }
        var status = stat()
        guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
            throw RuntimeError(.io, "the run folder \(path) is not a folder; move it aside.")
        }
        chmod(path, 0o700)
        for file in File.allCases where unlink(self.file(file)) != 0 && errno != ENOENT {
            throw RuntimeError(.io, "cannot remove \(self.file(file)): \(SystemError(function: "unlink", number: errno)).")
        }
    }

    // MARK: - Locks and sockets

    /// A lock held on one of the folder's `.lock` files; released when dropped.
    final class Lock {
        private let fd: Int32
        init(fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }

    /// Takes the lock `<name>.lock`, waiting for it until `deadline` (not at all when nil).
    ///
    /// - Throws: ``RuntimeError/Code/busy`` naming the process that holds it.
    func lock(_ name: String, until deadline: ContinuousClock.Instant?, purpose: String) throws(RuntimeError) -> Lock {
        let lockPath = path + "/" + name + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT { throw RuntimeError(.notRunning, "guest \(guest) is not running.") }
            throw RuntimeError(.io, "cannot open \(lockPath): \(SystemError(function: "open", number: error)).")
        }
        while true {
            var request = flock()
            request.l_type = Int16(F_WRLCK)
            request.l_whence = Int16(SEEK_SET)
            if fcntl(fd, F_SETLK, &request) == 0 { return Lock(fd: fd) }
            let error = errno
            guard error == EAGAIN || error == EACCES || error == EINTR else {
                close(fd)
                throw RuntimeError(.io, "cannot lock \(lockPath): \(SystemError(function: "fcntl", number: error)).")
            }
            if let deadline, ContinuousClock.now < deadline {
                usleep(10_000)
                continue
            }
            var probe = flock()
            probe.l_type = Int16(F_WRLCK)
            probe.l_whence = Int16(SEEK_SET)
            let holder = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != Int16(F_UNLCK) ? " (pid \(probe.l_pid))" : ""
            close(fd)
            throw RuntimeError(.busy, "\(purpose) of guest \(guest) is in use by another command\(holder); try again when it is done.")
        }
    }

    /// Connects to one of the folder's Unix sockets.
    func connect(_ file: File) throws(RuntimeError) -> Int32 {
        let folder = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { throw RuntimeError(.notRunning, "guest \(guest) is not running (no run folder \(path)).") }
        defer { close(folder) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError(.io, "cannot make a socket: \(SystemError(function: "socket", number: errno)).") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = Array("/proc/self/fd/\(folder)/\(file.rawValue)".utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: name.prefix(buffer.count - 1))
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw RuntimeError(
                error == ENOENT || error == ECONNREFUSED ? .notRunning : .monitor,
                "cannot connect to \(self.file(file)) of guest \(guest): \(SystemError(function: "connect", number: error)).")
        }
        return fd
    }
}
