public import ArgumentParser
import GuestTools
public import HPVMCLI
import Registry
import Runtime

#if canImport(Glibc)
import Glibc
#endif

/// `hpvmstatus`: show guests.
public struct HPVMStatus: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmstatus"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Show virtual machines: all as a table, one in detail, its resources, or machine-readable.",
        usage: """
            hpvmstatus [{-P vm-name | -p vm-number} [-d | -D]] [-V] [-M | -X | --json]
              hpvmstatus [-P vm-name | -p vm-number] {-e | -r | -C}
              hpvmstatus {-s | -m}
            """,
        discussion: "States: On, Paused (from the guest's live QEMU), Off and Off (NR) (Not Runnable). See hpvmstatus(8)."
    )

    public init() {}

    @Option(name: .customShort("P"), help: ArgumentHelp("Show this guest.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("Show the guest with this VM number.", valueName: "vm-number"))
    var number: Int?

    @Flag(name: .customShort("d"), help: "With -P or -p: print the guest's resources as statements, one per line.")
    var statements = false

    @Flag(name: .customShort("D"), help: "The configuration the guest will have at its next start (here: the same as now).")
    var nextBoot = false

    @Flag(name: .customShort("V"), help: "Verbose: include runnable, modify and visible status.")
    var verbose = false

    @Flag(name: .customShort("M"), help: "Machine format: one colon-separated line per guest.")
    var machine = false

    @Flag(name: .customShort("X"), help: "XML format (hpvm/pman/virtual_machine), as inventory agents read it.")
    var xml = false

    @Flag(name: .customShort("e"), help: "The event log: what commands did, from the audit log (for one guest with -P).")
    var events = false

    @Flag(name: .customShort("r"), help: "Each guest's vCPUs and CPU entitlement.")
    var entitlements = false

    @Flag(name: .customShort("C"), help: "Each guest's memory and its type.")
    var memoryTypes = false

    @Flag(name: .customShort("s"), help: "The VM host's processors and memory, and what the guests are given.")
    var server = false

    @Flag(name: .customShort("m"), help: "The multi-server (cluster) environment.")
    var multiServer = false

    @Flag(name: .long, help: "Print the guests as a JSON array (beyond HPVM).")
    var json = false

    public func validate() throws {
        if name != nil && number != nil { throw ValidationError("give either -P or -p, not both.") }
        let one = name != nil || number != nil
        if statements && !one { throw ValidationError("-d goes with -P vm-name or -p vm-number.") }
        let formats = [machine ? "-M" : nil, xml ? "-X" : nil, json ? "--json" : nil].compactMap { $0 }
        if formats.count > 1 { throw ValidationError("give one of -M, -X and --json, not \(formats.joined(separator: " and ")).") }
        let views = [
            statements ? "-d" : nil, events ? "-e" : nil, entitlements ? "-r" : nil, memoryTypes ? "-C" : nil,
            server ? "-s" : nil, multiServer ? "-m" : nil,
        ].compactMap { $0 }
        if views.count > 1 { throw ValidationError("give one of -d, -e, -r, -C, -s and -m, not \(views.joined(separator: " and ")).") }
        if let view = views.first, view != "-d", !formats.isEmpty {
            throw ValidationError("\(view) has no \(formats[0]) form here; leave \(formats[0]) out.")
        }
        if (server || multiServer) && one { throw ValidationError("\(server ? "-s" : "-m") describes the VM host; leave -P/-p out.") }
    }

    public func run() throws {
        let environment = try CommandEnvironment.current(name: Self.commandName)
        let one = name != nil || number != nil
        let text = try GuestCommand.withGuests(environment, for: .read) { guests -> String in
            if multiServer { return StatusFormat.multiServer }
            var summaries = try guests.summaries()
            var guest: String?
            if one {
                let found = try GuestCommand.guestName(guests, name: name, number: number)
                summaries = summaries.filter { $0.guest.name == found }
                guard !summaries.isEmpty else { throw RegistryError(.notFound, "no guest named \(found).") }
                guest = found
            }
            if server {
                return StatusFormat.server(summaries, cpus: Host.processors, memoryMB: Host.memoryMB)
            }
            if entitlements { return StatusFormat.entitlements(summaries) }
            if memoryTypes { return StatusFormat.memoryTypes(summaries) }
            if events { return StatusFormat.events(try guests.store.auditLog(), guest: guest) }
            if statements, let guest {
                guard let status = try guests.status(guest).first else { throw RegistryError(.notFound, "no guest named \(guest).") }
                return status.resources.map { $0.description + "\n" }.joined()
            }
            // Each guest's state from its live QEMU, never from a flag a killed process leaves behind.
            let live = GuestCommand.liveStates(environment, guests: summaries.map(\.guest.name))
            if machine { return StatusFormat.machine(summaries, live: live) }
            if xml { return StatusFormat.xml(summaries, live: live) }
            let fleet = verbose && !json ? FleetLeases(store: guests.store, root: environment.root, audit: environment.audit).statusLine() : ""
            guard let guest else {
                return json ? StatusFormat.json(try guests.status(), live: live) : StatusFormat.table(summaries, live: live) + fleet
            }
            guard let status = try guests.status(guest).first else { throw RegistryError(.notFound, "no guest named \(guest).") }
            if json { return StatusFormat.json([status], live: live) }
            return StatusFormat.details(
                status, verbose: verbose, settings: verbose ? try guests.settings(of: guest) : [:], live: live[guest]) + fleet
        }
        Output.write(text)
    }

    /// The VM host's processors and memory, as the kernel counts them.
    enum Host {
        static var processors: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
        static var memoryMB: Int { max(0, sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)) / (1024 * 1024)) }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "Pp", flags: "dDVMXerCsm")

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
