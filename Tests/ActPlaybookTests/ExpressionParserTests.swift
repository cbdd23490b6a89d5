import ActPlaybook
import Testing

@Suite struct ExpressionParserTests {
    @Test(arguments: [
        ("result.severity", Expression.path(["result", "severity"])),
        ("steps.classify.output.severity", .path(["steps", "classify", "output", "severity"])),
        ("payload.items.0", .path(["payload", "items", "0"])),
        ("payload.items.0.1", .path(["payload", "items", "0", "1"])),
        ("'High'", .literal("High")),
        ("\"a \\\"b\\\"\"", .literal("a \"b\"")),
        ("-2.5", .literal(-2.5)),
        ("1e3", .literal(1000)),
        ("true", .literal(true)),
        ("null", .literal(nil)),
        ("[1, 'a', x.y]", .list([.literal(1), .literal("a"), .path(["x", "y"])])),
        ("[]", .list([])),
        ("payload.amount >= 100", .compare(.greaterOrEqual, .path(["payload", "amount"]), .literal(100))),
        ("a != b", .compare(.notEqual, .path(["a"]), .path(["b"]))),
        ("a < 1 or b > 2 and c <= 3",
            .or(.compare(.less, .path(["a"]), .literal(1)),
                .and(.compare(.greater, .path(["b"]), .literal(2)), .compare(.lessOrEqual, .path(["c"]), .literal(3))))),
        ("(a || b) && !c", .and(.or(.path(["a"]), .path(["b"])), .not(.path(["c"])))),
        ("not a == 1", .not(.compare(.equal, .path(["a"]), .literal(1)))),
        ("result.severity in ['High', 'Critical']",
            .contains(element: .path(["result", "severity"]), collection: .list([.literal("High"), .literal("Critical")]))),
        ("x not in [1]", .not(.contains(element: .path(["x"]), collection: .list([.literal(1)])))),
        ("step(wait_for_fix).timeout", .stepCondition("wait_for_fix", .timeout)),
        ("step(classify).completed and not step(x-y).failed",
            .and(.stepCondition("classify", .completed), .not(.stepCondition("x-y", .failed)))),
        ("step('notify.1').skipped", .stepCondition("notify.1", .skipped)),
        ("step.count == 2", .compare(.equal, .path(["step", "count"]), .literal(2))),
    ])
    func parses(text: String, expected: Expression) throws {
        #expect(try ExpressionParser.parse(text) == expected)
    }

    @Test(arguments: [
        ("", 1, "expected a value (a path, a literal, a list or step(id).…), found the end of the expression"),
        ("a ==", 5, "expected a value (a path, a literal, a list or step(id).…), found the end of the expression"),
        ("a = 1", 3, "'=' is not an operator; use '==' to compare"),
        ("(a == 1", 8, "expected ')' to close the '(' at column 1, found the end of the expression"),
        ("a == 1 == 2", 8,
            "expected an operator (==, !=, <, <=, >, >=, in, and, or) or the end of the expression, found '=='"),
        ("'open", 1, "string is not closed: expected ' before the end"),
        ("step(x).done", 9, "expected one of completed, failed, timeout, skipped, found 'done'"),
        ("step(x)", 8, "expected '.' and one of completed, failed, timeout, skipped after step(x), found the end of the expression"),
        ("[1, 2", 6, "expected ',' or ']' to close the list opened at column 1, found the end of the expression"),
        ("a.", 3, "expected a name or an index after '.', found the end of the expression"),
        ("a and or b", 7, "expected a value (a path, a literal, a list or step(id).…), found 'or'"),
        ("a @ b", 3, "unexpected character '@'"),
        ("3x", 2, "expected an operator after the number 3, found 'x'"),
    ])
    func reportsWhatWasExpectedWhere(text: String, column: Int, message: String) {
        #expect(throws: ExpressionParseError(message: message, column: column)) {
            try ExpressionParser.parse(text)
        }
    }

    @Test func boundsLengthAndDepth() {
        let long = Array(repeating: "a", count: 600).joined(separator: " or ")
        #expect(throws: ExpressionParseError.self) { try ExpressionParser.parse(long) }
        let deep = String(repeating: "(", count: 40) + "a" + String(repeating: ")", count: 40)
        do {
            _ = try ExpressionParser.parse(deep)
            Issue.record("expected a depth error")
        } catch {
            #expect(error.message == "expression is nested more than 32 levels deep")
            #expect(error.column == 33)
        }
        let nots = String(repeating: "not ", count: 40) + "a"
        #expect(throws: ExpressionParseError.self) { try ExpressionParser.parse(nots) }
        let fine = String(repeating: "(", count: 30) + "a" + String(repeating: ")", count: 30)
        #expect(throws: Never.self) { try ExpressionParser.parse(fine) }
    }

    @Test func referencedStepsAreCollected() throws {
        let expression = try ExpressionParser.parse("step(a).completed or (step(b).failed and x in [step(c).timeout])")
        #expect(expression.referencedSteps == ["a", "b", "c"])
    }
}
