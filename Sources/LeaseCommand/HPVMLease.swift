public import ArgumentParser
import Fleet
import Foundation
public import HPVMCLI
import Host
import Lease
import Registry

/// `hpvmlease`: set up and show this host's place in the fleet's sanlock lockspace (issue 11).
public struct HPVMLease: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmlease"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Set up and show the fleet's sanlock leases: one owner per guest across the hosts.",
        usage: "hpvmlease -i path -H host-id [-T io-timeout] [-V] | -l [--json] | -h",
        discussion: """
            -i initialises the lease storage (a LUN or file every host of the fleet sees) when it holds no lockspace, \
            joins it as this host's id, records both, and makes the storage an rdev entry so no guest can be given it. \
            -l lists the hosts the sanlock daemon sees and every guest's lease. See hpvmlease(8).
            """,
        helpNames: [.long]
    )

    @Option(name: .customShort("i"), help: ArgumentHelp("The lease LUN or file to initialise and join.", valueName: "path"))
    var path: String?

    @Option(name: .customShort("H"), help: ArgumentHelp("This host's id in the fleet, 1-2000, unique per host.", valueName: "host-id"))
    var hostID: Int?

    @Option(name: .customShort("T"), help: ArgumentHelp("Seconds sanlock allows one lease I/O (1-60; default 10).", valueName: "io-timeout"))
    var ioTimeout: Int?

    @Flag(name: .customShort("l"), help: "List the fleet's hosts and the guests' leases.")
    var list = false

    @Flag(name: .long, help: "With -l, print JSON.")
    var json = false

    @Flag(name: .customShort("h"), help: "Print a short usage summary.")
    var usage = false

    @Flag(name: .customShort("V"), help: "Say what -i did and how long joining took.")
    var verbose = false

    public init() {}

    static let summary = "usage: hpvmlease -i path -H host-id [-T io-timeout] [-V] | -l [--json] | -h\n"

    public func validate() throws {
        if usage { return }
        if list && path != nil { throw ValidationError("give -i or -l, not both.") }
        if json && !list { throw ValidationError("--json goes with -l.") }
        if !list && path == nil { throw ValidationError("give -i path -H host-id to join, or -l to list.") }
        if list && (hostID != nil || ioTimeout != nil) { throw ValidationError("-H and -T go with -i, not -l.") }
        if let path {
            try Self.check(path: path)
            guard let hostID else { throw ValidationError("-i needs -H host-id (1-2000, unique per host of the fleet).") }
            guard Lockspace.hostIDs.contains(UInt64(clamping: max(hostID, 0))), hostID > 0 else {
                throw ValidationError("-H \(hostID): a host id is 1-2000.")
            }
        }
        if let ioTimeout, !(1...60).contains(ioTimeout) { throw ValidationError("-T \(ioTimeout): io_timeout is 1-60 seconds.") }
    }

    /// The lease path as sanlock takes it: absolute, printable, shorter than 1024 bytes.
    static func check(path: String) throws {
        let shown = Display.safe(String(path.prefix(60)))
        guard path.hasPrefix("/") else { throw ValidationError("-i '\(shown)': the lease path must be absolute.") }
        guard path.utf8.count < 1024 else {
            throw ValidationError("-i '\(shown)…': the lease path is \(path.utf8.count) bytes; sanlock takes fewer than 1024.")
        }
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValidationError("-i '\(shown)': the lease path holds a control character.")
        }
        guard !path.split(separator: "/").contains("..") else {
            throw ValidationError("-i '\(shown)': the lease path must not contain '..'.")
        }
    }

    public func run() throws {
        if usage {
            Output.write(Self.summary)
            return
        }
        let environment = try CommandEnvironment.current(name: "hpvmlease")
        let store = try RegistryStore.open(at: environment.registryPath)
        defer { try? store.close() }
        let fleet = Fleet(store: store, root: environment.root, audit: environment.audit)
        do {
            if list {
                Output.write(try Self.listing(fleet, json: json))
                return
            }
            guard let path, let hostID else { return }
            let report = try fleet.join(path: path, hostID: hostID, ioTimeout: ioTimeout ?? 10)
            if verbose {
                let seconds = Double(report.joinDuration.components.attoseconds) / 1e18 + Double(report.joinDuration.components.seconds)
                Output.write(
                    (report.formatted ? "initialised the lockspace on \(path).\n" : "")
                        + "joined the lockspace on \(path) as host \(hostID) (io_timeout \(report.settings.ioTimeout) s) in \(String(format: "%.1f", seconds)) s.\n")
            }
        } catch let error as LeaseError {
            throw LeaseFailure(error: error)
        }
    }

    static func listing(_ fleet: Fleet, json: Bool) throws -> String {
        guard let listing = try fleet.list() else {
            if json { return "{\"leases\":\"off\"}\n" }
            return "Fleet leases are off on this host (set them up with hpvmlease -i path -H host-id).\n"
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(listing), as: UTF8.self) + "\n"
        }
        var text = "Lease storage: \(listing.path)\nThis host: \(listing.hostID) (io_timeout \(listing.ioTimeout) s)\(listing.joined ? "" : ", not joined: run hpvmlease -i again")\n"
        text += "\n\("Host".padding(toLength: 6, withPad: " ", startingAt: 0)) \("State".padding(toLength: 7, withPad: " ", startingAt: 0)) Generation\n"
        for host in listing.hosts {
            text += "\(String(host.hostID).padding(toLength: 6, withPad: " ", startingAt: 0)) \(host.state.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(host.generation)\n"
        }
        text += "\nGuest                Slot  Owner  Lease\n"
        for guest in listing.guests {
            let name = Display.safe(guest.guest).padding(toLength: 20, withPad: " ", startingAt: 0)
            let slot = (guest.slot.map(String.init) ?? "-").padding(toLength: 5, withPad: " ", startingAt: 0)
            let owner = (guest.ownerHostID.map(String.init) ?? "-").padding(toLength: 6, withPad: " ", startingAt: 0)
            text += "\(name) \(slot) \(owner) \(guest.resource)\n"
        }
        return text
    }

    /// HP-UX getopt(3C) forms (`-Hl`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "iHT", flags: "lhV")

    /// The command's entry: parse, act, print; exits 0, 1 (refused or failed) or 64 (usage).
    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, log: .success, { words in
            var command = try parseAsRoot(try getopt.normalize(words))
            try command.run()
        }, usageError: { error in
            let code = exitCode(for: error)
            if code == .success { return (fullMessage(for: error), 0) }
            if error is ExitCode { return ("", code.rawValue) }
            return (message(for: error) + "\n" + String(summary.dropLast()), code.rawValue)
        })
    }
}

/// A lease error as the commands print it: its message, exit 1 (64 for bad input).
struct LeaseFailure: MessageLines {
    let error: LeaseError
    var lines: [String] { [error.message] }
    var exitStatus: Int32 { error.code == .badInput ? ExitStatus.usage : ExitStatus.failure }
}
