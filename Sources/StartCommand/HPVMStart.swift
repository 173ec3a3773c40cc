public import ArgumentParser
import Fleet
import GuestTools
public import HPVMCLI
import Lease
import Registry
import Runtime

/// `hpvmstart`: start a guest on QEMU, after the rules of DESIGN.md §4 said yes against the guests
/// that run now.
public struct HPVMStart: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmstart"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Start a virtual machine (guest) on QEMU.",
        usage: "hpvmstart {-P vm-name | -p vm-number} [-s] [-V]",
        discussion: """
            Refused for a guest that is Not Runnable, already running, or whose storage a running guest holds without \
            SHARE=YES on both, that the host keeps or uses, or that does not exist; or whose vswitch does not exist. \
            See hpvmstart(8).
            """
    )

    @Option(name: .customShort("P"), help: ArgumentHelp("The guest to start.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("The guest to start, by VM number.", valueName: "vm-number"))
    var number: Int?

    @Flag(name: .customShort("s"), help: "Check only: run every check of a start, start nothing.")
    var checkOnly = false

    @Flag(name: .customShort("V"), help: "Say what was started: the QEMU's pid and status.")
    var verbose = false

    public init() {}

    public func validate() throws {
        if (name == nil) == (number == nil) { throw ValidationError("give the guest with either -P vm-name or -p vm-number.") }
    }

    public func run() throws {
        try Self.start(name: name, number: number, checkOnly: checkOnly, verbose: verbose)
    }

    /// Starts (or, with `checkOnly`, checks) the guest named, or numbered, and prints what `-V` says.
    static func start(name: String?, number: Int?, checkOnly: Bool, verbose: Bool) throws {
        let environment = try CommandEnvironment.current(name: "hpvmstart")
        let runtime = try GuestCommand.runtime(environment)
        let text = try GuestCommand.withGuests(environment, for: .update) { guests -> String in
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            if checkOnly {
                try guests.start(guest, isRunning: runtime.isRunning) { _ in }
                return verbose ? "guest \(guest) can start.\n" : ""
            }
            let lease = try leaseHold(guest, guests: guests, environment: environment)
            let started = try runtime.start(guest, guests: guests, lease: lease)
            return verbose ? "started guest \(started.guest): QEMU pid \(started.pid), \(started.status).\n" : ""
        }
        Output.write(text)
    }

    /// The guest's fleet lease for its QEMU, or nil when fleet leases are off on this host. Says on
    /// stderr how long it will wait when a host that stopped renewing holds the lease.
    static func leaseHold(_ guest: String, guests: GuestRegistry, environment: CommandEnvironment) throws -> LeaseHold? {
        let fleet = Fleet(store: guests.store, root: environment.root, audit: environment.audit)
        let lease: Fleet.StartLease?
        do {
            lease = try fleet.startLease(guest: guest)
        } catch let error as LeaseError {
            throw RuntimeError(.leaseHeld, error.message, cause: error)
        }
        guard let lease else { return nil }
        if lease.waitSeconds > 0, let owner = lease.ownerHostID {
            Output.error(
                "hpvmstart",
                "guest \(guest)'s lease is held by host \(owner), which stopped renewing its host lease; waiting up to \(lease.waitSeconds) s for that lease to expire.")
        }
        return lease.hold()
    }

    /// HP-UX getopt(3C) forms (`-Pg1`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "Pp", flags: "sV")

    /// The command lines `main` reads without ArgumentParser (`hpvmstart -P name`): a start's cost
    /// is measured against QEMU's own (bench/RESULTS.md (j)).
    static let quick = QuickArguments(valued: ["-P": false], flags: ["-s", "-V"])

    /// The command's entry: parse, start, print; exits with the man page's status.
    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, log: .success, { words in
            let arguments = try getopt.normalize(words)
            if let quick = quick.read(arguments), let name = quick["-P"]?.first {
                try start(name: name, number: nil, checkOnly: quick["-s"] != nil, verbose: quick["-V"] != nil)
                return
            }
            var command = try parseAsRoot(arguments)
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }
}
