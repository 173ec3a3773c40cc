public import Registry

#if canImport(Glibc)
import Glibc
#endif

/// HP's host command log, `/var/opt/hpvm/common/command.log`: one line per command, which
/// `hpvmmigrate`'s "See HPVM command log file on target VM Host" points at and which
/// administrators tail. Beside the registry's audit log (which records each change a command
/// makes, in the same transaction), it records each command: when, who, the command line and
/// its outcome:
///
///     2026-11-28T09:30:00.123Z root[4242]: hpvmcreate -P g1 -c 2: ok
///     2026-11-28T09:31:10.456Z root[4250]: hpvmmigrate -P g1 -h host2: exit 1: Device WWID does not match.
///
/// Only commands that change something write it, and only when they did: a refused command
/// changes nothing (DESIGN.md §1), the log included, except `hpvmmigrate`, whose failures are
/// recorded as its journal is. The line is appended only where the registry's folder exists (a
/// command never creates it for the log), in one `write(2)`; a log that cannot be written is
/// skipped without failing the command.
public enum CommandLog {
    /// Which outcomes of a command are written.
    public enum Policy: Sendable {
        /// Nothing (readers: `hpvmstatus`, `hpvmdevmgmt -l`, `-r`, `-v`).
        case never
        /// Success only.
        case success
        /// Success, and failures of the operation itself (not of the command line or the
        /// registry): `hpvmmigrate`.
        case successAndOperationFailures
    }

    /// The log's path under the host root.
    public static let path = "/var/opt/hpvm/common/command.log"

    /// The line for one command (without its newline): control characters escaped, arguments
    /// quoted for a shell.
    public static func line(at time: String, user: String, pid: Int32, arguments: [String], status: Int32, message: String?)
        -> String
    {
        let command = arguments.map { Display.safe(ShellQuote.quote($0), limit: 400) }.joined(separator: " ")
        var text = "\(time) \(Display.safe(user))[\(pid)]: \(command): "
        text += status == 0 ? "ok" : "exit \(status)"
        if let message, status != 0 { text += ": " + Display.safe(message, limit: 400) }
        return text
    }

    /// Appends the line for `commandLine` (the command's name, then its words) under `HPVM_ROOT`,
    /// as the policy says.
    static func record(_ commandLine: [String], policy: Policy, status: Int32, error: (any Error)?, message: String?) {
        switch policy {
        case .never: return
        case .success: guard status == 0 else { return }
        case .successAndOperationFailures:
            guard status == 0 || (status == ExitStatus.failure && error != nil && !(error is RegistryError)) else { return }
        }
        let raw = getenv("HPVM_ROOT").map { String(cString: $0) } ?? "/"
        let root = raw.isEmpty ? "/" : raw
        guard root.hasPrefix("/") else { return }
        let file = (root == "/" ? "" : root) + path
        let folder = String(file[..<file.lastIndex(of: "/")!])
        var info = stat()
        guard stat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return }
        let context = AuditContext.current(arguments: [])
        let text = line(
            at: AuditContext.utcNow(), user: context.user, pid: getpid(), arguments: commandLine, status: status,
            message: message) + "\n"
        let fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var bytes = text
        bytes.withUTF8 { buffer in _ = Glibc.write(fd, buffer.baseAddress!, buffer.count) }
    }
}
