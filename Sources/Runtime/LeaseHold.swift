/// A guest's fleet lease that its QEMU must hold (issue 11): where it is on the lease storage.
/// The runtime knows nothing of sanlock; it starts QEMU through the helper `hpvm-lease-exec`
/// (``RuntimeSettings/leaseHelper``), which acquires the lease between fork and exec, so sanlock
/// ties it to QEMU's pid and releases it when QEMU exits.
///
/// For the target of an online migration (``incoming``), the helper only registers QEMU's pid with
/// the sanlock daemon and acquires nothing: the source still holds the lease, and the hand-over
/// (`Fleet.handOverRelease` there, `Fleet.handOverAcquire` here) moves it before the guest continues.
public struct LeaseHold: Sendable, Equatable {
    public let lockspace: String
    public let resource: String
    public let path: String
    public let offset: UInt64
    /// How long the helper may wait for a dead owner's lease to expire (0: refuse at once).
    public let waitSeconds: Int
    /// Register QEMU with the sanlock daemon without acquiring the lease (an incoming migration's
    /// QEMU); ``waitSeconds`` is then unused.
    public let incoming: Bool

    public init(lockspace: String, resource: String, path: String, offset: UInt64, waitSeconds: Int, incoming: Bool = false) {
        self.lockspace = lockspace
        self.resource = resource
        self.path = path
        self.offset = offset
        self.waitSeconds = waitSeconds
        self.incoming = incoming
    }

    /// The helper's argument vector in front of QEMU's (QEMU without `-daemonize`: the helper detaches).
    /// An incoming QEMU's helper gets the word `incoming` in place of the seconds to wait.
    func arguments(qemu: String, _ qemuArguments: [String], folder: RunFolder) -> [String] {
        [lockspace, resource, path, String(offset), folder.path, incoming ? Self.incomingWord : String(waitSeconds), "--", qemu]
            + qemuArguments.filter { $0 != "-daemonize" }
    }

    /// The word the helper takes in place of WAIT_SECONDS to register without acquiring.
    static let incomingWord = "incoming"

    /// The helper's exit statuses (see `Sources/LeaseExec/main.c`).
    static let heldByLiveHost: Int32 = 10
    static let ownerDidNotExpire: Int32 = 11
    static let notJoined: Int32 = 12
    static let sanlockFailed: Int32 = 13
}
