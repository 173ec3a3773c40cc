#if canImport(Glibc)
internal import Glibc
#endif

/// Every failure of the runtime layer: what went wrong, for which guest, and what to do.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case notRunning, launchFailed, monitor, timeout, busy, io, network, badSetting, leaseHeld
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The guest's QEMU does not run.
        public static let notRunning = Code(.notRunning)
        /// QEMU refused to start, or exited while starting.
        public static let launchFailed = Code(.launchFailed)
        /// The QMP monitor could not be reached, or answered with an error.
        public static let monitor = Code(.monitor)
        /// A deadline passed (the guest did not stop, the monitor did not answer).
        public static let timeout = Code(.timeout)
        /// Another command holds the monitor or the console.
        public static let busy = Code(.busy)
        /// A file or folder of the run folder could not be made or read.
        public static let io = Code(.io)
        /// A tap interface could not be made or put on its vswitch.
        public static let network = Code(.network)
        /// A setting (`HPVM_ACCEL`, `HPVM_QEMU`, …) has a value that cannot be used.
        public static let badSetting = Code(.badSetting)
        /// The guest's fleet lease (sanlock) is held by another host, or could not be taken.
        public static let leaseHeld = Code(.leaseHeld)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A sentence for people: what failed, which guest, what to do.
    public let message: String
    /// The error from the layer below, if any.
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}

/// An `errno` value with its text, as a cause.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public let function: String
    public let number: Int32

    public var description: String {
        guard let text = strerror(number) else { return "\(function): errno \(number)" }
        return "\(function): \(String(cString: text))"
    }
}
