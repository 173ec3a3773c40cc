public import ArgumentParser
public import HPVMCLI
import Host
import Registry

/// `hpvmdevmgmt`: the device registry of an hpvm host, with HP-UX Integrity VM's option syntax.
public struct HPVMDevMgmt: ParsableCommand, HPVMCommand {
    public static let commandName = "hpvmdevmgmt"
    public static var abstract: String { configuration.abstract }

    public static let configuration = CommandConfiguration(
        commandName: commandName,
        abstract: "Manage the devices that guests use and the devices the VM host keeps for itself.",
        usage: """
            hpvmdevmgmt -a {server|env|rdev|gdev}:entry-name[:attr:NAME=VALUE] [-V]
              hpvmdevmgmt -d {server|env|rdev|gdev}:entry-name [-V]
              hpvmdevmgmt -d gdev:{all|entry-name}:depend:dependent-name [-V]
              hpvmdevmgmt -d {gdev|rdev}:/devpath:IGNOREWWID
              hpvmdevmgmt -d {server|env|rdev|gdev}:entry-name:attr:attr-name [-V]
              hpvmdevmgmt -d gdev_alias:/dev/path
              hpvmdevmgmt -m {server|env|rdev|gdev}:entry-name:attr:attr-name=attr-value [-V]
              hpvmdevmgmt -m {gdev|rdev}:/devpath:IGNOREWWID={YES|NO}
              hpvmdevmgmt -n {gdev|rdev}:oldentry-name:newentry-name0[,newentry-name1] [-V]
              hpvmdevmgmt -l {all|server|env|rdev|gdev}[:entry-name | :depend:dependent-name | :attr-name=attr-value] [-V] [--json]
              hpvmdevmgmt -I [-V]
              hpvmdevmgmt -r > repair_script.sh
              hpvmdevmgmt -v
              hpvmdevmgmt [-A] -S file-size file-name [-V]
            """,
        discussion: """
            Entries are gdev (guest devices), rdev (restricted to the host), server and env. Options take
            HP-UX Integrity VM syntax, for example -a rdev:/dev/rdisk/disk3, -m gdev:/dev/sdb:attr:SHARE=YES,
            -d gdev:all:depend:g1, -n gdev:/dev/old:/dev/new, -l all. The registry is
            $HPVM_ROOT/var/opt/hpvm/common/hpvm_mgmtdb.sqlite. See hpvmdevmgmt(8).
            """,
        version: "hpvmdevmgmt \(HPVMVersion.current) (output format version \(DevMgmtFormat.version))"
    )

    @Option(name: .customShort("a"), help: ArgumentHelp("Add an entry: type:entry-name[:attr:NAME=VALUE]. May repeat: all in one transaction.", valueName: "spec"))
    var add: [String] = []

    @Option(
        name: .customShort("d"),
        help: ArgumentHelp(
            "Delete an entry, a dependent (gdev:{all|entry}:depend:guest), an attribute (type:entry:attr:NAME), IGNOREWWID, or an alias (gdev_alias:path).",
            valueName: "spec"))
    var delete: [String] = []

    @Option(
        name: .customShort("m"),
        help: ArgumentHelp("Modify an attribute: type:entry:attr:NAME=VALUE, or {gdev|rdev}:path:IGNOREWWID={YES|NO}.", valueName: "spec"))
    var modify: [String] = []

    @Option(name: .customShort("n"), help: ArgumentHelp("Replace a device: {gdev|rdev}:old:new0[,new1].", valueName: "spec"))
    var replace: [String] = []

    @Option(
        name: .customShort("l"),
        help: ArgumentHelp("List entries: {all|type}[:entry | :depend:guest | :NAME=VALUE].", valueName: "spec"))
    var list: [String] = []

    @Flag(name: .customShort("I"), help: "Rescan the host: refresh EXIST, WWIDs and aliases of every entry.")
    var rescan = false

    @Flag(name: .customShort("r"), help: "Print a shell script of hpvmdevmgmt commands that repairs the registry.")
    var repair = false

    @Option(name: .customShort("S"), help: ArgumentHelp("Create a fully allocated file of this size (number + M or G).", valueName: "size"))
    var size: String?

    @Flag(name: .customShort("A"), help: "With -S: also add the new file as a gdev entry with USAGE=DISK.")
    var addFile = false

    @Argument(help: ArgumentHelp("The file -S creates.", valueName: "file-name"))
    var file: String?

    @Flag(name: .customShort("v"), help: "Print the output format version first.")
    var formatVersion = false

    @Flag(name: .customShort("V"), help: "Verbose: say what was done; with -l, show each entry's details.")
    var verbose = false

    @Flag(name: .long, help: "With -l: print the entries as a JSON array (beyond HPVM).")
    var json = false

    public init() {}

    public func validate() throws {
        let chosen = [
            add.isEmpty ? nil : "-a", delete.isEmpty ? nil : "-d", modify.isEmpty ? nil : "-m", replace.isEmpty ? nil : "-n",
            list.isEmpty ? nil : "-l", rescan ? "-I" : nil, repair ? "-r" : nil, size.map { _ in "-S" },
        ].compactMap { $0 }
        if chosen.count > 1 {
            throw ValidationError("give one of -a, -d, -m, -n, -l, -I, -r, -S at a time, not \(chosen.joined(separator: " and ")).")
        }
        if list.count > 1 { throw ValidationError("give -l once: -l {all|type}[:…] lists one selection.") }
        if addFile && size == nil { throw ValidationError("-A goes with -S size file-name.") }
        if size != nil && file == nil { throw ValidationError("-S needs a file name: -S 2G /path/to/file.") }
        if size == nil && file != nil { throw ValidationError("unexpected argument '\(Display.safe(file!))'.") }
        if json && list.isEmpty { throw ValidationError("--json goes with -l.") }
    }

    /// What this command line asks for.
    var invocation: Invocation {
        let action: Invocation.Action
        if !add.isEmpty { action = .spec("a", add) }
        else if !delete.isEmpty { action = .spec("d", delete) }
        else if !modify.isEmpty { action = .spec("m", modify) }
        else if !replace.isEmpty { action = .spec("n", replace) }
        else if let list = list.first { action = .spec("l", [list]) }
        else if rescan { action = .rescan }
        else if repair { action = .repair }
        else if let size, let file { action = .createFile(size: size, file: file, add: addFile) }
        else { action = .none }
        return Invocation(action: action, formatVersion: formatVersion, verbose: verbose, json: json)
    }

    public func run() throws {
        try invocation.execute()
    }

    /// HP-UX getopt(3C) forms: `-lall`, `-Vlall`, `-agdev:/dev/sdb`.
    static let getopt = GetoptArguments(valued: "admnlS", repeatable: "admn", flags: "IrAvV")

    public static func run(arguments: CommandArguments) -> Never {
        // -a, -d, -m, -n, -I and -S change the registry; -l, -r and -v read it.
        let changes = ((try? getopt.normalize(arguments.words)) ?? []).contains { ["-a", "-d", "-m", "-n", "-I", "-S"].contains($0) }
        CommandMain.run(commandName, arguments, log: changes ? .success : .never, { words in
            // The common shapes (-a SPEC, -l SPEC, -I, ... with -V, -v, --json) skip ArgumentParser's
            // start-up, which costs more than the registry work itself (bench/RESULTS.md, (a)).
            let arguments = try getopt.normalize(words)
            if let fast = FastArguments.parse(arguments) {
                try fast.execute()
            } else {
                var command = try parseAsRoot(arguments)
                try command.run()
            }
        }, usageError: { error in
            let code = exitCode(for: error)
            return (code == .success ? fullMessage(for: error) : message(for: error) + "\n" + usageString(), code.rawValue)
        })
    }
}
