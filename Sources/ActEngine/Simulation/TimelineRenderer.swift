public import ActPlaybook

/// Prints a timeline the way `hms-act watch` does:
///
/// ```
/// 🛫 Workflow wf_9123 started
///   ✔ intake               by ai.auto_intake   (1.2 s)
///   ✖ inspection           by inspector#3      (30 s) – meter broken (retrying, attempt 2 next)
///   ⏰ human_review         SLA 4h breached
/// 🏁 COMPLETED in 6 m 28 s
/// ```
public struct TimelineRenderer: Sendable {
    /// Also print dispatches (`▶ … started`), which `watch` leaves out.
    public var showStarts: Bool
    /// Prefix every line with its offset from the start (`+4 h`).
    public var showOffsets: Bool

    public init(showStarts: Bool = false, showOffsets: Bool = false) {
        self.showStarts = showStarts
        self.showOffsets = showOffsets
    }

    /// The whole timeline, one line per entry, ending with a newline.
    public func render(_ report: SimulationReport) -> String {
        var lines = ["🛫 Workflow \(report.runID) started"]
        for entry in report.entries {
            guard let line = line(for: entry) else { continue }
            lines.append(showOffsets ? "+\(Self.format(entry.offset)) " + line : line)
        }
        if !report.status.isFinished {
            lines.append("⏳ \(report.status.rawValue.uppercased()) – waiting, nothing more scripted")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One entry's line; `nil` for entries this renderer leaves out.
    public func line(for entry: TimelineEntry) -> String? {
        let step = entry.step?.rawValue ?? ""
        let suffix = entry.detail.map { " – \($0)" } ?? ""
        func worker(_ symbol: String) -> String {
            var line = "  \(symbol) " + Self.pad(step, 21)
            if let actor = entry.actor { line += "by " + Self.pad(actor, 17) }
            if let duration = entry.duration { line += "(\(Self.format(duration)))" }
            return Self.trimmingTrailingSpaces(line)
        }
        switch entry.kind {
        case .started:
            guard showStarts else { return nil }
            return worker("▶") + suffix
        case .completed: return worker("✔")
        case .failed: return worker("✖") + suffix
        case .timedOut: return "  ⏰ " + Self.pad(step, 21) + (entry.detail ?? "timed out")
        case .skipped: return "  ↷ " + Self.pad(step, 21) + "skipped" + suffix
        case .decision: return "  ⑂ " + Self.pad(step, 21) + (entry.detail ?? "")
        case .slaWarning: return "  ⚠ " + Self.pad(step, 21) + "SLA warning" + suffix
        case .slaViolation: return "  ⏰ " + Self.pad(step, 21) + "SLA violation" + suffix
        case .signal: return "  📨 " + Self.pad(step, 21) + "signal \(entry.detail ?? "")"
        case .approval:
            let symbol = entry.detail?.hasPrefix("approved") == true ? "👍" : "👎"
            return "  \(symbol) " + Self.pad(step, 21) + (entry.detail ?? "") + (entry.actor.map { " by \($0)" } ?? "")
        case .paused: return "  ⏸ paused"
        case .resumed: return "  ▶ resumed" + suffix
        case .cancelRequested: return "  🛑 cancel requested" + suffix
        case .compensationStarted:
            guard showStarts else { return nil }
            return worker("↩") + " compensating"
        case .compensated: return worker("↩") + " compensated"
        case .compensationFailed: return worker("✖") + " compensation failed" + suffix
        case .incident: return "  🚨 " + Self.pad(step, 21) + "incident" + suffix
        case .operatorAction:
            return "  🔧 " + Self.pad(step, 21) + (entry.detail ?? "") + (entry.actor.map { " by \($0)" } ?? "")
        case .ignored: return "  · ignored " + (entry.detail ?? "")
        case .runFinished:
            let took = entry.duration.map { " in \(Self.format($0))" } ?? ""
            switch entry.status ?? .completed {
            case .completed: return "🏁 COMPLETED\(took)"
            case .failed: return "💥 FAILED\(took)" + suffix
            case .cancelled: return "🛑 CANCELLED\(took)" + suffix
            case .queued, .running, .paused, .compensating, .incident:
                return "⏳ \((entry.status ?? .running).rawValue.uppercased())"
            }
        }
    }

    /// `0.4 s`, `15 s`, `6 m 11 s`, `4 h`: tenths below a minute, as `watch` prints them.
    public static func format(_ span: TimeSpan) -> String {
        let ms = span.milliseconds
        if ms >= 100, ms < 60_000 {
            let tenths = ms / 100
            return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
        }
        return span.humanReadable
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private static func trimmingTrailingSpaces(_ text: String) -> String {
        var text = Substring(text)
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
