import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request and its answer over a plain TCP socket (`Connection: close`), on a thread of its
/// own so the blocking calls never occupy the cooperative pool.
///
/// The CLI speaks to hms-act's own API, so this is all it needs; it keeps `URLSession` (and with it
/// libcurl) out of the binary, whose only shared libraries are then libc, libstdc++, librabbitmq and libpq.
/// TLS is not spoken: reach a remote API through `kubectl port-forward`, or run the CLI in the pod.
enum HTTPExchange {
    struct Answer: Sendable {
        var status: Int
        /// Header names in lower case.
        var headers: [String: String]
        var body: Data
    }

    enum Failure: Error, Sendable {
        /// No connection could be made (the reason as the system says it).
        case unreachable(String)
        /// The server did not answer within the timeout.
        case timedOut
        /// The bytes that came back are not an HTTP/1.1 answer.
        case malformed(String)
    }

    /// Sends `request` (a complete HTTP/1.1 request) to `host:port` and reads the answer until the server
    /// closes the connection.
    static func perform(host: String, port: Int, request: [UInt8], timeoutSeconds: Int = 30) async throws(Failure)
        -> Answer
    {
        let result: Result<Answer, Failure> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { () throws(Failure) in
                    try exchange(host: host, port: port, request: request, timeoutSeconds: timeoutSeconds)
                })
            }
            thread.start()
        }
        return try result.get()
    }

    private static func exchange(host: String, port: Int, request: [UInt8], timeoutSeconds: Int) throws(Failure) -> Answer {
        let socket = try connect(host: host, port: port, timeoutSeconds: timeoutSeconds)
        defer { close(socket) }
        var sent = 0
        while sent < request.count {
            let count = request.withUnsafeBytes { bytes in
                send(socket, bytes.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw Self.failure(errno) }
            sent += count
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.failure(errno)
            }
            answer.append(contentsOf: buffer[0..<count])
        }
        return try parse(answer)
    }

    private static func failure(_ code: Int32) -> Failure {
        code == EAGAIN || code == EWOULDBLOCK ? .timedOut : .unreachable(String(cString: strerror(code)))
    }

    private static func connect(host: String, port: Int, timeoutSeconds: Int) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var addresses: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &addresses)
        guard status == 0, let first = addresses else {
            throw .unreachable("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(addresses) }
        var reason = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let address = next {
            next = address.pointee.ai_next
            let socket = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
            guard socket >= 0 else {
                reason = String(cString: strerror(errno))
                continue
            }
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            _ = setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if Glibc.connect(socket, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return socket }
            reason = String(cString: strerror(errno))
            close(socket)
        }
        throw .unreachable(reason)
    }

    /// Reads a whole HTTP/1.1 answer: status line, headers, then a body that is chunked, sized by
    /// `Content-Length`, or everything up to the end.
    static func parse(_ bytes: [UInt8]) throws(Failure) -> Answer {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.firstRange(of: separator) else {
            throw .malformed("the answer ended before its headers did (\(bytes.count) bytes)")
        }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = head.first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw .malformed("'\(statusLine.prefix(80))' is not an HTTP/1.1 status line")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try dechunk(body)
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            guard body.count >= length else {
                throw .malformed("the body ended after \(body.count) of its \(length) bytes")
            }
            body = Array(body.prefix(length))
        }
        return Answer(status: status, headers: headers, body: Data(body))
    }

    private static func dechunk(_ bytes: [UInt8]) throws(Failure) -> [UInt8] {
        var body: [UInt8] = []
        var index = 0
        let lineEnd: [UInt8] = [13, 10]
        while true {
            guard let end = bytes[index...].firstRange(of: lineEnd) else { throw .malformed("a chunk size line is cut off") }
            let sizeText = String(decoding: bytes[index..<end.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw .malformed("'\(sizeText)' is not a chunk size")
            }
            index = end.upperBound
            if size == 0 { return body }
            guard index + size <= bytes.count else { throw .malformed("a chunk is cut off") }
            body.append(contentsOf: bytes[index..<(index + size)])
            index += size + 2
        }
    }
}
