public import ArgumentParser
import GuestTools
public import HPVMCLI
import Registry

/// `hpvmremove`: delete a guest and release its devices.
public struct HPVMRemove: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmremove"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Remove a virtual machine; its devices lose it as a dependent (and go, unless PRESERVE=YES).",
        usage: "hpvmremove {-P vm-name | -p vm-number} [-F] [-Q] [-V]",
        discussion: "Asks for confirmation on standard input unless -Q is given. See hpvmremove(8)."
    )

    public init() {}

    @Option(name: .customShort("P"), help: ArgumentHelp("The guest's name.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("The guest's VM number.", valueName: "vm-number"))
    var number: Int?

    @Flag(name: .customShort("F"), help: "Force: remove a Not Modify (for example migrated) guest too.")
    var force = false

    @Flag(name: .customShort("Q"), help: "Quiet: do not ask for confirmation.")
    var quiet = false

    @Flag(name: .customShort("V"), help: "Say what was removed.")
    var verbose = false

    public func validate() throws {
        if (name == nil) == (number == nil) { throw ValidationError("give the guest with either -P vm-name or -p vm-number.") }
    }

    public func run() throws {
        let environment = try CommandEnvironment.current(name: Self.commandName)
        let removed = try GuestCommand.withGuests(environment, for: .update) { guests -> String in
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            guard try guests.guest(named: guest) != nil else { throw RegistryError(.notFound, "no guest named \(guest).") }
            if !quiet {
                Output.write("hpvmremove: Remove virtual machine \(guest) and release its devices? [y/n]: ", to: 2)
                let answer = readLine(strippingNewline: true)?.lowercased() ?? ""
                guard answer == "y" || answer == "yes" else {
                    throw RegistryError(.conflict, "\(guest) was not removed (answer y to remove it, or use -Q).")
                }
            }
            try guests.remove(guest, force: force)
            return guest
        }
        if verbose { Output.write("removed guest \(removed)\n") }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "Pp", flags: "FQV")

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
