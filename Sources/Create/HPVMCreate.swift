public import ArgumentParser
import GuestTools
public import HPVMCLI
import Registry

/// `hpvmcreate`: define a guest and its resources in the registry.
public struct HPVMCreate: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmcreate"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Create a virtual machine (guest) with its resources.",
        usage: """
            hpvmcreate -P vm-name [-a rsrc]... [-c number-vcpus] [-r amount] [-l vm-label] [-O os-type]
                       [-e percent[:max_percent] | -E cycles[:max_cycles]] [-B auto|manual] [-V]
            """,
        discussion: "Resources: disk|dvd:scsi|avio_stor:[bus,device,target]:disk|lv|file|null:path and network:lan|avio_lan:[bus,device,mac]:vswitch:name. See hpvmcreate(8)."
    )

    @Option(name: .customShort("P"), help: ArgumentHelp("The new guest's name.", valueName: "vm-name"))
    var name: String

    @Option(name: .customShort("a"), help: ArgumentHelp("Add a resource (repeatable).", valueName: "rsrc"))
    var add: [String] = []

    @Option(name: .customShort("c"), help: ArgumentHelp("Number of virtual CPUs (1-128, default 1).", valueName: "number-vcpus"))
    var vcpus: String?

    @Option(name: .customShort("r"), help: ArgumentHelp("Memory, as a number followed by M or G (default 2G).", valueName: "amount"))
    var memory: String?

    @Option(name: .customShort("l"), help: ArgumentHelp("A descriptive label.", valueName: "vm-label"))
    var label: String?

    @Option(name: .customShort("O"), help: ArgumentHelp("The guest's operating system type (hpux, linux, windows, openvms).", valueName: "os-type"))
    var osType: String?

    @Option(name: .customShort("e"), help: ArgumentHelp("CPU entitlement in percent, with an optional maximum.", valueName: "percent[:max_percent]"))
    var entitlement: String?

    @Option(name: .customShort("E"), help: ArgumentHelp("CPU entitlement in MHz, with an optional maximum.", valueName: "cycles[:max_cycles]"))
    var cycles: String?

    @Option(name: .customShort("B"), help: ArgumentHelp("Start with the VM host (auto) or by hand (manual, the default).", valueName: "auto|manual"))
    var startType: String?

    @Flag(name: .customShort("V"), help: "Say what was created.")
    var verbose = false

    public init() {}

    public func validate() throws {
        if entitlement != nil && cycles != nil { throw ValidationError("give either -e or -E, not both.") }
    }

    public func run() throws {
        try Self.create(
            name: name, add: add, vcpus: vcpus, memory: memory, label: label, osType: osType, entitlement: entitlement,
            cycles: cycles, startType: startType, verbose: verbose)
    }

    /// The command lines `main` reads without ArgumentParser.
    static let quick = QuickArguments(
        valued: ["-P": false, "-a": true, "-c": false, "-r": false, "-l": false, "-O": false], flags: ["-V"])

    static func create(
        name: String, add: [String], vcpus: String?, memory: String?, label: String?, osType: String?,
        entitlement: String? = nil, cycles: String? = nil, startType: String? = nil, verbose: Bool
    ) throws {
        var spec = GuestSpec(name: try GuestRules.name(name))
        if let vcpus { spec.vcpus = try GuestRules.vcpus(vcpus) }
        if let memory { spec.memoryMB = try GuestRules.memory(memory) }
        if let label { spec.label = try GuestRules.label(label) }
        if let osType { spec.osType = try GuestRules.osType(osType) }
        if let entitlement { spec.entitlement = try GuestRules.entitlement(entitlement, cycles: false) }
        if let cycles { spec.entitlement = try GuestRules.entitlement(cycles, cycles: true) }
        if let startType { spec.startType = try GuestRules.startType(startType) }
        spec.resources = try GuestCommand.statements(add)
        let environment = try CommandEnvironment.current(name: commandName)
        let status = try GuestCommand.withGuests(environment) { guests -> GuestStatus? in
            try guests.create(spec)
            return verbose ? try guests.status(spec.name).first : nil
        }
        if verbose, let status {
            Output.write("created guest \(status.guest.name), VM #\(status.guest.vmNumber)\n"
                + status.resources.map { "  " + $0.description + "\n" }.joined())
        }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "PacrlOeEB", repeatable: "a", flags: "V")

    public static func run(arguments: CommandArguments) -> Never {
        CommandMain.run(commandName, arguments, log: .success, { words in
            let arguments = try getopt.normalize(words)
            if let quick = quick.read(arguments), let name = quick["-P"]?.first {
                try create(
                    name: name, add: quick["-a"] ?? [], vcpus: quick["-c"]?.first, memory: quick["-r"]?.first,
                    label: quick["-l"]?.first, osType: quick["-O"]?.first, verbose: quick["-V"] != nil)
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
