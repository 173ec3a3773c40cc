public import SSH
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// A line-oriented connection to the target half.
public protocol RemoteLink: AnyObject {
    func send(_ line: String) throws(MigrationError)
    /// Raw bytes after a `data` header line.
    func sendBytes(_ bytes: UnsafeRawBufferPointer) throws(MigrationError)
    func receive() throws(MigrationError) -> String?
    func close()
    /// True once a read or write failed: nothing more is sent or awaited on it.
    var isBroken: Bool { get }
    /// A second channel to a target half of its own on the same connection, for an online
    /// migration's stream.
    func openStream() throws(MigrationError) -> any RemoteLink
    /// Closes the sending side (the target reads its end of input).
    func finishSending()
    /// What the target half wrote to its standard error (its last words, after it ended).
    func errorOutput() -> String
}

extension RemoteLink {
    public var isBroken: Bool { false }
    public func openStream() throws(MigrationError) -> any RemoteLink {
        throw MigrationError(.refused, ["online migration needs an SSH connection to the target."])
    }
    public func finishSending() {}
    public func errorOutput() -> String { "" }
}

/// Opens the connection to the target half; SSH in production, anything that speaks lines in tests.
public protocol RemoteConnector {
    func connect(host: String) throws(MigrationError) -> any RemoteLink
}

/// One SSH connection and one exec channel running `hpvmmigrate --target` on the target.
public struct SSHConnector: RemoteConnector {
    public let configuration: (String) throws(SSHError) -> SSHConfiguration
    /// The path of `hpvmmigrate` on the target (`HPVM_REMOTE_COMMAND`).
    public let remoteCommand: String
    /// The longest silence accepted from the target, in seconds, in any phase (`--timeout`,
    /// `HPVM_MIGRATE_TIMEOUT`); also the connection's own timeout.
    public let deadline: Int

    /// The default deadline of silence, in seconds.
    public static let defaultDeadline = 15

    public init(remoteCommand: String, deadline: Int = SSHConnector.defaultDeadline, configuration: @escaping (String) throws(SSHError) -> SSHConfiguration) {
        self.remoteCommand = remoteCommand
        self.deadline = deadline
        self.configuration = configuration
    }

    public func connect(host: String) throws(MigrationError) -> any RemoteLink {
        var settings: SSHConfiguration?
        do {
            var configuration = try configuration(host)
            configuration.timeoutMilliseconds = deadline * 1000
            settings = configuration
            let session = try SSHSession.connect(configuration)
            // The command line holds only the configured path and a fixed option: no value from the
            // guest or the registry ever reaches the remote shell.
            let channel = try session.exec(ShellWord.quote(remoteCommand) + " --target")
            return SSHLink(channel: channel, deadline: deadline, remoteCommand: remoteCommand)
        } catch {
            throw MigrationError.ssh(error, advice: settings?.setupAdvice(for: error))
        }
    }
}

/// The channel to the target half: lines read in linear time, at most `ProtocolDecoder.lineLimit`
/// bytes each; an SSH keepalive at every slice of silence; after `deadline` seconds of silence, an
/// error that says whether the target stopped answering (its host still accepts connections) or the
/// link was lost (it does not).
final class SSHLink: RemoteLink {
    let channel: SSHChannel
    let deadline: Int
    /// Bytes read and not yet returned: `buffer[start...]`, of which `buffer[start..<scanned]` has no newline.
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    /// Set when the link failed: closing then waits for nothing.
    private var broken = false
    var isBroken: Bool { broken }

    let remoteCommand: String
    /// Whether closing this link ends the SSH connection (false for a stream's second channel).
    let ownsSession: Bool

    init(channel: SSHChannel, deadline: Int, remoteCommand: String, ownsSession: Bool = true) {
        self.channel = channel
        self.deadline = deadline
        self.remoteCommand = remoteCommand
        self.ownsSession = ownsSession
    }

    func openStream() throws(MigrationError) -> any RemoteLink {
        do {
            let stream = try channel.session.exec(ShellWord.quote(remoteCommand) + " --target")
            return SSHLink(channel: stream, deadline: deadline, remoteCommand: remoteCommand, ownsSession: false)
        } catch {
            throw failure(error)
        }
    }

    func finishSending() {
        try? channel.sendEOF()
    }

    func errorOutput() -> String {
        channel.readStderr(limit: 4096)
    }

    var host: String { channel.session.configuration.host }

    func send(_ line: String) throws(MigrationError) {
        do { try channel.writeLine(line) } catch { throw failure(error) }
    }

    func receive() throws(MigrationError) -> String? {
        // Waits in slices, with a keepalive after each, so a dead link is noticed and a live one kept.
        let slice = max(1000, min(5000, deadline * 1000 / 3))
        channel.session.setTimeout(milliseconds: slice)
        defer { channel.session.setTimeout(milliseconds: deadline * 1000) }
        var silence = 0
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 10) {
                let line = String(decoding: buffer[start..<newline], as: UTF8.self)
                start = newline + 1
                scanned = start
                if start == buffer.count {
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                    scanned = 0
                }
                return line
            }
            scanned = buffer.count
            guard buffer.count - start <= ProtocolDecoder.lineLimit else {
                broken = true
                throw MigrationError(
                    .protocolError,
                    ["Target VM Host error - the target answered something that is not hpvmmigrate's protocol: a line longer than \(ProtocolDecoder.lineLimit) bytes (1 MiB)."])
            }
            let bytes: [UInt8]
            do {
                bytes = try channel.read(maximum: 65536)
            } catch where error.code == .timeout {
                silence += slice
                if silence >= deadline * 1000 { throw silent() }
                // libssh2 checks its own timeout only while the keepalive interval is longer.
                try? channel.session.keepalive(interval: slice / 1000 + 1)
                continue
            } catch {
                throw failure(error)
            }
            if bytes.isEmpty {
                guard start < buffer.count else { return nil }
                let line = String(decoding: buffer[start...], as: UTF8.self)
                buffer = []
                start = 0
                scanned = 0
                return line
            }
            silence = 0
            if start > 0 && start >= buffer.count / 2 {
                buffer.removeFirst(start)
                scanned -= start
                start = 0
            }
            buffer.append(contentsOf: bytes)
        }
    }

    func sendBytes(_ bytes: UnsafeRawBufferPointer) throws(MigrationError) {
        do { try channel.write(bytes) } catch { throw failure(error) }
    }

    func close() {
        if broken {
            // Nothing to wait for: the target is gone or hung. Every call that tears the channel
            // and session down gives up at once (0 would mean "wait for ever").
            channel.session.setTimeout(milliseconds: 1)
            if ownsSession { channel.session.disconnect() }
            return
        }
        try? channel.sendEOF()
        _ = try? channel.close()
        if ownsSession { channel.session.disconnect() }
    }

    /// What a failed read or write means: a silence past the deadline, or a lost link.
    private func failure(_ error: SSHError) -> MigrationError {
        if error.code == .timeout { return silent() }
        broken = true
        return MigrationError(
            .ssh, ["Target VM Host error - the connection to \(host) was lost: \(error.message)"], phase: nil, cause: error)
    }

    private func silent() -> MigrationError {
        broken = true
        let configuration = channel.session.configuration
        if Self.accepts(host: configuration.host, port: configuration.port, milliseconds: min(3000, deadline * 1000)) {
            return MigrationError(
                .ssh,
                ["Target VM Host error - \(host) stopped answering: nothing for \(deadline) s (its SSH server still accepts connections, so hpvmmigrate there is hung or waiting)."])
        }
        return MigrationError(
            .ssh,
            ["Target VM Host error - the link to \(host) was lost: nothing for \(deadline) s, and \(configuration.knownHostsName) no longer accepts connections."])
    }

    /// Whether a TCP connection to `host`:`port` opens within `milliseconds`.
    static func accepts(host: String, port: Int, milliseconds: Int) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return false }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            defer { Glibc.close(fd) }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return true }
            guard errno == EINPROGRESS else { continue }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, Int32(milliseconds)) == 1 else { continue }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0 { return true }
        }
        return false
    }
}

enum ShellWord {
    static func quote(_ value: String) -> String {
        var quoted = "'"
        for character in value {
            if character == "'" { quoted += "'\\''" } else { quoted.append(character) }
        }
        return quoted + "'"
    }
}
