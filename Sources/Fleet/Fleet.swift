public import Host
public import Lease
public import Registry

#if canImport(Glibc)
internal import Glibc
#endif

/// The fleet's leases on this host: the registry's settings (``FleetLeases``) joined to sanlock
/// (``Lockspace``). `hpvmlease` sets it up and shows it; `hpvmstart` finds each guest's slot here.
///
/// Slot 0 of the lease file is the lockspace, slot 1 the lease `hpvm-slots` that a host holds
/// while it writes a new guest resource (so two hosts never take one free slot), and guests'
/// resources `guest-<uuid>` fill slots 2 and up.
public struct Fleet: Sendable {
    public let leases: FleetLeases

    /// The resource in slot 1 that serializes slot assignment across the fleet.
    public static let slotsResource = "hpvm-slots"
    public static let firstGuestSlot = 2

    public init(store: RegistryStore, root: HostRoot, audit: AuditContext) {
        leases = FleetLeases(store: store, root: root, audit: audit)
    }

    /// What `hpvmlease -i` did.
    public struct JoinReport: Sendable {
        public let settings: FleetLeases.Settings
        /// Whether the lease storage was empty and got a new lockspace.
        public let formatted: Bool
        /// How long joining the lockspace took.
        public let joinDuration: Duration
    }

    /// Initialises the lease storage when it holds no lockspace yet, joins it as `hostID`, and
    /// records the settings (the storage as an rdev entry). The registry's refusal comes first,
    /// before sanlock writes anything.
    public func join(path: String, hostID: Int, ioTimeout: Int) throws -> JoinReport {
        let lockspace = try Lockspace(path: leases.root.real(path))
        guard Lockspace.hostIDs.contains(UInt64(hostID)) else {
            throw LeaseError.badInput("host id \(hostID) is outside 1-2000.")
        }
        guard Lockspace.ioTimeouts.contains(UInt32(ioTimeout)) else {
            throw LeaseError.badInput("io_timeout \(ioTimeout) is outside 1-60 seconds.")
        }
        if let current = try leases.settings(), current.path != path {
            throw RegistryError(.conflict, 
                "this host already uses \(current.path) for fleet leases (host \(current.hostID)); one lease storage per host.")
        }
        if let refusal = try leases.refusal(path: path) { throw refusal }
        let size = try Self.size(of: lockspace.path)
        guard Lockspace.slots(inFileOf: size) > Self.firstGuestSlot else {
            throw LeaseError.badInput(
                "\(path) holds \(size) bytes; a lease storage needs at least 4 MiB (1 MiB for the lockspace, 1 per guest and one more).")
        }
        var formatted = false
        if try !lockspace.isFormatted() {
            try lockspace.format(ioTimeout: UInt32(ioTimeout))
            try lockspace.formatResource(Self.slotsResource, slot: 1)
            formatted = true
        }
        let began = ContinuousClock.now
        try lockspace.join(hostID: UInt64(hostID), ioTimeout: UInt32(ioTimeout))
        let took = ContinuousClock.now - began
        let settings = try leases.record(path: path, hostID: hostID, ioTimeout: ioTimeout)
        return JoinReport(settings: settings, formatted: formatted, joinDuration: took)
    }

    /// What `hpvmlease -l` shows.
    public struct Listing: Sendable, Codable {
        public struct GuestEntry: Sendable, Codable {
            public let guest: String
            public let resource: String
            public let slot: Int?
            /// The host holding the lease, when one does.
            public let ownerHostID: UInt64?
        }
        public let path: String
        public let hostID: Int
        public let ioTimeout: Int
        public let joined: Bool
        public let hosts: [Lockspace.Host]
        public let guests: [GuestEntry]
    }

    /// The settings, the hosts the daemon sees, and every guest's lease; nil when leases are off.
    public func list() throws -> Listing? {
        guard let settings = try leases.settings() else { return nil }
        let lockspace = try Lockspace(path: leases.root.real(settings.path))
        let joined = try lockspace.isJoined(hostID: UInt64(settings.hostID))
        let hosts = joined ? try lockspace.hosts().filter { $0.timestamp != 0 || $0.hostID == UInt64(settings.hostID) } : []
        let guests = try leases.guestLeases().map { lease in
            let owner = lease.slot.flatMap { try? lockspace.owner(of: lease.resource, slot: $0)?.hostID }
            return Listing.GuestEntry(guest: lease.guest, resource: lease.resource, slot: lease.slot, ownerHostID: owner)
        }
        return Listing(
            path: settings.path, hostID: settings.hostID, ioTimeout: settings.ioTimeout, joined: joined, hosts: hosts, guests: guests)
    }

    /// Where a guest's lease is: the slot that holds its resource on the lease file, found there or
    /// assigned (the first free slot, written under the `hpvm-slots` lease); the registry keeps it.
    public func slot(for lease: FleetLeases.GuestLease, settings: FleetLeases.Settings) throws -> Int {
        let lockspace = try Lockspace(path: leases.root.real(settings.path))
        if let slot = lease.slot, try lockspace.resourceName(slot: slot) == lease.resource { return slot }
        let count = Lockspace.slots(inFileOf: try Self.size(of: lockspace.path))
        let connection = try LeaseConnection()
        defer { connection.close() }
        try connection.acquire(Self.slotsResource, slot: 1, in: lockspace)
        defer { try? connection.release(Self.slotsResource, slot: 1, in: lockspace) }
        var free: Int?
        for slot in Self.firstGuestSlot...count {
            switch try lockspace.resourceName(slot: slot) {
            case lease.resource?:
                try leases.recordSlot(slot, guest: lease.guest)
                return slot
            case nil where free == nil:
                free = slot
            default:
                continue
            }
        }
        guard let free else {
            throw LeaseError.badInput("the lease storage \(settings.path) has no free slot for guest \(lease.guest); use a larger one.")
        }
        try lockspace.formatResource(lease.resource, slot: free)
        try leases.recordSlot(free, guest: lease.guest)
        return free
    }

    /// The size in bytes of a file or block device.
    static func size(of path: String) throws(LeaseError) -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LeaseError.badInput("cannot open the lease storage \(path): \(String(cString: strerror(errno))). Create it first (a LUN, or truncate -s 64M FILE).")
        }
        defer { close(fd) }
        let end = lseek(fd, 0, SEEK_END)
        return end > 0 ? UInt64(end) : 0
    }
}
