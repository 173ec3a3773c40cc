public import ArgumentParser
import GuestTools
public import HPVMCLI
import Registry
import Runtime

/// `hpvmstop`: stop a running guest — by its power button, waiting or not, or at once.
public struct HPVMStop: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmstop"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Stop a running virtual machine (guest).",
        usage: "hpvmstop {-P vm-name | -p vm-number} [-g | -F] [-Q] [-V]",
        discussion: """
            Without -g or -F, presses the guest's power button (ACPI) and returns; its OS shuts down. \
            Asks for confirmation on standard input unless -Q is given. See hpvmstop(8).
            """
    )

    @Option(name: .customShort("P"), help: ArgumentHelp("The guest to stop.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("The guest to stop, by VM number.", valueName: "vm-number"))
    var number: Int?

    @Flag(name: .customShort("g"), help: "Graceful: press the power button and wait until the guest has stopped (HPVM_STOP_TIMEOUT).")
    var wait = false

    @Flag(name: .customShort("F"), help: "Force: stop the guest at once, as a power cut would.")
    var force = false

    @Flag(name: .customShort("Q"), help: "Quiet: do not ask for confirmation.")
    var quiet = false

    @Flag(name: .customShort("V"), help: "Say what was done.")
    var verbose = false

    public init() {}

    public func validate() throws {
        if (name == nil) == (number == nil) { throw ValidationError("give the guest with either -P vm-name or -p vm-number.") }
        if wait && force { throw ValidationError("give either -g or -F, not both.") }
    }

    public func run() throws {
        let environment = try CommandEnvironment.current(name: "hpvmstop")
        let runtime = try GuestCommand.runtime(environment)
        let guest = try GuestCommand.withGuests(environment, for: .read) { guests -> String in
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            guard try guests.guest(named: guest) != nil else { throw RegistryError(.notFound, "no guest named \(guest).") }
            return guest
        }
        guard runtime.isRunning(guest) else { throw RuntimeError(.notRunning, "guest \(guest) is not running.") }
        if !quiet {
            Output.write("hpvmstop: Stop virtual machine \(guest)\(force ? " at once" : "")? [y/n]: ", to: 2)
            let answer = readLine(strippingNewline: true)?.lowercased() ?? ""
            guard answer == "y" || answer == "yes" else {
                throw RegistryError(.conflict, "\(guest) was not stopped (answer y to stop it, or use -Q).")
            }
        }
        let mode: GuestRuntime.StopMode = force ? .force : wait ? .powerButtonAndWait : .powerButton
        let stopped = try runtime.stop(guest, mode: mode)
        if verbose {
            Output.write(stopped ? "stopped guest \(guest)\n" : "pressed the power button of guest \(guest)\n")
        }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "Pp", flags: "gFQV")

    /// The command's entry: parse, stop, print; exits with the man page's status.
    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, log: .success, { words in
            var command = try parseAsRoot(try getopt.normalize(words))
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }
}
