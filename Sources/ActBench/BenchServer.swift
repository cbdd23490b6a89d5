import ActStore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `hms-act serve` process for the benchmark: its own schema, exchanges and queues, its HTTP port,
/// its log file; measured from outside (RSS from `/proc`), stopped with SIGTERM like Kubernetes does.
final class BenchServer: @unchecked Sendable {
    let process: Process
    let logPath: String

    /// Starts `binary serve` with `environment` added to this process's own and waits for `/readyz`.
    ///
    /// - Throws: ``BenchError`` with the tail of the server's log when it exits or is not ready in 60 s.
    init(binary: String, environment: [String: String], port: Int, logPath: String) async throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw BenchError("cannot write the server log \(logPath)")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"]
        var serverEnvironment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        // A production-mode server needs a checkpoint signing key; the benchmark's own is as good as any.
        if serverEnvironment["HMS_AUDIT_SIGNING_KEY"] == nil {
            serverEnvironment["HMS_AUDIT_SIGNING_KEY"] = AuditSigningKey.generate().base64
        }
        process.environment = serverEnvironment
        process.standardOutput = log
        process.standardError = log
        do {
            try process.run()
        } catch {
            throw BenchError("cannot start \(binary) serve: \(error); build it first (swift build -c release --product hms-act)")
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw BenchError("hms-act serve exited with status \(process.terminationStatus) before it was ready:\n\(logTail())")
            }
            if await Self.isReady(port: port) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw BenchError("hms-act serve was not ready within 60 s:\n\(logTail())")
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

    /// Whether `GET /readyz` on `127.0.0.1:port` answers 200.
    ///
    /// A plain HTTP/1.0 exchange over a socket, on a thread of its own so its blocking calls never occupy the
    /// cooperative pool (the way `hms-act`'s own API client talks, without depending on that executable).
    static func isReady(port: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: readyzAnswers200(port: port)) }.start()
        }
    }

    private static func readyzAnswers200(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        // One second each way: the server is on this machine, and the caller asks again 100 ms later.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return false }
        let request = Array("GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(socket, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return false }
        // The status line is all that matters: "HTTP/1.1 200 …".
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while answer.count < 12 {
            let count = recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        let statusLine = String(decoding: answer.prefix(12), as: UTF8.self)
        return statusLine.hasPrefix("HTTP/1.") && statusLine.hasSuffix(" 200")
    }

    /// The last 30 lines of the server's log.
    func logTail() -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
    }
}
