import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import HPVMTestSupport
import Testing

/// Issue 14, rows 1–3: `hpvmstatus` read the way the public collectors read HP's output. Each
/// check names the collector's file and line that reads the field (repositories as fetched:
/// opensvc/opensvc 17db875b, fusioninventory/fusioninventory-agent, glpi-project/glpi-agent
/// 77f7cdda, cfg2html/cfg2html 8e63fd8).
@Suite struct StatusCollectorTests {
    /// A host with two guests: h1 (4 vCPUs, 16 GB, a disk, -B auto) and h2 (1 vCPU, 512 MB).
    func twoGuests() throws -> CLIHost {
        let cli = try CLIHost()
        #expect(try cli.tool("hpvmcreate", "-P", "h1", "-c", "4", "-r", "16G", "-O", "hpux", "-B", "auto",
                             "-a", "disk:avio_stor::disk:/dev/rdisk/disk5").status == 0)
        #expect(try cli.tool("hpvmcreate", "-P", "h2", "-r", "512M").status == 0)
        return cli
    }

    // MARK: - Row 1: -M

    @Test func row1MachineFormatHasOpenSVCsFields() throws {
        let cli = try twoGuests()
        let out = try cli.tool("hpvmstatus", "-M", "-P", "h1")
        #expect(out.status == 0)
        let line = try #require(out.lines.first)
        let fields = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        try #require(fields.count >= 21, "opensvc reads fields up to 20 of: \(line)")
        // opensvc/drivers/resource/container/hpvm/__init__.py line 127: out.split(":")[10] == "On"
        #expect(fields[10] == "Off")
        // line 100: out.split(":")[11] == "Manual" (h1 was created with -B auto)
        #expect(fields[11] == "Auto")
        // line 111: out.split(':')[19].split(';')[0] is the vCPU count
        #expect(fields[19].split(separator: ";", omittingEmptySubsequences: false)[0] == "4")
        // lines 112-114: out.split(':')[20].split(';')[0], 'GB' stripped and read as an int
        let memory = fields[20].split(separator: ";", omittingEmptySubsequences: false)[0]
        #expect(memory == "16GB" && Int(memory.replacing("GB", with: "")) == 16)
        func field11(_ guest: String) throws -> String? {
            let fields = try cli.tool("hpvmstatus", "-M", "-P", guest).stdout.split(separator: ":", omittingEmptySubsequences: false)
            return fields.count > 11 ? String(fields[11]) : nil
        }
        #expect(try field11("h2") == "Manual")
        #expect(try cli.tool("hpvmmodify", "-P", "h2", "-B", "auto").status == 0)
        #expect(try field11("h2") == "Auto")
        // Without -P, one line per guest, the name first: collectors run `hpvmstatus -M | cut -d: -f1`.
        #expect(try cli.tool("hpvmstatus", "-M").lines.map { $0.split(separator: ":", omittingEmptySubsequences: false)[0] } == ["h1", "h2"])
    }

    // MARK: - Row 2: -X and the options collectors call

    /// The XML as a tree of (element, attributes, text, children).
    final class Node {
        let name: String
        let attributes: [String: String]
        var text = ""
        var children: [Node] = []
        init(name: String, attributes: [String: String]) { self.name = name; self.attributes = attributes }
        func child(_ name: String) -> Node? { children.first { $0.name == name } }
        func all(_ name: String) -> [Node] { children.filter { $0.name == name } }
    }

    final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [Node] = []
        var root: Node?
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            let node = Node(name: name, attributes: attributes)
            stack.last?.children.append(node)
            if root == nil { root = node }
            stack.append(node)
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            stack.removeLast()
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { stack.last?.text += string }
    }

    func parse(_ xml: String) throws -> Node {
        let parser = XMLParser(data: Data(xml.utf8))
        let builder = TreeBuilder()
        parser.delegate = builder
        #expect(parser.parse(), "not well-formed XML: \(parser.parserError.map { String(describing: $0) } ?? "")")
        return try #require(builder.root)
    }

    @Test func row2XMLHasTheElementsFusionInventoryAndGLPIRead() throws {
        let cli = try twoGuests()
        let out = try cli.tool("hpvmstatus", "-X")
        #expect(out.status == 0)
        let root = try parse(out.stdout)
        // fusioninventory-agent 246f240d3, lib/FusionInventory/Agent/Task/Inventory/Virtualization/Hpvm.pm
        // line 32: $data->{hpvm}->{pman}->{virtual_machine} (XML::TreePP keeps the root element;
        // XML::Simple in 7136e5a6e line 31, and HEAD line 38 / glpi-agent line 36, drop it: {pman})
        #expect(root.name == "hpvm")
        let machines = try #require(root.child("pman")).all("virtual_machine")
        #expect(machines.count == 2)
        let h1 = try #require(machines.first { $0.attributes["name"] == "h1" })  // line 46: {-name}
        // line 39: {-uuid}; glpi-agent line 57: {uuid}
        #expect((h1.attributes["uuid"] ?? "").count == 36)
        #expect(h1.attributes["local_id"] == "1")  // line 42: {-local_id}
        // line 40: $status_list{{vm_state}} with keys On, Off, Invalid
        #expect(["On", "Off", "Invalid"].contains(h1.child("vm_state")?.text ?? ""))
        #expect(h1.child("vcpu_number")?.text == "4")  // line 41: {vcpu_number}
        // lines 36-37: {memory}{total}{'#text'} times the {-unit} factor, MB 1 or GB 1024
        let total = try #require(h1.child("memory")?.child("total"))
        #expect(total.text == "16" && total.attributes["unit"] == "GB")
        let h2 = try #require(machines.first { $0.attributes["name"] == "h2" })
        #expect(h2.child("memory")?.child("total")?.text == "512" && h2.child("memory")?.child("total")?.attributes["unit"] == "MB")
        // One guest with -P; the UUID stays the guest's.
        let one = try parse(try cli.tool("hpvmstatus", "-X", "-P", "h1").stdout)
        #expect(one.child("pman")?.all("virtual_machine").map { $0.attributes["uuid"] } == [h1.attributes["uuid"]])
    }

    @Test func row2OptionsCollectorsCallAreAccepted() throws {
        let cli = try twoGuests()
        // cfg2html hpux/cfg2html-hpux.sh line 753: `hpvmstatus -V` exits 0 on a VM host
        #expect(try cli.tool("hpvmstatus", "-V").status == 0)
        // line 773: hpvmstatus -m ("HPVM Multi Server Environment")
        let multi = try cli.tool("hpvmstatus", "-m")
        #expect(multi.status == 0 && multi.stdout.hasPrefix("[HPVM Multi Server Environment]"))
        // hpux/plugins/get_hpvm.sh line 19: hpvmstatus -P vm -D, diffed against -P vm (line 18)
        #expect(try cli.tool("hpvmstatus", "-P", "h1", "-D").stdout == cli.tool("hpvmstatus", "-P", "h1").stdout)
        // line 17: hpvmstatus -P vm -V | grep "Start type" | awk '{print $4}'
        let start = try cli.tool("hpvmstatus", "-P", "h1", "-V").lines.first { $0.contains("Start type") }
        #expect(start?.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first == "Auto")
        // line 27 and cfg2html-hpux.sh line 743: -d lines hold "disk" and "network"
        #expect(try cli.tool("hpvmstatus", "-d", "-p", "1").stdout.contains("disk:avio_stor:"))
        // -s, -r, -C, -e: accepted, for the host and per guest
        for arguments in [["-s"], ["-r"], ["-C"], ["-e"], ["-r", "-P", "h1"], ["-C", "-P", "h1"], ["-e", "-P", "h1"]] {
            let result = try cli.run("hpvmstatus", arguments)
            #expect(result.status == 0 && !result.stdout.isEmpty, "\(arguments): \(result.stderr)")
        }
        #expect(try cli.tool("hpvmstatus", "-r").lines.contains { $0.hasPrefix("h1 ") })
        #expect(try cli.tool("hpvmstatus", "-C", "-P", "h2").lines.last?.hasSuffix("512 MB ILM") == true)
        #expect(try cli.tool("hpvmstatus", "-e", "-P", "h2").stdout.contains("create-guest h2"))
        #expect(try cli.tool("hpvmstatus", "-s", "-P", "h1").status == 64)
    }

    // MARK: - Row 3: the table

    @Test func row3TableHasHPsColumnsAndWidths() throws {
        let cli = try twoGuests()
        let lines = try cli.tool("hpvmstatus").lines
        try #require(lines.count == 5, "\(lines)")
        // jreypo/jreypo.github.io content/posts/2010-03-24-guest-migration-in-hpvm-3-5.md lines 90-92
        // (HP 3.5's hpvmstatus, hpvm-reference.md [S20]): the header, the rule, then a row such as
        // "oratest01                1 HPUX    On (OS)        4    10     3   16 GB        0"
        #expect(lines[0] == "[Virtual Machines]")
        #expect(lines[1] == "Virtual Machine Name VM #  OS Type State     #VCPUs #Devs #Nets Memory  Runsysid")
        #expect(lines[2] == "==================== ===== ======= ========= ====== ===== ===== ======= ========")
        #expect(lines[3] == "h1                       1 HPUX    Off            4     1     0   16 GB        0")
        #expect(lines[4] == "h2                       2 UNKNOWN Off            1     0     0  512 MB        0")
        // cfg2html hpux/cfg2html-hpux.sh line 739: rows are the lines without "Virtual Machine" and
        // "==========", and $2 is the VM number; hpux/plugins/get_hpvm.sh line 11: $1 is the name,
        // line 15: `head -2 | tail -1` is the header.
        let rows = lines.filter { !$0.contains("Virtual Machine") && !$0.contains("==========") }
        #expect(rows.map { $0.split(separator: " ").dropFirst().first } == ["1", "2"])
        #expect(rows.map { $0.split(separator: " ").first } == ["h1", "h2"])
        #expect(lines[1].hasPrefix("Virtual Machine Name"))
    }
}
