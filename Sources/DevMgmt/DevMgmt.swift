import HPVMCLI
import Registry
import Runtime

/// One `hpvmdevmgmt` request, after parsing.
enum DevMgmtRequest {
    /// One or more operations of one kind, applied in one transaction.
    case operations([DeviceOperation])
    case rescan
    case repair
    case createFile(path: String, bytes: Int64, add: Bool)
    case none
}

/// What a request produced, ready to print.
struct DevMgmtResult {
    var outcome = DeviceManager.Outcome()
    var script: String?
    var rescan: DeviceManager.RescanReport?
    var isList = false
}

/// Opens the registry, performs one request in one transaction, and closes it.
enum DevMgmt {
    static func perform(_ request: DevMgmtRequest, in environment: CommandEnvironment) throws -> DevMgmtResult {
        if case .none = request { return DevMgmtResult() }
        // Reading, or changing an entry that must exist, never creates the registry.
        let access: RegistryStore.Access
        switch request {
        case .operations(let operations) where operations.count == 1 && operations[0].isList: access = .read
        case .repair: access = .read
        case .operations(let operations) where operations.contains(where: \.isAdd): access = .write
        case .createFile: access = .write
        default: access = .update
        }
        let store = try RegistryStore.open(at: environment.registryPath, for: access)
        var manager = DeviceManager(store: store, root: environment.root, audit: environment.audit)
        let runtime = GuestRuntime(root: environment.root, settings: RuntimeSettings())
        manager.isRunning = { runtime.isRunning($0) }
        var result = DevMgmtResult()
        do {
            switch request {
            case .operations(let operations):
                result.isList = operations.contains { $0.isList }
                result.outcome = try manager.perform(operations)
            case .rescan:
                let report = try manager.rescan()
                result.rescan = report
                result.outcome.warnings = report.wwidMismatches
            case .repair:
                result.script = try manager.repairScript()
            case .createFile(let path, let bytes, let add):
                result.outcome = try manager.createFile(path: path, bytes: bytes, addEntry: add)
            case .none:
                break
            }
        } catch {
            try? store.closeForExit()
            throw error
        }
        try store.closeForExit()
        return result
    }
}

/// How `hpvmdevmgmt` prints.
enum DevMgmtFormat {
    /// The `-l` output format version that `-v` prints.
    static let version = "1"

    static func render(_ result: DevMgmtResult, json: Bool, verbose: Bool) -> String {
        if let script = result.script { return script }
        if result.isList {
            if json {
                return "[" + result.outcome.entries.map { $0.jsonText }.joined(separator: ",\n") + "]\n"
            }
            var text = ""
            text.reserveCapacity(result.outcome.entries.count * 120)
            for entry in result.outcome.entries {
                text += entry.listLine
                text += "\n"
                if verbose {
                    text += "    names: \(entry.names.joined(separator: " "))\n"
                    text += "    resolves to: \(entry.resolvedPath ?? "-")  transport: \(entry.transport ?? "-")  identity: \(entry.identityKey)\n"
                }
            }
            return text
        }
        guard verbose else { return "" }
        var lines = result.outcome.notes
        if let report = result.rescan {
            lines.append(
                "checked \(report.checked) entries: \(report.existChanged.count) changed EXIST, \(report.wwidsRecorded.count) WWIDs recorded, \(report.aliasesAdded.count) aliases added, \(report.aliasesRemoved.count) removed, \(report.wwidMismatches.count) WWID mismatches."
            )
            for name in report.skippedNames {
                lines.append("not recorded as an alias (a command line cannot name it): \(Display.safe(name, limit: 200))")
            }
        }
        return lines.map { $0 + "\n" }.joined()
    }
}
