public import Host
package import GRDB
#if canImport(Glibc)
internal import Glibc
#endif

/// The host's registry: one SQLite file holding device entries, guests, the migration journal and
/// the audit log. Every command opens one store, does one transaction, and closes it.
///
/// The file is in WAL mode with a busy timeout, and every read-then-write runs in
/// `BEGIN IMMEDIATE`, so parallel commands wait for each other instead of failing or losing a write.
/// A command that only reads opens the file read-only (``Access/read``): it needs no write access,
/// and it never creates, converts or migrates a file.
public final class RegistryStore: Sendable {
    let writer: any DatabaseWriter
    /// The file's path, nil for an in-memory registry.
    public let path: String?
    /// Whether the store was opened for reading only: every write fails as read-only.
    public let isReadOnly: Bool
    /// A file descriptor holding a shared lock on the file while an immutable read is open.
    private let lockDescriptor: Int32?
    /// The path that messages name.
    private let shownPath: String

    package convenience init(_ writer: any DatabaseWriter, path: String?) throws(RegistryError) {
        try self.init(writer, path: path, readOnly: false, migrating: true, lockDescriptor: nil)
    }

    private init(
        _ writer: any DatabaseWriter, path: String?, readOnly: Bool, migrating: Bool, lockDescriptor: Int32?,
        shownPath: String? = nil
    ) throws(RegistryError) {
        self.writer = writer
        self.path = path
        self.shownPath = shownPath ?? path ?? ":memory:"
        self.isReadOnly = readOnly
        self.lockDescriptor = lockDescriptor
        if migrating { try migrate() }
    }

    deinit {
        if let lockDescriptor { Glibc.close(lockDescriptor) }
    }

    /// What a command will do with the registry, which decides how it is opened.
    public enum Access: Sendable {
        /// Only read: the file is opened read-only and never created, converted or migrated; a
        /// missing or empty file reads as an empty registry.
        case read
        /// Change or remove guests and entries that must already be there: as ``write`` when the
        /// registry holds something, as ``read`` when there is none yet, so that a command refused
        /// for want of its guest or entry leaves no file behind.
        case update
        /// Add to the registry: creates its folders and file if needed, switches it to WAL and
        /// brings its schema up to date.
        case write
    }

    /// The registry's path under a host root: `$HPVM_ROOT/var/opt/hpvm/common/hpvm_mgmtdb.sqlite`.
    public static func defaultPath(root: HostRoot) -> String {
        root.real("/var/opt/hpvm/common/hpvm_mgmtdb.sqlite")
    }

    /// Whether a registry file exists at `path`.
    public static func exists(at path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Opens the registry at `path` for `access`.
    ///
    /// Whatever the access, a file that is not an hpvm registry (another program's SQLite
    /// database) or one written by a newer hpvm (a schema migration this build does not know) is
    /// refused before anything is written to it.
    public static func open(at path: String, for access: Access = .write, busyTimeout: Double = 30)
        throws(RegistryError) -> RegistryStore
    {
        switch access {
        case .read: return try openForReading(at: path, busyTimeout: busyTimeout)
        case .update: return try openForWriting(at: path, creating: false, busyTimeout: busyTimeout)
        case .write: return try openForWriting(at: path, creating: true, busyTimeout: busyTimeout)
        }
    }

    /// Opens the registry for writing: with `creating`, makes the folders and the file if needed;
    /// without, a registry that does not exist or holds nothing yet is opened for reading instead.
    private static func openForWriting(at path: String, creating: Bool, busyTimeout: Double) throws(RegistryError)
        -> RegistryStore
    {
        if !creating, try fileSize(path) ?? 0 == 0 { return try empty(path: path) }
        if creating { try makeParentFolders(of: path) }
        if access(path, F_OK) == 0 {
            try checkHeader(path)
            if access(path, W_OK) != 0 {
                throw RegistryError(.readOnly, "cannot write the registry \(path): permission denied or read-only file.")
            }
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        configuration.label = "registry"
        // WAL with one connection per process: other processes still read while one writes, and
        // closing the only connection checkpoints the log into the file and removes it. WAL is
        // switched on here only when the file is not in WAL mode yet (GRDB's own WAL set-up
        // writes a scratch table at every open, which would change the file on a refused command),
        // and only once the file is known to be a registry, or empty.
        // synchronous=FULL: a committed change survives a power cut, as in the sqlite3 shell.
        // wal_autocheckpoint=0: the log goes into the file only when the last connection closes,
        // which waits for readers' shared locks (see `openForReading`), never under a reader.
        let trace = getenv("HPVM_TRACE_SQL") != nil
        configuration.prepareDatabase { db in
            if trace { traceStatements(db) }
            if try inspect(db, path: path) == .empty && !creating { throw NothingYet() }
            if try String.fetchOne(db, sql: "PRAGMA journal_mode") != "wal" {
                try db.execute(sql: "PRAGMA journal_mode = WAL")
            }
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0")
        }
        // Opening can meet another command creating the same file: switching to WAL, or the first
        // migration, then fails with SQLITE_BUSY at once where SQLite's busy handler would
        // deadlock. Such an open is tried again, until `busyTimeout` has passed.
        let deadline = monotonicSeconds() + busyTimeout
        var pause: useconds_t = 5_000
        while true {
            do {
                let queue = try DatabaseQueue(path: path, configuration: configuration)
                return try RegistryStore(queue, path: path)
            } catch is NothingYet {
                return try empty(path: path)
            } catch {
                let translated = translate(error, path: path)
                guard translated.code == .busy, monotonicSeconds() < deadline else { throw translated }
                usleep(pause)
                pause = min(pause * 2, 100_000)
            }
        }
    }

    /// Seconds on a clock that only goes forward, for deadlines.
    private static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Opens the registry read-only (`SQLITE_OPEN_READONLY`): no WAL switch, no migration, no
    /// file or folder created; a missing or empty file reads as an empty registry.
    ///
    /// A read-only connection to a WAL file needs its `-shm` index, and creates it (and `-wal`)
    /// and leaves both behind when it may write the folder, or fails when it may not. So when no
    /// `-wal` file is there — every change is in the file itself, as after every command — the
    /// file is opened `immutable`, which reads it without any index or lock of SQLite's, under a
    /// shared lock of ours that keeps a writer from checkpointing into the file while it is read.
    /// When a `-wal` file is there (a writer is at work, or one stopped before cleaning up), its
    /// changes count, and the file is opened read-only in the ordinary way.
    private static func openForReading(at path: String, busyTimeout: Double) throws(RegistryError) -> RegistryStore {
        guard try fileSize(path) ?? 0 > 0 else { return try empty(path: path) }
        try checkHeader(path)
        var lock: Int32?
        var location = path
        if access(path + "-wal", F_OK) != 0 {
            lock = try sharedLock(path, busyTimeout: busyTimeout)
            location = "file:" + uriEscaped(path) + "?immutable=1"
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        configuration.label = "registry"
        let trace = getenv("HPVM_TRACE_SQL") != nil
        configuration.prepareDatabase { db in
            if trace { traceStatements(db) }
            if try inspect(db, path: path) == .empty { throw NothingYet() }
        }
        do {
            let queue = try DatabaseQueue(path: location, configuration: configuration)
            return try RegistryStore(queue, path: path, readOnly: true, migrating: false, lockDescriptor: lock)
        } catch {
            if let lock { Glibc.close(lock) }
            if error is NothingYet { return try empty(path: path) }
            throw translate(error, path: path)
        }
    }

    /// An empty registry in memory that cannot be written, standing in for a registry that does
    /// not exist yet.
    private static func empty(path: String) throws(RegistryError) -> RegistryStore {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        do {
            let queue = try DatabaseQueue(configuration: configuration)
            let store = try RegistryStore(queue, path: nil, readOnly: true, migrating: true, lockDescriptor: nil, shownPath: path)
            try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 1") }
            return store
        } catch {
            throw translate(error, path: path)
        }
    }

    /// An empty registry in memory, for tests.
    public static func inMemory() throws(RegistryError) -> RegistryStore {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        do {
            return try RegistryStore(try DatabaseQueue(configuration: configuration), path: nil)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw translate(error, path: ":memory:")
        }
    }

    /// Closes the file, checkpointing the write-ahead log into it.
    public func close() throws(RegistryError) {
        do {
            if let pool = writer as? DatabasePool {
                try pool.close()
            } else if let queue = writer as? DatabaseQueue {
                try queue.close()
            }
        } catch {
            throw Self.translate(error, path: shownPath)
        }
    }

    /// Closes the file as ``close()`` does, for a command that exits next: GRDB's queue is then
    /// kept, never freed, because freeing it unregisters it from Foundation's `NotificationCenter`,
    /// whose first use costs 0.7 M instructions, a tenth of a short command (bench/RESULTS.md).
    /// A long-lived process calls ``close()``.
    public func closeForExit() throws(RegistryError) {
        try close()
        _ = Unmanaged.passRetained(writer as AnyObject)
    }

    // MARK: - Transactions

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: it commits when `body` returns and rolls
    /// back, changing nothing, when it throws. On a store opened for reading, `body` runs on a
    /// snapshot, so it still finds what it looks for, and any change it makes fails as read-only.
    func write<T>(_ body: (Database) throws -> T) throws(RegistryError) -> T {
        if isReadOnly { return try read(body) }
        return try transaction(.immediate, keep: true, body)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction that is always rolled back: a check that
    /// asks exactly what a change would ask, and changes nothing.
    ///
    /// On a store opened for reading it runs in a deferred transaction: what it writes can only
    /// go to TEMP tables (``StorageRules`` keeps its scratch extents there).
    func rehearse<T>(_ body: (Database) throws -> T) throws(RegistryError) -> T {
        try transaction(isReadOnly ? .deferred : .immediate, keep: false, body)
    }

    /// One transaction of `kind` around `body`, committed when `keep` (and `body` returns), else
    /// rolled back.
    private func transaction<T>(_ kind: Database.TransactionKind, keep: Bool, _ body: (Database) throws -> T)
        throws(RegistryError) -> T
    {
        do {
            return try writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(kind) {
                    result = try body(db)
                    return keep ? .commit : .rollback
                }
                guard let result else { throw RegistryError(.database, "transaction returned no result") }
                return result
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.translate(error, path: shownPath)
        }
    }

    /// Runs `body` on a consistent snapshot of the registry.
    func read<T>(_ body: (Database) throws -> T) throws(RegistryError) -> T {
        do {
            return try writer.read(body)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.translate(error, path: shownPath)
        }
    }

    // MARK: - Schema

    private func migrate() throws(RegistryError) {
        let migrator = RegistryMigrator.migrator
        // Two commands creating a registry at once race on the first migration: the loser finds
        // the tables already there, and succeeds on its next look.
        var attempt = 0
        while true {
            do {
                // The common case in one statement: every migration is recorded already.
                let applied = try? writer.writeWithoutTransaction { db in
                    try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
                }
                if let applied, Set(applied).isSuperset(of: RegistryMigrator.identifiers) { return }
                if try writer.read({ try migrator.hasCompletedMigrations($0) }) { return }
                try migrator.migrate(writer)
                return
            } catch {
                // A registry that stays locked is the opener's to wait for (`openForWriting`
                // tries again until its busy timeout); a lost race on creating tables is settled
                // here, on the next look.
                let translated = Self.translate(error, path: shownPath)
                attempt += 1
                if translated.code == .busy || attempt >= 5 { throw translated }
                usleep(useconds_t(20_000 * attempt))
            }
        }
    }

    /// The migrated schema as SQL, for `schema/registry.sql`.
    public func schemaSQL() throws(RegistryError) -> String {
        try read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT type, name, sql FROM sqlite_master
                    WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'
                    ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, name
                    """)
            return rows.map { row -> String in
                let sql: String = row["sql"]
                return sql + ";\n"
            }.joined(separator: "\n")
        }
    }

    /// Runs raw SQL, for tests and the audit views.
    package func executeForTesting(_ sql: String) throws {
        try writer.writeWithoutTransaction { db in try db.execute(sql: sql) }
    }

    /// Fetches one column of strings with raw SQL, for tests.
    package func stringsForTesting(_ sql: String) throws -> [String] {
        try writer.read { db in try String.fetchAll(db, sql: sql) }
    }

    // MARK: - Errors

    private static func makeParentFolders(of path: String) throws(RegistryError) {
        var components = path.split(separator: "/").dropLast().map(String.init)
        var current = ""
        var toCreate: [String] = []
        while !components.isEmpty {
            current = "/" + components.joined(separator: "/")
            if access(current, F_OK) == 0 { break }
            toCreate.append(current)
            components.removeLast()
        }
        for folder in toCreate.reversed() where mkdir(folder, 0o755) != 0 && errno != EEXIST {
            throw RegistryError(.io, "cannot create the registry folder \(folder): \(String(cString: strerror(errno))).")
        }
    }

    /// Thrown inside the connection's set-up when the file holds no tables yet.
    private struct NothingYet: Error {}

    /// What an SQLite file at the registry path holds.
    enum Contents: Equatable {
        /// No tables at all (a new file).
        case empty
        /// An hpvm registry, whose schema migrations are all known to this build.
        case registry
    }

    /// Reads the schema history, writing nothing: refuses another program's database and a
    /// registry written by a newer hpvm.
    static func inspect(_ db: Database, path: String) throws -> Contents {
        let tables = try String.fetchAll(
            db, sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")
        if tables.isEmpty { return .empty }
        let applied = tables.contains("grdb_migrations")
            ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid") : []
        let known = Set(RegistryMigrator.identifiers)
        guard applied.contains(RegistryMigrator.identifiers[0]) else {
            if applied.isEmpty && tables == ["grdb_migrations"] { return .empty }
            throw RegistryError(
                .notARegistry,
                "\(path) is not an hpvm registry: it is another program's SQLite database, left as it is; move it aside or set HPVM_ROOT.")
        }
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw RegistryError(
                .newerRegistry,
                "the registry \(path) was written by a newer hpvm (its schema migration '\(Display.safe(unknown))' is unknown to this one), so it is left as it is; use that hpvm release on this host.")
        }
        return .registry
    }

    /// The file's size in bytes, nil when there is no file.
    private static func fileSize(_ path: String) throws(RegistryError) -> Int? {
        var info = stat()
        if stat(path, &info) == 0 { return Int(info.st_size) }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw RegistryError(.io, "cannot read the registry \(path): \(String(cString: strerror(errno))).")
    }

    /// Opens `path` and takes a read lock on the byte range SQLite's readers lock, so that no
    /// writer takes the exclusive lock it needs to copy its log into the file until the
    /// descriptor is closed. Waits up to `busyTimeout` seconds for a writer finishing its copy.
    private static func sharedLock(_ path: String, busyTimeout: Double) throws(RegistryError) -> Int32 {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RegistryError(.io, "cannot read the registry \(path): \(String(cString: strerror(errno))).")
        }
        // SQLite's unix VFS: the shared range starts two bytes past the pending byte (1 GiB).
        var lock = flock()
        lock.l_type = Int16(F_RDLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0x4000_0002
        lock.l_len = 510
        var waited = 0.0
        while fcntl(fd, F_SETLK, &lock) != 0 {
            guard errno == EAGAIN || errno == EACCES || errno == EINTR, waited < busyTimeout else {
                let reason = String(cString: strerror(errno))
                Glibc.close(fd)
                if waited >= busyTimeout {
                    throw RegistryError(.busy, "the registry \(path) stayed locked by another command; try again.")
                }
                throw RegistryError(.io, "cannot lock the registry \(path) for reading: \(reason).")
            }
            usleep(10_000)
            waited += 0.01
        }
        return fd
    }

    /// `path` as the path of an SQLite `file:` URI.
    private static func uriEscaped(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// Prints every statement to standard error (`HPVM_TRACE_SQL`).
    private static func traceStatements(_ db: Database) {
        db.trace { event in
            let text = "sql: \(event)\n"
            _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
        }
    }

    /// Refuses a file that is not an SQLite database before SQLite touches it.
    private static func checkHeader(_ path: String) throws(RegistryError) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RegistryError(.io, "cannot read the registry \(path): \(String(cString: strerror(errno))).")
        }
        defer { Glibc.close(fd) }
        var header = [UInt8](repeating: 0, count: 16)
        let n = header.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 16) }
        if n == 0 { return }  // an empty file becomes a new registry
        if n != 16 || header != Array("SQLite format 3\0".utf8) {
            throw RegistryError(
                .notARegistry,
                "\(path) is not an SQLite database, so it is not an hpvm registry; move it aside or set HPVM_ROOT.")
        }
    }

    static func translate(_ error: any Error, path: String) -> RegistryError {
        if let error = error as? RegistryError { return error }
        guard let dbError = error as? DatabaseError else {
            return RegistryError(.database, "registry \(path): \(error)", cause: error)
        }
        switch dbError.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return RegistryError(
                .notARegistry, "\(path) is not a valid hpvm registry (\(dbError.message ?? "corrupt")).", cause: error)
        case .SQLITE_READONLY, .SQLITE_PERM:
            return RegistryError(.readOnly, "cannot write the registry \(path): it is read-only.", cause: error)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return RegistryError(
                .busy, "the registry \(path) stayed locked by another command; try again.", cause: error)
        case .SQLITE_CANTOPEN:
            return RegistryError(.io, "cannot open the registry \(path).", cause: error)
        case .SQLITE_FULL:
            return RegistryError(.io, "cannot write the registry \(path): the disk is full.", cause: error)
        default:
            return RegistryError(.database, "registry \(path): \(dbError.message ?? "\(dbError)")", cause: error)
        }
    }
}
