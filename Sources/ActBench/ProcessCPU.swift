import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time of the processes a benchmark loads, read from `/proc`: where each transition's CPU goes.
///
/// The servers are found by the port they listen on (the socket inode in `/proc/net/tcp`, then the process
/// holding it), so only the stack the benchmark talks to is counted; PostgreSQL includes its backends.
struct ProcessCPU: Sendable {
    /// Named groups of process ids, e.g. `"rabbitmq": [4711]`.
    let groups: [String: [Int32]]

    init(server: Int32, amqpPort: Int?, postgresPort: Int?) {
        var groups: [String: [Int32]] = ["hms-act serve": [server], "bench driver": [getpid()]]
        if let port = amqpPort, let pid = Self.listener(port: port) { groups["rabbitmq"] = [pid] }
        if let port = postgresPort, let pid = Self.listener(port: port) {
            groups["postgresql"] = [pid] + Self.children(of: pid)
        }
        self.groups = groups
    }

    /// CPU seconds (user + system) used so far by each group's processes.
    func sample() -> [String: Double] {
        groups.mapValues { pids in pids.reduce(0) { $0 + Self.cpuSeconds($1) } }
    }

    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The process with a socket listening on `port` (IPv4 or IPv6), if this user can see it.
    static func listener(port: Int) -> Int32? {
        let hexPort = String(format: ":%04X", port)
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // local_address, rem_address, st (0A = LISTEN), …, inode is field 10.
                if fields.count > 9, fields[1].hasSuffix(hexPort), fields[3] == "0A" { inodes.insert(String(fields[9])) }
            }
        }
        guard !inodes.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in pids.compactMap(Int32.init) {
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for fd in fds {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                    target.hasPrefix("socket:["), inodes.contains(String(target.dropFirst(8).dropLast()))
                {
                    return pid
                }
            }
        }
        return nil
    }

    static func children(of parent: Int32) -> [Int32] {
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return pids.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }
    }
}
