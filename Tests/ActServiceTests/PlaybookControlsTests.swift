import ActPlaybook
import ActService
import ActStore
import Testing

/// Which version new runs start on, and which changes the rules refuse (``PlaybookControls``), in the catalog.
@Suite struct PlaybookControlsTests {
    @Test func theCurrentVersionIsThePinElseTheNewestActiveElseTheNewestDeprecated() {
        let versions: [Int64] = [3, 7, 5]
        #expect(PlaybookControls.current(versions: versions, controls: [:]) == 7)
        #expect(PlaybookControls.current(versions: versions, controls: [7: .init(state: .deprecated)]) == 5)
        #expect(PlaybookControls.current(versions: versions, controls: [7: .init(state: .disabled)]) == 5)
        #expect(PlaybookControls.current(versions: versions,
            controls: [7: .init(state: .deprecated), 5: .init(state: .disabled), 3: .init(state: .deprecated)]) == 7)
        #expect(PlaybookControls.current(versions: versions,
            controls: [7: .init(state: .disabled), 5: .init(state: .disabled), 3: .init(state: .disabled)]) == nil)
        #expect(PlaybookControls.current(versions: versions, controls: [3: .init(state: .deprecated, pinned: true)]) == 3)
    }

    @Test func theRulesRefuseAPinnedVersionDisabledAndADisabledOnePinned() {
        let pinned: [Int64: VersionControl] = [3: .init(pinned: true)]
        #expect(PlaybookControls.problem(.state(version: 3, .disabled), playbookID: "P", versions: [3, 4], controls: pinned)
            == .conflict("version 3 of P is pinned, so new runs start on it: pin another version or unpin P first, then disable it"))
        #expect(PlaybookControls.problem(.state(version: 3, .deprecated), playbookID: "P", versions: [3, 4], controls: pinned) == nil)
        let disabled: [Int64: VersionControl] = [4: .init(state: .disabled)]
        if case .conflict? = PlaybookControls.problem(.pin(version: 4), playbookID: "P", versions: [3, 4], controls: disabled) {
        } else {
            Issue.record("pinning a disabled version must be refused")
        }
        if case .unknownVersion(let text)? = PlaybookControls.problem(.pin(version: 9), playbookID: "P", versions: [3, 4],
            controls: [:])
        {
            #expect(text.contains("its versions: 3, 4"))
        } else {
            Issue.record("a version of another playbook must be refused")
        }
        #expect(PlaybookControls.problem(.pin(version: nil), playbookID: "P", versions: [3, 4], controls: [:]) == nil)
        // Pinning moves the pin.
        let moved = PlaybookControls.applying(.pin(version: 4), to: pinned)
        #expect(moved[3]?.pinned == false && moved[4]?.pinned == true)
    }

    @Test func theCatalogStartsTriggersOnTheCurrentVersionAndNamesWhollyDisabledPlaybooks() throws {
        var catalog = PlaybookCatalog()
        for (id, steps) in [(Int64(1), 1), (2, 2)] {
            var playbook = Playbook(id: "Permit", steps: (0..<steps).map { Step(id: StepID("s\($0)"), kind: .wait(Wait(duration: .seconds(60), signal: "go"))) })
            playbook.triggers = ["permit.requested"]
            catalog.insert(version: PlaybookVersion(versionID: id, playbookID: "Permit", checksum: "c\(id)", source: "",
                model: [], triggers: ["permit.requested"], registeredAt: 0), playbook: playbook)
        }
        #expect(catalog.entries(forTrigger: "permit.requested").map(\.version.versionID) == [2])
        catalog.setControls([2: .init(state: .disabled)])
        #expect(catalog.entries(forTrigger: "permit.requested").map(\.version.versionID) == [1])
        #expect(catalog.currentEntry(playbookID: "Permit")?.version.versionID == 1)
        catalog.setControls([2: .init(state: .disabled), 1: .init(state: .disabled)])
        #expect(catalog.entries(forTrigger: "permit.requested").isEmpty)
        #expect(catalog.disabledPlaybooks(forTrigger: "permit.requested") == ["Permit"])
        #expect(catalog.currentEntry(playbookID: "Permit") == nil && catalog.latestEntry(playbookID: "Permit") != nil)
    }
}
