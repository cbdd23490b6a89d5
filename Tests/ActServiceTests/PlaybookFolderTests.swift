import ActPlaybook
import ActService
import ActStore
import ActTesting
import Foundation
import Logging
import Testing

/// The playbooks folder at start: YAML and JSON files are registered; a file that is not a valid playbook is
/// refused with its problems and does not keep the others from being served; configured trigger bindings
/// bind event types to playbooks whose files name none (chapter 000).
@Suite struct PlaybookFolderTests {
    static let chapter000 = """
        id: NoiseComplaint.v1
        description: Handle citizen noise complaints
        steps:
          - id: intake
            agent: ai.auto_intake            # AI parses form
        """

    static let json = #"""
        {"id": "epa_waste_reg", "trigger": "epa.form.submitted",
         "steps": [{"id": "collect_form", "sla": "5m"}, {"id": "validate_tax_id", "sla": "2m"}]}
        """#

    static let invalid = """
        id: Broken.v1
        steps:
          - id: a
            agnet: ai.x
        """

    @Test func validFilesAreServedAndInvalidOnesRefusedWithTheirProblems() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("playbooks-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.chapter000.write(toFile: folder + "/noise_complaint.yaml", atomically: true, encoding: .utf8)
        try Self.json.write(toFile: folder + "/epa_waste_reg.json", atomically: true, encoding: .utf8)
        try Self.invalid.write(toFile: folder + "/broken.yml", atomically: true, encoding: .utf8)
        try Data([0x69, 0x64, 0x3A, 0x20, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: folder + "/latin1.yaml"))
        try "not a playbook".write(toFile: folder + "/README.md", atomically: true, encoding: .utf8)

        let store = InMemoryStore(now: { 1_700_000_000_000 })
        let result = try await PlaybookRegistrar.registerDirectory(folder,
            bindings: ["NoiseComplaint.v1": ["noise.complaint.filed"]], agents: [], store: store,
            logger: Logger(label: "test"))
        #expect(result.registrations.map(\.version.playbookID).sorted() == ["NoiseComplaint.v1", "epa_waste_reg"])
        #expect(result.registrations.first { $0.version.playbookID == "NoiseComplaint.v1" }?.version.triggers
            == ["noise.complaint.filed"])
        #expect(result.registrations.first { $0.version.playbookID == "epa_waste_reg" }?.version.triggers
            == ["epa.form.submitted"])
        #expect(result.refused.map { ($0.file as NSString).lastPathComponent }.sorted() == ["broken.yml", "latin1.yaml"])
        let broken = try #require(result.refused.first { $0.file.hasSuffix("broken.yml") }?.reason)
        #expect(broken.contains("agnet") && broken.contains("did you mean"), "\(broken)")
        #expect(result.refused.first { $0.file.hasSuffix("latin1.yaml") }?.reason.contains("UTF-8") == true)
    }

    @Test func triggerBindingsAreReadAndCheckedFromTheSettings() throws {
        var configuration = ServiceConfiguration()
        try configuration.applyEnvironment(["HMS_TRIGGER_BINDINGS":
            "noise.complaint.filed=NoiseComplaint.v1, noise.complaint.updated=NoiseComplaint.v1,payment_failed=payment_failed_flow"])
        try configuration.validate()
        #expect(try configuration.triggerBindings() == [
            "NoiseComplaint.v1": ["noise.complaint.filed", "noise.complaint.updated"],
            "payment_failed_flow": ["payment_failed"],
        ])
        configuration.triggers.bindings = ["NoiseComplaint.v1"]
        let error = #expect(throws: ServiceConfiguration.SettingError.self) { try configuration.validate() }
        #expect(error?.description.contains("noise.complaint.filed=NoiseComplaint.v1") == true)
    }
}
