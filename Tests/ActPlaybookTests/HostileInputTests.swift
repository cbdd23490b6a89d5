import ActPlaybook
import Foundation
import Testing

/// Hostile YAML is refused quickly (each test well under a second) with a clear error.
@Suite(.timeLimit(.minutes(1))) struct HostileInputTests {
    func refusedQuickly(_ yaml: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [Diagnostic] {
        let clock = ContinuousClock()
        var found: [Diagnostic] = []
        let elapsed = clock.measure { found = refusal(yaml, sourceLocation: sourceLocation) }
        #expect(elapsed < .seconds(1), "took \(elapsed)", sourceLocation: sourceLocation)
        return found
    }

    @Test func oversizedFile() {
        let steps = String(repeating: "  - id: s\n    description: \(String(repeating: "x", count: 200))\n", count: 1_300)
        let found = refusedQuickly(playbook(steps))
        #expect(found.codes == ["file-too-large"])
        #expect(found[0].message.contains("at most 262144 bytes (256 KiB)"))
    }

    @Test func billionLaughsAliasBomb() {
        // The classic: twelve levels, each nine aliases of the one before (9^12 nodes once expanded).
        var yaml = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...12 {
            let previous = "*a\(level - 1)"
            yaml += "a\(level): &a\(level) [" + Array(repeating: previous, count: 9).joined(separator: ", ") + "]\n"
        }
        let found = refusedQuickly(yaml)
        #expect(found.codes == ["too-many-aliases"])
        #expect(found[0].location == ActPlaybook.SourceLocation(line: 13, column: 18))
    }

    @Test func aliasBombUnderTheAliasCountHitsTheNodeBudget() {
        // 10 levels of 9 aliases = 90 aliases, but 9^10 nodes once expanded.
        var yaml = "id: Bomb\ntrigger: x\nsteps:\n  - id: s\n    input:\n      a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        for level in 1...10 {
            yaml += "      a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
                + "]\n"
        }
        let found = refusedQuickly(yaml)
        #expect(found.codes == ["too-large"])
        #expect(found[0].message == "the YAML expands to more than 100000 nodes (aliases are expanded)")
    }

    @Test func deepNesting() {
        let flow = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        let found = refusedQuickly("id: Deep\nsteps: \(flow)\n")
        #expect(found.codes == ["too-deep"])
        #expect(found[0].location?.line == 2)

        var block = "id: Deep\nsteps:\n"
        for depth in 0..<80 { block += String(repeating: "  ", count: depth) + "k\(depth):\n" }
        #expect(refusedQuickly(block).codes == ["too-deep"])
        #expect(refusedQuickly("id: Deep\nsteps:\n" + String(repeating: "- ", count: 70) + "x\n").codes == ["too-deep"])
    }

    @Test func severalDocuments() {
        let found = refusedQuickly("id: One\nsteps:\n  - id: a\n---\nid: Two\nsteps:\n  - id: b\n")
        #expect(found.codes == ["multiple-documents"])
        #expect(found[0].location?.line == 4)
        #expect(found[0].fix == "put each playbook in a file of its own")
        // A leading document marker alone is fine.
        #expect(diagnostics("---\nid: One\ntrigger: x\nsteps:\n  - id: a\n").isEmpty)
    }

    @Test func customTags() {
        let found = refusedQuickly("id: Tagged\ntrigger: x\nsteps:\n  - id: a\n    agent: !shell rm -rf /\n")
        #expect(found.codes == ["unknown-tag"])
        #expect(found[0].message == "the YAML tag '!shell' is not supported")
        #expect(found[0].location == ActPlaybook.SourceLocation(line: 5, column: 12))
        #expect(refusedQuickly("id: !!python/object:os.system x\nsteps: []\n").codes == ["unknown-tag"])
        // Standard tags are fine.
        #expect(diagnostics("id: !!str Tagged\ntrigger: x\nsteps:\n  - id: a\n").isEmpty)
    }

    @Test func duplicateKeys() {
        let found = refusedQuickly("id: Dup\ntrigger: x\nsteps:\n  - id: a\n    agent: ai.x\n    agent: ai.y\n")
        #expect(found.codes == ["duplicate-key"])
        #expect(found[0].message == "the key 'agent' appears more than once in the same mapping (first at line 5)")
        #expect(found[0].location == ActPlaybook.SourceLocation(line: 6, column: 5))
    }

    /// Found by the playbook fuzzer (scripts/fuzz): libyaml counts `\r`, `\r\n`, NEL, LS and PS as line breaks,
    /// the source map counted only `\n`, and a duplicate key on a line past the last `\n` trapped
    /// ("Range requires lowerBound <= upperBound") instead of being reported.
    @Test(arguments: ["\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"])
    func duplicateKeysAfterLineBreaksOtherThanLineFeed(lineBreak: String) {
        let yaml = ["id: Dup", "trigger: x", "steps:", "  - id: a", "    agent: ai.x", "    agent: ai.y", ""]
            .joined(separator: lineBreak)
        let found = refusedQuickly(yaml)
        #expect(found.codes == ["duplicate-key"])
        #expect(found.first?.location == ActPlaybook.SourceLocation(line: 6, column: 5))
    }

    @Test func nonStringKeys() {
        #expect(refusedQuickly("id: K\nsteps:\n  - id: a\n    [x, y]: 1\n").codes == ["non-string-key"])
        #expect(refusedQuickly("id: K\nsteps:\n  - id: a\n    ? complex\n    : value\n").codes == ["non-string-key"])
        #expect(refusedQuickly("id: K\nx: &k key\nsteps:\n  - id: a\n    *k : value\n").codes == ["non-string-key"])
        #expect(refusedQuickly("id: K\ntrigger: x\n~: nothing\nsteps:\n  - id: a\n").codes == ["non-string-key"])
    }

    @Test func plainScalarsThatLookLikeIndicatorsAreFine() {
        #expect(diagnostics("""
            id: Fine
            trigger: x
            description: why? because * and & and ! and [brackets] are text here, it's fine
            steps:
              - id: a
                description: |
                  - not: a list
                  *not an alias
            """).isEmpty)
    }

    @Test func tabsAndBrokenIndentationGiveAPosition() {
        let found = refusedQuickly("id: T\nsteps:\n  - id: a\n\tagent: ai.x\n")
        #expect(found.first?.code == "yaml-syntax")
        #expect(found.first?.location?.line == 4)
    }
}
