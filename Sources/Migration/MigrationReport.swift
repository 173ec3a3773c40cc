internal import Foundation

/// How `hpvmmigrate -s` prints the target's report.
public enum MigrationReport {
    public static func text(_ report: MigrationReply?, forced: [Finding] = []) -> String {
        guard let report else { return "" }
        var lines: [String] = []
        for error in forced { lines.append("hpvmmigrate: forced past (-F): \(error.kind): \(error.detail)") }
        for warning in report.warnings ?? [] { lines.append("hpvmmigrate: warning: \(warning.kind): \(warning.detail)") }
        for (index, statement) in (report.map ?? []).enumerated() { lines.append("hpvmmigrate: device \(index + 1) on the target: \(statement)") }
        return lines.map { $0 + "\n" }.joined()
    }

    public static func json(_ report: MigrationReply) -> String {
        JSONLine.encode(report)
    }
}
