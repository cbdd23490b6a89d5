import ActPlaybook
import CLibFuzzerDriver
import Foundation

/// libFuzzer harness for the playbook loader: the input is a playbook file (YAML or JSON).
///
/// Loading runs everything a registration runs on outside text: the hostile-input guard, Yams, the reader
/// of every chapter's spelling, validation (references, cycles, expressions, durations). Refusing the input
/// is fine; crashing, hanging or reading out of bounds is the bug. The same bytes go through the agent
/// reader (agents/*.json|yaml), which shares the guard and the scalar readers.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzPlaybook(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? PlaybookLoader.load(yaml: text, file: "fuzz.yaml")
    _ = try? PlaybookLoader.loadAgents(yaml: text, file: "fuzz.json")
    return 0
}

@main
enum FuzzPlaybookMain {
    static func main() {
        exit(hms_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv))
    }
}
