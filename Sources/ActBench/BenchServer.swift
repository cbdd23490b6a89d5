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
    /// A plain HTTP/1.0 exchange (``BenchHTTP``), on a thread of its own so its blocking calls never occupy the
    /// cooperative pool.
    static func isReady(port: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: readyzAnswers200(port: port)) }.start()
        }
    }

    private static func readyzAnswers200(port: Int) -> Bool {
        // One second each way: the server is on this machine, and the caller asks again 100 ms later.
        let answer = try? BenchHTTP.exchange(port: port, "GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", timeout: 1)
        return answer?.status == 200
    }

    /// The last 30 lines of the server's log.
    func logTail() -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
    }
}

/// A plain HTTP/1.0 exchange with the server on this machine: the request as written, the whole answer read
/// until the server closes. Blocking; the benchmark's timing loops call it one request at a time.
enum BenchHTTP {
    struct Answer {
        var status: Int
        var head: String
        var body: [UInt8]

        /// A header's value (the first of that name), case-insensitively.
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == name.lowercased() else { continue }
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return nil
        }
    }

    static func exchange(port: Int, _ request: String, timeout seconds: Int = 30) throws -> Answer {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw BenchError("cannot open a socket") }
        defer { close(socket) }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
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
        guard connected == 0 else { throw BenchError("cannot connect to 127.0.0.1:\(port)") }
        let bytes = Array(request.utf8)
        guard send(socket, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            throw BenchError("cannot send to 127.0.0.1:\(port)")
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, answer.count - 3)).first(where: { Array(answer[$0..<$0 + 4]) == separator }) else {
            throw BenchError("no HTTP answer from 127.0.0.1:\(port)")
        }
        let head = String(decoding: answer[..<end], as: UTF8.self)
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return Answer(status: status, head: head, body: Array(answer[(end + 4)...]))
    }
}
