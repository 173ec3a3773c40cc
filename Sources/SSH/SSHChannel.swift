internal import CLibSSH2
#if canImport(Glibc)
internal import Glibc
#endif

/// A command running on the server: its standard input, output and exit status.
///
/// Holds its session, so the session outlives every channel opened on it.
public final class SSHChannel {
    public let session: SSHSession
    let pointer: OpaquePointer
    private var buffer: [UInt8] = []
    private var closed = false

    init(session: SSHSession, pointer: OpaquePointer) {
        self.session = session
        self.pointer = pointer
    }

    deinit {
        if !closed { _ = hpvm_ssh2_channel_close(pointer) }
        libssh2_channel_free(pointer)
    }

    /// Writes all of `bytes` to the command's standard input.
    /// The corresponding C function is `libssh2_channel_write_ex`.
    public func write(_ bytes: [UInt8]) throws(SSHError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    hpvm_ssh2_channel_write(pointer, $0 + offset, buffer.count - offset)
                }
            }
            guard n >= 0 else { throw session.error(.io, "cannot write to \(session.configuration.knownHostsName)", Int32(n)) }
            offset += n
        }
    }

    /// Writes all of `bytes` (raw data after a header line, for copies).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SSHError) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = hpvm_ssh2_channel_write(pointer, base.assumingMemoryBound(to: CChar.self) + offset, bytes.count - offset)
            guard n >= 0 else { throw session.error(.io, "cannot write to \(session.configuration.knownHostsName)", Int32(n)) }
            offset += n
        }
    }

    /// Writes `line` and a newline.
    public func writeLine(_ line: String) throws(SSHError) {
        try write(Array((line + "\n").utf8))
    }

    /// Reads up to `maximum` bytes of standard output; an empty array means the command closed it.
    /// The corresponding C function is `libssh2_channel_read_ex`.
    public func read(maximum: Int = 65536) throws(SSHError) -> [UInt8] {
        if !buffer.isEmpty {
            let chunk = Array(buffer.prefix(maximum))
            buffer.removeFirst(chunk.count)
            return chunk
        }
        var bytes = [UInt8](repeating: 0, count: maximum)
        let n = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                hpvm_ssh2_channel_read(pointer, $0, buffer.count)
            }
        }
        guard n >= 0 else { throw session.error(.io, "cannot read from \(session.configuration.knownHostsName)", Int32(n)) }
        return Array(bytes[0..<n])
    }

    /// Reads one line of standard output without its newline; nil at the end of output.
    ///
    /// - Parameter limit: the longest line accepted, in bytes; a longer one is an error.
    public func readLine(limit: Int = 16 << 20) throws(SSHError) -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count <= limit else {
                throw SSHError(.io, "\(session.configuration.knownHostsName) sent a line longer than \(limit) bytes.")
            }
            var bytes = [UInt8](repeating: 0, count: 65536)
            let n = bytes.withUnsafeMutableBufferPointer { chunk in
                chunk.baseAddress!.withMemoryRebound(to: CChar.self, capacity: chunk.count) {
                    hpvm_ssh2_channel_read(pointer, $0, chunk.count)
                }
            }
            guard n >= 0 else { throw session.error(.io, "cannot read from \(session.configuration.knownHostsName)", Int32(n)) }
            if n == 0 {
                guard !buffer.isEmpty else { return nil }
                let line = buffer
                buffer = []
                return String(decoding: line, as: UTF8.self)
            }
            buffer.append(contentsOf: bytes[0..<n])
        }
    }

    /// Everything the command wrote to standard error so far (after it finished, all of it).
    public func readStderr(limit: Int = 1 << 20) -> String {
        var collected: [UInt8] = []
        var bytes = [UInt8](repeating: 0, count: 8192)
        while collected.count < limit {
            let n = bytes.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    hpvm_ssh2_channel_read_stderr(pointer, $0, buffer.count)
                }
            }
            guard n > 0 else { break }
            collected.append(contentsOf: bytes[0..<n])
        }
        return String(decoding: collected, as: UTF8.self)
    }

    /// Closes standard input. The corresponding C function is `libssh2_channel_send_eof`.
    public func sendEOF() throws(SSHError) {
        let rc = libssh2_channel_send_eof(pointer)
        guard rc == 0 else { throw session.error(.io, "cannot close the remote input", rc) }
    }

    /// Closes the channel, waits for the command to end, and returns its exit status.
    public func close() throws(SSHError) -> Int32 {
        if !closed {
            closed = true
            _ = hpvm_ssh2_channel_close(pointer)
            _ = libssh2_channel_wait_closed(pointer)
        }
        return libssh2_channel_get_exit_status(pointer)
    }
}
