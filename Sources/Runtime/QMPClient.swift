#if canImport(Glibc)
internal import Glibc
internal import CRuntime
#endif

/// A client of one QMP monitor of a running guest: the greeting read, capabilities negotiated,
/// then commands executed one at a time, each with a deadline.
///
/// A QMP socket serves one client at a time and a second one waits without a word, so the client
/// first takes the socket's lock in the run folder (waiting for it until the deadline): commands
/// queue instead of hanging. Events that arrive between commands are kept in ``events``.
public final class QMPClient {
    /// Which of the guest's two monitors.
    public enum Monitor: Sendable {
        /// For commands: stop, and later the migration.
        case command
        /// For `hpvmstatus`, which then never waits behind a command.
        case status

        var file: RunFolder.File { self == .command ? .monitor : .statusMonitor }
    }

    /// An error QEMU answered with: its class and description.
    public struct CommandError: Error, Sendable, CustomStringConvertible {
        public let errorClass: String
        public let text: String
        public var description: String { "\(errorClass): \(text)" }
    }

    private let fd: Int32
    private var lock: RunFolder.Lock?
    private let guest: String
    private var pending: [UInt8] = []
    private var closed = false
    /// The events QEMU sent so far (`SHUTDOWN`, `STOP`, …), oldest first.
    public private(set) var events: [JSONValue] = []
    /// QEMU's version from the greeting (`7.2.22`).
    public private(set) var version = ""

    /// Connects to the guest's monitor and negotiates capabilities.
    ///
    /// - Parameter deadline: when to give up waiting for the lock, the socket or an answer.
    public init(folder: RunFolder, monitor: Monitor, deadline: ContinuousClock.Instant) throws(RuntimeError) {
        guest = folder.guest
        lock = try folder.lock(
            monitor.file.rawValue, until: deadline, purpose: monitor == .command ? "the QMP monitor" : "the status monitor")
        fd = try folder.connect(monitor.file)
        do throws(RuntimeError) {
            let greeting = try readMessage(until: deadline)
            guard let qemu = greeting["QMP"]?["version"]?["qemu"] else {
                throw RuntimeError(.monitor, "guest \(guest)'s monitor did not greet as QMP: \(Self.shown(greeting)).")
            }
            version = [qemu["major"]?.int, qemu["minor"]?.int, qemu["micro"]?.int].map { String($0 ?? 0) }
                .joined(separator: ".")
            _ = try execute("qmp_capabilities", until: deadline)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Closes the connection and releases the socket's lock.
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
        lock = nil
    }

    /// Executes a command and returns its `return` value.
    ///
    /// - Parameters:
    ///   - arguments: the command's `arguments` object members, if any.
    ///   - passing: a descriptor sent along with the command (`SCM_RIGHTS`), as `getfd` and
    ///     `add-fd` take one.
    /// - Throws: ``RuntimeError`` with code `monitor` (QEMU's error, or a connection that closed)
    ///   or `timeout`.
    @discardableResult
    public func execute(
        _ command: String, arguments: [(String, JSONValue)] = [], passing descriptor: Int32? = nil,
        until deadline: ContinuousClock.Instant
    ) throws(RuntimeError) -> JSONValue {
        var members: [(String, JSONValue)] = [("execute", .string(command))]
        if !arguments.isEmpty { members.append(("arguments", .object(arguments))) }
        let line = JSONValue.object(members).description + "\n"
        try send(Array(line.utf8), passing: descriptor, command: command)
        while true {
            let message = try readMessage(until: deadline)
            if message["event"] != nil {
                events.append(message)
                continue
            }
            if let error = message["error"] {
                throw RuntimeError(
                    .monitor, "guest \(guest)'s monitor refused \(command): \(error["desc"]?.string ?? Self.shown(error)).",
                    cause: CommandError(errorClass: error["class"]?.string ?? "", text: error["desc"]?.string ?? ""))
            }
            if let result = message["return"] { return result }
        }
    }

    // MARK: - The wire

    private func send(_ bytes: [UInt8], passing descriptor: Int32?, command: String) throws(RuntimeError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { buffer -> Int in
                if let descriptor, offset == 0 {
                    return hpvm_runtime_send_with_fd(fd, buffer.baseAddress!, buffer.count, descriptor)
                }
                let n = Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
                return n < 0 ? -Int(errno) : n
            }
            if sent == -Int(EINTR) { continue }
            guard sent > 0 else {
                throw RuntimeError(
                    .monitor, "cannot send \(command) to guest \(guest)'s monitor: \(SystemError(function: "send", number: Int32(-sent))).")
            }
            offset += sent
        }
    }

    /// Reads the next complete line and parses it.
    private func readMessage(until deadline: ContinuousClock.Instant) throws(RuntimeError) -> JSONValue {
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                guard let text = String(validating: line, as: UTF8.self) else {
                    throw RuntimeError(.monitor, "guest \(guest)'s monitor sent a line that is not UTF-8.")
                }
                if text.allSatisfy(\.isWhitespace) { continue }
                do {
                    return try JSONValue.parse(text)
                } catch {
                    throw RuntimeError(.monitor, "guest \(guest)'s monitor sent what is not JSON (\(error)).", cause: error)
                }
            }
            guard pending.count < 16 << 20 else {
                throw RuntimeError(.monitor, "guest \(guest)'s monitor sent a line longer than 16 MiB.")
            }
            let remaining = deadline - ContinuousClock.now
            let milliseconds = max(0, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(milliseconds, Int64(Int32.max))))
            if ready < 0 {
                if errno == EINTR { continue }
                throw RuntimeError(.monitor, "cannot wait for guest \(guest)'s monitor: \(SystemError(function: "poll", number: errno)).")
            }
            if ready == 0 {
                throw RuntimeError(.timeout, "guest \(guest)'s monitor did not answer in time.")
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw RuntimeError(.monitor, "cannot read guest \(guest)'s monitor: \(SystemError(function: "recv", number: errno)).")
            }
            if n == 0 {
                throw RuntimeError(.monitor, "guest \(guest)'s monitor closed the connection.")
            }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    static func shown(_ value: JSONValue) -> String {
        let text = value.description
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
