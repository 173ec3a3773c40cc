import Fleet
import Lease
import Migration
import Registry
import Runtime

/// The fleet's sanlock leases (``Fleet``) as migration moves them (``GuestLeases``).
struct FleetGuestLeases: GuestLeases {
    let fleet: Fleet

    init(_ guests: GuestRegistry) {
        fleet = Fleet(store: guests.store, root: guests.root, audit: guests.audit)
    }

    func hold(guest: String, incoming: Bool) throws -> LeaseHold? {
        do {
            return try (incoming ? fleet.incomingLease(guest: guest) : fleet.startLease(guest: guest))?.hold(incoming: incoming)
        } catch let error as LeaseError {
            throw RuntimeError(.leaseHeld, error.message, cause: error)
        }
    }

    func release(guest: String, pid: Int32) throws -> UInt64? {
        try fleet.handOverRelease(guest: guest, pid: pid)
    }

    func acquire(guest: String, pid: Int32, version: UInt64?) throws {
        do {
            try fleet.handOverAcquire(guest: guest, pid: pid, version: version)
        } catch let error as LeaseError {
            throw RuntimeError(.leaseHeld, error.message, cause: error)
        }
    }
}
