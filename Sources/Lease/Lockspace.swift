internal import CSanlock

#if canImport(Glibc)
internal import Glibc
#endif

/// One fleet's lockspace on a lease file or LUN, as this host sees it through its sanlock daemon.
///
/// The layout follows libvirt's sanlock driver: the lockspace's delta leases (one per host id,
/// 1-2000) fill the first MiB, and each guest's resource (a paxos lease) has its own 1 MiB slot
/// after it: slot *n* starts at *n* MiB. The daemon is the one `SANLOCK_RUN_DIR` names (or the
/// system's), so every call here goes through it: the daemon does the disk I/O.
public struct Lockspace: Sendable, Equatable {
    /// The lockspace's name on disk, the same on every host of the fleet.
    public static let name = "hpvm"
    /// Each area (the lockspace, one resource) is 1 MiB.
    public static let areaSize: UInt64 = 1 << 20
    /// Host ids the lockspace accepts.
    public static let hostIDs: ClosedRange<UInt64> = 1...2000
    /// io_timeout values accepted (seconds); sanlock's default is 10.
    public static let ioTimeouts: ClosedRange<UInt32> = 1...60

    /// The lease file or LUN.
    public let path: String

    public init(path: String) throws(LeaseError) {
        guard !path.isEmpty, path.hasPrefix("/"), path.utf8.count < 1024, !path.utf8.contains(0) else {
            throw LeaseError(.badInput, "lease path '\(path.prefix(80))' must be an absolute path shorter than 1024 bytes.")
        }
        self.path = path
    }

    /// The slots a lease file of `size` bytes holds (slot 0 is the lockspace).
    public static func slots(inFileOf size: UInt64) -> Int { size >= 2 * areaSize ? Int(size / areaSize) - 1 : 0 }

    // MARK: - Set-up

    /// Writes an empty lockspace at offset 0 (every host's delta lease free).
    /// The corresponding C function is `sanlock_write_lockspace`.
    public func format(ioTimeout: UInt32) throws(LeaseError) {
        var ls = hpvm_sanlk_lockspace(Self.name, 0, path, 0)
        try Sanlock.check(sanlock_write_lockspace(&ls, 0, 0, ioTimeout), "sanlock_write_lockspace", "cannot initialise the lockspace on \(path)")
    }

    /// Whether offset 0 holds our lockspace. The corresponding C function is `sanlock_read_lockspace`.
    public func isFormatted() throws(LeaseError) -> Bool {
        var ls = hpvm_sanlk_lockspace(Self.name, 0, path, 0)
        var timeout: UInt32 = 0
        let rc = sanlock_read_lockspace(&ls, 0, &timeout)
        if rc == SANLK_LEADER_MAGIC || rc == SANLK_LEADER_LOCKSPACE || rc == SANLK_LEADER_VERSION || rc == SANLK_LEADER_CHECKSUM {
            return false
        }
        try Sanlock.check(rc, "sanlock_read_lockspace", "cannot read the lockspace on \(path)")
        return true
    }

    /// Writes a free resource lease named `name` in `slot`. The corresponding C function is `sanlock_write_resource`.
    public func formatResource(_ name: String, slot: Int) throws(LeaseError) {
        try withResource(name, slot: slot) { (res) throws(LeaseError) in
            try Sanlock.check(sanlock_write_resource(res, 0, 0, 0), "sanlock_write_resource", "cannot initialise lease \(name) in slot \(slot) of \(path)")
        }
    }

    /// The resource name written in `slot`, or nil when the slot holds none.
    /// The corresponding C function is `sanlock_read_resource`.
    public func resourceName(slot: Int) throws(LeaseError) -> String? {
        try withResource("", slot: slot) { (res) throws(LeaseError) -> String? in
            res.pointee.lockspace_name.0 = 0
            let rc = sanlock_read_resource(res, 0)
            if rc == SANLK_LEADER_MAGIC || rc == SANLK_LEADER_LOCKSPACE || rc == SANLK_LEADER_VERSION || rc == SANLK_LEADER_CHECKSUM {
                return nil
            }
            try Sanlock.check(rc, "sanlock_read_resource", "cannot read slot \(slot) of \(path)")
            return Self.string(res.pointee.name)
        }
    }

    // MARK: - Joining

    /// Joins the lockspace as `hostID` (blocks until this host's delta lease is acquired: about
    /// 2 × io_timeout + a few seconds); joining again as the same id is not an error.
    /// The corresponding C function is `sanlock_add_lockspace_timeout`.
    public func join(hostID: UInt64, ioTimeout: UInt32) throws(LeaseError) {
        var ls = hpvm_sanlk_lockspace(Self.name, hostID, path, 0)
        let rc = sanlock_add_lockspace_timeout(&ls, 0, ioTimeout)
        if rc == -EEXIST { return }
        try Sanlock.check(rc, "sanlock_add_lockspace_timeout", "cannot join the lockspace on \(path) as host \(hostID)")
    }

    /// Whether this host's daemon holds the lockspace as `hostID`. The corresponding C function is `sanlock_inq_lockspace`.
    public func isJoined(hostID: UInt64) throws(LeaseError) -> Bool {
        var ls = hpvm_sanlk_lockspace(Self.name, hostID, path, 0)
        let rc = sanlock_inq_lockspace(&ls, 0)
        if rc == 0 { return true }
        if rc == -ENOENT || rc == -EINPROGRESS { return false }
        try Sanlock.check(rc, "sanlock_inq_lockspace", "cannot ask the sanlock daemon about the lockspace on \(path)")
        return false
    }

    /// Leaves the lockspace (every lease this host holds in it must be released first).
    /// The corresponding C function is `sanlock_rem_lockspace`.
    public func leave(hostID: UInt64) throws(LeaseError) {
        var ls = hpvm_sanlk_lockspace(Self.name, hostID, path, 0)
        let rc = sanlock_rem_lockspace(&ls, 0)
        if rc == -ENOENT { return }
        try Sanlock.check(rc, "sanlock_rem_lockspace", "cannot leave the lockspace on \(path)")
    }

    // MARK: - Hosts and owners

    /// A host of the lockspace as this host's daemon sees it.
    public struct Host: Sendable, Equatable, Codable {
        public enum State: String, Sendable, Codable { case unknown, free, live, fail, dead }
        public let hostID: UInt64
        public let generation: UInt64
        public let timestamp: UInt64
        public let ioTimeout: UInt32
        public let state: State
    }

    /// The hosts the daemon has seen in the lockspace (it must have joined it).
    /// The corresponding C function is `sanlock_get_hosts`.
    public func hosts() throws(LeaseError) -> [Host] {
        var list: UnsafeMutablePointer<sanlk_host>? = nil
        var count: Int32 = 0
        var rc = sanlock_get_hosts(Self.name, 0, &list, &count, 0)
        // Just after a join the daemon answers EAGAIN until its first renewal (about io_timeout).
        var tries = 0
        while rc == -EAGAIN && tries < 40 {
            usleep(100_000)
            tries += 1
            rc = sanlock_get_hosts(Self.name, 0, &list, &count, 0)
        }
        defer { hpvm_sanlk_free(list) }
        if rc == -ENOENT {
            throw LeaseError(.notJoined, "this host has not joined the lockspace on \(path) (hpvmlease -i PATH -H ID).", function: "sanlock_get_hosts", result: rc)
        }
        try Sanlock.check(rc, "sanlock_get_hosts", "cannot list the hosts of the lockspace on \(path)")
        guard let list else { return [] }
        return (0..<Int(count)).map { Self.host(list[$0]) }
    }

    /// The host holding the lease in `slot` (nil when free), read from disk.
    /// The corresponding C function is `sanlock_read_resource_owners`.
    public func owner(of name: String, slot: Int) throws(LeaseError) -> Host? {
        try withResource(name, slot: slot) { (res) throws(LeaseError) -> Host? in
            var list: UnsafeMutablePointer<sanlk_host>? = nil
            var count: Int32 = 0
            let rc = hpvm_sanlk_read_owners(res, &list, &count)
            defer { hpvm_sanlk_free(list) }
            try Sanlock.check(rc, "sanlock_read_resource_owners", "cannot read lease \(name) in slot \(slot) of \(path)")
            guard let list else { return nil }
            return (0..<Int(count)).map { Self.host(list[$0]) }.first { $0.timestamp != 0 }
        }
    }

    /// The lease version of `name` in `slot` as the disk says: the number of the last acquire
    /// (it grows by one at each acquire; a release leaves it). The corresponding C function is
    /// `sanlock_read_resource`.
    public func version(of name: String, slot: Int) throws(LeaseError) -> UInt64 {
        try withResource(name, slot: slot) { (res) throws(LeaseError) -> UInt64 in
            try Sanlock.check(sanlock_read_resource(res, 0), "sanlock_read_resource", "cannot read lease \(name) in slot \(slot) of \(path)")
            return res.pointee.lver
        }
    }

    // MARK: - Helpers

    func withResource<T>(_ name: String, slot: Int, _ body: (UnsafeMutablePointer<sanlk_resource>) throws(LeaseError) -> T) throws(LeaseError) -> T {
        guard slot >= 1, name.utf8.count <= 47 else {
            throw LeaseError(.badInput, "lease '\(name.prefix(60))' in slot \(slot): a slot is 1 or more and a name at most 47 bytes.")
        }
        guard let res = hpvm_sanlk_resource_new(Self.name, name, path, UInt64(slot) * Self.areaSize) else {
            throw LeaseError(.failed, "out of memory for lease \(name).")
        }
        defer { hpvm_sanlk_resource_free(res) }
        return try body(res)
    }

    static func host(_ raw: sanlk_host) -> Host {
        let state: Host.State =
            switch Int32(raw.flags & UInt32(SANLK_HOST_MASK)) {
            case SANLK_HOST_FREE: .free
            case SANLK_HOST_LIVE: .live
            case SANLK_HOST_FAIL: .fail
            case SANLK_HOST_DEAD: .dead
            default: .unknown
            }
        return Host(hostID: raw.host_id, generation: raw.generation, timestamp: raw.timestamp, ioTimeout: raw.io_timeout, state: state)
    }

    static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
