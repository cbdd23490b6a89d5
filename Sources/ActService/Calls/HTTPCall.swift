public import ActPlaybook
internal import ActStore
internal import ActEngine
internal import Foundation

/// One `call:` step attempt as an HTTP request, and what its answer means. Pure: ``HTTPCaller`` does
/// the I/O through an ``HTTPCallTransport``.
///
/// The request: `METHOD <base URL><path>` where the base URL is the service's (the path's first segment,
/// ``ServiceConfiguration/Calls/services``) or the default one; the body is the step's `input:` as JSON,
/// else the trigger's payload; headers `Content-Type: application/json`, `Idempotency-Key` (task id `#`
/// attempt: the same for every try of one attempt, new for the next attempt), `traceparent`, and
/// `X-HMS-Run-ID`, `X-HMS-Step-ID`, `X-HMS-Task-ID`, `X-HMS-Attempt`.
///
/// The answer: 2xx completes the step with the response body as its output (JSON as is; other text as
/// `{"status": …, "body": "…"}`; no body as `{"status": …}`). 408, 429 and 5xx, a timeout or a refused
/// connection are tried again (up to ``ServiceConfiguration/Calls/attempts``), then fail the attempt as
/// retryable, so the step's `retry:` decides. Any other status (4xx, a redirect) fails it as not
/// retryable: sending the same request again cannot help.
public struct HTTPCall: Sendable, Hashable {
    public var method: String
    public var url: String
    /// The called service: the first segment of the path (`finance` in `POST /finance/freeze`).
    public var service: String
    public var headers: [String: String]
    public var body: [UInt8]
    public var taskID: String
    public var attempt: Int

    /// What a call task message does not allow (a task published before calls were configured, or an
    /// edited row): the attempt fails as not retryable with this reason.
    public struct Unperformable: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// A request as it is (the span exporter's POSTs); `taskID` and `attempt` name what it is for in logs.
    public init(method: String, url: String, service: String, headers: [String: String], body: [UInt8],
        taskID: String, attempt: Int)
    {
        self.method = method
        self.url = url
        self.service = service
        self.headers = headers
        self.body = body
        self.taskID = taskID
        self.attempt = attempt
    }

    /// The request for one task message (the `hms.task` body kept in `pull_tasks`).
    ///
    /// - Parameters:
    ///   - message: The task message, with its `call` object.
    ///   - baseURLs: Base URL per service.
    ///   - defaultBaseURL: For services without one ("": none).
    public init(message: [UInt8], baseURLs: [String: String], defaultBaseURL: String) throws(Unperformable) {
        guard case .object(let task)? = try? JSONValue(parsing: message),
            let taskID = task["task_id"]?.stringValue, let attempt = task["attempt"]?.numberValue?.intValue
        else {
            throw Unperformable(description: "the task message is not a task (no task_id and attempt)")
        }
        guard case .object(let call)? = task["call"], let method = call["method"]?.stringValue,
            let path = call["path"]?.stringValue, path.hasPrefix("/")
        else {
            throw Unperformable(description: "the task message names no call (method and path)")
        }
        let service = CallScope.service(ofPath: path)
        guard let base = baseURLs[service] ?? (defaultBaseURL.isEmpty ? nil : defaultBaseURL) else {
            throw Unperformable(description: "no base URL for service \(service) of \(method) \(path): set calls.services "
                + "(HMS_CALL_SERVICES=\(service)=http://…) or calls.base_url (HMS_CALL_BASE_URL), then retry the step")
        }
        self.method = method
        self.url = base + path
        self.service = service
        self.taskID = taskID
        self.attempt = attempt
        let input = task["input"] ?? .null
        self.body = (input == .null ? task["payload"] ?? .object([:]) : input).canonicalEncoding
        var headers = [
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "hms-act",
            "Idempotency-Key": "\(taskID)#\(attempt)",
            "X-HMS-Task-ID": taskID,
            "X-HMS-Attempt": String(attempt),
        ]
        if let run = task["run_id"]?.stringValue { headers["X-HMS-Run-ID"] = run }
        if let step = task["step_id"]?.stringValue { headers["X-HMS-Step-ID"] = step }
        if let traceparent = call["traceparent"]?.stringValue { headers["traceparent"] = traceparent }
        self.headers = headers
    }

    /// What one try came to.
    public enum Verdict: Sendable, Hashable {
        case completed(output: JSONValue)
        /// Worth another try: after `after` when the service said (`Retry-After`).
        case tryAgain(reason: String, after: Duration?)
        /// Trying again cannot help.
        case failed(reason: String)
    }

    /// The verdict on an answer.
    public func verdict(on response: HTTPCallResponse) -> Verdict {
        let status = response.status
        let summary = "\(method) \(url) answered \(status)"
        switch status {
        case 200..<300:
            return .completed(output: Self.output(status: status, body: response.body))
        case 408, 429, 500..<600:
            return .tryAgain(reason: summary + Self.excerpt(response.body),
                after: Self.retryAfter(response.headers["retry-after"]))
        case 300..<400:
            let location = response.headers["location"].map { " (to \($0))" } ?? ""
            return .failed(reason: summary + ", a redirect\(location); hms-act does not follow redirects: point the "
                + "service's base URL at the final address")
        default:
            return .failed(reason: summary + Self.excerpt(response.body))
        }
    }

    /// The verdict on a try that got no answer.
    public func verdict(on error: HTTPCallTransportError) -> Verdict {
        switch error {
        case .timedOut(let limit):
            .tryAgain(reason: "\(method) \(url) gave no answer within \(limit.wholeMilliseconds) ms (calls.timeout_ms)", after: nil)
        case .unreachable(let detail):
            .tryAgain(reason: "\(method) \(url) could not be reached: \(detail)", after: nil)
        case .bodyTooLarge(let limit):
            .failed(reason: "\(method) \(url) answered with a body over \(limit) bytes (calls.max_response_bytes); "
                + "answer with less, or raise the limit")
        case .invalidRequest(let detail):
            .failed(reason: "\(method) \(url) cannot be sent: \(detail)")
        }
    }

    /// The step's output for a 2xx answer.
    static func output(status: Int, body: [UInt8]) -> JSONValue {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return ["status": .int(status)]
        }
        if let json = try? JSONValue(parsing: body) { return json }
        return ["status": .int(status), "body": .string(String(decoding: body, as: UTF8.self))]
    }

    /// The first 300 characters of an error body, for the reason.
    static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(1_200), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return "" }
        return ": " + (text.count > 300 ? String(text.prefix(300)) + "…" : text)
    }

    /// `Retry-After` in seconds (an HTTP date is not honoured), at most 60 s.
    static func retryAfter(_ value: String?) -> Duration? {
        guard let value, let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 else { return nil }
        return .seconds(min(seconds, 60))
    }
}

/// An HTTP answer: its status, headers (names lower-cased) and body.
public struct HTTPCallResponse: Sendable, Hashable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A try that got no answer.
public enum HTTPCallTransportError: Error, Sendable, Hashable {
    case timedOut(Duration)
    case unreachable(String)
    case bodyTooLarge(Int)
    case invalidRequest(String)
}

/// The HTTP client port of ``HTTPCaller`` (AsyncHTTPClient in production, ``AsyncHTTPCallTransport``).
public protocol HTTPCallTransport: Sendable {
    /// Sends one request; throws ``HTTPCallTransportError`` when no answer came.
    func send(_ call: HTTPCall, timeout: Duration, maxBodyBytes: Int) async throws(HTTPCallTransportError)
        -> HTTPCallResponse
    /// Closes the connections.
    func shutdown() async
}

extension Duration {
    /// Whole milliseconds.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds.
    var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
