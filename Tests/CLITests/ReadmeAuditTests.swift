import Foundation
import Testing

/// The README's audit section, run as written against a registry after ordinary commands.
@Suite struct ReadmeAuditTests {
    /// The shell blocks of the README's `## Auditing` section.
    static func auditBlocks() throws -> [String] {
        let readme = try String(contentsOfFile: ManPageTests.packageRoot + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "\n## Auditing\n"))
        let section = readme[start.upperBound...].components(separatedBy: "\n## ")[0]
        return section.components(separatedBy: "```sh\n").dropFirst().map { $0.components(separatedBy: "\n```")[0] }
    }

    @Test func hpvmauditAndTheSQLiteQueryRunAsWritten() throws {
        let host = try AuditedHost()
        let blocks = try Self.auditBlocks()
        #expect(blocks.count == 2)
        let environment = ["HPVM_ROOT": host.cli.root, "PATH": binDirectory + ":/usr/bin:/bin"]
        for block in blocks {
            let result = try runProcess("/bin/bash", ["-euo", "pipefail", "-c", block], environment: environment, directory: ManPageTests.packageRoot)
            #expect(result.status == 0, "\(block)\n\(result.stderr)")
            #expect(result.stderr.isEmpty, "\(result.stderr)")
            if block.contains("hpvmaudit verify") {
                // verify twice (plain and with the kept head), the list, then the sqlite3 rows
                #expect(result.stdout.components(separatedBy: "audit log intact").count == 3)
                #expect(result.stdout.contains("1 kept head found"))
                let rows = result.lines.filter { $0.contains("|") }
                #expect(rows.first?.hasSuffix("|-|add") == true && rows.count == 2, "\(result.stdout)")  // add, then -I's alias
                #expect(result.lines.contains { $0.contains("\tadd\t/dev/rdisk/disk1\t") })
            }
        }
    }
}
