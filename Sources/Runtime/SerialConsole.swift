#if canImport(Glibc)
internal import Glibc
#endif

/// A terminal attached to a running guest's serial console (`hpvmconsole`): what is typed goes to
/// the guest, what the guest writes comes back, until `~.` is typed at the start of a line (as in
/// `ssh`; `~~` sends one `~`), the input ends, or the guest's QEMU goes away.
public enum SerialConsole {
    /// Why the session ended.
    public enum Ending: Sendable, Equatable {
        /// `~.` was typed at the start of a line.
        case escape
        /// The input ended.
        case endOfInput
        /// The guest's console closed: its QEMU stopped.
        case guestClosed
    }

    /// Reads typed bytes for the escape sequence: `~` at the start of a line is held until the
    /// next byte says what it is.
    public struct EscapeReader: Sendable {
        private var atLineStart = true
        private var holdingTilde = false

        public init() {}

        /// The bytes to send to the guest, and whether `~.` was typed (the bytes before it are sent).
        public mutating func feed(_ bytes: some Sequence<UInt8>) -> (forward: [UInt8], leave: Bool) {
            var out: [UInt8] = []
            let tilde = UInt8(ascii: "~")
            for byte in bytes {
                if holdingTilde {
                    holdingTilde = false
                    if byte == UInt8(ascii: ".") { return (out, true) }
                    out.append(tilde)
                    if byte == tilde {
                        atLineStart = false
                        continue
                    }
                } else if atLineStart && byte == tilde {
                    holdingTilde = true
                    continue
                }
                out.append(byte)
                atLineStart = byte == 0x0D || byte == 0x0A
            }
            return (out, false)
        }
    }

    /// Attaches `input` and `output` to the guest's console until the session ends.
    ///
    /// - Parameters:
    /// - Throws: ``RuntimeError`` `notRunning` when the guest does not run, `busy` when another
    ///   `hpvmconsole` is attached.
    ///   - attached: called once the session holds the console, before the first byte flows.
    public static func attach(_ folder: RunFolder, input: Int32, output: Int32, attached: () -> Void = {}) throws(RuntimeError)
        -> Ending
    {
        guard folder.runningPID != nil else { throw RuntimeError(.notRunning, "guest \(folder.guest) is not running.") }
        let lock = try folder.lock(RunFolder.File.console.rawValue, until: nil, purpose: "the serial console")
        defer { withExtendedLifetime(lock) {} }
        let socket = try folder.connect(.console)
        defer { close(socket) }
        attached()
        var reader = EscapeReader()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0), pollfd(fd: input, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else {
                throw RuntimeError(.io, "cannot wait on guest \(folder.guest)'s console: \(SystemError(function: "poll", number: errno)).")
            }
            if fds[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return .guestClosed }
                if n > 0 { writeAll(output, buffer[0..<n]) }
            }
            if fds[1].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 { return .endOfInput }
                let (forward, leave) = reader.feed(buffer[0..<n])
                if !forward.isEmpty, !sendAll(socket, forward) { return .guestClosed }
                if leave { return .escape }
            }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }

    private static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }
}
