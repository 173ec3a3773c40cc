public import HPVMCLI
public import Registry
public import Runtime

/// What the four guest commands share: opening the registry for one transaction, finding a guest
/// by `-P` or `-p`, and printing `hpvmstatus`'s formats.
public enum GuestCommand {
    /// Opens the registry under the environment's root, runs `body`, and closes it (for the command's
    /// exit: ``RegistryStore/closeForExit()``). The guests know which of them run
    /// (``GuestRegistry/isRunning``).
    ///
    /// - Parameter access: `.read` for a command that only reads, `.update` for one that changes a
    ///   guest that must exist (a registry that does not exist yet is read as an empty one, and
    ///   not created), `.write` for one that adds a guest.
    public static func withGuests<T>(
        _ environment: CommandEnvironment, for access: RegistryStore.Access = .write, _ body: (GuestRegistry) throws -> T
    ) throws -> T {
        let store = try RegistryStore.open(at: environment.registryPath, for: access)
        do {
            var guests = GuestRegistry(store: store, root: environment.root, audit: environment.audit)
            // Running guests refuse changes their QEMU would not follow; only the pidfiles' locks are read.
            let runtime = GuestRuntime(root: environment.root, settings: RuntimeSettings())
            guests.isRunning = { runtime.isRunning($0) }
            let result = try body(guests)
            try store.closeForExit()
            return result
        } catch {
            try? store.closeForExit()
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
    /// The table of every guest, laid out as HP's: the sample in hpvm-reference.md [S20] (Juan
    /// Manuel Rey, "Guest migration in HPVM 3.5") gives every width — name 20, VM # 5 (right), OS
    /// type 7, state 9, #VCPUs 6, #Devs 5, #Nets 5, Memory 7 (right, `16 GB`), Runsysid 8 (right).
    /// cfg2html reads `$1` (name) and `$2` (VM #) of the rows and line 2 as the header.
    public static func table(_ summaries: [GuestSummary], live: [String: GuestRuntime.LiveState] = [:]) -> String {
        var lines = [
            "[Virtual Machines]",
            "Virtual Machine Name VM #  OS Type State     #VCPUs #Devs #Nets Memory  Runsysid",
            [20, 5, 7, 9, 6, 5, 5, 7, 8].map { String(repeating: "=", count: $0) }.joined(separator: " "),
        ]
        lines.reserveCapacity(summaries.count + 3)
        for summary in summaries {
            let guest = summary.guest
            lines.append(
                pad(guest.name, 20) + " " + lpad(String(guest.vmNumber), 5) + " " + pad(guest.osType ?? "UNKNOWN", 7) + " "
                    + pad(state(guest, live[guest.name]), 9) + " " + lpad(String(guest.vcpus), 6) + " " + lpad(String(summary.devices), 5) + " "
                    + lpad(String(summary.networks), 5) + " " + lpad(memory(guest.memoryMB), 7) + " " + lpad(runsysid, 8))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// HP's `Runsysid`: the cluster member running the guest; 0 on a host that is no member of a
    /// cluster, which every host is here.
    static let runsysid = "0"

    /// One guest in detail (`-P`), with its status switches under `-V`.
    ///
    /// - Parameter settings: the guest's kept `-x` settings, shown under `-V` (default values for
    ///   those never set: online migration enabled, HP 4.3's phase timeouts).
    public static func details(
        _ status: GuestStatus, verbose: Bool, settings: [String: String] = [:], live: GuestRuntime.LiveState? = nil
    ) -> String {
        let guest = status.guest
        var lines = [
            "[Virtual Machine Details]",
            "Virtual Machine Name: \(guest.name)",
            "VM #:                 \(guest.vmNumber)",
            "OS Type:              \(guest.osType ?? "UNKNOWN")",
            "State:                \(state(guest, live))",
            "Label:                \(guest.label ?? "")",
            "#VCPUs:               \(guest.vcpus)",
            "Memory:               \(memory(guest.memoryMB))",
            "Entitlement:          \(guest.entitlement ?? "-")",
            "UUID:                 \(guest.uuid ?? "-")",
            // HP's spacing: cfg2html reads the value as the 4th word (get_hpvm.sh line 17).
            "Start type           : \(guest.startType)",
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
                "",
                "[Online Migration Details]",
                "online_migration:                 \(settings["online_migration"] ?? "enabled")",
            ]
            for (key, defaultValue) in [
                ("migrate_init_phase_timeout", "90"), ("migrate_copy_phase_timeout", "0"),
                ("migrate_io_quiesce_phase_timeout", "15"), ("migrate_frozen_phase_timeout", "60"),
            ] {
                lines.append(pad(key + ":", 33) + " " + (settings[key] ?? defaultValue))
            }
        }
        lines += ["", "[Devices]"] + status.resources.map(\.description)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The machine format (`-M`): one colon-separated line per guest, 21 fields counting from 0.
    /// HP's fields that public collectors read, at HP's positions: 0 the name (collectors run
    /// `hpvmstatus -M | cut -d: -f1`), 10 the state `On`/`Off` and 11 the boot attribute
    /// `Manual`/`Auto` (OpenSVC), 19 the vCPUs and 20 the memory as `NGB` or `NMB` (OpenSVC reads
    /// each field's first `;` subfield). HP's other fields were not found in any public source:
    /// 1–9 and 12 are this implementation's (VM number, OS type, runnable, modify, visible YES/NO,
    /// vCPUs, memory in MB, storage devices, networks; label), 13–18 are left empty.
    public static func machine(_ summaries: [GuestSummary], live: [String: GuestRuntime.LiveState] = [:]) -> String {
        summaries.map { summary in
            let guest = summary.guest
            var fields = [
                guest.name, String(guest.vmNumber), guest.osType ?? "UNKNOWN", yes(guest.runnable), yes(guest.modifiable),
                yes(guest.visible), String(guest.vcpus), String(guest.memoryMB), String(summary.devices),
                String(summary.networks), machineState(live[guest.name]), guest.startType, guest.label ?? "",
            ]
            fields += Array(repeating: "", count: 6)
            fields += [String(guest.vcpus), memory(guest.memoryMB).replacing(" ", with: "")]
            return fields.joined(separator: ":") + "\n"
        }.joined()
    }

    /// The XML format (`-X`), in the shape FusionInventory and the GLPI agent read: a `hpvm` root
    /// holding `pman`, one `virtual_machine` per guest with `name`, `uuid` and `local_id` (the VM
    /// number) attributes, and `vm_state`, `vcpu_number` and `memory/total` (`unit` MB or GB)
    /// elements. Nothing else is printed: HP's other elements were not found in a public source.
    public static func xml(_ summaries: [GuestSummary], live: [String: GuestRuntime.LiveState] = [:]) -> String {
        var text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hpvm>\n<pman>\n"
        for summary in summaries {
            let guest = summary.guest
            let (amount, unit) = guest.memoryMB % 1024 == 0 ? (guest.memoryMB / 1024, "GB") : (guest.memoryMB, "MB")
            text += "<virtual_machine name=\"\(xmlEscaped(guest.name))\""
            if let uuid = guest.uuid { text += " uuid=\"\(xmlEscaped(uuid))\"" }
            text += " local_id=\"\(guest.vmNumber)\">\n"
            text += "<vm_state>\(xmlEscaped(state(guest, live[guest.name])))</vm_state>\n"
            text += "<vcpu_number>\(guest.vcpus)</vcpu_number>\n"
            text += "<memory>\n<total unit=\"\(unit)\">\(amount)</total>\n</memory>\n"
            text += "</virtual_machine>\n"
        }
        return text + "</pman>\n</hpvm>\n"
    }

    /// `-r`: each guest's vCPUs and CPU entitlement (this implementation's layout).
    public static func entitlements(_ summaries: [GuestSummary]) -> String {
        var lines = [
            "[Virtual Machine Entitlements]",
            pad("Virtual Machine Name", 20) + " " + pad("VM #", 5) + " " + "#VCPUs" + " " + pad("Entitlement", 11) + " " + "Maximum",
            [20, 5, 6, 11, 11].map { String(repeating: "=", count: $0) }.joined(separator: " "),
        ]
        for summary in summaries {
            let guest = summary.guest
            let parts = (guest.entitlement ?? "-").split(separator: ":").map(String.init)
            lines.append(
                pad(guest.name, 20) + " " + lpad(String(guest.vmNumber), 5) + " " + lpad(String(guest.vcpus), 6) + " "
                    + lpad(parts[0], 11) + " " + lpad(parts.count > 1 ? parts[1] : "-", 11))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `-C`: each guest's memory and its type. HP reports cell-local (CLM) or interleaved (ILM)
    /// memory; a Linux host binds no guest to a cell, so every guest's memory is ILM here.
    public static func memoryTypes(_ summaries: [GuestSummary]) -> String {
        var lines = [
            "[Virtual Machine Memory]",
            pad("Virtual Machine Name", 20) + " " + pad("VM #", 5) + " " + pad("Memory", 7) + " " + "Type",
            [20, 5, 7, 4].map { String(repeating: "=", count: $0) }.joined(separator: " "),
        ]
        for summary in summaries {
            let guest = summary.guest
            lines.append(
                pad(guest.name, 20) + " " + lpad(String(guest.vmNumber), 5) + " " + lpad(memory(guest.memoryMB), 7) + " ILM")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `-s`: the VM host's processors and memory, and what the guests are given of them.
    public static func server(_ summaries: [GuestSummary], cpus: Int, memoryMB: Int) -> String {
        let vcpus = summaries.reduce(0) { $0 + $1.guest.vcpus }
        let memoryTotal = summaries.reduce(0) { $0 + $1.guest.memoryMB }
        return [
            "[HPVM Server System Resources]",
            "Processors on the VM Host:         \(cpus)",
            "Memory on the VM Host:             \(memory(memoryMB))",
            "Virtual machines:                  \(summaries.count)",
            "vCPUs given to virtual machines:   \(vcpus)",
            "Memory given to virtual machines:  \(memory(memoryTotal))",
        ].joined(separator: "\n") + "\n"
    }

    /// `-m`: the multi-server environment (HP: guests managed as Serviceguard packages). No host
    /// here belongs to such a cluster.
    public static let multiServer = "[HPVM Multi Server Environment]\nNo multi-server environment is configured on this VM Host.\n"

    /// `-e`: the event log, one line per change the audit log records (for one guest: the changes
    /// made to it): time, user, command, action and object (this implementation's layout).
    public static func events(_ records: [AuditRecord], guest: String?) -> String {
        records.filter { guest == nil || $0.object == guest }.map { record in
            "\(record.at) \(Display.safe(record.user)) \(Display.safe(record.command, limit: 200)): \(record.action) \(Display.safe(record.object, limit: 200))\n"
        }.joined()
    }

    static func xmlEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The guests as a JSON array.
    public static func json(_ statuses: [GuestStatus], live: [String: GuestRuntime.LiveState] = [:]) -> String {
        "[" + statuses.map { status in
            let g = status.guest
            return "{\"name\":\(quote(g.name)),\"vmNumber\":\(g.vmNumber),\"osType\":\(g.osType.map(quote) ?? "null"),"
                + "\"state\":\(quote(state(g, live[g.name]))),\"runnable\":\(g.runnable),\"modifiable\":\(g.modifiable),\"visible\":\(g.visible),"
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
