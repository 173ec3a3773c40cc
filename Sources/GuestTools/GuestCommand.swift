public import HPVMCLI
public import Registry

/// What the four guest commands share: opening the registry for one transaction, finding a guest
/// by `-P` or `-p`, and printing `hpvmstatus`'s formats.
public enum GuestCommand {
    /// Opens the registry under the environment's root, runs `body`, and closes it.
    ///
    /// - Parameter access: `.read` for a command that only reads, `.update` for one that changes a
    ///   guest that must exist (a registry that does not exist yet is read as an empty one, and
    ///   not created), `.write` for one that adds a guest.
    public static func withGuests<T>(
        _ environment: CommandEnvironment, for access: RegistryStore.Access = .write, _ body: (GuestRegistry) throws -> T
    ) throws -> T {
        let store = try RegistryStore.open(at: environment.registryPath, for: access)
        do {
            let result = try body(GuestRegistry(store: store, root: environment.root, audit: environment.audit))
            try store.close()
            return result
        } catch {
            try? store.close()
            throw error
        }
    }

    /// The guest's name from `-P name` or `-p number`.
    public static func guestName(_ guests: GuestRegistry, name: String?, number: Int?) throws -> String {
        if let name { return try GuestRules.name(name) }
        if let number {
            guard let guest = try guests.guest(number: number) else {
                throw RegistryError(.notFound, "no guest has VM number \(number).")
            }
            return guest.name
        }
        throw RegistryError(.badSpec, "give the guest with -P vm-name or -p vm-number.")
    }

    /// Parses `-a`/`-d`/`-m` statements.
    public static func statements(_ texts: [String]) throws -> [ResourceStatement] {
        try texts.map { try ResourceStatement.parse($0) }
    }
}

/// `hpvmstatus`'s output formats.
public enum StatusFormat {
    /// The table of every guest.
    public static func table(_ summaries: [GuestSummary]) -> String {
        var lines = [
            "[Virtual Machines]",
            pad("Virtual Machine Name", 20) + " " + lpad("VM #", 5) + " " + pad("OS Type", 7) + " " + pad("State", 9) + " "
                + lpad("#VCPUs", 6) + " " + lpad("#Devs", 5) + " " + lpad("#Nets", 5) + " " + lpad("Memory", 8),
            [20, 5, 7, 9, 6, 5, 5, 8].map { String(repeating: "=", count: $0) }.joined(separator: " "),
        ]
        lines.reserveCapacity(summaries.count + 3)
        for summary in summaries {
            let guest = summary.guest
            lines.append(
                pad(guest.name, 20) + " " + lpad(String(guest.vmNumber), 5) + " " + pad(guest.osType ?? "UNKNOWN", 7) + " "
                    + pad(guest.state, 9) + " " + lpad(String(guest.vcpus), 6) + " " + lpad(String(summary.devices), 5) + " "
                    + lpad(String(summary.networks), 5) + " " + lpad(memory(guest.memoryMB), 8))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One guest in detail (`-P`), with its status switches under `-V`.
    public static func details(_ status: GuestStatus, verbose: Bool) -> String {
        let guest = status.guest
        var lines = [
            "[Virtual Machine Details]",
            "Virtual Machine Name: \(guest.name)",
            "VM #:                 \(guest.vmNumber)",
            "OS Type:              \(guest.osType ?? "UNKNOWN")",
            "State:                \(guest.state)",
            "Label:                \(guest.label ?? "")",
            "#VCPUs:               \(guest.vcpus)",
            "Memory:               \(memory(guest.memoryMB))",
        ]
        if verbose {
            lines += [
                "",
                "[Runnable Status Details]",
                "Runnable status:      \(guest.runnable ? "Runnable" : "Not Runnable")",
                "Modify status:        \(guest.modifiable ? "Modify" : "Not Modify")",
                "Visible status:       \(guest.visible ? "Visible" : "Not Visible")",
                "Status set by:        \(guest.statusSetBy ?? "-")",
                "Migration:            \(guest.migrationLock ?? "-")",
            ]
        }
        lines += ["", "[Devices]"] + status.resources.map(\.description)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The machine format (`-M`): one colon-separated line per guest. Fields, counting from 0:
    /// name, VM number, OS type, runnable, modify, visible (YES/NO), vCPUs, memory in MB, storage
    /// devices, networks, state (`On`/`Off`, index 10), boot (`Manual`, index 11), label.
    public static func machine(_ summaries: [GuestSummary]) -> String {
        summaries.map { summary in
            let guest = summary.guest
            return [
                guest.name, String(guest.vmNumber), guest.osType ?? "UNKNOWN", yes(guest.runnable), yes(guest.modifiable),
                yes(guest.visible), String(guest.vcpus), String(guest.memoryMB), String(summary.devices),
                String(summary.networks), "Off", "Manual", guest.label ?? "",
            ].joined(separator: ":") + "\n"
        }.joined()
    }

    /// The guests as a JSON array.
    public static func json(_ statuses: [GuestStatus]) -> String {
        "[" + statuses.map { status in
            let g = status.guest
            return "{\"name\":\(quote(g.name)),\"vmNumber\":\(g.vmNumber),\"osType\":\(g.osType.map(quote) ?? "null"),"
                + "\"state\":\(quote(g.state)),\"runnable\":\(g.runnable),\"modifiable\":\(g.modifiable),\"visible\":\(g.visible),"
                + "\"vcpus\":\(g.vcpus),\"memoryMB\":\(g.memoryMB),\"label\":\(g.label.map(quote) ?? "null"),"
                + "\"resources\":[" + status.resources.map { quote($0.description) }.joined(separator: ",") + "]}"
        }.joined(separator: ",\n") + "]\n"
    }

    static func yes(_ value: Bool) -> String { value ? "YES" : "NO" }

    static func memory(_ mb: Int) -> String { mb % 1024 == 0 ? "\(mb / 1024) GB" : "\(mb) MB" }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func lpad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 { out += "\\u00" + String(scalar.value, radix: 16).leftPadded(2) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
