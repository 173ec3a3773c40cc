/// Fleet leases (issue 11): this host's place in the fleet's sanlock lockspace, and each guest's
/// lease slot on the lease file or LUN.
///
/// - `fleetLease`: one row at most. `path` is the lease file or LUN (also an rdev entry, so no
///   guest can be given it); `hostId` this host's sanlock host id (1-2000, unique in the fleet);
///   `ioTimeout` the seconds sanlock waits for one I/O to the lease storage, which sets how long a
///   dead host's leases take to expire (8 × io_timeout + 60 s here). No row: leases are off.
/// - `guestLease`: the slot of guest `guestId`'s resource `guest-<uuid>` (slot *n* at *n* MiB). The
///   lease file is the authority (the resource's name is checked at every acquire); this row caches
///   where it was found or assigned.
///
/// Never edit this migration once landed: changes come as a new one.
enum M0006FleetLeases {
    static let identifier = "0006-fleet-leases"

    static let sql = """
        CREATE TABLE fleetLease (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            path TEXT NOT NULL,
            hostId INTEGER NOT NULL CHECK (hostId BETWEEN 1 AND 2000),
            ioTimeout INTEGER NOT NULL CHECK (ioTimeout BETWEEN 1 AND 60),
            joinedAt TEXT NOT NULL
        );
        CREATE TABLE guestLease (
            guestId INTEGER PRIMARY KEY REFERENCES guest(id) ON DELETE CASCADE,
            slot INTEGER NOT NULL UNIQUE CHECK (slot >= 1)
        );
        """
}
