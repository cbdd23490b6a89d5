import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Testing

/// `hms-act audit export-checkpoints` against the real broker, then `hms-act audit verify --checkpoints` on
/// what it wrote, as the operations guide has it: the published checkpoints kept outside the database are
/// the witness the database is compared with, and an edited file is caught.
@Suite struct CheckpointExportTests {
    /// Runs the CLI with the test system's broker, exchanges and database.
    static func cli(_ arguments: [String], system: System) async throws -> CLIProcess.Finished {
        let c = system.configuration
        return try await CLIProcess.run(arguments, environment: [
            "AMQP_URL": c.amqp.url, "POSTGRES_URL": c.postgres.url, "HMS_POSTGRES_SCHEMA": c.postgres.schema,
            "HMS_EXCHANGE_GOVERNANCE": c.amqp.exchanges.governance,
        ], timeout: .seconds(60))
    }

    @Test func exportedCheckpointsVerifyTheDatabaseAndAnEditedFileIsCaught() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoints-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/checkpoints.jsonl"
        try await SystemHarness.run(playbooks: [ReliabilityTests.noise], configure: { configuration in
            configuration.audit.checkpointIntervalSeconds = 1
        }) { _ in .complete([:]) } _: { system in
            let queue = "\(system.configuration.amqp.exchanges.governance).checkpoints"
            let export = ["audit", "export-checkpoints", "--queue", queue, "--output", file]
            // The first run only sets the queue up: checkpoints published before it are not kept.
            let first = try await Self.cli(export, system: system)
            #expect(first.status == 0, "\(first.output)")

            try await system.emit("noise.complaint.filed", id: "witnessed-1")
            #expect(try await system.waitForEnd(of: System.runID(playbook: "NoiseComplaint.v1", eventID: "witnessed-1"))
                == "run.completed")
            // A checkpoint that covers the whole run (its last audit entry is written with the run's end).
            let ended = system.governance.all.count
            try await system.governance.wait("a checkpoint after the run ended", timeout: .seconds(20)) {
                $0.dropFirst(ended).contains { $0.routingKey == "audit.checkpoint" }
            }
            let second = try await Self.cli(export, system: system)
            #expect(second.status == 0 && second.output.contains("appended"), "\(second.output)")
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
            #expect(!lines.isEmpty)
            for line in lines {
                #expect(try JSONValue(parsing: Array(line.utf8))["type"] == "audit.checkpoint")
            }

            let publicKey = try AuditSigningKey(base64: system.configuration.audit.signingKeyText).publicKey.base64
            let verify = ["audit", "verify", "--public-key", publicKey]
            let intact = try await Self.cli(verify + ["--checkpoints", file], system: system)
            #expect(intact.status == 0, "\(intact.output)")

            // One checkpoint's digest changed in the file: verification fails and says which.
            let edited = folder + "/edited.jsonl"
            var text = try String(contentsOfFile: file, encoding: .utf8)
            let digest = try #require(text.firstRange(of: #/"heads_digest":"[0-9a-f]{8}/#))
            text.replaceSubrange(digest, with: #""heads_digest":"00000000"#)
            try text.write(toFile: edited, atomically: true, encoding: .utf8)
            let caught = try await Self.cli(verify + ["--checkpoints", edited], system: system)
            #expect(caught.status != 0, "\(caught.output)")
        }
    }
}
