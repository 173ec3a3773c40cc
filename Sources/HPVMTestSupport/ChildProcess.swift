#if canImport(Glibc)
internal import Glibc
#endif

/// Programs started with posix_spawn and stopped by their own pid, for tests and the demo.
///
/// Not Foundation's `Process`: its child monitor blocks on a long-lived child such as `sshd`.
public enum ChildProcess {
    /// What a finished program printed and returned.
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Starts a program with standard input and output on /dev/null; returns its pid.
    public static func start(_ path: String, _ arguments: [String]) throws -> Int32 {
        try spawn(path, arguments, environment: nil, output: nil)
    }

    /// Starts a program with the given environment, standard input and output on /dev/null; returns its pid.
    public static func start(_ path: String, _ arguments: [String], environment: [String: String]) throws -> Int32 {
        try spawn(path, arguments, environment: environment, output: nil)
    }

    /// Starts a program with its standard input on `input` (a descriptor the caller owns; /dev/null when
    /// nil) and its standard output and error appended to the files at `stdout` and `stderr`
    /// (/dev/null when nil); returns its pid.
    public static func start(
        _ path: String, _ arguments: [String], environment: [String: String]?, input: Int32?, stdout: String?, stderr: String?
    ) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        return try launch(path, arguments, environment: environment, actions: &actions)
    }

    /// Runs a program to its end, capturing standard output and error through files.
    public static func run(_ path: String, _ arguments: [String], environment: [String: String]) throws -> Result {
        var template = Array("/tmp/hpvm-capture.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BuilderError("mkdtemp failed: \(errno)") }
        let folder = String(cString: made)
        defer {
            unlink(folder + "/out")
            unlink(folder + "/err")
            rmdir(folder)
        }
        let pid = try spawn(path, arguments, environment: environment, output: folder)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: read(folder + "/out"), stderr: read(folder + "/err"))
    }

    private static func spawn(_ path: String, _ arguments: [String], environment: [String: String]?, output: String?) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, output + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        return try launch(path, arguments, environment: environment, actions: &actions)
    }

    private static func launch(
        _ path: String, _ arguments: [String], environment: [String: String]?, actions: inout posix_spawn_file_actions_t
    ) throws -> Int32 {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            argv.forEach { free($0) }
            envp?.forEach { free($0) }
        }
        var pid: Int32 = 0
        let rc = envp.map { posix_spawn(&pid, path, &actions, nil, argv, $0) } ?? posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw BuilderError("cannot start \(path): \(rc)") }
        return pid
    }

    private static func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 65536) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
