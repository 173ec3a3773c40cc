internal import Host
internal import Lease
internal import Registry

// MARK: - Online migration: the lease hand-over

/// The lease primitives of `hpvmmigrate -o`, after libvirt's sanlock driver
/// (`src/locking/lock_driver_sanlock.c`): the target's QEMU starts registered with its sanlock
/// daemon but holding nothing (``incomingLease(guest:)``, then ``LeaseHold`` with `incoming`); once
/// the migration stream is complete and the guest paused on both hosts, the source releases the
/// lease for its QEMU and learns its version (``handOverRelease(guest:pid:)``), and the target
/// acquires it for its QEMU with that version (``handOverAcquire(guest:pid:version:)``) before it
/// lets the guest continue. The version makes the acquire fail if any other host took the lease
/// between the two steps. Should the target refuse, the source takes the lease back for its own
/// QEMU with the same call and version, and the guest continues there.
///
/// On each host the guest is named by its name; the resource is `guest-<uuid>` from that host's
/// registry row, so both hosts name the same lease once the migration's prepare has written the
/// guest's row (same uuid, Not Runnable) on the target.
extension Fleet {
    /// Where the guest's lease is for the QEMU of an incoming migration, which `hpvm-lease-exec`
    /// registers without acquiring (``LeaseHold`` with `incoming: true`); nil when fleet leases are
    /// off on this host. Finds the guest's slot on the lease storage and records it in the
    /// registry, so that the hand-over itself scans nothing.
    ///
    /// - Returns: the lease, with ``StartLease/ownerHostID`` the host that holds it now (the
    ///   source, while the guest runs there) and ``StartLease/waitSeconds`` 0.
    /// - Throws: ``LeaseError/Code/notJoined`` when this host's daemon is not in the lockspace;
    ///   ``LeaseError/Code/badArea`` when the lease storage holds no lease of this guest (the
    ///   source uses other lease storage); ``RegistryError/Code/notFound`` when no guest has that name.
    public func incomingLease(guest name: String) throws -> StartLease? {
        guard let place = try handOverPlace(guest: name, action: "prepare the incoming migration of") else {
            return nil
        }
        let owner = try place.lockspace.owner(of: place.lease.resource, slot: place.slot)
        return StartLease(
            lockspace: Lockspace.name, resource: place.lease.resource, path: place.lockspace.path, slot: place.slot,
            waitSeconds: 0, ownerHostID: owner?.hostID)
    }

    /// The source's half of the hand-over: releases the guest's lease held by its QEMU `pid` and
    /// returns the lease's version, which the target passes to ``handOverAcquire(guest:pid:version:)``.
    /// QEMU stays registered with the daemon, so the lease can be taken back for it with that version.
    /// Called again after the lease was released (a retried completion), it returns the same version.
    ///
    /// - Returns: the lease version, or nil when fleet leases are off on this host.
    /// - Throws: ``LeaseError/Code/heldByOtherHost`` naming the holder when another host holds the
    ///   lease (the hand-over already happened); ``LeaseError/Code/failed`` when this host still
    ///   holds it after the release (`pid` is not the QEMU holding it); ``LeaseError/Code/notJoined``;
    ///   ``RegistryError/Code/notFound`` when no guest has that name.
    public func handOverRelease(guest name: String, pid: Int32) throws -> UInt64? {
        guard let place = try handOverPlace(guest: name, action: "hand over the lease of") else { return nil }
        let resource = place.lease.resource
        let version: UInt64
        do {
            version = try place.lockspace.release(resource, slot: place.slot, pid: pid)
        } catch {
            // sanlock refuses to release for a process that holds nothing (-EPERM): the disk says why.
            guard let owner = try place.lockspace.owner(of: resource, slot: place.slot) else {
                return try place.lockspace.version(of: resource, slot: place.slot)
            }
            throw Self.releaseRefusal(owner: owner.hostID, guest: name, pid: pid, place: place)
        }
        guard let owner = try place.lockspace.owner(of: resource, slot: place.slot) else { return version }
        throw Self.releaseRefusal(owner: owner.hostID, guest: name, pid: pid, place: place)
    }

    /// The source's refusal when the lease is still held after its release: by this host (for
    /// another process than `pid`) or by another host.
    static func releaseRefusal(owner: UInt64, guest name: String, pid: Int32, place: HandOverPlace) -> LeaseError {
        let resource = place.lease.resource
        let guest = Display.safe(name)
        if owner == place.me {
            return LeaseError(
                .failed,
                "cannot hand over guest \(guest)'s lease \(resource): this host still holds it after releasing it for "
                    + "QEMU pid \(pid), which is not the process holding it.",
                ownerHostID: owner)
        }
        return LeaseError(
            .heldByOtherHost,
            "cannot hand over guest \(guest)'s lease \(resource): host \(owner) holds it, not this host "
                + "(the hand-over already happened, or the guest runs there).",
            ownerHostID: owner)
    }

    /// The target's half of the hand-over: acquires the guest's lease for the registered QEMU
    /// `pid` (started through `hpvm-lease-exec ... incoming`), only if the lease still has the
    /// `version` that ``handOverRelease(guest:pid:)`` returned on the source. Called before the
    /// guest continues; when it throws, the guest must not continue here.
    ///
    /// - Throws: ``LeaseError`` with
    ///   - ``LeaseError/Code/heldByOtherHost`` (or ``LeaseError/Code/ownerMustExpire`` when that host
    ///     stopped renewing) naming the holder in ``LeaseError/ownerHostID`` when another host holds
    ///     the lease: the source has not released it, or a third host took it;
    ///   - ``LeaseError/Code/staleVersion`` when the lease is free but its version is not `version`:
    ///     some host took and released it since the source did;
    ///   - ``LeaseError/Code/notRegistered`` when `pid` is not registered with this host's daemon;
    ///   - ``LeaseError/Code/notJoined`` when fleet leases are off on this host or it has not joined;
    ///   - ``RegistryError/Code/notFound`` when no guest has that name.
    ///
    /// With `version` nil (the source could not read it: its QEMU's end released the lease), the
    /// lease is taken at whatever version it has; with fleet leases off here, nothing is taken.
    public func handOverAcquire(guest name: String, pid: Int32, version: UInt64?) throws {
        guard let place = try handOverPlace(guest: name, action: "take over the lease of") else {
            if version == nil { return }
            throw LeaseError(
                .notJoined,
                "cannot take over guest \(Display.safe(name))'s lease: fleet leases are off on this host, but the source "
                    + "holds one; join the fleet's lockspace first (hpvmlease -i PATH -H ID).")
        }
        let resource = place.lease.resource
        do {
            try place.lockspace.acquire(resource, slot: place.slot, pid: pid, version: version)
        } catch {
            throw Self.handOverRefusal(error, guest: name, pid: pid, version: version, place: place)
        }
    }

    // MARK: - Helpers

    /// A guest's lease on this host for a hand-over: the lockspace, this host's id, the slot.
    struct HandOverPlace {
        let lockspace: Lockspace
        let me: UInt64
        let lease: FleetLeases.GuestLease
        let slot: Int
    }

    /// The guest's lease, checked for a hand-over (nil when fleet leases are off): this host has
    /// joined, and the guest's resource is on the lease storage (found, never written: a hand-over
    /// moves an existing lease).
    func handOverPlace(guest name: String, action: String) throws -> HandOverPlace? {
        guard let settings = try leases.settings() else { return nil }
        guard let lease = try leases.guestLease(name) else {
            throw RegistryError(
                .notFound, "cannot \(action) guest \(Display.safe(name)): no guest of that name on this host.")
        }
        let lockspace = try Lockspace(path: leases.root.real(settings.path))
        let me = UInt64(settings.hostID)
        guard try lockspace.isJoined(hostID: me) else {
            throw LeaseError(
                .notJoined,
                "cannot \(action) guest \(Display.safe(name)): this host (id \(me)) has not joined the fleet's lockspace "
                    + "on \(settings.path); run hpvmlease -i \(settings.path) -H \(me).")
        }
        if let slot = lease.slot, try lockspace.resourceName(slot: slot) == lease.resource {
            return HandOverPlace(lockspace: lockspace, me: me, lease: lease, slot: slot)
        }
        let count = Lockspace.slots(inFileOf: try Self.size(of: lockspace.path))
        for slot in Self.firstGuestSlot..<max(Self.firstGuestSlot, count + 1) {
            guard try lockspace.resourceName(slot: slot) == lease.resource else { continue }
            try leases.recordSlot(slot, guest: lease.guest)
            return HandOverPlace(lockspace: lockspace, me: me, lease: lease, slot: slot)
        }
        throw LeaseError(
            .badArea,
            "cannot \(action) guest \(Display.safe(name)): the lease storage \(settings.path) holds no lease "
                + "\(lease.resource); the guest's source host keeps its leases elsewhere (both hosts must share one lockspace).")
    }

    /// The target's refusal, naming the holder when another host holds the lease (sanlock checks
    /// the version before the owner, so a wrong version can hide a live holder: the disk is asked).
    static func handOverRefusal(
        _ error: LeaseError, guest name: String, pid: Int32, version: UInt64?, place: HandOverPlace
    ) -> LeaseError {
        let resource = place.lease.resource
        let guest = Display.safe(name)
        let owner = try? place.lockspace.owner(of: resource, slot: place.slot)
        if let owner, owner.hostID != place.me {
            let expiring = error.code == .ownerMustExpire
            return LeaseError(
                expiring ? .ownerMustExpire : .heldByOtherHost,
                "cannot take over guest \(guest)'s lease \(resource) for QEMU pid \(pid): held by host \(owner.hostID)"
                    + (expiring
                        ? ", which stopped renewing its host lease; the guest must not continue here."
                        : ", which is alive; the source has not released it, or another host runs the guest."),
                function: error.function, result: error.result, ownerHostID: owner.hostID)
        }
        if error.code == .staleVersion {
            let current = (try? place.lockspace.version(of: resource, slot: place.slot)).map(String.init) ?? "another"
            return LeaseError(
                .staleVersion,
                "cannot take over guest \(guest)'s lease \(resource) for QEMU pid \(pid): its version is \(current), "
                    + "not \(version.map(String.init) ?? "the one") as the source released it; another host took the lease since, so the guest must not "
                    + "continue here.",
                function: error.function, result: error.result, ownerHostID: owner?.hostID)
        }
        return error
    }
}
