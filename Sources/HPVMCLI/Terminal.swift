public import Registry
public import Host
#if canImport(Glibc)
internal import Glibc
#endif

/// What every hpvm executable needs around its one library call: the host root from the
/// environment, checked arguments, and output written straight to file descriptors.
public struct CommandEnvironment: Sendable {
    public let name: String
    public let root: HostRoot
    public let audit: AuditContext

    /// Reads `HPVM_ROOT` (default `/`), the process's user and the command's arguments
    /// (``CommandArguments/current``), recorded as `name` followed by them.
    public static func current(name: String) throws(RegistryError) -> CommandEnvironment {
        let raw = getenv("HPVM_ROOT").map { String(cString: $0) } ?? "/"
        let rootPath = raw.isEmpty ? "/" : raw
        guard rootPath.hasPrefix("/") else {
            throw RegistryError(.badSpec, "HPVM_ROOT='\(Display.safe(rootPath))' must be an absolute path.")
        }
        let arguments = [name] + CommandArguments.current.words
        return CommandEnvironment(name: name, root: HostRoot(rootPath), audit: .current(arguments: arguments))
    }

    public init(name: String, root: HostRoot, audit: AuditContext) {
        self.name = name
        self.root = root
        self.audit = audit
    }

    /// The registry's path for this root.
    public var registryPath: String { RegistryStore.defaultPath(root: root) }
}

/// Raw argument checks made before any parsing.
public enum Arguments {
    /// The parser's message with every argument it echoes shown escaped (``Display/safe(_:limit:)``),
    /// and any other control character but the line breaks of its own layout escaped too: a
    /// hostile argument can neither drive the terminal nor forge a line of output.
    public static func escapedEchoes(in message: String, arguments: [String]) -> String {
        var text = message
        for argument in arguments where argument.unicodeScalars.contains(where: isControl) {
            text = text.replacing(argument, with: Display.safe(argument, limit: 200))
        }
        guard text.unicodeScalars.contains(where: { isControl($0) && $0 != "\n" }) else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { Display.safe(String($0), limit: 4096) }
            .joined(separator: "\n")
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
    }

    /// The first argument from `argv[start]` on that is not valid UTF-8, as `(index, escaped
    /// bytes)`, the index counted from the command's name (1 for its first argument).
    ///
    /// Swift repairs invalid UTF-8 in `CommandLine.arguments`, so the raw `argv` is read.
    public static func firstInvalidUTF8(from start: Int = 1) -> (Int, String)? {
        guard start < Int(CommandLine.argc) else { return nil }
        for index in start..<Int(CommandLine.argc) {
            guard let pointer = CommandLine.unsafeArgv[index] else { continue }
            let length = strlen(pointer)
            let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
            if String(validating: Array(bytes), as: UTF8.self) == nil {
                let shown = bytes.prefix(60).map { byte -> String in
                    byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
                }.joined()
                return (index - start + 1, shown)
            }
        }
        return nil
    }
}

/// Unbuffered, complete writes to standard output and standard error.
public enum Output {
    /// Writes all of `text` to file descriptor `fd`, retrying short writes.
    public static func write(_ text: String, to fd: Int32 = 1) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }

    /// Writes `message` to standard error, prefixed with the command name, one line each.
    ///
    /// Control characters left in a line are escaped, whoever wrote the message.
    public static func error(_ command: String, _ message: String) {
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false)
        write(lines.map { "\(command): \(Display.escaped(String($0)))\n" }.joined(), to: 2)
    }

    /// Exits the process with `status`.
    public static func exit(_ status: Int32) -> Never {
        Glibc.exit(status)
    }
}

/// Exit statuses shared by the hpvm commands (the man pages' EXIT STATUS).
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A refused or failed operation.
    public static let failure: Int32 = 1
    /// A malformed command line (sysexits' EX_USAGE, ArgumentParser's default).
    public static let usage: Int32 = 64

    /// The status for a registry error: usage for malformed input, failure otherwise.
    public static func status(for error: RegistryError) -> Int32 {
        error.code.isUsage ? usage : failure
    }
}
