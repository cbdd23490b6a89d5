import ActPlaybook
import CLibFuzzerDriver
import Foundation

/// libFuzzer harness for the expression language (`expr:`, `when:`): the input is the expression text.
///
/// An expression that parses is evaluated against a context that answers every path with a value of a
/// different type, so the comparisons, `in` and the truthiness rules meet numbers, strings, lists, objects
/// and nulls alike. Refusing the text is fine; trapping (an index out of range, an overflow, deep recursion)
/// is the bug.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzExpression(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let expression = try? ExpressionParser.parse(text) else { return 0 }
    _ = expression.evaluate(in: FuzzContext())
    _ = expression.referencedSteps
    return 0
}

/// Answers each path with one of a fixed set of values, chosen by the path, and each step condition by
/// the step id's length: deterministic, so a crash replays.
struct FuzzContext: ExpressionContext {
    static let values: [JSONValue] = [
        .null, .bool(true), .bool(false), .int(0), .int(-1), .int(Int.max), .number(JSONNumber(floatLiteral: 1e308)),
        .string(""), .string("High"), .array([.int(1), .string("a"), .null]),
        .object(["severity": .string("High"), "amount": .int(42)]),
    ]

    func value(at path: [String]) -> JSONValue? {
        let index = path.reduce(path.count) { $0 &+ $1.utf8.count } % (Self.values.count + 1)
        return index == Self.values.count ? nil : Self.values[index]
    }

    func step(_ id: StepID, is condition: StepCondition) -> Bool {
        "\(id)".utf8.count % 2 == 0
    }
}

@main
enum FuzzExpressionMain {
    static func main() {
        exit(hms_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv))
    }
}
