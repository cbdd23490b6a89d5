import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `hms-act serve` process for the benchmark: its own schema, exchanges and queues, its HTTP port,
/// its log file; measured from outside (RSS from `/proc`), stopped with SIGTERM like Kubernetes does.
final class BenchServer: @unchecked Sendable {
    let process: Process
    let logPath: String
    let baseURL: URL

    /// Starts `binary serve` with `environment` added to this process's own and waits for `/readyz`.
    ///
    /// - Throws: ``CLIError`` with the tail of the server's log when it exits or is not ready in 60 s.
    init(binary: String, environment: [String: String], port: Int, logPath: String) async throws {
        self.logPath = logPath
        self.baseURL = URL(string: "http://127.0.0.1:\(port)")!
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw CLIError("cannot write the server log \(logPath)")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        do {
            try process.run()
        } catch {
            throw CLIError("cannot start \(binary) serve: \(error); build it first (swift build -c release)")
        }
        let client = APIClient(baseURL: baseURL, token: nil)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw CLIError("hms-act serve exited with status \(process.terminationStatus) before it was ready:\n\(logTail())")
            }
            if let response = try? await client.get("/readyz"), response.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw CLIError("hms-act serve was not ready within 60 s:\n\(logTail())")
    }

    /// Resident set size of the server process in bytes (`VmRSS` of `/proc/<pid>/status`).
    func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }

    /// SIGTERM, then waits up to 30 s for the graceful drain (SIGKILL after that).
    @discardableResult
    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    /// The last 30 lines of the server's log.
    func logTail() -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
    }
}
