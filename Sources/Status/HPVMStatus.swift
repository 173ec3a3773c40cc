import ArgumentParser
import GuestTools
import HPVMCLI
import Registry

/// `hpvmstatus`: show guests.
@main
struct HPVMStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hpvmstatus",
        abstract: "Show virtual machines: all as a table, one in detail, its resources, or machine-readable.",
        usage: "hpvmstatus [{-P vm-name | -p vm-number} [-d]] [-V] [-M | --json]",
        discussion: "States are Off and Off (NR) (Not Runnable): guests are defined, not run, in this release. See hpvmstatus(8)."
    )

    @Option(name: .customShort("P"), help: ArgumentHelp("Show this guest.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("Show the guest with this VM number.", valueName: "vm-number"))
    var number: Int?

    @Flag(name: .customShort("d"), help: "With -P or -p: print the guest's resources as statements, one per line.")
    var statements = false

    @Flag(name: .customShort("V"), help: "Verbose: include runnable, modify and visible status.")
    var verbose = false

    @Flag(name: .customShort("M"), help: "Machine format: one colon-separated line per guest.")
    var machine = false

    @Flag(name: .long, help: "Print the guests as a JSON array (beyond HPVM).")
    var json = false

    func validate() throws {
        if name != nil && number != nil { throw ValidationError("give either -P or -p, not both.") }
        if statements && name == nil && number == nil { throw ValidationError("-d goes with -P vm-name or -p vm-number.") }
        if machine && json { throw ValidationError("give either -M or --json, not both.") }
    }

    func run() throws {
        let environment = try CommandEnvironment.current(name: "hpvmstatus")
        let statuses = try GuestCommand.withGuests(environment, readOnly: true) { guests -> [GuestStatus] in
            if name == nil && number == nil { return try guests.status() }
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            let found = try guests.status(guest)
            guard !found.isEmpty else { throw RegistryError(.notFound, "no guest named \(guest).") }
            return found
        }
        let text: String
        if statements {
            text = statuses[0].resources.map { $0.description + "\n" }.joined()
        } else if machine {
            text = StatusFormat.machine(statuses)
        } else if json {
            text = StatusFormat.json(statuses)
        } else if name != nil || number != nil {
            text = StatusFormat.details(statuses[0], verbose: verbose)
        } else {
            text = StatusFormat.table(statuses)
        }
        Output.write(text)
    }

    static func main() {
        GuestCommand.main("hpvmstatus", {
            var command = try parseAsRoot()
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }
}
