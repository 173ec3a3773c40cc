import ArgumentParser
import HPVMCLI
import Registry

/// What an `hpvmdevmgmt` command line asks for, whichever parser read it.
struct Invocation: Equatable {
    enum Action: Equatable {
        /// `-a`, `-d`, `-m`, `-n` or `-l` with its specifications (`-a`, `-d`, `-m` and `-n` may
        /// repeat; all are applied in one transaction).
        case spec(Character, [String])
        case rescan
        case repair
        case createFile(size: String, file: String, add: Bool)
        /// Only `-v`.
        case none
    }

    var action: Action
    var formatVersion = false
    var verbose = false
    var json = false

    /// Parses the specification, performs the request on the registry, and prints.
    func execute() throws {
        let request: DevMgmtRequest
        switch action {
        case .spec(let option, let texts):
            request = .operations(try texts.map { text throws(RegistryError) in try DeviceOperation.parse(option: option, text) })
        case .rescan: request = .rescan
        case .repair: request = .repair
        case .createFile(let size, let file, let add):
            request = .createFile(path: try NameRules.entryName(file), bytes: try DeviceManager.parseSize(size), add: add)
        case .none:
            guard formatVersion else {
                throw ValidationError("nothing to do: give one of -a, -d, -m, -n, -l, -I, -r, -S or -v.")
            }
            request = .none
        }
        let environment = try CommandEnvironment.current(name: "hpvmdevmgmt")
        let result = try DevMgmt.perform(request, in: environment)
        var text = formatVersion ? "hpvmdevmgmt output format version \(DevMgmtFormat.version)\n" : ""
        text += DevMgmtFormat.render(result, json: json, verbose: verbose)
        Output.write(text)
        for warning in result.outcome.warnings { Output.error("hpvmdevmgmt", "warning: " + warning) }
    }
}

/// A strict reader for the command lines scripts run most: one of `-a`, `-d`, `-m`, `-n` (each
/// perhaps repeated) or `-l` with its specification, or `-I` or `-r`, plus at most one each of `-V`, `-v` and `--json`
/// (with `-l`); or `-v` alone. Anything else — help, `-S`, a mistake — returns nil and goes to ArgumentParser,
/// which defines the command line; a test checks both readers agree on every shape read here.
enum FastArguments {
    static func parse(_ arguments: [String]) -> Invocation? {
        var invocation = Invocation(action: .none)
        var action: Invocation.Action?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "-V":
                guard !invocation.verbose else { return nil }
                invocation.verbose = true
            case "-v":
                guard !invocation.formatVersion else { return nil }
                invocation.formatVersion = true
            case "--json":
                guard !invocation.json else { return nil }
                invocation.json = true
            case "-I", "-r":
                guard action == nil else { return nil }
                action = argument == "-I" ? .rescan : .repair
            case "-a", "-d", "-m", "-n", "-l":
                guard index + 1 < arguments.count else { return nil }
                let value = arguments[index + 1]
                guard !value.isEmpty, !value.hasPrefix("-") else { return nil }
                let option = argument.last!
                switch action {
                case nil:
                    action = .spec(option, [value])
                case .spec(option, let values)? where option != "l":
                    action = .spec(option, values + [value])
                default:
                    return nil
                }
                index += 1
            default:
                return nil
            }
            index += 1
        }
        guard let action else {
            // `-v` alone (or with -V): the output format version, which scripts ask first.
            return invocation.formatVersion && !invocation.json ? invocation : nil
        }
        if invocation.json, case .spec("l", _) = action {} else if invocation.json { return nil }
        invocation.action = action
        return invocation
    }
}
