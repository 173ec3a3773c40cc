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
        let one = name != nil || number != nil
        let text = try GuestCommand.withGuests(environment, for: .read) { guests -> String in
            if !one && !json {
                let summaries = try guests.summaries()
                return machine ? StatusFormat.machine(summaries) : StatusFormat.table(summaries)
            }
            if !one { return StatusFormat.json(try guests.status()) }
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            guard let status = try guests.status(guest).first else { throw RegistryError(.notFound, "no guest named \(guest).") }
            if statements { return status.resources.map { $0.description + "\n" }.joined() }
            if machine {
                let summary = GuestSummary(
                    guest: status.guest, devices: status.resources.filter { $0.deviceType != .network }.count,
                    networks: status.resources.filter { $0.deviceType == .network }.count)
                return StatusFormat.machine([summary])
            }
            if json { return StatusFormat.json([status]) }
            return StatusFormat.details(status, verbose: verbose)
        }
        Output.write(text)
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: ["P", "p"], repeatable: [], flags: ["d", "V", "M"])

    static func main() {
        CommandMain.run("hpvmstatus", {
            var command = try parseAsRoot(try getopt.commandLine())
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }
}
