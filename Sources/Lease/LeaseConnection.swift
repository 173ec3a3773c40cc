internal import CSanlock

#if canImport(Glibc)
internal import Glibc
#endif

/// A connection registered with this host's sanlock daemon: the leases acquired on it belong to
/// this process and end with it (or with ``close()``).
///
/// For `hpvmmigrate -o` (libvirt's hand-over): the target's helper registers without acquiring
/// (`hpvm-lease-exec ... incoming`, then exec of the incoming QEMU); at completion the source
/// calls ``Lockspace/release(_:slot:pid:)`` for its QEMU, which returns the lease version, and the
/// target calls ``Lockspace/acquire(_:slot:pid:version:)`` for its QEMU's pid with that version
/// before `cont`, so a lease taken meanwhile by a third host makes the acquire fail
/// (`Fleet.handOverRelease` and `Fleet.handOverAcquire` wrap both with the registry).
public final class LeaseConnection {
    let socket: Int32
    private var closed = false

    /// Registers this process. The corresponding C function is `sanlock_register`.
    public init() throws(LeaseError) {
        let rc = sanlock_register()
        guard rc >= 0 else {
            throw LeaseError(.daemonUnreachable, "no sanlock daemon answers on this host (start it; SANLOCK_RUN_DIR picks its folder).",
                             function: "sanlock_register", result: rc)
        }
        socket = rc
    }

    /// Acquires `name` in `slot` of `lockspace` for this process, failing at once when another host
    /// holds it. The corresponding C function is `sanlock_acquire`.
    public func acquire(_ name: String, slot: Int, in lockspace: Lockspace) throws(LeaseError) {
        try lockspace.withResource(name, slot: slot) { (res) throws(LeaseError) in
            let rc = hpvm_sanlk_acquire_one(socket, -1, UInt32(SANLK_ACQUIRE_OWNER_NOWAIT), res)
            guard rc < 0 else { return }
            let owner = rc == SANLK_ACQUIRE_IDLIVE || rc == SANLK_ACQUIRE_OWNED_RETRY ? try? lockspace.owner(of: name, slot: slot)?.hostID : nil
            throw Sanlock.error(rc, "sanlock_acquire", "cannot take lease \(name) in slot \(slot) of \(lockspace.path)", owner: owner)
        }
    }

    /// Releases `name` in `slot`. The corresponding C function is `sanlock_release`.
    public func release(_ name: String, slot: Int, in lockspace: Lockspace) throws(LeaseError) {
        try lockspace.withResource(name, slot: slot) { (res) throws(LeaseError) in
            try Sanlock.check(hpvm_sanlk_release_one(socket, -1, 0, res), "sanlock_release", "cannot release lease \(name)")
        }
    }

    /// Closes the connection: the daemon releases whatever it still holds.
    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(socket)
    }

    deinit { close() }
}

extension Lockspace {
    /// Releases the lease `name` in `slot` held by the registered process `pid` (a guest's QEMU)
    /// and returns the lease version it had. The corresponding C function is `sanlock_release`.
    @discardableResult
    public func release(_ name: String, slot: Int, pid: Int32) throws(LeaseError) -> UInt64 {
        try withResource(name, slot: slot) { (res) throws(LeaseError) -> UInt64 in
            var version: UInt64 = 0
            let read = sanlock_read_resource(res, 0)
            if read == 0 { version = res.pointee.lver }
            let rc = hpvm_sanlk_release_one(-1, pid, 0, res)
            if rc == -ENOENT || rc == -ESRCH { return version }
            try Sanlock.check(rc, "sanlock_release", "cannot release lease \(name) held by pid \(pid)")
            return version
        }
    }

    /// Acquires `name` in `slot` for the registered process `pid`; with `version`, only if the
    /// lease still has that version (the hand-over of an online migration).
    /// The corresponding C function is `sanlock_acquire`.
    public func acquire(_ name: String, slot: Int, pid: Int32, version: UInt64? = nil) throws(LeaseError) {
        try withResource(name, slot: slot) { (res) throws(LeaseError) in
            if let version {
                res.pointee.lver = version
                res.pointee.flags |= UInt32(SANLK_RES_LVER)
            }
            let rc = hpvm_sanlk_acquire_one(-1, pid, UInt32(SANLK_ACQUIRE_OWNER_NOWAIT), res)
            guard rc < 0 else { return }
            if rc == -ESRCH {
                throw LeaseError(
                    .notRegistered, "cannot take lease \(name) for pid \(pid): no process of that pid is registered with this host's sanlock daemon.",
                    function: "sanlock_acquire", result: rc)
            }
            let owner = try? self.owner(of: name, slot: slot)?.hostID
            throw Sanlock.error(rc, "sanlock_acquire", "cannot take lease \(name) for pid \(pid)", owner: owner)
        }
    }
}
