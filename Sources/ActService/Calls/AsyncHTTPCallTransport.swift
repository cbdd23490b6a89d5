internal import AsyncHTTPClient
internal import NIOCore
internal import NIOHTTP1

/// ``HTTPCallTransport`` on AsyncHTTPClient: pooled keep-alive connections on SwiftNIO's event loops
/// (no thread per call), HTTP/1.1 or HTTP/2, TLS with the system's trust store, redirects not followed.
///
/// Call ``shutdown()`` before releasing it: AsyncHTTPClient stops the process when a client that was not
/// shut down is released. ``HTTPCaller`` makes one only while it runs with calls to perform.
public final class AsyncHTTPCallTransport: HTTPCallTransport {
    private let client: HTTPClient

    /// - Parameter connectTimeout: The longest wait for a connection (the whole try is bounded by the
    ///   `timeout` of each ``send(_:timeout:maxBodyBytes:)``).
    public init(connectTimeout: Duration) {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(connectTimeout.wholeMilliseconds)))
        configuration.httpVersion = .automatic
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func send(_ call: HTTPCall, timeout: Duration, maxBodyBytes: Int) async throws(HTTPCallTransportError)
        -> HTTPCallResponse
    {
        var request = HTTPClientRequest(url: call.url)
        request.method = HTTPMethod(rawValue: call.method)
        for (name, value) in call.headers.sorted(by: { $0.key < $1.key }) { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: call.body))
        let deadline = NIODeadline.now() + .milliseconds(timeout.wholeMilliseconds)
        do {
            let response = try await client.execute(request, deadline: deadline)
            // The body is read under the same deadline: a service that trickles its answer is cut off too.
            let body = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await response.body.collect(upTo: maxBodyBytes) }
                group.addTask {
                    let left = deadline - NIODeadline.now()
                    try await Task.sleep(for: .nanoseconds(max(0, left.nanoseconds)))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else { throw HTTPClientError.deadlineExceeded }
                return buffer
            }
            var headers: [String: String] = [:]
            for (name, value) in response.headers { headers[name.lowercased()] = value }
            return HTTPCallResponse(status: Int(response.status.code), headers: headers,
                body: body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? [])
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw .bodyTooLarge(maxBodyBytes)
        } catch let error as HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                throw .timedOut(timeout)
            case .invalidURL, .emptyHost, .emptyScheme:
                throw .invalidRequest("\(error)")
            default:
                throw .unreachable("\(error)")
            }
        } catch {
            throw .unreachable("\(error)")
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
