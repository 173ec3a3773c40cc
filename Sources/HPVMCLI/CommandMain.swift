public import Registry

/// An error that knows the lines to print (each after the command's name) and its exit status.
public protocol MessageLines: Error {
    var lines: [String] { get }
    var exitStatus: Int32 { get }
}

extension RegistryError: MessageLines {
    public var lines: [String] { message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    public var exitStatus: Int32 { ExitStatus.status(for: self) }
}

/// The one way every hpvm command runs: raw arguments checked, then the command, then every
/// error printed as `name: message` lines with the exit status of the man pages.
public enum CommandMain {
    /// - Parameters:
    ///   - arguments: the words after the command's name (``CommandArguments/current`` while `body` runs).
    ///   - usageError: for an error of the argument parser, its message and status (0 for help).
    ///   - log: which outcomes go to the host's command log (``CommandLog``).
    ///   - body: the command, given `arguments.words`.
    public static func run(
        _ name: String, _ arguments: CommandArguments, invalidUTF8Status: Int32 = ExitStatus.usage,
        log: CommandLog.Policy = .never, _ body: ([String]) throws -> Void, usageError: (any Error) -> (String, Int32)
    ) -> Never {
        CommandArguments.$current.withValue(arguments) {
            run(name, arguments, invalidUTF8Status, log, body, usageError)
        }
    }

    private static func run(
        _ name: String, _ arguments: CommandArguments, _ invalidUTF8Status: Int32, _ log: CommandLog.Policy,
        _ body: ([String]) throws -> Void, _ usageError: (any Error) -> (String, Int32)
    ) -> Never {
        if let (index, shown) = Arguments.firstInvalidUTF8(from: arguments.argvStart) {
            Output.error(name, "argument \(index) is not valid UTF-8: '\(shown)'.")
            Output.exit(invalidUTF8Status)
        }
        let commandLine = [name] + arguments.words
        do {
            try body(arguments.words)
            CommandLog.record(commandLine, policy: log, status: ExitStatus.success, error: nil, message: nil)
            Output.exit(ExitStatus.success)
        } catch let error as any MessageLines {
            for line in error.lines { Output.error(name, line) }
            CommandLog.record(
                commandLine, policy: log, status: error.exitStatus, error: error, message: error.lines.joined(separator: " "))
            Output.exit(error.exitStatus)
        } catch {
            let (raw, status) = usageError(error)
            let message = Arguments.escapedEchoes(in: raw, arguments: arguments.words)
            if status == 0 {
                Output.write(message + "\n")
            } else if !message.isEmpty {
                Output.error(name, message)
            }
            Output.exit(status)
        }
    }
}
