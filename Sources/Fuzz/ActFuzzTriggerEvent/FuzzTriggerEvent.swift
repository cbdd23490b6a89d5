import ActPlaybook
import ActService
import CLibFuzzerDriver
import Foundation

/// libFuzzer harness for the trigger reader (`hms.events`): CloudEvents binary and structured mode and the
/// chapters' plain JSON, through ``TriggerEvent/init(message:)``.
///
/// Input layout (seeds under fuzz/corpus/trigger-event/ follow it):
///
///     <mode byte> [<headers as a JSON object> NUL] <body>
///
/// The mode byte modulo 3 picks the content type: 0 none, 1 `application/cloudevents+json`, 2
/// `application/json`. When the rest holds a NUL byte, what comes before it is the AMQP header table as JSON
/// (binary mode puts `ce-specversion`, `ce-type`… there); a header part that is not a JSON object is
/// ignored. Refusing the message (``MessageRejection``) is fine; trapping is the bug.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTriggerEvent(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let contentTypes: [String?] = [nil, "application/cloudevents+json", "application/json"]
    var headers: [String: JSONValue] = [:]
    var body = bytes.dropFirst()
    if let nul = body.firstIndex(of: 0) {
        if case .object(let table)? = try? JSONValue(parsing: body[..<nul]) { headers = table }
        body = body[(nul + 1)...]
    }
    let message = InboundMessage(
        exchange: "hms.events", routingKey: "fuzz.event", contentType: contentTypes[Int(bytes[0]) % 3],
        headers: headers, body: Array(body))
    _ = try? TriggerEvent(message: message)
    return 0
}

@main
enum FuzzTriggerEventMain {
    static func main() {
        exit(hms_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv))
    }
}
