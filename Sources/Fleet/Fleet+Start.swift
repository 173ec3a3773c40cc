internal import Host
public import Lease
public import Registry
public import Runtime

extension Fleet {
    /// What `hpvmstart` needs to hold a guest's lease: where it is, and, when a host that stopped
    /// renewing holds it, how long to wait for that host's lease to expire.
    public struct StartLease: Sendable {
        public let lockspace: String
        public let resource: String
        public let path: String
        public let slot: Int
        public var offset: UInt64 { UInt64(slot) * Lockspace.areaSize }
        /// Seconds to wait for a dead owner's lease (0 when the lease is free or ours).
        public let waitSeconds: Int
        /// The host that holds the lease now, when another one does.
        public let ownerHostID: UInt64?
    }

    /// The guest's lease for a start, or nil when fleet leases are off on this host (nothing
    /// changes then) or the guest does not exist (the registry refuses it next).
    ///
    /// - Throws: ``LeaseError`` with ``LeaseError/Code/heldByOtherHost`` naming the owner's host id
    ///   when a live host holds the lease; ``LeaseError/Code/notJoined`` when this host's daemon
    ///   is not in the lockspace.
    public func startLease(guest name: String) throws -> StartLease? {
        guard let settings = try leases.settings(), let lease = try leases.guestLease(name) else { return nil }
        let lockspace = try Lockspace(path: leases.root.real(settings.path))
        let me = UInt64(settings.hostID)
        guard try lockspace.isJoined(hostID: me) else {
            throw LeaseError(
                .notJoined,
                "cannot start guest \(name): this host (id \(me)) has not joined the fleet's lockspace on \(settings.path); run hpvmlease -i \(settings.path) -H \(me) (after a reboot, or when its sanlock daemon restarted).")
        }
        let slot = try slot(for: lease, settings: settings)
        // sanlock's own verdict, asked with a trial acquire by this process (released at once): free,
        // held by a live host (refuse now, naming it), or held by a host whose lease must expire first.
        var wait = 0
        var ownerID: UInt64?
        switch Self.trial(lease.resource, slot: slot, in: lockspace) {
        case .free:
            break
        case .failed(let error):
            throw error
        case .heldByLiveHost(let owner):
            throw LeaseError(
                .heldByOtherHost,
                "cannot start guest \(name): its lease \(lease.resource) is held by \(owner.map { "host \($0)" } ?? "another host"), which is alive; the guest runs there (stop it there first).",
                ownerHostID: owner)
        case .mustExpire(let owner):
            ownerID = owner
            // sanlock frees a dead host's leases 8 × io_timeout + 60 s after its last renewal.
            let hosts = (try? lockspace.hosts()) ?? []
            let io = owner.flatMap { id in hosts.first { $0.hostID == id }?.ioTimeout }.map(Int.init) ?? settings.ioTimeout
            wait = 8 * max(io, settings.ioTimeout) + 60 + 2 * settings.ioTimeout
        }
        return StartLease(
            lockspace: Lockspace.name, resource: lease.resource, path: lockspace.path, slot: slot, waitSeconds: wait, ownerHostID: ownerID)
    }

    enum Trial {
        case free, heldByLiveHost(UInt64?), mustExpire(UInt64?), failed(LeaseError)
    }

    /// sanlock's own verdict on a lease, asked with a trial acquire by this process and released at
    /// once: free, held by a live host, or held by a host whose lease must expire first.
    static func trial(_ resource: String, slot: Int, in lockspace: Lockspace) -> Trial {
        let connection: LeaseConnection
        do {
            connection = try LeaseConnection()
        } catch {
            return .failed(error)
        }
        defer { connection.close() }
        do {
            try connection.acquire(resource, slot: slot, in: lockspace)
        } catch {
            if error.code == .heldByOtherHost { return .heldByLiveHost(error.ownerHostID) }
            if error.code == .ownerMustExpire { return .mustExpire(error.ownerHostID) }
            return .failed(error)
        }
        do {
            try connection.release(resource, slot: slot, in: lockspace)
        } catch {
            return .failed(error)
        }
        return .free
    }
}

extension Fleet.StartLease {
    /// The lease as the runtime holds it for a QEMU: through `hpvm-lease-exec`, acquired between
    /// fork and exec, or with `incoming` only registered (an online migration's target).
    public func hold(incoming: Bool = false) -> LeaseHold {
        LeaseHold(lockspace: lockspace, resource: resource, path: path, offset: offset, waitSeconds: waitSeconds, incoming: incoming)
    }
}
