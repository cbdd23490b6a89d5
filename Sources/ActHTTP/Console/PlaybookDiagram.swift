import ActPlaybook

/// Draws a playbook as an SVG flow, on the server (docs/console.md, "A run"): nothing is fetched from a
/// CDN and no script lays it out.
///
/// Steps stand in a column in playbook order, joined by arrows where one follows the next: tasks as boxes,
/// switches as hexagons, waits as rounded boxes, a parallel block as its branches side by side between a
/// fork bar and a join bar. A jump that skips the next step (a switch case, `next:`, `on_failure`,
/// `on_timeout`) is a labelled arc on the right. With a run's step statuses, each node carries the class
/// of its status and SLA light, and the active ones are marked `current`; the stylesheet colours them.
enum PlaybookDiagram {
    /// What a run says about one step.
    struct StepMark {
        var status: String
        /// `none`, `green`, `yellow`, `red` or `breached`.
        var light: String
    }

    static let nodeWidth = 230
    static let nodeHeight = 46
    static let branchWidth = 170
    static let rowGap = 34
    /// Each jump's lane is wide enough for its label beside it.
    static let laneGap = 64

    /// The SVG element (no XML prologue), `marks` by step id.
    static func svg(_ playbook: Playbook, marks: [String: StepMark] = [:]) -> String {
        let steps = playbook.steps
        // Rows: one per top-level step; a parallel block is one row as wide as its branches.
        let widest = steps.map { step -> Int in
            if case .parallel(let parallel) = step.kind {
                return parallel.branches.count * branchWidth + (parallel.branches.count - 1) * 12
            }
            return nodeWidth
        }.max() ?? nodeWidth
        let centre = max(widest, nodeWidth) / 2 + 24
        var rowTop: [Int] = []
        var y = 76
        for step in steps {
            rowTop.append(y)
            if case .parallel = step.kind { y += nodeHeight + 24 } else { y += nodeHeight }
            y += rowGap
        }
        let endY = y + 14
        var index: [StepID: Int] = [:]
        for (offset, step) in steps.enumerated() where index[step.id] == nil { index[step.id] = offset }

        var body: [String] = []
        var jumps: [(from: Int, to: Int?, label: String, dotted: Bool)] = []
        let triggers = playbook.triggers.isEmpty ? "start" : playbook.triggers.joined(separator: ", ")
        body.append("<g class=\"terminal\"><circle cx=\"\(centre)\" cy=\"26\" r=\"14\"/>"
            + "<text x=\"\(centre + 22)\" y=\"31\" class=\"caption\">\(escape(triggers))</text></g>")
        if !steps.isEmpty { body.append(arrow(x: centre, from: 40, to: rowTop[0])) }

        for (offset, step) in steps.enumerated() {
            let top = rowTop[offset]
            let following = offset + 1 < steps.count ? offset + 1 : nil
            func flowsOn(to target: Int?) {
                if target == following {
                    body.append(arrow(x: centre, from: top + rowHeight(step), to: following.map { rowTop[$0] } ?? endY - 14))
                } else {
                    jumps.append((offset, target, "next", false))
                }
            }
            switch step.kind {
            case .task(let spec):
                var detail = spec.assignee.displayName
                if let forEach = spec.forEach { detail += " · " + forEach.summary }
                if let concurrency = spec.concurrency { detail += " · " + concurrency.summary }
                if spec.requiresApproval { detail += " · approval" }
                if let sla = step.sla { detail += " · SLA \(sla.duration)" }
                body.append(node(step.id.rawValue, detail: detail, x: centre - nodeWidth / 2, y: top, width: nodeWidth,
                    shape: .box, mark: marks[step.id.rawValue]))
                flowsOn(to: step.next.flatMap { index[$0] } ?? following)
            case .wait(let wait):
                let detail = "wait for \(wait.signal)" + (wait.duration.map { " ≤ \($0)" } ?? "")
                body.append(node(step.id.rawValue, detail: detail, x: centre - nodeWidth / 2, y: top, width: nodeWidth,
                    shape: .rounded, mark: marks[step.id.rawValue]))
                flowsOn(to: step.next.flatMap { index[$0] } ?? following)
            case .choice(let choice):
                body.append(node(step.id.rawValue, detail: choice.expressionSource, x: centre - nodeWidth / 2, y: top,
                    width: nodeWidth, shape: .hexagon, mark: marks[step.id.rawValue]))
                for item in choice.cases { jumps.append((offset, index[item.target], item.match, false)) }
                if let fallback = choice.defaultTarget { jumps.append((offset, index[fallback], "default", false)) }
            case .parallel(let parallel):
                let count = parallel.branches.count
                let total = count * branchWidth + (count - 1) * 12
                let left = centre - total / 2
                body.append("<rect class=\"bar\" x=\"\(left)\" y=\"\(top)\" width=\"\(total)\" height=\"5\"/>")
                body.append("<rect class=\"bar\" x=\"\(left)\" y=\"\(top + nodeHeight + 19)\" width=\"\(total)\" height=\"5\"/>")
                body.append("<text x=\"\(left + total + 8)\" y=\"\(top + 8)\" class=\"caption\">\(escape(step.id.rawValue))"
                    + " (\(parallel.join.rawValue))</text>")
                for (branchOffset, branch) in parallel.branches.enumerated() {
                    var detail = ""
                    if case .task(let spec) = branch.kind { detail = spec.assignee.displayName }
                    body.append(node(branch.id.rawValue, detail: detail, x: left + branchOffset * (branchWidth + 12),
                        y: top + 12, width: branchWidth, shape: .box, mark: marks[branch.id.rawValue]))
                }
                flowsOn(to: step.next.flatMap { index[$0] } ?? following)
            }
            if let target = step.onFailure { jumps.append((offset, index[target], "failure", true)) }
            if let target = step.onTimeout { jumps.append((offset, index[target], "timeout", true)) }
        }
        body.append("<g class=\"terminal\"><circle cx=\"\(centre)\" cy=\"\(endY)\" r=\"12\"/>"
            + "<circle class=\"inner\" cx=\"\(centre)\" cy=\"\(endY)\" r=\"6\"/></g>")

        // Jumps: arcs on the right, each in its own lane.
        let right = centre + max(widest, nodeWidth) / 2
        for (lane, jump) in jumps.enumerated() {
            let startY = rowTop[jump.from] + rowHeight(steps[jump.from]) / 2
            let endPoint = jump.to.map { rowTop[$0] + rowHeight(steps[$0]) / 2 } ?? endY
            let laneX = right + 20 + lane * laneGap
            let fromX = edgeX(steps[jump.from], centre: centre)
            let toX = jump.to.map { edgeX(steps[$0], centre: centre) } ?? centre + 12
            let dash = jump.dotted ? " stroke-dasharray=\"4 3\"" : ""
            body.append("<path class=\"jump\" d=\"M\(fromX),\(startY) H\(laneX) V\(endPoint) H\(toX + 6)\"\(dash)"
                + " marker-end=\"url(#arrowhead)\"/>")
            body.append("<text x=\"\(laneX + 5)\" y=\"\((startY + endPoint) / 2 + 4)\" class=\"caption lane\">"
                + "\(escape(clip(jump.label, laneGap + 10)))</text>")
        }
        let width = right + 40 + jumps.count * laneGap + 40
        let height = endY + 24
        let label = "Flow of playbook \(playbook.id.rawValue): " + steps.map(\.id.rawValue).joined(separator: ", ")
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"diagram\" role=\"img\" aria-label=\"\(escape(label))\""
            + " viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\">"
            + "<defs><marker id=\"arrowhead\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\""
            + " markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>"
            + body.joined() + "</svg>"
    }

    private enum Shape { case box, rounded, hexagon }

    private static func rowHeight(_ step: Step) -> Int {
        if case .parallel = step.kind { return nodeHeight + 24 }
        return nodeHeight
    }

    private static func edgeX(_ step: Step, centre: Int) -> Int {
        if case .parallel(let parallel) = step.kind {
            let count = parallel.branches.count
            return centre + (count * branchWidth + (count - 1) * 12) / 2
        }
        return centre + nodeWidth / 2
    }

    private static func arrow(x: Int, from: Int, to: Int) -> String {
        "<path class=\"flow\" d=\"M\(x),\(from) V\(to - 2)\" marker-end=\"url(#arrowhead)\"/>"
    }

    private static func node(_ id: String, detail: String, x: Int, y: Int, width: Int, shape: Shape, mark: StepMark?)
        -> String
    {
        var classes = ["node"]
        if let mark {
            classes.append("status-\(mark.status)")
            classes.append("light-\(mark.light)")
            if ["running", "queued", "awaiting_approval", "waiting"].contains(mark.status) { classes.append("current") }
        }
        let h = nodeHeight
        let outline: String
        switch shape {
        case .box:
            outline = "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(h)\" rx=\"4\"/>"
        case .rounded:
            outline = "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(h)\" rx=\"\(h / 2)\"/>"
        case .hexagon:
            let points = [(x + 14, y), (x + width - 14, y), (x + width, y + h / 2), (x + width - 14, y + h),
                (x + 14, y + h), (x, y + h / 2)].map { "\($0.0),\($0.1)" }.joined(separator: " ")
            outline = "<polygon points=\"\(points)\"/>"
        }
        let status = mark.map { " — \($0.status)" + ($0.light == "none" ? "" : ", SLA \($0.light)") } ?? ""
        return "<g class=\"\(classes.joined(separator: " "))\" data-step=\"\(escape(id))\">"
            + "<title>\(escape(id + status))</title>" + outline
            + "<text x=\"\(x + width / 2)\" y=\"\(y + 19)\" class=\"name\">\(escape(clip(id, width)))</text>"
            + "<text x=\"\(x + width / 2)\" y=\"\(y + 36)\" class=\"detail\">\(escape(clip(detail, width)))</text></g>"
    }

    /// Text cut to what fits in `width` pixels (about 7 per character), with an ellipsis.
    private static func clip(_ text: String, _ width: Int) -> String {
        let fits = max(4, (width - 16) / 7)
        return text.count <= fits ? text : String(text.prefix(fits - 1)) + "…"
    }

    /// Escapes text for XML content and attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
