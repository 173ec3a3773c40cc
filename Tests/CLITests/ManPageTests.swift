import Foundation
import Testing

@Suite struct ManPageTests {
    /// Commands with fewer than seven option names (counting -h and --help): how many each has.
    static let fewerOptions = ["hpvmstart": 6, "hpvmconsole": 5]

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test(arguments: ["hpvmdevmgmt", "hpvmhostrdev", "hpvmcreate", "hpvmmodify", "hpvmremove", "hpvmstatus", "hpvmmigrate", "hpvmsshsetup", "hpvmaudit", "hpvmstart", "hpvmstop", "hpvmconsole", "hpvmlease"])
    func pageIsLintCleanAndNamesEveryOption(tool: String) throws {
        let page = Self.packageRoot + "/man/\(tool).8"
        // mandoc finds nothing to warn about
        let lint = try runProcess("/usr/bin/mandoc", ["-Tlint", "-W", "warning", page])
        #expect(lint.status == 0, "\(lint.stdout)\(lint.stderr)")
        #expect(lint.stdout.isEmpty && lint.stderr.isEmpty, "\(lint.stdout)\(lint.stderr)")
        // and every option the command accepts is described
        let text = try String(contentsOfFile: page, encoding: .utf8)
        let dump = try runProcess(binDirectory + "/" + tool, ["--experimental-dump-help"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let command = try #require(json["command"] as? [String: Any])
        // A command with subcommands (hpvmaudit) has its options on them.
        func options(_ command: [String: Any]) -> [[String: Any]] {
            ((command["arguments"] as? [[String: Any]]) ?? [])
                + ((command["subcommands"] as? [[String: Any]]) ?? []).filter { $0["commandName"] as? String != "help" }
                .flatMap(options)
        }
        let arguments = options(command)
        #expect(!arguments.isEmpty)
        var checked = 0
        for argument in arguments {
            for name in (argument["names"] as? [[String: String]]) ?? [] {
                let flag = name["kind"] == "long" ? "Fl -\(name["name"] ?? "")" : "Fl \(name["name"] ?? "")"
                #expect(text.contains(flag), "\(tool).8 does not describe \(flag)")
                checked += 1
            }
        }
        #expect(checked >= Self.fewerOptions[tool, default: 7])
        for section in ["EXIT STATUS", "FILES", "EXAMPLES", "ENVIRONMENT"] {
            #expect(text.contains(".Sh \(section)"))
        }
    }

    /// hpvm-lease-exec(8), the lease helper's page (it has no --help to compare with): lint-clean,
    /// and it names the helper's `incoming` word and every exit status its source gives.
    @Test func leaseHelperPageIsLintCleanAndGivesEveryExitStatus() throws {
        let page = Self.packageRoot + "/man/hpvm-lease-exec.8"
        let lint = try runProcess("/usr/bin/mandoc", ["-Tlint", "-W", "warning", page])
        #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "\(lint.stdout)\(lint.stderr)")
        let text = try String(contentsOfFile: page, encoding: .utf8)
        #expect(text.contains(".Cm incoming"))
        for status in ["0", "1", "10", "11", "12", "13", "64"] {
            #expect(text.contains(".It \(status)\n"), "hpvm-lease-exec.8 does not give exit status \(status)")
        }
    }

    /// hpvm(8), the multi-call executable's page: lint-clean, and it names every command `hpvm
    /// --list` prints (with its page) and every option of `hpvm` itself.
    @Test func hpvmPageIsLintCleanAndNamesEveryCommand() throws {
        let page = Self.packageRoot + "/man/hpvm.8"
        let lint = try runProcess("/usr/bin/mandoc", ["-Tlint", "-W", "warning", page])
        #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "\(lint.stdout)\(lint.stderr)")
        let text = try String(contentsOfFile: page, encoding: .utf8)
        let list = try runProcess(binDirectory + "/hpvm", ["--list"])
        #expect(list.status == 0 && list.lines.count >= 9)
        for name in list.lines {
            #expect(text.contains(".It Cm \(name.dropFirst(4))\n.Xr \(name) 8"), "hpvm.8 does not list \(name)")
            #expect(FileManager.default.fileExists(atPath: Self.packageRoot + "/man/\(name).8"), "no man/\(name).8")
        }
        for flag in ["Fl -help", "Fl -list", "Fl -version"] {
            #expect(text.contains(".It \(flag)"), "hpvm.8 does not describe \(flag)")
        }
        for section in ["EXIT STATUS", "FILES", "EXAMPLES", "ENVIRONMENT"] {
            #expect(text.contains(".Sh \(section)"))
        }
    }
}
