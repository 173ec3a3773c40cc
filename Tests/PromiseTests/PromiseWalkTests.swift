import Foundation
import HPVMTestSupport
import Testing

/// Where `swift build` put `hpvm`, with a link to it for each command (``Commands``).
private let binDirectory = Commands.binDirectory

/// The walk's settings, from the environment.
struct WalkSettings {
    /// The run's seed: `HPVM_PROMISE_SEED`, else random. Walk 0 uses it as is.
    var seed: UInt64
    /// Steps in the whole run (`HPVM_PROMISE_STEPS`).
    var steps: Int
    /// Steps before a walk starts again on a fresh host (`HPVM_PROMISE_WALK_LENGTH`).
    var walkLength: Int
    /// Stop after this many violations (`HPVM_PROMISE_MAX_FINDINGS`).
    var maxFindings: Int
    /// Step kinds never drawn (`HPVM_PROMISE_EXCLUDE`, comma-separated, e.g. `depend,hostrdev`).
    var excluded: Set<String>
    /// Classes of finding not reported (`HPVM_PROMISE_IGNORE`, e.g. `b:host,d`), to look past a known one.
    var ignored: Set<String>

    /// The settings that change what a walk draws or reports, as environment assignments.
    var replayEnvironment: String {
        (excluded.isEmpty ? "" : "HPVM_PROMISE_EXCLUDE=\(excluded.sorted().joined(separator: ",")) ")
            + (ignored.isEmpty ? "" : "HPVM_PROMISE_IGNORE=\(ignored.sorted().joined(separator: ",")) ")
    }

    static func fromEnvironment() -> WalkSettings {
        let env = ProcessInfo.processInfo.environment
        let seed = env["HPVM_PROMISE_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max)
        return WalkSettings(
            seed: seed,
            steps: env["HPVM_PROMISE_STEPS"].flatMap { Int($0) } ?? 1200,
            walkLength: env["HPVM_PROMISE_WALK_LENGTH"].flatMap { Int($0) } ?? 200,
            maxFindings: env["HPVM_PROMISE_MAX_FINDINGS"].flatMap { Int($0) } ?? 25,
            excluded: Set((env["HPVM_PROMISE_EXCLUDE"] ?? "").split(separator: ",").map(String.init)),
            ignored: Set((env["HPVM_PROMISE_IGNORE"] ?? "").split(separator: ",").map(String.init)))
    }
}

/// One command the walk runs.
struct Step: CustomStringConvertible {
    let kind: String
    let tool: String
    let arguments: [String]

    var description: String {
        ([tool] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

/// A promise violation, with what is needed to replay it.
struct Violation: CustomStringConvertible {
    let walkSeed: UInt64
    let step: Int
    let command: String
    let status: Int32
    let stderr: String
    let findings: [String]
    /// `HPVM_PROMISE_EXCLUDE=… HPVM_PROMISE_IGNORE=…` as the run had them, for the replay line.
    let settingsEnvironment: String

    var description: String {
        "PROMISE VIOLATION seed=\(walkSeed) step=\(step)\n  command: \(command) (exit \(status))\n"
            + (stderr.isEmpty ? "" : "  stderr: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))\n")
            + findings.map { "  finding: \($0)" }.joined(separator: "\n")
            + "\n  replay: \(settingsEnvironment)HPVM_PROMISE_SEED=\(walkSeed) HPVM_PROMISE_STEPS=\(step) HPVM_PROMISE_WALK_LENGTH=\(step) "
            + "swift test --filter PromiseTests"
    }
}

/// Draws the next command from the host's paths and the registry as it is now.
struct StepGenerator {
    let host: WalkHost
    let excluded: Set<String>
    static let guests = ["g1", "g2", "g3", "g4", "g5"]

    /// Step kinds and their weights.
    static let kinds: [(String, Int)] = [
        ("rdev", 6), ("gdev", 6), ("server", 2), ("env", 1), ("recursive", 3), ("share", 6), ("ignorewwid", 2),
        ("delete", 4), ("depend", 1), ("replace", 2), ("repeated", 2), ("create", 7), ("modify-add", 8),
        ("modify-delete", 3), ("remove", 2), ("hostrdev", 1), ("rescan", 1),
    ]

    func next(_ random: inout SplitMix64, registry: RegistrySnapshot) -> Step {
        let kinds = Self.kinds.filter { !excluded.contains($0.0) }
        let total = kinds.reduce(0) { $0 + $1.1 }
        var pick = Int(random.next() % UInt64(max(total, 1)))
        var kind = kinds.first?.0 ?? "gdev"
        for (name, weight) in kinds {
            if pick < weight {
                kind = name
                break
            }
            pick -= weight
        }
        func path() -> String { host.randomPath(&random) }
        func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
        func entryName(_ type: String) -> String {
            let names = registry.entries.filter { $0.type == type }.flatMap(\.names)
            if chance(75), let name = names.randomElement(using: &random) { return name }
            return path()
        }
        func anyGuest() -> String { Self.guests.randomElement(using: &random) ?? "g1" }
        /// Mostly a guest that exists, for the commands that change one.
        func guest() -> String {
            if chance(85), let name = registry.guests.randomElement(using: &random) { return name }
            return anyGuest()
        }
        /// Mostly a free name, for hpvmcreate.
        func newGuest() -> String {
            let free = Self.guests.filter { !registry.guests.contains($0) }
            if chance(85), let name = free.randomElement(using: &random) { return name }
            return anyGuest()
        }
        func statement() -> String {
            let p = path()
            var storage: String
            switch host.kind(of: p) {
            case .lv: storage = "lv"
            case .file: storage = "file"
            default: storage = "disk"
            }
            if chance(10) { storage = ["disk", "lv", "file"].randomElement(using: &random) ?? "disk" }
            return "disk:avio_stor::\(storage):\(p)"
        }
        let devmgmt = "hpvmdevmgmt"
        switch kind {
        case "rdev": return Step(kind: kind, tool: devmgmt, arguments: ["-a", "rdev:\(path())"])
        case "gdev":
            let share = chance(20) ? ":attr:SHARE=YES" : ""
            return Step(kind: kind, tool: devmgmt, arguments: ["-a", "gdev:\(path())\(share)"])
        case "server": return Step(kind: kind, tool: devmgmt, arguments: ["-a", "server:\(path())"])
        case "env": return Step(kind: kind, tool: devmgmt, arguments: ["-a", "env:\(path())"])
        case "recursive":
            let folder = chance(85) ? host.randomPath(&random, kind: .folder) : path()
            let mode = chance(50) ? "DIR" : "FS"
            if chance(25) {
                return Step(kind: kind, tool: devmgmt, arguments: ["-m", "rdev:\(entryName("rdev")):attr:RECURSIVE=\(mode)"])
            }
            return Step(kind: kind, tool: devmgmt, arguments: ["-a", "rdev:\(folder):attr:RECURSIVE=\(mode)"])
        case "share":
            let value = chance(60) ? "YES" : "NO"
            return Step(kind: kind, tool: devmgmt, arguments: ["-m", "gdev:\(entryName("gdev")):attr:SHARE=\(value)"])
        case "ignorewwid":
            let type = chance(70) ? "rdev" : "gdev"
            if chance(25) {
                return Step(kind: kind, tool: devmgmt, arguments: ["-d", "\(type):\(entryName(type)):IGNOREWWID"])
            }
            return Step(kind: kind, tool: devmgmt, arguments: ["-m", "\(type):\(entryName(type)):IGNOREWWID=YES"])
        case "delete":
            let type = chance(60) ? "gdev" : (chance(50) ? "rdev" : "server")
            if chance(15) {
                return Step(kind: kind, tool: devmgmt, arguments: ["-d", "gdev_alias:\(entryName(type))"])
            }
            return Step(kind: kind, tool: devmgmt, arguments: ["-d", "\(type):\(entryName(type))"])
        case "depend":
            return Step(kind: kind, tool: devmgmt, arguments: ["-d", "gdev:\(entryName("gdev")):depend:\(guest())"])
        case "replace":
            let type = chance(80) ? "gdev" : "rdev"
            return Step(kind: kind, tool: devmgmt, arguments: ["-n", "\(type):\(entryName(type)):\(path())"])
        case "repeated":
            let type = ["rdev", "gdev", "rdev", "server"].randomElement(using: &random) ?? "rdev"
            let other = chance(70) ? type : (["rdev", "gdev"].randomElement(using: &random) ?? "gdev")
            return Step(kind: kind, tool: devmgmt, arguments: ["-a", "\(type):\(path())", "-a", "\(other):\(path())"])
        case "create":
            var arguments = ["-P", newGuest()]
            for _ in 0..<Int(random.next() % 3) { arguments += ["-a", statement()] }
            return Step(kind: kind, tool: "hpvmcreate", arguments: arguments)
        case "modify-add":
            var arguments = ["-P", guest(), "-a", statement()]
            if chance(15) { arguments += ["-a", statement()] }
            return Step(kind: kind, tool: "hpvmmodify", arguments: arguments)
        case "modify-delete":
            if chance(80), let resource = registry.resources.randomElement(using: &random) {
                return Step(kind: kind, tool: "hpvmmodify", arguments: [
                    "-P", resource.guest, "-d", "\(resource.deviceType):avio_stor::\(resource.storageType):\(resource.location)",
                ])
            }
            return Step(kind: kind, tool: "hpvmmodify", arguments: ["-P", guest(), "-d", statement()])
        case "remove":
            return Step(kind: kind, tool: "hpvmremove", arguments: ["-P", guest(), "-Q"])
        case "hostrdev":
            let option = chance(70) ? "-u" : (chance(50) ? "-d" : "-r")
            return Step(kind: kind, tool: "hpvmhostrdev", arguments: [option])
        default:
            return Step(kind: "rescan", tool: devmgmt, arguments: ["-I"])
        }
    }
}

/// Tallies for the closing report.
struct WalkTally {
    var steps = 0
    var refused = 0
    var walks = 0
    var byKind: [String: (run: Int, refused: Int)] = [:]
    var statuses: [String: Int] = [:]
    var sampleErrors: [String: String] = [:]
}

/// The model-based random walk: real commands against a generated host, the oracle after every step.
@Suite struct PromiseWalkTests {
    @Test func randomWalkKeepsThePromise() throws {
        let settings = WalkSettings.fromEnvironment()
        print("promise walk: seed \(settings.seed), \(settings.steps) steps, walks of \(settings.walkLength)"
            + (settings.ignored.isEmpty ? "" : ", ignoring findings " + settings.ignored.sorted().joined(separator: ","))
            + (settings.excluded.isEmpty ? "" : ", never drawing " + settings.excluded.sorted().joined(separator: ",")))
        var tally = WalkTally()
        var violations: [Violation] = []
        let started = Date()
        while tally.steps < settings.steps && violations.count < settings.maxFindings {
            let walkSeed = tally.walks == 0 ? settings.seed : SplitMix64.derive(settings.seed, tally.walks)
            let length = min(settings.walkLength, settings.steps - tally.steps)
            tally.walks += 1
            if let violation = try walk(seed: walkSeed, length: length, settings: settings, tally: &tally) {
                print(violation)
                violations.append(violation)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print(
            "promise walk: \(tally.steps) steps in \(tally.walks) walks, \(tally.refused) refused, "
                + String(format: "%.1f s, %.1f steps/s", seconds, Double(tally.steps) / max(seconds, 0.001)))
        for (kind, counts) in tally.byKind.sorted(by: { $0.key < $1.key }) {
            print("  \(kind): \(counts.run) run, \(counts.refused) refused")
        }
        print("  exit statuses: " + tally.statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        if ProcessInfo.processInfo.environment["HPVM_PROMISE_VERBOSE"] != nil {
            for (key, text) in tally.sampleErrors.sorted(by: { $0.key < $1.key }) { print("  sample \(key): \(text)") }
        }
        for violation in violations {
            Issue.record(Comment(rawValue: violation.description))
        }
    }

    /// One walk on a fresh host; returns the first violation, after which the walk ends.
    private func walk(seed: UInt64, length: Int, settings: WalkSettings, tally: inout WalkTally) throws -> Violation? {
        var random = SplitMix64(seed: seed)
        let host = try WalkHost(random: &random)
        defer { host.remove() }
        print("promise walk: walk \(tally.walks) seed \(seed) root \(host.root)")
        let oracle = Oracle(root: host.root)
        let generator = StepGenerator(host: host, excluded: settings.excluded)
        let environment = ["HPVM_ROOT": host.root, "PATH": "/usr/bin:/bin", "HOME": host.root, "LANG": "C.UTF-8"]
        // A first change creates the registry, so that every later refusal has a file to keep.
        let start = try ChildProcess.run(binDirectory + "/hpvmhostrdev", ["-D"], environment: environment)
        guard start.status == 0 else { throw OracleError("hpvmhostrdev -D failed: \(start.stderr)") }
        var registry = try RegistrySnapshot.read(oracle.registryPath)
        let trace = ProcessInfo.processInfo.environment["HPVM_PROMISE_TRACE"] != nil
        for index in 1...max(length, 1) {
            let step = generator.next(&random, registry: registry)
            let before = oracle.registryState()
            let result = try ChildProcess.run(binDirectory + "/" + step.tool, step.arguments, environment: environment)
            let after = oracle.registryState()
            registry = try RegistrySnapshot.read(oracle.registryPath)
            tally.steps += 1
            var counts = tally.byKind[step.kind] ?? (0, 0)
            counts.run += 1
            if result.status != 0 {
                tally.refused += 1
                counts.refused += 1
            }
            tally.byKind[step.kind] = counts
            let statusKey = "\(step.tool):\(result.status)"
            tally.statuses[statusKey, default: 0] += 1
            if result.status != 0 && tally.sampleErrors[statusKey + ":" + step.kind] == nil {
                tally.sampleErrors[statusKey + ":" + step.kind] = "\(step) -> \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
            }
            if trace {
                print("  step \(index): \(step) -> \(result.status) \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            let findings = (oracle.stepFindings(status: result.status, before: before, after: after) + oracle.findings(registry))
                .filter { finding in !settings.ignored.contains { finding.hasPrefix("[\($0)]") } }
            if !findings.isEmpty {
                return Violation(
                    walkSeed: seed, step: index, command: step.description, status: result.status, stderr: result.stderr,
                    findings: findings, settingsEnvironment: settings.replayEnvironment)
            }
        }
        // The registry the walk leaves must verify: its audit chain intact, and its log replayed
        // into the very tables the commands left (issue 12).
        let verify = try ChildProcess.run(binDirectory + "/hpvmaudit", ["verify"], environment: environment)
        if verify.status != 0 {
            return Violation(
                walkSeed: seed, step: length, command: "hpvmaudit verify (after the walk)", status: verify.status,
                stderr: verify.stderr, findings: ["[audit] " + (verify.stdout + verify.stderr).trimmingCharacters(in: .whitespacesAndNewlines)],
                settingsEnvironment: settings.replayEnvironment)
        }
        return nil
    }
}
