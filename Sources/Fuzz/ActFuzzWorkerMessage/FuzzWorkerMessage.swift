import ActPlaybook
import ActService
import CLibFuzzerDriver
import Foundation

/// libFuzzer harness for the worker-message reader (`hms.results`): task results, signals and approvals,
/// through ``WorkerMessage/init(message:)`` and the inbox key a read message gets.
///
/// Input layout (seeds under fuzz/corpus/worker-message/ follow it):
///
///     <kind byte> <body>
///
/// The kind byte modulo 4 picks the AMQP `type` property: 0 none (the kind is read from the fields), 1
/// `hms.task.result`, 2 `hms.signal`, 3 `hms.approval`. Refusing the message is fine; trapping is the bug.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzWorkerMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let types: [String?] = [nil, "hms.task.result", "hms.signal", "hms.approval"]
    let message = InboundMessage(
        exchange: "hms.results", routingKey: "result.fuzz", contentType: "application/json",
        type: types[Int(bytes[0]) % 4], messageID: "fuzz-1", body: Array(bytes.dropFirst()))
    if let read = try? WorkerMessage(message: message) {
        _ = read.inboxKey(messageID: message.messageID)
        _ = read.runID
    }
    return 0
}

@main
enum FuzzWorkerMessageMain {
    static func main() {
        exit(hms_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv))
    }
}
