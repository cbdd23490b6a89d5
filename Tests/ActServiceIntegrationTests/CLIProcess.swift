import ActTesting
import Foundation
import Testing

/// The debug `hms-act` binary run as an operator would, for the tests of CLI commands that reach the servers
/// directly (audit, retention).
enum CLIProcess {
    struct Finished {
        var status: Int32
        /// Standard output and standard error together.
        var output: String
    }

    /// Runs `hms-act arguments` with this process's environment minus `HMS_CONFIG`, changed by `environment`
    /// (a `nil` value removes the variable), and waits for it off the pool. A command that hangs fails the test
    /// instead of holding it up: it is killed after `timeout`.
    static func run(_ arguments: [String], environment changes: [String: String?],
        timeout: Duration = .seconds(120)) async throws -> Finished
    {
        let binary = TestEnvironment.packageRoot + "/.build/debug/hms-act"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        var environment = ProcessInfo.processInfo.environment
        environment["HMS_CONFIG"] = nil
        for (name, value) in changes { environment[name] = value }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let watchdog = Task.detached {
            try await Task.sleep(for: timeout)
            if process.isRunning { process.terminate() }
        }
        defer { watchdog.cancel() }
        let output = await Task.detached { pipe.fileHandleForReading.readDataToEndOfFile() }.value
        await Task.detached { process.waitUntilExit() }.value
        return Finished(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }
}
