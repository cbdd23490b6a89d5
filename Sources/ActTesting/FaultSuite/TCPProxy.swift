import Foundation
import Synchronization

/// A TCP proxy on loopback between hms-act and one server, for the fault suite's network scenarios: it
/// forwards bytes both ways, and on command holds them (a partition), delays them (a slow link) or cuts
/// every connection (a flaky one). Given several upstreams (the nodes of a cluster), it connects each new
/// client to the next one that accepts, as a Kubernetes Service in front of a StatefulSet would. Blocking
/// sockets, two threads per connection: a test tool for tens of connections, not a load balancer.
public final class TCPProxy: Sendable {
    /// What the proxy does with the bytes it carries.
    public enum Mode: Sendable, Equatable {
        /// Forwards at once.
        case pass
        /// Forwards nothing, in either direction, and connects no new client upstream: packets are neither
        /// delivered nor refused, as in a partition. What was sent meanwhile waits in the kernel's buffers and
        /// flows once the mode changes, as TCP's retransmissions would deliver it after a short partition.
        case held
        /// Forwards each chunk read after this many milliseconds.
        case delayed(milliseconds: Int)
    }

    /// The port the proxy listens on (on `listenAddress`, 127.0.0.1 by default).
    public let port: UInt16
    private let upstreamPorts: [UInt16]
    private let listener: Int32
    private let state = Mutex(State())

    private struct State {
        var mode = Mode.pass
        var stopped = false
        var connections: [ObjectIdentifier: Connection] = [:]
        /// Where the next client's upstream search starts (round robin over `upstreamPorts`).
        var nextUpstream = 0
    }

    /// Listens on an ephemeral loopback port and forwards to `127.0.0.1:upstreamPort`.
    public convenience init(upstreamPort: UInt16) throws {
        try self.init(upstreamPorts: [upstreamPort])
    }

    /// Listens on an ephemeral port of `listenAddress` (loopback by default; the host's end of a veth pair for
    /// a replica in a network namespace) and forwards each new client to the first of
    /// `127.0.0.1:upstreamPorts` that accepts, starting one further for each client; a client that none
    /// accepts is closed.
    public init(upstreamPorts: [UInt16], listenAddress: String = "127.0.0.1") throws {
        precondition(!upstreamPorts.isEmpty, "a proxy needs an upstream")
        self.upstreamPorts = upstreamPorts
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ProxyError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        guard inet_pton(AF_INET, listenAddress, &address.sin_addr) == 1 else {
            close(listener)
            throw ProxyError("\(listenAddress) is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw ProxyError("bind/listen on \(listenAddress): \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// The mode from now on; connections already open follow it too.
    public var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// How many connections are open now.
    public var open: Int { state.withLock { $0.connections.count } }

    /// How many connections are open now to `127.0.0.1:upstreamPort`.
    public func open(to upstreamPort: UInt16) -> Int {
        state.withLock { $0.connections.values.filter { $0.upstreamPort == upstreamPort }.count }
    }

    /// Closes every open connection at once (both ends see the other go), as a link that drops would;
    /// new connections are accepted as usual. Returns how many were cut.
    @discardableResult
    public func cutAll() -> Int {
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { connection.cut() }
        return connections.count
    }

    /// Stops accepting and cuts every connection.
    public func stop() {
        let connections = state.withLock { state -> [Connection]? in
            guard !state.stopped else { return nil }  // closing the listener twice could close someone else's descriptor
            state.stopped = true
            return Array(state.connections.values)
        }
        guard let connections else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in connections { connection.cut() }
    }

    deinit { stop() }

    // MARK: Forwarding

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    /// A socket connected to the next upstream that accepts, and its port, or `nil` when none does.
    private func connectUpstream() -> (socket: Int32, port: UInt16)? {
        let first = state.withLock { state in
            defer { state.nextUpstream = (state.nextUpstream + 1) % upstreamPorts.count }
            return state.nextUpstream
        }
        for offset in upstreamPorts.indices {
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard upstream >= 0 else { return nil }
            let port = upstreamPorts[(first + offset) % upstreamPorts.count]
            var address = Self.loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if connected == 0 { return (upstream, port) }
            close(upstream)
        }
        return nil
    }

    private func acceptLoop() {
        while !stopped {
            if mode == .held {
                usleep(10_000)
                continue
            }
            var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            // While held, a client already accepted waits here, unconnected, like a SYN that gets no answer.
            while mode == .held, !stopped { usleep(10_000) }
            guard let (upstream, upstreamPort) = connectUpstream() else {
                close(client)
                continue
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(upstream, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let connection = Connection(client: client, upstream: upstream, upstreamPort: upstreamPort)
            state.withLock { $0.connections[ObjectIdentifier(connection)] = connection }
            for (from, to) in [(client, upstream), (upstream, client)] {
                Thread.detachNewThread { [self] in
                    pump(from: from, to: to, connection)
                    if connection.pumpEnded() {
                        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
                    }
                }
            }
        }
    }

    /// Copies `from` → `to` until either side closes or the connection is cut, following the mode.
    private func pump(from: Int32, to: Int32, _ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !connection.isCut {
            let mode = self.mode
            if mode == .held {
                usleep(10_000)
                continue
            }
            var ready = pollfd(fd: from, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            if case .delayed(let milliseconds) = mode { usleep(useconds_t(milliseconds * 1_000)) }
            var sent = 0
            while sent < count {
                // MSG_NOSIGNAL: a peer gone mid-write must end this connection, not the test process (SIGPIPE).
                let written = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { break }
                sent += written
            }
            guard sent == count else { break }
        }
        connection.cut()
    }

    /// One client's connection and its upstream one; closed once both pumps have ended.
    private final class Connection: Sendable {
        let client: Int32
        let upstream: Int32
        /// The upstream's port (which node of a cluster the client reached).
        let upstreamPort: UInt16
        private let flags = Mutex((cut: false, pumps: 2))

        init(client: Int32, upstream: Int32, upstreamPort: UInt16) {
            self.client = client
            self.upstream = upstream
            self.upstreamPort = upstreamPort
        }

        var isCut: Bool { flags.withLock { $0.cut } }

        /// Shuts both sockets down (the pumps notice and end).
        func cut() {
            let first = flags.withLock { flags -> Bool in
                defer { flags.cut = true }
                return !flags.cut
            }
            guard first else { return }
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
        }

        /// - Returns: True for the last pump, which closes the sockets.
        func pumpEnded() -> Bool {
            let last = flags.withLock { flags -> Bool in
                flags.pumps -= 1
                return flags.pumps == 0
            }
            if last {
                close(client)
                close(upstream)
            }
            return last
        }
    }
}

/// A proxy that cannot start, and why.
public struct ProxyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
