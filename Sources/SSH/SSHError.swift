/// Every failure of the SSH layer, with libssh2's own text where it has one.
public struct SSHError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case resolve, connect, handshake, hostKeyUnknown, hostKeyMismatch, knownHosts, noPublicKey, noKey,
                rsaRefused, authentication, channel, io, timeout, closed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// The host name did not resolve.
        public static let resolve = Code(.resolve)
        /// The TCP connection failed or timed out.
        public static let connect = Code(.connect)
        /// The SSH handshake failed. The corresponding C function is `libssh2_session_handshake`.
        public static let handshake = Code(.handshake)
        /// The host key is not in known_hosts (LIBSSH2_KNOWNHOST_CHECK_NOTFOUND).
        public static let hostKeyUnknown = Code(.hostKeyUnknown)
        /// known_hosts holds another key for the host (LIBSSH2_KNOWNHOST_CHECK_MISMATCH).
        public static let hostKeyMismatch = Code(.hostKeyMismatch)
        /// known_hosts could not be read.
        public static let knownHosts = Code(.knownHosts)
        /// The server does not offer public-key authentication.
        public static let noPublicKey = Code(.noPublicKey)
        /// No private key file was found.
        public static let noKey = Code(.noKey)
        /// The only key is RSA, which libssh2 1.10 signs with SHA-1 and OpenSSH 8.8+ refuses.
        public static let rsaRefused = Code(.rsaRefused)
        /// The server refused every key (LIBSSH2_ERROR_AUTHENTICATION_FAILED, PUBLICKEY_UNVERIFIED).
        public static let authentication = Code(.authentication)
        /// A channel could not be opened or the command not started.
        public static let channel = Code(.channel)
        /// Reading or writing the channel failed.
        public static let io = Code(.io)
        /// The peer did not answer in time (LIBSSH2_ERROR_TIMEOUT).
        public static let timeout = Code(.timeout)
        /// The peer closed the channel.
        public static let closed = Code(.closed)
        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// libssh2's error code, when the failure came from libssh2.
    public let libssh2Code: Int32?

    public init(_ code: Code, _ message: String, libssh2Code: Int32? = nil) {
        self.code = code
        self.message = message
        self.libssh2Code = libssh2Code
    }

    public var description: String { message }
}
