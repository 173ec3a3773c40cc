/// A guest's fleet lease that its QEMU must hold (issue 11): where it is on the lease storage.
/// The runtime knows nothing of sanlock; it starts QEMU through the helper `hpvm-lease-exec`
/// (``RuntimeSettings/leaseHelper``), which acquires the lease between fork and exec, so sanlock
/// ties it to QEMU's pid and releases it when QEMU exits.
public struct LeaseHold: Sendable, Equatable {
    public let lockspace: String
    public let resource: String
    public let path: String
    public let offset: UInt64
    /// How long the helper may wait for a dead owner's lease to expire (0: refuse at once).
    public let waitSeconds: Int

    public init(lockspace: String, resource: String, path: String, offset: UInt64, waitSeconds: Int) {
        self.lockspace = lockspace
        self.resource = resource
        self.path = path
        self.offset = offset
        self.waitSeconds = waitSeconds
    }

    /// The helper's argument vector in front of QEMU's (QEMU without `-daemonize`: the helper detaches).
    func arguments(qemu: String, _ qemuArguments: [String], folder: RunFolder) -> [String] {
        [lockspace, resource, path, String(offset), folder.path, String(waitSeconds), "--", qemu]
            + qemuArguments.filter { $0 != "-daemonize" }
    }

    /// The helper's exit statuses (see `Sources/LeaseExec/main.c`).
    static let heldByLiveHost: Int32 = 10
    static let ownerDidNotExpire: Int32 = 11
    static let notJoined: Int32 = 12
    static let sanlockFailed: Int32 = 13
}
