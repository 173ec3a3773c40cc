#if canImport(Glibc)
internal import Glibc
#endif

/// In-process calls to several sanlock daemons, for tests where one process plays several hosts.
///
/// libsanlock_client finds its daemon through `SANLOCK_RUN_DIR`, but keeps the pointer `getenv`
/// gave it at the process's first connection and never asks again (one daemon per process, as on a
/// real host). So the environment entry is a buffer of ours, put once with `putenv` and rewritten
/// in place to switch daemons; calls are serialized across every test of the process, since the
/// choice of daemon is process-wide. Tests that start tools as child processes pass
/// `SANLOCK_RUN_DIR` in the child's environment instead and need none of this. A sanlock call made
/// in the process outside ``with(_:_:)`` before the first one would fix the daemon for good.
public enum SanlockRunDirectory {
    private static let capacity = 4096
    private static let name = "SANLOCK_RUN_DIR="

    /// The `SANLOCK_RUN_DIR=...` entry, never freed (the library may hold a pointer into it).
    nonisolated(unsafe) private static let entry: UnsafeMutablePointer<CChar> = {
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
        buffer.initialize(repeating: 0, count: capacity)
        return buffer
    }()

    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        return lock
    }()

    /// Runs `body` with this process's sanlock calls going to the daemon of `runDirectory`; one
    /// such body at a time in the process (do not nest them).
    public static func with<T>(_ runDirectory: String, _ body: () throws -> T) rethrows -> T {
        let text = Array((name + runDirectory).utf8CString)
        precondition(text.count <= capacity, "sanlock run directory too long")
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        text.withUnsafeBufferPointer { text in
            guard let start = text.baseAddress else { return }
            entry.update(from: start, count: text.count)
        }
        putenv(entry)
        defer { unsetenv("SANLOCK_RUN_DIR") }
        return try body()
    }
}
