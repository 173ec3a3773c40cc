/// One command the multi-call `hpvm` executable serves, by link name (`hpvmdevmgmt -l all`) and
/// as a sub-command (`hpvm devmgmt -l all`).
///
/// Each command's library exposes one type conforming to this; `Sources/HPVM/HPVM.swift` lists
/// them in its table, which is the only place a new command is added.
public protocol HPVMCommand {
    /// The name the command is installed as, a link to `hpvm` (`hpvmdevmgmt`).
    static var commandName: String { get }
    /// One line for `hpvm --help`.
    static var abstract: String { get }
    /// Runs the command on `arguments` and exits with its status (the man page's EXIT STATUS).
    static func run(arguments: CommandArguments) -> Never
}

extension HPVMCommand {
    /// The sub-command name: the link name without its `hpvm` prefix (`devmgmt`).
    public static var subcommandName: String {
        commandName.hasPrefix("hpvm") && commandName != "hpvm" ? String(commandName.dropFirst(4)) : commandName
    }
}

/// The command line one command runs with, whichever way the process was called: the words
/// after the command's name (`-l all` for both `hpvmdevmgmt -l all` and `hpvm devmgmt -l all`).
public struct CommandArguments: Sendable, Equatable {
    /// The words after the command's name.
    public let words: [String]
    /// Where `words` start in the process's raw `argv`: 1 by link name, 2 as `hpvm <command>`.
    public let argvStart: Int

    public init(words: [String], argvStart: Int) {
        self.words = words
        self.argvStart = argvStart
    }

    /// This process's arguments after its name (a command called by its own name).
    public static var process: CommandArguments {
        CommandArguments(words: Array(CommandLine.arguments.dropFirst()), argvStart: 1)
    }

    /// The command line of the command running in this task: set by ``CommandMain``, read where
    /// the command line is recorded (``CommandEnvironment/current(name:)``, the audit log).
    @TaskLocal public static var current: CommandArguments = .process
}
