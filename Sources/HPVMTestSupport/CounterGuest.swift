#if canImport(Glibc)
internal import Glibc
#endif

/// The counter guest of the runtime tests: a bootable ISO (made by `scripts/guest-image`) holding
/// Debian's cloud kernel and a busybox initramfs that prints `hpvm-counter N` on its serial
/// console, N going up by one every 0.2 s. Given to a guest as a file-backed DVD
/// (`dvd:scsi::file:<iso>`, 256 MB of memory), it shows through the guest's console socket that
/// the guest runs, and keeps running across a migration, when the counter keeps going up.
///
/// Boots to its first counter line in about 2.5 s under TCG.
public enum CounterGuest {
    /// The variable that names the ISO, when it is not at ``defaultImagePath``.
    public static let imageVariable = "HPVM_TEST_GUEST_IMAGE"

    /// Where `scripts/guest-image` puts the ISO by default: `.build/test-guest/counter.iso` in the
    /// package's folder.
    public static let defaultImagePath = packageRoot() + "/.build/test-guest/counter.iso"

    /// What the guest prints before each value.
    public static let linePrefix = "hpvm-counter "

    /// The ISO's path: `HPVM_TEST_GUEST_IMAGE` when set and not empty, ``defaultImagePath`` otherwise.
    ///
    /// - Throws: ``CounterGuestError`` `imageMissing` when no file is there, saying to run
    ///   `scripts/guest-image` (a test that needs the guest fails; it is never skipped).
    public static func imagePath() throws(CounterGuestError) -> String {
        try imagePath(environment: getenv(imageVariable).map { [imageVariable: String(cString: $0)] } ?? [:])
    }

    /// The ISO's path as ``imagePath()`` finds it, with `environment` in place of the process's.
    ///
    /// - Throws: ``CounterGuestError`` `imageMissing` when no file is there.
    public static func imagePath(environment: [String: String]) throws(CounterGuestError) -> String {
        let named = environment[imageVariable] ?? ""
        let path = named.isEmpty ? defaultImagePath : named
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            let origin = named.isEmpty ? "" : " (named by \(imageVariable))"
            throw CounterGuestError(
                .imageMissing,
                "the counter guest's ISO \(path)\(origin) does not exist: run scripts/guest-image"
                    + (named.isEmpty ? "" : " \(dirname(of: path))") + " (scripts/test runs it before swift test).")
        }
        return path
    }

    /// A guest's run folder under a host root: `<root>/var/opt/hpvm/run/<guest>` (what the
    /// runtime's `RunFolder` names; given here for test targets that do not link the runtime).
    public static func runFolder(root: String, guest: String) -> String { root + "/var/opt/hpvm/run/" + guest }

    /// Reads a running guest's serial console until it has seen `count` counter lines, and returns
    /// their values, oldest first.
    ///
    /// Holds the console only while it reads: it takes `console.lock` in the guest's run folder (as
    /// `hpvmconsole` does, so the two never read at once), connects to the `console` socket through
    /// `/proc/self/fd` (a long root never meets the limit on a socket path), and lets both go
    /// before it returns. Lines other than counter lines (kernel messages) are passed over. QEMU
    /// keeps nothing for a console no one reads, so the first value is one printed after the call.
    ///
    /// - Parameters:
    ///   - count: how many counter lines to read (at least 1).
    ///   - runFolder: the guest's run folder, `$HPVM_ROOT/var/opt/hpvm/run/<guest>`.
    ///   - seconds: how long to wait, for the lock and the lines together.
    /// - Returns: the last `count` values seen.
    /// - Throws: ``CounterGuestError``: `consoleBusy` when another client holds the console until
    ///   the deadline, `consoleUnavailable` when the guest does not run (no run folder, no socket),
    ///   `consoleClosed` when its QEMU goes away while being read, `timedOut` (with the values and
    ///   the last text seen) when fewer than `count` lines came in time.
    public static func counters(_ count: Int = 1, runFolder: String, within seconds: Double) throws(CounterGuestError) -> [Int] {
        let deadline = now() + max(0, seconds)
        let lock = try ConsoleLock(runFolder: runFolder, until: deadline)
        defer { withExtendedLifetime(lock) {} }
        let socket = try connect(runFolder: runFolder)
        defer { close(socket) }
        var reader = CounterLineReader()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while reader.values.count < max(1, count) {
            let left = deadline - now()
            guard left > 0 else {
                throw CounterGuestError(
                    .timedOut,
                    "saw \(reader.values.count) of \(count) counter lines on the console of \(runFolder) in \(seconds) s "
                        + "(values \(reader.values); last text \(reader.recentText.debugDescription)).")
            }
            var ready = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0)]
            let polled = poll(&ready, 1, Int32(min(left * 1000 + 1, 1_000)))
            if polled < 0 && errno != EINTR {
                throw CounterGuestError(.consoleUnavailable, "cannot wait on the console of \(runFolder): errno \(errno).")
            }
            guard polled > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            guard n > 0 else {
                throw CounterGuestError(
                    .consoleClosed,
                    "the console of \(runFolder) closed (its QEMU stopped) after \(reader.values.count) counter lines "
                        + "(values \(reader.values)).")
            }
            reader.feed(buffer[0..<n])
        }
        return Array(reader.values.suffix(max(1, count)))
    }

    // MARK: - The console

    /// An open file description lock on `console.lock` (`F_OFD_SETLK`): it excludes `hpvmconsole`'s
    /// lock on the same file, and, unlike a process lock, it is not let go when this process closes
    /// another descriptor of the file. Let go when dropped.
    private final class ConsoleLock {
        private let fd: Int32

        init(runFolder: String, until deadline: Double) throws(CounterGuestError) {
            let path = runFolder + "/console.lock"
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else {
                let error = errno
                throw CounterGuestError(
                    .consoleUnavailable,
                    error == ENOENT ? "the guest does not run: no run folder \(runFolder)." : "cannot open \(path): errno \(error).")
            }
            while true {
                var request = flock()
                request.l_type = Int16(F_WRLCK)
                request.l_whence = Int16(SEEK_SET)
                if fcntl(fd, CounterGuest.openFileDescriptionSetLock, &request) == 0 { return }
                let error = errno
                guard error == EAGAIN || error == EACCES || error == EINTR else {
                    close(fd)
                    throw CounterGuestError(.consoleUnavailable, "cannot lock \(path): errno \(error).")
                }
                if CounterGuest.now() < deadline {
                    usleep(20_000)
                    continue
                }
                var probe = flock()
                probe.l_type = Int16(F_WRLCK)
                probe.l_whence = Int16(SEEK_SET)
                let holder = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != Int16(F_UNLCK) && probe.l_pid > 0 ? " by pid \(probe.l_pid)" : ""
                close(fd)
                throw CounterGuestError(.consoleBusy, "the console of \(runFolder) is held\(holder) (\(path)).")
            }
        }

        deinit { close(fd) }
    }

    /// `F_OFD_SETLK` from `<fcntl.h>` (Linux 3.15), which Swift's Glibc module does not export.
    static let openFileDescriptionSetLock: Int32 = 37

    /// Connects to the run folder's `console` socket through `/proc/self/fd/<folder>/console`.
    private static func connect(runFolder: String) throws(CounterGuestError) -> Int32 {
        let folder = open(runFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { throw CounterGuestError(.consoleUnavailable, "the guest does not run: no run folder \(runFolder).") }
        defer { close(folder) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CounterGuestError(.consoleUnavailable, "cannot make a socket: errno \(errno).") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = Array("/proc/self/fd/\(folder)/console".utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name.prefix($0.count - 1)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw CounterGuestError(
                .consoleUnavailable,
                "cannot connect to \(runFolder)/console: errno \(error)\(error == ENOENT || error == ECONNREFUSED ? " (the guest does not run)" : "").")
        }
        return fd
    }

    // MARK: - Helpers

    /// Seconds on the monotonic clock.
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// The package's folder: three levels above this file (`Sources/HPVMTestSupport/CounterGuest.swift`).
    static func packageRoot(_ file: String = #filePath) -> String {
        var path = file
        for _ in 0..<3 {
            guard let slash = path.lastIndex(of: "/") else { return "." }
            path = String(path[..<slash])
        }
        return path.isEmpty ? "/" : path
    }

    private static func dirname(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Splits console output into lines and keeps the values of the counter lines (`hpvm-counter N`,
/// ending in `\r\n` or `\n`). A line cut by the moment of connecting is never taken for one: what
/// comes before the first line end is a line's tail, which can start with `hpvm-counter ` only if
/// it is the whole line.
public struct CounterLineReader: Sendable {
    /// The values read so far, oldest first.
    public private(set) var values: [Int] = []
    private var line: [UInt8] = []
    private var recent: [UInt8] = []

    public init() {}

    /// The last bytes read (up to 200), for an error message.
    public var recentText: String { String(decoding: recent, as: UTF8.self) }

    /// Reads more console output.
    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            recent.append(byte)
            if byte == UInt8(ascii: "\n") {
                if let value = Self.value(of: line) { values.append(value) }
                line.removeAll(keepingCapacity: true)
            } else if byte != UInt8(ascii: "\r") {
                line.append(byte)
            }
        }
        if recent.count > 200 { recent.removeFirst(recent.count - 200) }
    }

    /// The value of a counter line, or nil when the line is anything else.
    static func value(of line: [UInt8]) -> Int? {
        let prefix = Array(CounterGuest.linePrefix.utf8)
        guard line.count > prefix.count, line.count <= prefix.count + 18, line.starts(with: prefix) else { return nil }
        let digits = line[prefix.count...]
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}

/// Why the counter guest could not be used or read.
public struct CounterGuestError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Code: Sendable, Equatable {
        /// No ISO: `scripts/guest-image` has not been run.
        case imageMissing
        /// Another client (an `hpvmconsole`) held the console until the deadline.
        case consoleBusy
        /// The guest does not run, or its console cannot be reached.
        case consoleUnavailable
        /// The console closed while it was read: the guest's QEMU stopped.
        case consoleClosed
        /// Fewer counter lines than asked for came before the deadline.
        case timedOut
    }

    public let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
