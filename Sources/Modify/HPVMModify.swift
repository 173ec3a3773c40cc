public import ArgumentParser
import GuestTools
public import HPVMCLI
import Registry

/// `hpvmmodify`: change a guest's resources, sizes, name or status.
public struct HPVMModify: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmmodify"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Modify a virtual machine: add, delete or change resources; vCPUs, memory, label, name; status.",
        usage: """
            hpvmmodify {-P vm-name | -p vm-number} [-a rsrc]... [-d rsrc]... [-m rsrc]... [-c number-vcpus] [-r amount]
                       [-l vm-label] [-O os-type] [-N new-vm-name] [-e percent[:max_percent] | -E cycles[:max_cycles]]
                       [-B auto|manual] [-x keyword=value]... [-V]
            """,
        discussion: """
            -x takes runnable_status, modify_status, visible_status or register_status = enabled|disabled,
            online_migration = enabled|disabled, and migrate_{init,copy,io_quiesce,frozen}_phase_timeout = seconds.
            See hpvmmodify(8).
            """
    )

    public init() {}

    @Option(name: .customShort("P"), help: ArgumentHelp("The guest's name.", valueName: "vm-name"))
    var name: String?

    @Option(name: .customShort("p"), help: ArgumentHelp("The guest's VM number.", valueName: "vm-number"))
    var number: Int?

    @Option(name: .customShort("a"), help: ArgumentHelp("Add a resource (repeatable).", valueName: "rsrc"))
    var add: [String] = []

    @Option(name: .customShort("d"), help: ArgumentHelp("Delete a resource (repeatable).", valueName: "rsrc"))
    var delete: [String] = []

    @Option(name: .customShort("m"), help: ArgumentHelp("Change the backing of the resource at an address (repeatable).", valueName: "rsrc"))
    var modify: [String] = []

    @Option(name: .customShort("c"), help: ArgumentHelp("Number of virtual CPUs (1-128).", valueName: "number-vcpus"))
    var vcpus: String?

    @Option(name: .customShort("r"), help: ArgumentHelp("Memory, as a number followed by M or G.", valueName: "amount"))
    var memory: String?

    @Option(name: .customShort("l"), help: ArgumentHelp("A descriptive label.", valueName: "vm-label"))
    var label: String?

    @Option(name: .customShort("O"), help: ArgumentHelp("The operating system type.", valueName: "os-type"))
    var osType: String?

    @Option(name: .customShort("N"), help: ArgumentHelp("A new name for the guest.", valueName: "new-vm-name"))
    var newName: String?

    @Option(name: .customShort("e"), help: ArgumentHelp("CPU entitlement in percent, with an optional maximum.", valueName: "percent[:max_percent]"))
    var entitlement: String?

    @Option(name: .customShort("E"), help: ArgumentHelp("CPU entitlement in MHz, with an optional maximum.", valueName: "cycles[:max_cycles]"))
    var cycles: String?

    @Option(name: .customShort("B"), help: ArgumentHelp("Start with the VM host (auto) or by hand (manual).", valueName: "auto|manual"))
    var startType: String?

    @Option(name: .customShort("x"), help: ArgumentHelp("{runnable|modify|visible|register}_status={enabled|disabled}, online_migration={enabled|disabled}, migrate_*_phase_timeout=seconds (repeatable).", valueName: "keyword=value"))
    var settings: [String] = []

    @Flag(name: .customShort("V"), help: "Say what changed.")
    var verbose = false

    public func validate() throws {
        if (name == nil) == (number == nil) { throw ValidationError("give the guest with either -P vm-name or -p vm-number.") }
        if entitlement != nil && cycles != nil { throw ValidationError("give either -e or -E, not both.") }
    }

    public func run() throws {
        var change = GuestChange()
        change.add = try GuestCommand.statements(add)
        change.delete = try GuestCommand.statements(delete)
        change.modify = try GuestCommand.statements(modify)
        if let vcpus { change.vcpus = try GuestRules.vcpus(vcpus) }
        if let memory { change.memoryMB = try GuestRules.memory(memory) }
        if let label { change.label = try GuestRules.label(label) }
        if let newName { change.newName = try GuestRules.name(newName) }
        if let osType { change.osType = try GuestRules.osType(osType) }
        if let entitlement { change.entitlement = try GuestRules.entitlement(entitlement, cycles: false) }
        if let cycles { change.entitlement = try GuestRules.entitlement(cycles, cycles: true) }
        if let startType { change.startType = try GuestRules.startType(startType) }
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2, let kept = try GuestRules.setting(parts[0], parts[1]) {
                change.settings.append(kept)
                continue
            }
            let keys = ["runnable_status", "modify_status", "visible_status", "register_status"]
            guard parts.count == 2, keys.contains(parts[0]), ["enabled", "disabled"].contains(parts[1]) else {
                throw RegistryError(
                    .badSpec,
                    "-x '\(Display.safe(setting))': expected \(keys.joined(separator: "|"))=enabled|disabled, online_migration=enabled|disabled or migrate_{init,copy,io_quiesce,frozen}_phase_timeout=seconds.")
            }
            change.status.append((parts[0], parts[1] == "enabled"))
        }
        guard change != GuestChange() else {
            throw ValidationError("nothing to change: give -a, -d, -m, -c, -r, -l, -O, -N, -e, -E, -B or -x.")
        }
        let environment = try CommandEnvironment.current(name: Self.commandName)
        try GuestCommand.withGuests(environment, for: .update) { guests in
            let guest = try GuestCommand.guestName(guests, name: name, number: number)
            try guests.modify(guest, change)
            if verbose, let status = try guests.status(change.newName ?? guest).first {
                Output.write(StatusFormat.details(status, verbose: true))
            }
        }
    }

    /// HP-UX getopt(3C) forms (`-Pg1`, `-QF`), and a single-valued option given twice refused.
    static let getopt = GetoptArguments(valued: "PpadmcrlONxeEB", repeatable: "admx", flags: "V")

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
