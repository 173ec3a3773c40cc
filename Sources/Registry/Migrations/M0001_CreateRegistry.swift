/// The first schema: device entries with names, attributes and dependents; guests and their
/// resources; the migration journal; host settings; and the append-only, hash-chained audit log.
///
/// Never edit this migration once landed: changes come as a new one.
enum M0001CreateRegistry {
    static let identifier = "0001-create-registry"

    static let sql = """
        CREATE TABLE device (
            id INTEGER PRIMARY KEY,
            type TEXT NOT NULL CHECK (type IN ('gdev', 'rdev', 'server', 'env')),
            name TEXT NOT NULL UNIQUE,
            devType TEXT NOT NULL,
            exist INTEGER NOT NULL CHECK (exist IN (0, 1)),
            wwid TEXT,
            identityKey TEXT NOT NULL,
            containerKey TEXT,
            transport TEXT,
            resolvedPath TEXT,
            ignoreWWID INTEGER NOT NULL DEFAULT 0 CHECK (ignoreWWID IN (0, 1)),
            createdAt TEXT NOT NULL,
            updatedAt TEXT NOT NULL
        );
        CREATE INDEX device_identityKey ON device(identityKey);
        CREATE INDEX device_wwid ON device(wwid);
        CREATE INDEX device_type ON device(type);

        CREATE TABLE deviceName (
            id INTEGER PRIMARY KEY,
            deviceId INTEGER NOT NULL REFERENCES device(id) ON DELETE CASCADE,
            name TEXT NOT NULL UNIQUE,
            position INTEGER NOT NULL
        );
        CREATE INDEX deviceName_deviceId ON deviceName(deviceId, position);

        CREATE TABLE deviceAttribute (
            id INTEGER PRIMARY KEY,
            deviceId INTEGER NOT NULL REFERENCES device(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            UNIQUE (deviceId, name)
        );

        CREATE TABLE dependent (
            id INTEGER PRIMARY KEY,
            deviceId INTEGER NOT NULL REFERENCES device(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'guest' CHECK (kind IN ('guest', 'device')),
            UNIQUE (deviceId, name)
        );
        CREATE INDEX dependent_name ON dependent(name);

        CREATE TABLE guest (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            vmNumber INTEGER NOT NULL UNIQUE CHECK (vmNumber > 0),
            label TEXT,
            osType TEXT,
            vcpus INTEGER NOT NULL DEFAULT 1,
            memoryMB INTEGER NOT NULL DEFAULT 2048,
            runnable INTEGER NOT NULL DEFAULT 1 CHECK (runnable IN (0, 1)),
            modifiable INTEGER NOT NULL DEFAULT 1 CHECK (modifiable IN (0, 1)),
            visible INTEGER NOT NULL DEFAULT 1 CHECK (visible IN (0, 1)),
            statusSetBy TEXT,
            statusReason TEXT,
            migrationLock TEXT,
            createdAt TEXT NOT NULL,
            updatedAt TEXT NOT NULL
        );

        CREATE TABLE guestResource (
            id INTEGER PRIMARY KEY,
            guestId INTEGER NOT NULL REFERENCES guest(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            deviceType TEXT NOT NULL,
            adapterType TEXT NOT NULL,
            bus INTEGER,
            device INTEGER,
            target INTEGER,
            mac TEXT,
            storageType TEXT NOT NULL,
            location TEXT NOT NULL,
            UNIQUE (guestId, position)
        );
        CREATE INDEX guestResource_location ON guestResource(location);

        CREATE TABLE migrationJournal (
            id INTEGER PRIMARY KEY,
            migrationId TEXT NOT NULL,
            guestName TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('source', 'target')),
            peerHost TEXT NOT NULL,
            phase TEXT NOT NULL,
            detail TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX migrationJournal_migrationId ON migrationJournal(migrationId);

        CREATE TABLE hostSetting (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE autoRdevBackup (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );

        CREATE TABLE auditLog (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            user TEXT NOT NULL,
            command TEXT NOT NULL,
            action TEXT NOT NULL,
            object TEXT NOT NULL,
            change TEXT NOT NULL,
            prevHash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        );
        CREATE INDEX auditLog_object ON auditLog(object);
        CREATE TRIGGER auditLog_appendOnly_update BEFORE UPDATE ON auditLog
        BEGIN
            SELECT RAISE(ABORT, 'auditLog is append-only');
        END;
        CREATE TRIGGER auditLog_appendOnly_delete BEFORE DELETE ON auditLog
        BEGIN
            SELECT RAISE(ABORT, 'auditLog is append-only');
        END;
        """
}
