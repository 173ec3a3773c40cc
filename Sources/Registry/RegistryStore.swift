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
public final class RegistryStore: Sendable {
    let writer: any DatabaseWriter
    /// The file's path, nil for an in-memory registry.
    public let path: String?

    package init(_ writer: any DatabaseWriter, path: String?) throws(RegistryError) {
        self.writer = writer
        self.path = path
        try migrate()
    }

    /// The registry's path under a host root: `$HPVM_ROOT/var/opt/hpvm/common/hpvm_mgmtdb.sqlite`.
    public static func defaultPath(root: HostRoot) -> String {
        root.real("/var/opt/hpvm/common/hpvm_mgmtdb.sqlite")
    }

    /// Whether a registry file exists at `path`.
    public static func exists(at path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Opens (creating it and its folders if needed) the registry at `path`, in WAL mode with a
    /// busy timeout, and brings its schema up to date.
    public static func open(at path: String, busyTimeout: Double = 30) throws(RegistryError) -> RegistryStore {
        try makeParentFolders(of: path)
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
        // writes a scratch table at every open, which would change the file on a refused command).
        // synchronous=FULL: a committed change survives a power cut, as in the sqlite3 shell.
        let trace = getenv("HPVM_TRACE_SQL") != nil
        configuration.prepareDatabase { db in
            if trace {
                db.trace { event in
                    let text = "sql: \(event)\n"
                    _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
                }
            }
            if try String.fetchOne(db, sql: "PRAGMA journal_mode") != "wal" {
                try db.execute(sql: "PRAGMA journal_mode = WAL")
            }
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            return try RegistryStore(queue, path: path)
        } catch let error as RegistryError {
            throw error
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
            throw Self.translate(error, path: path ?? ":memory:")
        }
    }

    // MARK: - Transactions

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: it commits when `body` returns and rolls
    /// back, changing nothing, when it throws.
    func write<T>(_ body: (Database) throws -> T) throws(RegistryError) -> T {
        do {
            return try writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                guard let result else { throw RegistryError(.database, "transaction returned no result") }
                return result
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.translate(error, path: path ?? ":memory:")
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction that is always rolled back: a check that
    /// asks exactly what a change would ask, and changes nothing.
    func rehearse<T>(_ body: (Database) throws -> T) throws(RegistryError) -> T {
        do {
            return try writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .rollback
                }
                guard let result else { throw RegistryError(.database, "transaction returned no result") }
                return result
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.translate(error, path: path ?? ":memory:")
        }
    }

    /// Runs `body` on a consistent snapshot of the registry.
    func read<T>(_ body: (Database) throws -> T) throws(RegistryError) -> T {
        do {
            return try writer.read(body)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw Self.translate(error, path: path ?? ":memory:")
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
                attempt += 1
                if attempt >= 5 { throw Self.translate(error, path: path ?? ":memory:") }
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
