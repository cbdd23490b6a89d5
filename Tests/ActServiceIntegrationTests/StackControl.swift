import ActTesting
import Foundation

/// `database-disk-full`: a tmpfs of 48 MB mounted under the stack's folder, a tablespace on it, and the scenario
/// schema's tables moved there, so filling the mount fills the tables' disk and nothing else.
enum SmallTablespace {
    static let name = "hms_fault_small"
    /// The mount point (scripts/lib's shell variables).
    static let directory = "\"$(_pg_base)/small-tablespace\""
    /// What the replicas log when PostgreSQL refuses a write for want of space.
    static let refusal = "sqlState: 53100 (disk_full)"

    /// Mounts, creates the tablespace and moves every table of `schema` onto it (their indexes stay where they
    /// are). Needs root (mount) and the stack's own server (its superuser, through scripts/lib).
    static func moveTables(of schema: String) async throws {
        try await StackControl.shell("""
            mkdir -p \(directory)
            mountpoint -q \(directory) || mount -t tmpfs -o size=48m,mode=0700 tmpfs \(directory)
            chown "$(_pg_os_user)" \(directory)
            rm -f \(directory)/filler
            _pg_psql_admin -d "$HMS_PG_DB" -c "DROP TABLESPACE IF EXISTS \(name)" \
                -c "CREATE TABLESPACE \(name) LOCATION '$(_pg_base)/small-tablespace'"
            _pg_psql_admin -d "$HMS_PG_DB" <<'SQL'
            DO $$ DECLARE t record; BEGIN
              FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = '\(schema)' AND c.relkind = 'r' LOOP
                EXECUTE format('ALTER TABLE %I.%I SET TABLESPACE \(name)', '\(schema)', t.relname);
              END LOOP;
            END $$;
            SQL
            """)
    }

    /// Fills the mount to the last byte (as root: tmpfs keeps nothing back for anyone).
    static let fill = "dd if=/dev/zero of=\(directory)/filler bs=1M 2>/dev/null || true"
    static let free = "rm -f \(directory)/filler"

    /// Moves whatever is left on the tablespace back, drops it and unmounts.
    static func remove() async throws {
        try await StackControl.shell("""
            \(free)
            _pg_psql_admin -d "$HMS_PG_DB" <<'SQL'
            DO $$ DECLARE t record; BEGIN
              FOR t IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       JOIN pg_tablespace s ON s.oid = c.reltablespace WHERE s.spcname = '\(name)' AND c.relkind = 'r' LOOP
                EXECUTE format('ALTER TABLE %I.%I SET TABLESPACE pg_default', t.nspname, t.relname);
              END LOOP;
            END $$;
            SQL
            _pg_psql_admin -d "$HMS_PG_DB" -c "DROP TABLESPACE IF EXISTS \(name)"
            ! mountpoint -q \(directory) || umount \(directory)
            """)
    }
}

/// The stack's own servers, which the fault suites stop, kill, start and reconfigure (scripts/lib).
enum StackControl {
    static var stackDirectory: String {
        ProcessInfo.processInfo.environment["HMS_STACK_DIR"] ?? TestEnvironment.packageRoot + "/.local"
    }

    /// True when the servers under test are the ones scripts/stack started from `HMS_STACK_DIR`.
    static var ownsServers: Bool {
        FileManager.default.fileExists(atPath: stackDirectory + "/rabbitmq/rabbitmq.pid")
            && FileManager.default.fileExists(atPath: stackDirectory + "/postgres/data/postmaster.pid")
    }

    static var brokerPID: pid_t? {
        (try? String(contentsOfFile: stackDirectory + "/rabbitmq/rabbitmq.pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static var postmasterPID: pid_t? {
        (try? String(contentsOfFile: stackDirectory + "/postgres/data/postmaster.pid", encoding: .utf8))
            .flatMap { $0.split(separator: "\n").first.flatMap { pid_t($0) } }
    }

    /// Runs shell commands with scripts/lib's functions loaded (`rmq_up`, `pg_down`, …); throws when they fail.
    static func shell(_ commands: String) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["HMS_STACK_DIR"] = stackDirectory
        let script = "set -euo pipefail; cd \"$1\"; source scripts/lib/common.sh; source scripts/lib/rabbitmq.sh; "
            + "source scripts/lib/postgres.sh; " + commands
        let status = try await spawn(["/bin/bash", "-c", script, "bash", TestEnvironment.packageRoot],
            environment: environment)
        if status != 0 { throw StackError(description: "`\(commands)` exited with \(status)") }
    }

    struct StackError: Error, CustomStringConvertible { var description: String }

    /// `scripts/rabbitmq-cluster` with `arguments` (`up`, `kill 1`, `start 1`, `wait`, `down`): the three-node
    /// cluster of `broker-cluster-node-loss`, beside the stack's own node.
    static func cluster(_ arguments: String...) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["HMS_STACK_DIR"] = stackDirectory
        let status = try await spawn(["/bin/bash", TestEnvironment.packageRoot + "/scripts/rabbitmq-cluster"] + arguments,
            environment: environment)
        if status != 0 { throw StackError(description: "`scripts/rabbitmq-cluster \(arguments.joined(separator: " "))` exited with \(status)") }
    }

    /// The AMQP ports of the cluster's nodes (scripts/rabbitmq-cluster: HMS_CLUSTER_PORT + 20·N).
    static var clusterPorts: [UInt16] {
        let base = ProcessInfo.processInfo.environment["HMS_CLUSTER_PORT"].flatMap(UInt16.init) ?? 56_700
        return (0..<3).map { base + 20 * $0 }
    }

    /// posix_spawn and a blocking waitpid on a thread of its own: Foundation's `Process` did not report
    /// termination reliably inside the test runner, and the cooperative pool must not block.
    static func spawn(_ words: [String], environment: [String: String]) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                let arguments: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
                let variables: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") }
                defer {
                    arguments.forEach { free($0) }
                    variables.forEach { free($0) }
                }
                var pid: pid_t = 0
                let spawned = posix_spawn(&pid, words[0], nil, nil, arguments + [nil], variables + [nil])
                guard spawned == 0 else {
                    continuation.resume(throwing: POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO))
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: (status >> 8) & 0xFF)
            }
        }
    }
}

/// `network-packet-loss`: a network namespace joined to the host by a veth pair, where replica 0 runs, so its
/// packets to RabbitMQ and PostgreSQL cross a real link on which nftables drops a share of them at random:
/// TCP itself sees the loss and retransmits (the kernel here has no `netem`; its nftables has `numgen`).
enum NetworkNamespace {
    static let name = "hms-faults"
    /// The host's end of the pair, where the replica's proxies listen.
    static let hostAddress = "10.213.0.1"

    static func create() async throws {
        try await StackControl.shell("""
            ip netns del \(name) 2>/dev/null || true
            ip link del hmsf0 2>/dev/null || true
            ip netns add \(name)
            ip link add hmsf0 type veth peer name hmsf1
            ip link set hmsf1 netns \(name)
            ip addr add \(hostAddress)/30 dev hmsf0
            ip link set hmsf0 up
            ip netns exec \(name) ip addr add 10.213.0.2/30 dev hmsf1
            ip netns exec \(name) ip link set hmsf1 up
            ip netns exec \(name) ip link set lo up
            """)
    }

    static func remove() async throws {
        try await StackControl.shell("ip netns del \(name) 2>/dev/null || true; ip link del hmsf0 2>/dev/null || true")
    }

    /// Drops `percent` % of the packets leaving and entering the namespace's link, at random.
    static func lose(percent: Int) async throws {
        let share = percent >= 100 ? "" : "numgen random mod 100 < \(percent) "  // nft: 100 is out of mod 100's range
        try await StackControl.shell("""
            ip netns exec \(name) nft -f - <<'NFT'
            table inet hms_loss {
              chain inbound { type filter hook input priority 0; iifname "hmsf1" \(share)counter drop; }
              chain outbound { type filter hook output priority 0; oifname "hmsf1" \(share)counter drop; }
            }
            NFT
            """)
    }

    /// Stops dropping; fails unless some packets were dropped.
    static func stopLosing() async throws {
        try await StackControl.shell("""
            dropped=$(ip netns exec \(name) nft list table inet hms_loss | grep -o 'packets [0-9]*' | awk '{ n += $2 } END { print n + 0 }')
            ip netns exec \(name) nft delete table inet hms_loss
            echo "namespace link: $dropped packets dropped" >&2
            [ "$dropped" -gt 0 ] || { echo 'no packet was dropped on the namespace link' >&2; exit 1; }
            """)
    }
}

