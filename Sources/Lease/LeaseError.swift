/// Every failure of the lease layer: what failed, on which lease, and what to do about it.
public struct LeaseError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case daemonUnreachable, notJoined, heldByOtherHost, ownerMustExpire, staleVersion, notRegistered, badArea, badInput, io, failed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No sanlock daemon answers on this host's socket (`SANLOCK_RUN_DIR`).
        public static let daemonUnreachable = Code(.daemonUnreachable)
        /// This host has not joined the fleet's lockspace (`hpvmlease -i`).
        public static let notJoined = Code(.notJoined)
        /// Another host holds the lease and renews its host lease (the C constant is `SANLK_ACQUIRE_IDLIVE`).
        public static let heldByOtherHost = Code(.heldByOtherHost)
        /// The lease's owner stopped renewing; it is free once the owner's host lease expires
        /// (the C constant is `SANLK_ACQUIRE_OWNED_RETRY`).
        public static let ownerMustExpire = Code(.ownerMustExpire)
        /// An acquire with a lease version found another version on disk: the lease was taken (and
        /// perhaps released) by some host since that version was read (the C constant is `SANLK_ACQUIRE_LVER`).
        public static let staleVersion = Code(.staleVersion)
        /// The process to acquire a lease for is not registered with this host's sanlock daemon (an
        /// incoming QEMU not started through `hpvm-lease-exec ... incoming`, or one that exited).
        public static let notRegistered = Code(.notRegistered)
        /// The lease file holds no lockspace or resource of ours there (`SANLK_LEADER_*`).
        public static let badArea = Code(.badArea)
        /// A name, path, host id or timeout out of range.
        public static let badInput = Code(.badInput)
        /// The lease file could not be read or written.
        public static let io = Code(.io)
        /// Any other sanlock failure.
        public static let failed = Code(.failed)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A sentence for people: what failed, which lease, what to do.
    public let message: String
    /// The sanlock function that failed, and its return value.
    public let function: String?
    public let result: Int32?
    /// For ``Code/heldByOtherHost`` and ``Code/ownerMustExpire``: the host id that holds the lease.
    public let ownerHostID: UInt64?

    public init(_ code: Code, _ message: String, function: String? = nil, result: Int32? = nil, ownerHostID: UInt64? = nil) {
        self.code = code
        self.message = message
        self.function = function
        self.result = result
        self.ownerHostID = ownerHostID
    }

    public var description: String { message }

    /// The message with the C function and its result, for `-V`.
    public func detailedDescription() -> String {
        guard let function, let result else { return message }
        return "\(message) (\(function) returned \(result))"
    }
}

extension LeaseError {
    /// A name, path, host id or timeout that sanlock would not take, or storage that does not fit.
    public static func badInput(_ message: String) -> LeaseError { LeaseError(.badInput, message) }
}
