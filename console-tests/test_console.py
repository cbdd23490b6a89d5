"""The console (/ui) in headless chromium against hms-act serve on the real servers (docs/console.md)."""
import http.server
import socket
import threading
import time
import urllib.parse

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import Select

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from conftest import API, TOKENS, api, start_desk_check


def task_href(console, run_id, step):
    """The inbox link of the open task of `step` in `run_id`, once the inbox shows it."""
    def link():
        console.open("/ui/tasks")
        try:
            for row in console.finds("#inbox tbody tr"):
                if run_id in row.text and step in row.text:
                    return row.find_element("css selector", "a").get_attribute("href")
        except StaleElementReferenceException:  # the list refreshed itself meanwhile: look again
            pass
        return None
    found = []
    console.wait_until(lambda: found.append(link()) or found[-1], seconds=20,
                       message=f"no open {step} task of {run_id} in the inbox")
    return found[-1]


def timeline(run_id):
    return api("GET", f"/v1/runs/{urllib.parse.quote(run_id)}")["timeline"]


def test_desk_worker_claims_completes_approves_and_sees_the_run_finish(browser):
    run_id = start_desk_check()
    alice = browser()
    alice.open("/ui/runs")
    assert "/ui/login" in alice.driver.current_url, "a page without a session must send the browser to sign in"
    alice.check_accessibility("sign-in page")
    alice.screenshot("login")
    alice.sign_in("alice")

    href = task_href(alice, run_id, "inspect")
    alice.check_accessibility("inbox")
    alice.screenshot("inbox")
    alice.driver.set_window_size(390, 844)
    assert alice.driver.execute_script("return document.documentElement.scrollWidth") <= 420, \
        "the inbox must fit a phone's width (tables scroll inside their own box)"
    alice.screenshot("inbox-phone", width=390)
    alice.driver.get(href)
    alice.submit("#claim")
    assert alice.notice() == "You hold this task."
    assert alice.text("#claimed-by") == "alice"
    alice.check_accessibility("task page")
    alice.screenshot("task")

    # A second worker sees who holds it, has no Claim button, and a forced claim or answer is refused.
    bob = browser()
    bob.sign_in("bob")
    bob.driver.get(href)
    assert bob.text("#claimed-by") == "alice"
    assert not bob.finds("#claim") and not bob.finds("#complete")
    path = urllib.parse.urlparse(href).path
    assert bob.post(path + "/claim", {"attempt": "1"}) == 0  # a redirect (opaque to fetch with redirect: manual)
    bob.driver.get(href)
    assert bob.text("#claimed-by") == "alice"
    bob.post(path + "/complete", {"attempt": "1", "output": "{}"})
    assert api("GET", f"/v1/runs/{run_id}")["steps"][0]["status"] == "running"

    # Alice completes the step's form; a value of the wrong kind is refused and nothing is applied.
    alice.driver.get(href)
    alice.find("#field-noise_level_db").send_keys("loud")
    Select(alice.find("#field-verdict")).select_by_visible_text("confirmed")
    alice.submit("#complete")
    assert alice.notice() == "Measured level (dB) must be a number, like 42 or 3.5."
    assert api("GET", f"/v1/runs/{run_id}")["steps"][0]["status"] == "running"
    alice.find("#field-noise_level_db").send_keys("71")
    Select(alice.find("#field-verdict")).select_by_visible_text("confirmed")
    alice.find("#field-photos_taken").click()
    alice.find("#field-notes").send_keys("music from the basement until 1 am")
    alice.submit("#complete")
    assert alice.notice() == "Completed."
    sign_off = task_href(alice, run_id, "sign_off")
    alice.driver.get(sign_off)
    alice.check_accessibility("approval page")
    alice.screenshot("task-approval")
    alice.find("#approve-reason").send_keys("inspection report is complete")
    alice.submit("#approve")
    alice.wait_until(lambda: alice.text("#run-status") == "completed", message="the run did not finish")
    alice.check_accessibility("run page")
    alice.screenshot("run-completed")

    # The audit trail records the signed-in person, never a form field.
    entries = timeline(run_id)
    actors = {(entry["kind"], entry["actor"]) for entry in entries}
    assert any(actor == "alice" for _, actor in actors), actors
    run = api("GET", f"/v1/runs/{run_id}")
    assert run["status"] == "completed"
    assert run["steps"][0]["output"] == {"noise_level_db": 71, "verdict": "confirmed", "photos_taken": True,
                                         "notes": "music from the basement until 1 am"}
    assert alice.text("#audit-status").startswith("Hash chain verified")


def test_operator_pauses_and_resumes_a_run_with_reasons(browser):
    run_id = start_desk_check("4 Pine Rd")
    ops = browser()
    ops.sign_in("ops")
    ops.open(f"/ui/runs/{run_id}")
    ops.find("#pause-reason").send_keys("the inspector is ill today")
    ops.submit("#pause")
    assert ops.notice() == "Pause applied."
    assert ops.text("#run-status") == "paused"
    ops.screenshot("run-paused")
    ops.find("#resume-reason").send_keys("a colleague covers")
    ops.submit("#resume")
    assert ops.text("#run-status") == "running"
    entries = {entry["kind"]: entry for entry in timeline(run_id)}
    paused = [e for e in timeline(run_id) if e["data"].get("reason") == "the inspector is ill today"]
    resumed = [e for e in timeline(run_id) if e["data"].get("reason") == "a colleague covers"]
    assert paused and paused[0]["actor"] == "ops", entries
    assert resumed and resumed[0]["actor"] == "ops"
    # A reason is required.
    assert ops.post(f"/ui/runs/{run_id}/pause", {"reason": ""}) == 0
    assert api("GET", f"/v1/runs/{run_id}")["status"] == "running"
    ops.find("#cancel-reason").send_keys("end of test")
    ops.submit("#cancel")


def test_a_failed_step_opens_an_incident_the_operator_retries(browser):
    run_id = start_desk_check("5 Ash Pl")
    alice = browser()
    alice.sign_in("alice")
    alice.driver.get(task_href(alice, run_id, "inspect"))
    alice.submit("#claim")
    alice.find("#fail-reason").send_keys("the address does not exist")
    alice.submit("#fail")
    alice.wait_until(lambda: alice.text("#run-status") == "incident", message="no incident opened")

    ops = browser()
    ops.sign_in("ops")
    ops.open("/ui/incidents")
    row = [r for r in ops.finds("#incidents tbody tr") if run_id in r.text]
    assert row, "the incident is not listed"
    ops.driver.get(row[0].find_element("css selector", "a").get_attribute("href"))
    assert ops.text("#incident-status") == "open"
    ops.check_accessibility("incident page")
    ops.screenshot("incident")
    ops.find("#retry-reason").send_keys("the citizen corrected the address")
    ops.submit("#retry")
    assert ops.notice() == "Retry applied.", ops.notice()
    run = api("GET", f"/v1/runs/{run_id}")
    assert run["status"] == "running"
    assert [t["status"] for t in run["tasks"] if t["step_id"] == "inspect"].count("dispatched") == 1
    retried = [e for e in run["timeline"] if e["kind"] == "incident.retry"]
    assert retried and retried[0]["actor"] == "ops" and retried[0]["data"]["reason"] == "the citizen corrected the address"
    api("POST", f"/v1/runs/{run_id}/cancel", json={"reason": "end of test"})


def test_a_steps_light_turns_yellow_then_red_as_its_sla_passes(browser):
    run_id = start_desk_check("9 Birch Ave")
    ops = browser()
    ops.sign_in("ops")
    ops.open(f"/ui/runs/{run_id}")
    ops.driver.execute_script("window.stillTheSamePage = true")
    light = lambda: ops.attribute('#steps tr[data-step="inspect"] [data-light]', "data-light")
    assert light() == "green"
    ops.wait_until(lambda: light() == "yellow", seconds=20, message="the light did not turn yellow")
    ops.screenshot("run-sla-yellow")
    ops.wait_until(lambda: light() in ("red", "breached"), seconds=25, message="the light did not turn red")
    assert ops.driver.execute_script("return window.stillTheSamePage === true"), "the page was reloaded"
    classes = ops.attribute('svg.diagram g[data-step="inspect"]', "class")
    assert "current" in classes and ("light-red" in classes or "light-breached" in classes), classes
    ops.screenshot("run-sla-red")
    api("POST", f"/v1/runs/{run_id}/cancel", json={"reason": "end of test"})


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):
        page = (f'<html lang="en"><title>win a prize</title><body><form id="f" method="post" action="{self.target}">'
                '<input name="reason" value="forged"><input name="_csrf" value="guess"></form>'
                '<script>document.getElementById("f").submit()</script></body></html>')
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args):
        pass


def serve_attacker(target):
    handler = type("Attacker", (_AttackerPage,), {"target": target})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_cross_site_form_post_is_refused(browser):
    run_id = start_desk_check("1 Attack Ln")
    ops = browser()
    ops.sign_in("ops")
    target = f"{API}/ui/runs/{run_id}/cancel"
    server = serve_attacker(target)
    try:
        port = server.server_address[1]
        # Another site (localhost is not 127.0.0.1): the SameSite=Strict cookie stays home, so no session.
        ops.driver.get(f"http://localhost:{port}/")
        ops.wait_until(lambda: "/ui/" in ops.driver.current_url, message="the forged form was not sent")
        time.sleep(0.5)
        assert "/ui/runs" not in ops.driver.current_url or "login" in ops.driver.current_url
        # The same site on another port: the cookie goes along, but the Origin is not the console's.
        ops.driver.get(f"http://127.0.0.1:{port}/")
        ops.wait_until(lambda: "/ui/" in ops.driver.current_url, message="the forged form was not sent")
        assert "another site" in ops.text("#problem")
        ops.screenshot("refused-cross-site")
        ops.check_accessibility("error page")
    finally:
        server.shutdown()
    assert api("GET", f"/v1/runs/{run_id}")["status"] == "running"
    # And a same-origin post without the session's CSRF token is refused too.
    ops.open(f"/ui/runs/{run_id}")
    status = ops.driver.execute_async_script(
        """const done = arguments[1];
        fetch(arguments[0], {method: "POST", body: new URLSearchParams({reason: "no token"}), credentials: "same-origin"})
          .then(r => done(r.status));""", f"/ui/runs/{run_id}/cancel")
    assert status == 403
    assert api("GET", f"/v1/runs/{run_id}")["status"] == "running"
    api("POST", f"/v1/runs/{run_id}/cancel", json={"reason": "end of test"})


def test_a_read_only_user_sees_no_actions_and_gets_403_when_posting(browser):
    run_id = start_desk_check("7 Oak St")
    reader = browser()
    reader.sign_in("reader")
    reader.open(f"/ui/runs/{run_id}")
    assert reader.text("#run-status") == "running"
    assert not reader.finds("#actions-heading") and not reader.finds("#pause") and not reader.finds("#cancel")
    reader.check_accessibility("run page, read only")
    href = task_href(reader, run_id, "inspect")
    reader.driver.get(href)
    assert not reader.finds("#claim") and not reader.finds("#complete")
    path = urllib.parse.urlparse(href).path
    reader.open(f"/ui/runs/{run_id}")
    for action, fields in (("pause", {"reason": "x"}), ("cancel", {"reason": "x"})):
        assert reader.post(f"/ui/runs/{run_id}/{action}", fields) == 403
    assert reader.post(path + "/claim", {"attempt": "1"}) == 403
    assert api("GET", f"/v1/runs/{run_id}")["status"] == "running"
    api("POST", f"/v1/runs/{run_id}/cancel", json={"reason": "end of test"})


def test_a_desk_works_by_keyboard_alone_and_pages_fit_a_phone(browser):
    run_id = start_desk_check("8 Elm Row")
    bob = browser()
    bob.open("/ui/login")
    # Sign in without the mouse: the token field, then Enter.
    bob.find("#token").send_keys(TOKENS["bob"] + Keys.ENTER)
    bob.wait_for("#user")
    href = task_href(bob, run_id, "inspect")
    bob.driver.get(href)

    def tab_to(element_id, limit=40):
        body = bob.find("body")
        body.click()
        for _ in range(limit):
            ActionChains(bob.driver).send_keys(Keys.TAB).perform()
            if bob.driver.switch_to.active_element.get_attribute("id") == element_id:
                return True
        return False

    assert tab_to("claim"), "Tab never reaches the Claim button"
    old = bob.find("html")
    ActionChains(bob.driver).send_keys(Keys.ENTER).perform()
    WebDriverWait(bob.driver, 15).until(expected_conditions.staleness_of(old))
    assert bob.text("#claimed-by") == "bob"
    # Every page of a desk fits a phone's width; wide tables and the flow scroll inside their own box.
    bob.driver.set_window_size(390, 844)
    for path in ("/ui/tasks", href, "/ui/runs", f"/ui/runs/{run_id}"):
        bob.driver.get(path if path.startswith("http") else API + path)
        width = bob.driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 420, f"{path} is {width} px wide on a 390 px phone"
    bob.screenshot("run-phone", width=390)
    api("POST", f"/v1/runs/{run_id}/cancel", json={"reason": "end of test"})


def test_every_page_is_accessible_and_signing_out_ends_the_session(browser):
    start_desk_check("3 Cedar Ct")
    ops = browser()
    ops.sign_in("ops")
    pages = {
        "runs": "/ui/runs",
        "runs-filtered": "/ui/runs?status=running&playbook=desk_check",
        "incidents": "/ui/incidents?status=all",
        "dead-letters": "/ui/dead-letters",
        "playbooks": "/ui/playbooks",
        "playbook": "/ui/playbooks/NoiseComplaint.v1",
        "playbook-switch": "/ui/playbooks/FTC-Complaint",
        "not-found": "/ui/runs/wf_nope",
    }
    for name, path in pages.items():
        ops.open(path)
        ops.check_accessibility(name)
        ops.screenshot(name)
    ops.open("/ui/runs")
    assert ops.finds("#runs tbody tr"), "the runs list is empty"
    for playbook in ("NoiseComplaint.v1", "FTC-Complaint", "epa_waste_reg", "payment_failed_flow", "permit-renewal"):
        ops.open(f"/ui/playbooks/{playbook}")
        assert ops.finds("svg.diagram g.node"), f"no flow drawn for {playbook}"
    # Validation of a pasted playbook, with line:column diagnostics.
    ops.open("/ui/validate")
    source = ops.find("#source")
    source.send_keys("id: broken\nsteps:\n  - id: first\n    agent: human.nobody\n    sla: forever\n")
    ops.submit("#validate")
    assert ops.text("#validation").startswith("Not valid")
    positions = [row.find_elements("css selector", "td")[0].text for row in ops.finds("#diagnostics tbody tr")]
    assert "5:10" in positions, positions
    ops.check_accessibility("validate")
    ops.screenshot("validate")
    # Signing out ends the session on the server: the old cookie no longer opens a page.
    cookie = ops.driver.get_cookie("hms_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    ops.submit(".signout button")
    ops.wait_for("#token")
    ops.driver.add_cookie({"name": "hms_console", "value": cookie["value"], "path": "/ui"})
    ops.open("/ui/runs")
    assert "/ui/login" in ops.driver.current_url
