import Audit
import ConsoleCommand
import Create
import DevMgmt
import HPVMCLI
import HostRDev
import LeaseCommand
import Migrate
import Modify
import Registry
import Remove
import SSHSetupCommand
import StartCommand
import Status
import StopCommand

/// `hpvm`: one executable for every hpvm command, as busybox and git are. Called by a link's name
/// (`hpvmdevmgmt -l all`, with `/usr/sbin/hpvmdevmgmt -> hpvm`), it runs that command; called as
/// `hpvm`, its first argument names the command (`hpvm devmgmt -l all`). See hpvm(8).
@main
enum HPVM {
    /// Every command `hpvm` serves, in the order `hpvm --help` and `hpvm --list` show them.
    /// A new command is one line here (and its library in this target's dependencies).
    static var commands: [any HPVMCommand.Type] { [
        HPVMDevMgmt.self,
        HPVMHostRDev.self,
        HPVMCreate.self,
        HPVMModify.self,
        HPVMRemove.self,
        HPVMStatus.self,
        HPVMStart.self,
        HPVMStop.self,
        HPVMConsole.self,
        HPVMMigrate.self,
        HPVMSSHSetup.self,
        HPVMLease.self,
        HPVMAudit.self,
    ] }

    static func main() {
        let arguments = CommandLine.arguments
        let called = arguments.first.map { String($0.split(separator: "/").last ?? Substring($0)) } ?? "hpvm"
        if let command = commands.first(where: { $0.commandName == called }) {
            command.run(arguments: CommandArguments(words: Array(arguments.dropFirst()), argvStart: 1))
        }
        guard arguments.count > 1 else {
            Output.write(usage, to: 2)
            Output.exit(ExitStatus.usage)
        }
        let first = arguments[1]
        if let command = commands.first(where: { $0.subcommandName == first || $0.commandName == first }) {
            command.run(arguments: CommandArguments(words: Array(arguments.dropFirst(2)), argvStart: 2))
        }
        switch first {
        case "-h", "--help", "help":
            if arguments.count > 2, let command = commands.first(where: { $0.subcommandName == arguments[2] }) {
                command.run(arguments: CommandArguments(words: ["--help"], argvStart: arguments.count))
            }
            Output.write(usage + "\n" + table)
            Output.exit(ExitStatus.success)
        case "--version":
            Output.write("hpvm \(HPVMVersion.current)\n")
            Output.exit(ExitStatus.success)
        case "--list":
            Output.write(commands.map { $0.commandName + "\n" }.joined())
            Output.exit(ExitStatus.success)
        default:
            Output.error("hpvm", "'\(Display.safe(first, limit: 80))' is not an hpvm command; `hpvm --help` lists them.")
            Output.exit(ExitStatus.usage)
        }
    }

    static let usage = """
        usage: hpvm <command> [arguments]      (or a command by its link name: hpvmdevmgmt -l all)
               hpvm help <command> | --help | --list | --version

        """

    /// One line per command: its sub-command name, link name and abstract.
    static var table: String {
        let width = commands.map { $0.subcommandName.count }.max() ?? 0
        return "commands:\n" + commands.map { command in
            let name = command.subcommandName
            return "  " + name + String(repeating: " ", count: width - name.count + 2) + command.abstract
                + " (" + command.commandName + ")\n"
        }.joined()
    }
}
