public import ArgumentParser
import GuestTools
public import HPVMCLI
import Registry
import Runtime

#if canImport(Glibc)
import Glibc
#endif

/// `hpvmconsole`: attach the terminal to a running guest's serial console; `~.` leaves.
public struct HPVMConsole: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmconsole"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Attach to a running virtual machine's serial console.",
        usage: "hpvmconsole {-P vm-name | -p vm-number} [-q]",
        discussion: "Type ~. at the start of a line to leave (~~ sends one ~). One console session per guest at a time. See hpvmconsole(8)."
    )

    @Option(name: .customShort("P"), help: ArgumentHelp("The guest whose console to attach.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("The guest, by VM number.", valueName: "vm-number"))
    var number: Int?

    @Flag(name: .customShort("q"), help: "Quiet: print no line on attaching and leaving.")
    var quiet = false

    public init() {}

    public func validate() throws {
        if (name == nil) == (number == nil) { throw ValidationError("give the guest with either -P vm-name or -p vm-number.") }
    }

    public func run() throws {
        let environment = try CommandEnvironment.current(name: "hpvmconsole")
        let runtime = try GuestCommand.runtime(environment)
        let guest = try GuestCommand.withGuests(environment, for: .read) { guests -> String in
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            guard try guests.guest(named: guest) != nil else { throw RegistryError(.notFound, "no guest named \(guest).") }
            return guest
        }
        let folder = try runtime.folder(guest)
        let terminal = RawTerminal(fd: 0)
        let ending = try terminal.whileRaw { () throws(RuntimeError) in
            try SerialConsole.attach(folder, input: 0, output: 1) {
                if !quiet { Output.write("hpvmconsole: attached to guest \(guest); type ~. to leave.\r\n", to: 2) }
            }
        }
        guard !quiet else { return }
        switch ending {
        case .escape, .endOfInput: Output.write("\r\nhpvmconsole: left guest \(guest)'s console.\n", to: 2)
        case .guestClosed: Output.write("\r\nhpvmconsole: guest \(guest) stopped; its console closed.\n", to: 2)
        }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "Pp", flags: "q")

    /// The command's entry: parse, attach; exits with the man page's status.
    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, { words in
            var command = try parseAsRoot(try getopt.normalize(words))
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }
}

/// The terminal on a descriptor, switched to raw mode (no echo, no line editing, no signals from
/// keys) for the length of a session when it is a terminal, and restored afterwards.
struct RawTerminal {
    let fd: Int32

    func whileRaw<T>(_ body: () throws(RuntimeError) -> T) throws(RuntimeError) -> T {
        var saved = termios()
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return try body() }
        var raw = saved
        cfmakeraw(&raw)
        tcsetattr(fd, TCSANOW, &raw)
        defer { tcsetattr(fd, TCSANOW, &saved) }
        return try body()
    }
}
