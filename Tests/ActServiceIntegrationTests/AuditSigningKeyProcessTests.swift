import ActTesting
import Foundation
import Testing

/// `hms-act serve` and its checkpoint signing key, as a real process.
@Suite(.serialized) struct AuditSigningKeyProcessTests {
    /// Waits up to `timeout` for the process to exit; kills it and returns nil if it is still running.
    static func exitStatus(_ serve: ServeProcess, within timeout: Duration) async throws -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while serve.process.isRunning, clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        guard !serve.process.isRunning else {
            serve.kill()
            return nil
        }
        serve.process.waitUntilExit()
        return serve.process.terminationStatus
    }

    @Test(arguments: ["change-me", "", "not base64 at all", "c2hvcnQ="])
    func serveRefusesToStartWithoutAUsableKeyInProduction(key: String) async throws {
        let binary = NothingWedgesProcessTests.binary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [], replicas: 0) { _ in .ignore } _: { system in
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("serve-key-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            defer { try? FileManager.default.removeItem(at: log) }
            let serve = try ServeProcess.start(binary: binary, system: system,
                environment: ["HMS_AUDIT_SIGNING_KEY": key, "HMS_ACT_MODE": "production"], standardError: handle)
            let status = try await Self.exitStatus(serve, within: .seconds(30))
            try handle.close()
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(status != nil, "serve started with the signing key \"\(key)\" in production")
            #expect(status != 0)
            #expect(text.contains("audit.signing_key"), "\(text)")
            #expect(text.contains("hms-act audit keygen"), "\(text)")
        }
    }

    @Test func serveInDevelopmentModeSignsWithAFreshKeyAndSaysWhichOne() async throws {
        let binary = NothingWedgesProcessTests.binary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build hms-act first (swift build)")
        try await SystemHarness.run(playbooks: [], replicas: 0) { _ in .ignore } _: { system in
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("serve-dev-\(UUID().uuidString).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            defer { try? FileManager.default.removeItem(at: log) }
            let serve = try ServeProcess.start(binary: binary, system: system,
                environment: ["HMS_AUDIT_SIGNING_KEY": "change-me", "HMS_ACT_MODE": "development", "HMS_LOG_LEVEL": "info"],
                standardError: handle)
            defer { serve.kill() }
            // The warning is logged before the server starts; poll the log (bounded) until the server runs, so
            // that SIGTERM below meets the graceful-shutdown handler rather than a process still starting (it
            // then died of the signal, status 15: a flaky failure on a busy machine).
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(30)
            var text = ""
            while clock.now < deadline, serve.process.isRunning {
                text = try String(contentsOf: log, encoding: .utf8)
                if text.contains("audit.public_key") && text.contains("hms-act serving") { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(text.contains("fresh key"), "\(text)")
            #expect(serve.process.isRunning, "serve stopped in development mode:\n\(text)")
            let status = try await serve.terminate(within: .seconds(30))
            #expect(status == 0)
        }
    }
}
