@testable import ActHTTP
import ActEngine
import ActPlaybook
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The console's sessions, CSRF protection and scopes (`/ui`, docs/console.md), over a live server so that
/// requests carry a real `Host`. The pages themselves are driven in a browser by console-tests/.
@Suite("console")
struct ConsoleTests {
    @Test func pagesWithoutASessionSendTheBrowserToSignIn() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.app.test(.live) { client in
            let runs = try await client.send(.get, "/ui/runs?status=running", token: nil)
            #expect(runs.status == .seeOther)
            #expect(runs.headers[.location] == "/ui/login?next=/ui/runs%3Fstatus%3Drunning")
            // A bearer token is not a session: the console never reads Authorization.
            let withToken = try await client.send(.get, "/ui/runs", token: Token.admin)
            #expect(withToken.status == .seeOther)
            let login = try await client.send(.get, "/ui/login", token: nil)
            #expect(login.status == .ok)
            #expect(login.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(login.headers[.init("X-Frame-Options")!] == "DENY")
        }
    }

    @Test func signingInSetsAStrictHttpOnlyCookieAndSigningOutEndsTheSession() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.app.test(.live) { client in
            let signIn = try await client.signIn(Token.operate)
            #expect(signIn.response.status == .seeOther)
            #expect(signIn.response.headers[.location] == "/ui/runs")
            let cookie = try #require(signIn.response.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"))
            #expect(!cookie.contains("Secure"), "a loopback address over plain HTTP keeps the cookie without Secure")

            let runs = try await client.send(.get, "/ui/runs", token: nil, headers: [.cookie: signIn.cookie])
            #expect(runs.status == .ok)
            #expect(runs.text.contains(#"<strong id="user">ops</strong>"#))

            let csrf = try #require(Self.csrf(in: runs.text))
            let out = try await client.sendForm("/ui/logout", ["_csrf": csrf], cookie: signIn.cookie)
            #expect(out.status == .seeOther)
            let after = try await client.send(.get, "/ui/runs", token: nil, headers: [.cookie: signIn.cookie])
            #expect(after.status == .seeOther, "the session must end on the server, not only in the browser")

            // Behind a TLS-terminating ingress the cookie is Secure.
            let secure = try await client.signIn(Token.operate, headers: [.init("X-Forwarded-Proto")!: "https"])
            #expect(secure.response.headers[.setCookie]?.contains("Secure") == true)
        }
    }

    @Test func aWrongTokenOrAnotherSitesSignInIsRefused() async throws {
        let world = try await TestWorld()
        try await world.app.test(.live) { client in
            let wrong = try await client.signIn("not-a-token")
            #expect(wrong.response.status == .unauthorized)
            #expect(wrong.response.text.contains("That token is not valid"))
            #expect(wrong.response.headers[.setCookie] == nil)
            let foreign = try await client.signIn(Token.operate, headers: [.init("Origin")!: "https://evil.example"])
            #expect(foreign.response.status == .forbidden)
            #expect(foreign.response.headers[.setCookie] == nil)
        }
    }

    @Test func everyFormNeedsTheSessionsCSRFTokenAndThisSite() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.app.test(.live) { client in
            let runID = try await startFTCRun(client)
            let session = try await client.signIn(Token.operate)
            let page = try await client.send(.get, "/ui/runs/\(runID)", token: nil, headers: [.cookie: session.cookie])
            let csrf = try #require(Self.csrf(in: page.text))
            let path = "/ui/runs/\(runID)/pause"

            for fields in [["reason": "x"], ["reason": "x", "_csrf": "guess"]] {
                let refused = try await client.sendForm(path, fields, cookie: session.cookie)
                #expect(refused.status == .forbidden)
                #expect(refused.text.contains("security token"))
            }
            let crossSite = try await client.sendForm(path, ["reason": "x", "_csrf": csrf], cookie: session.cookie,
                headers: [.init("Sec-Fetch-Site")!: "cross-site"])
            #expect(crossSite.status == .forbidden)
            #expect(crossSite.text.contains("another site"))
            for origin in ["https://evil.example", "null"] {
                let foreign = try await client.sendForm(path, ["reason": "x", "_csrf": csrf], cookie: session.cookie,
                    headers: [.init("Origin")!: origin])
                #expect(foreign.status == .forbidden)
            }
            #expect(try await world.plane.runSummary(id: RunID(runID))?.status == "running")

            // Behind a proxy that rewrites Host, the authority the browser addressed arrives as X-Forwarded-Host.
            let paused = try await client.sendForm(path, ["reason": "checking", "_csrf": csrf], cookie: session.cookie,
                headers: [.init("Sec-Fetch-Site")!: "same-origin", .init("Origin")!: "https://hms.city.example",
                    .init("X-Forwarded-Host")!: "hms.city.example"])
            #expect(paused.status == .seeOther)
            #expect(paused.headers[.location] == "/ui/runs/\(runID)?notice=Pause%20applied.")
            #expect(try await world.plane.runSummary(id: RunID(runID))?.status == "paused")
            let detail = try #require(try await world.plane.runDetail(id: RunID(runID)))
            let entry = try #require(detail.timeline.last)
            #expect(entry.kind == "run.paused" && entry.actor == "ops" && entry.data["reason"] == "checking")
        }
    }

    @Test func aReadOnlyUserSeesNoActionsAndGets403() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.app.test(.live) { client in
            let runID = try await startFTCRun(client)
            let session = try await client.signIn(Token.read)
            let page = try await client.send(.get, "/ui/runs/\(runID)", token: nil, headers: [.cookie: session.cookie])
            #expect(page.status == .ok)
            #expect(!page.text.contains(#"id="pause""#) && !page.text.contains(#"id="cancel""#))
            let csrf = try #require(Self.csrf(in: page.text))
            let refused = try await client.sendForm("/ui/runs/\(runID)/cancel", ["reason": "x", "_csrf": csrf],
                cookie: session.cookie)
            #expect(refused.status == .forbidden)
            #expect(try await world.plane.runSummary(id: RunID(runID))?.status == "running")
        }
    }

    /// A finished run's page stops listening: 204 is EventSource's signal not to reconnect.
    @Test func aFinishedRunsEventStreamSaysNoContent() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc])
        try await world.app.test(.live) { client in
            let runID = try await startFTCRun(client)
            _ = try await client.send(.post, "/v1/runs/\(runID)/cancel", token: Token.operate, json: #"{"reason": "done"}"#)
            let session = try await client.signIn(Token.read)
            let events = try await client.send(.get, "/ui/runs/\(runID)/events", token: nil, headers: [.cookie: session.cookie])
            #expect(events.status == .noContent)
            let missing = try await client.send(.get, "/ui/runs/wf_none/events", token: nil, headers: [.cookie: session.cookie])
            #expect(missing.status == .notFound)
        }
    }

    /// A child run's page names its parent; the parent's sub-playbook task links to the child run, and the API
    /// says the same (`parent`, `child_run_id`).
    @Test func parentAndChildRunsLinkToEachOther() async throws {
        let parent = """
            id: Sweep.v1
            trigger: sweep.requested
            steps:
              - id: inspect
                playbook: Inspection.v1
                input: {address: "${payload.address}"}
            """
        let child = """
            id: Inspection.v1
            steps:
              - id: visit
                agent: human.field_inspector
            """
        let world = try await TestWorld(playbooks: [parent, child])
        try await world.app.test(.live) { client in
            let response = try await client.send(.post, "/v1/events", token: Token.operate,
                json: #"{"type": "sweep.requested", "id": "s-1", "payload": {"address": "Elm 2"}}"#)
            #expect(response.status == .accepted)
            let parentID = try #require(try response.json["runs"]?.arrayValue?.first?.stringValue)
            let detail = try await client.send(.get, "/v1/runs/\(parentID)", token: Token.read)
            let task = try #require(try detail.json["tasks"]?.arrayValue?.first)
            #expect(task["target"] == "playbook:Inspection.v1")
            let childID = try #require(task["child_run_id"]?.stringValue)
            let childDetail = try await client.send(.get, "/v1/runs/\(childID)", token: Token.read)
            let childJSON = try childDetail.json
            #expect(childJSON["parent"]?["run_id"]?.stringValue == parentID)
            #expect(childJSON["payload"] == ["address": "Elm 2"])

            let session = try await client.signIn(Token.read)
            let parentPage = try await client.send(.get, "/ui/runs/\(parentID)", token: nil, headers: [.cookie: session.cookie])
            #expect(parentPage.text.contains(#"href="/ui/runs/\#(childID)""#))
            let childPage = try await client.send(.get, "/ui/runs/\(childID)", token: nil, headers: [.cookie: session.cookie])
            #expect(childPage.text.contains(#"<a href="/ui/runs/\#(parentID)" class="mono" id="parent-run">"#))
        }
    }

    @Test func aDeskClaimHasOneHolder() async throws {
        let world = try await TestWorld(playbooks: [Playbooks.ftc],
            tokens: Token.specifications + ["alice:alice-secret:operate:agents=ai.fraud-labeler", "bob:bob-secret:operate"])
        try await world.app.test(.live) { client in
            let runID = try await startFTCRun(client)
            let task = "/ui/tasks/" + pathSegment("\(runID)/classify/1")
            let alice = try await client.signIn("alice-secret")
            let bob = try await client.signIn("bob-secret")
            for (session, expected) in [(alice, "You hold this task."), (bob, "alice holds this task already.")] {
                let page = try await client.send(.get, task, token: nil, headers: [.cookie: session.cookie])
                let claimed = try await client.sendForm(task + "/claim", ["_csrf": try #require(Self.csrf(in: page.text))],
                    cookie: session.cookie)
                #expect(claimed.headers[.location]?.removingPercentEncoding?.hasSuffix("notice=" + expected) == true)
            }
            let page = try await client.send(.get, task, token: nil, headers: [.cookie: bob.cookie])
            let answer = try await client.sendForm(task + "/complete",
                ["_csrf": try #require(Self.csrf(in: page.text)), "output": #"{"severity": "High"}"#], cookie: bob.cookie)
            #expect(answer.headers[.location]?.removingPercentEncoding?.contains("only they may answer it") == true)
            #expect(try await world.plane.latestTaskAttempt(id: TaskID("\(runID)/classify/1"))?.status == "dispatched")
        }
    }

    @Test func afterSigningInOnlyConsolePathsAreFollowed() {
        #expect(ConsoleRoutes<InMemoryControlPlane>.safeNext("/ui/tasks?x=1") == "/ui/tasks?x=1")
        for hostile in ["https://evil.example/ui", "//evil.example/ui", "/ui\\..\\x", "/v1/runs", nil, "/ui/login"] {
            #expect(ConsoleRoutes<InMemoryControlPlane>.safeNext(hostile) == "/ui/runs")
        }
    }

    @Test func formsDecodeAsBrowsersEncodeThem() {
        let form = ConsoleForm(encoded: "reason=inspector+is+ill&payload=%7B%22a%22%3A1%7D&empty=&flag")
        #expect(form["reason"] == "inspector is ill")
        #expect(form["payload"] == #"{"a":1}"#)
        #expect(form["empty"] == "" && form["flag"] == "")
        #expect(form.text("empty") == nil)
        #expect(ConsoleForm.segment("wf_1/step/2") == "wf_1%2Fstep%2F2")
    }

    @Test func aDeclaredFormBecomesTheOutputWithItsTypes() throws {
        typealias Routes = ConsoleRoutes<InMemoryControlPlane>
        let fields = [
            FormField(name: "level", kind: .number, label: "Level", required: true),
            FormField(name: "verdict", kind: .choice, label: "Verdict", options: ["confirmed", "dismissed"]),
            FormField(name: "photos", kind: .boolean), FormField(name: "notes", kind: .textarea),
        ]
        let filled = ConsoleForm(encoded: "field_level=71.5&field_verdict=confirmed&field_photos=1&field_notes=")
        #expect(try Routes.output(from: filled, fields: fields).get()
            == ["level": .number(JSONNumber(71.5)), "verdict": "confirmed", "photos": true])
        let unchecked = ConsoleForm(encoded: "field_level=3")
        #expect(try Routes.output(from: unchecked, fields: fields).get() == ["level": 3, "photos": false])
        for (encoded, problem) in [("field_level=loud", "Level must be a number, like 42 or 3.5."),
            ("field_level=", "Level is required."), ("field_level=1&field_verdict=maybe", "Verdict must be one of confirmed, dismissed.")]
        {
            guard case .failure(let found) = Routes.output(from: ConsoleForm(encoded: encoded), fields: fields) else {
                Issue.record("\(encoded) was accepted")
                continue
            }
            #expect(found.message == problem)
        }
    }

    @Test func theDiagramMarksTheCurrentStepAndEscapesText() throws {
        let loaded = try PlaybookLoader.load(yaml: Playbooks.ftc, file: nil)
        let svg = PlaybookDiagram.svg(loaded.playbook, marks: ["classify": .init(status: "running", light: "yellow")])
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>"))
        #expect(svg.contains(#"<g class="node status-running light-yellow current" data-step="classify">"#))
        #expect(PlaybookDiagram.escape(#"<a href="x">&'"#) == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
    }

    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="_csrf" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }
}

extension TestClientProtocol {
    /// Signs in with `token`; answers the response and the `Cookie` header of its session.
    func signIn(_ token: String, headers: HTTPFields = [:]) async throws -> (response: TestResponse, cookie: String) {
        let response = try await sendForm("/ui/login", ["token": token], cookie: nil, headers: headers)
        let cookie = response.headers[.setCookie].map { String($0.prefix { $0 != ";" }) } ?? ""
        return (response, cookie)
    }

    /// Posts an `application/x-www-form-urlencoded` form.
    func sendForm(_ path: String, _ fields: [String: String], cookie: String?, headers: HTTPFields = [:]) async throws
        -> TestResponse
    {
        var headers = headers
        if let cookie { headers[.cookie] = cookie }
        let body = fields.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            .joined(separator: "&")
        return try await send(.post, path, token: nil, body: Array(body.utf8),
            contentType: "application/x-www-form-urlencoded", headers: headers)
    }
}
