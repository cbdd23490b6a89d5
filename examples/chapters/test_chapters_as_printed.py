"""Runs the chapters' code blocks (this folder) unchanged but for the host, against the hms-act that
scripts/test-python started (HMS_API_URL), and checks each workflow finishes as its chapter says. The
systems outside hms-act that a chapter calls without defining them (chapter 004's `stripe`,
`external_irs_api`, `hms_agt`) are the stand-ins in outside/, put on PYTHONPATH."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

from hms_act import ACTClient

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def _source(name):
    """The chapter file with its hosts pointed at the test server: nothing else changes."""
    api = os.environ["HMS_API_URL"].rstrip("/")
    netloc = urllib.parse.urlsplit(api).netloc
    with open(os.path.join(HERE, name), encoding="utf-8") as handle:
        text = handle.read()
    return text.replace("http://localhost:8100/", api + "/").replace("http://act/", f"http://{netloc}/act/")


def _run(name, timeout=60, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-c", _source(name)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _outside(tmp_path):
    """The environment with outside/ (the stand-ins for systems outside hms-act) on PYTHONPATH and their
    calls recorded in a file."""
    record = tmp_path / "outside.jsonl"
    path = os.pathsep.join(p for p in (os.path.join(HERE, "outside"), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, OUTSIDE_RECORD=str(record), PYTHONUNBUFFERED="1"), record


def _calls(record):
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


def _new_run(act, playbook, before, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [run for run in act.runs(playbook=playbook, limit=20) if run["run_id"] not in before]
        if fresh:
            return fresh[0]["run_id"]
        time.sleep(0.2)
    raise AssertionError(f"no new {playbook} run appeared")


def test_chapter_000_register_then_fire():
    """The chapter's own playbook (playbooks/noise_complaint.yaml here, verbatim: it names no trigger), bound
    to noise.complaint.filed by the service's configuration (HMS_TRIGGER_BINDINGS), not by editing it."""
    act = ACTClient()
    registered = _run("000_register_playbook.py", cwd=HERE)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == "Playbook loaded!"
    before = {run["run_id"] for run in act.runs(playbook="NoiseComplaint.v1", limit=200)}
    fired = _run("000_fire_event.py")
    assert fired.returncode == 0, fired.stderr
    assert fired.stdout.startswith("Event emitted: ")
    run_id = _new_run(act, "NoiseComplaint.v1", before)
    assert act.watch(run_id, timeout="60s")["status"] == "completed"


def test_chapter_001_event_without_a_token_and_the_ai_worker_loop():
    act = ACTClient()
    before = {run["run_id"] for run in act.runs(playbook="FTC-Complaint", limit=200)}
    emitted = _run("001_emit_event.py")
    assert emitted.returncode == 0, emitted.stderr
    run_id = _new_run(act, "FTC-Complaint", before)
    worker = subprocess.Popen([sys.executable, "-c", _source("001_ai_worker.py")], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = act.watch(run_id, timeout="60s")
    finally:
        worker.kill()
        _, errors = worker.communicate(timeout=10)
    assert run["status"] == "completed", errors
    classify = next(step for step in run["steps"] if step["step_id"] == "classify")
    assert classify["output"]["severity"] in ("High", "Low")
    assert any(task["target"] == "pull" for task in run["tasks"]), "classify was published, not pulled"


def test_chapter_004_workflow_pull_worker_and_payment_bot_in_the_chapters_order(tmp_path):
    """Section 8's order: load the workflow, start the workers (section 3.3's tax validator pulls
    validate_tax_id over HTTP; section 6's payment bot is pushed charge_fee over AMQP, its agent having a queue
    of its own), kick off an instance (section 3.2); the demo worker does collect_form and assign_inspector."""
    act = ACTClient()
    env, record = _outside(tmp_path)
    saved = _run("004_epa_waste_registration.py", env=env)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout == ""
    assert [p["steps"] for p in act.playbooks() if p["playbook"] == "epa_waste_reg"] == [4]

    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in ("validator", "bot")}
    validator = subprocess.Popen([sys.executable, "-c", _source("004_tax_validator.py")], cwd=ROOT, env=env,
                                 stdout=logs["validator"], stderr=subprocess.STDOUT, text=True)
    bot = subprocess.Popen([sys.executable, "-c", _source("004_payment_bot.py")], cwd=ROOT, env=env,
                           stdout=logs["bot"], stderr=subprocess.STDOUT, text=True)

    def log(name):
        logs[name].seek(0)
        return logs[name].read()

    try:
        deadline = time.monotonic() + 30
        while "connected to" not in log("bot"):
            assert bot.poll() is None and time.monotonic() < deadline, f"the payment bot did not start:\n{log('bot')}"
            time.sleep(0.05)

        kicked = _run("004_start_workflow.py", env=env)
        assert kicked.returncode == 0, kicked.stderr
        instance_id = kicked.stdout.strip()
        assert instance_id.startswith("wf_"), kicked.stdout
        run = act.watch(instance_id, timeout="60s")
        assert run["status"] == "completed", (run, log("validator"), log("bot"))

        steps = {step["step_id"]: step for step in run["steps"]}
        assert [step["step_id"] for step in run["steps"]] == ["collect_form", "validate_tax_id", "charge_fee",
                                                              "assign_inspector"]
        assert all(step["status"] == "completed" for step in run["steps"])
        targets = {task["step_id"]: task["target"] for task in run["tasks"]}
        assert targets == {"collect_form": "task.collect_form", "validate_tax_id": "pull",
                           "charge_fee": "queue:charge_fee", "assign_inspector": "task.assign_inspector"}
        done_by = {entry["data"]["task_id"].split("/")[1]: entry["actor"] for entry in run["timeline"]
                   if entry["kind"] == "task.completed"}
        # The payment bot answered charge_fee (the result names the process), the demo worker the other two
        # pushed steps (its canned {"ok": true}), the tax validator validate_tax_id (its HTTP token's principal).
        assert done_by["charge_fee"] == f"charge_fee@{socket.gethostname()}#{bot.pid}"
        assert done_by["collect_form"] == "collect_form" and steps["collect_form"]["output"] == {"ok": True}
        assert done_by["assign_inspector"] == "assign_inspector"
        assert steps["validate_tax_id"]["output"] == {} and steps["charge_fee"]["output"] == {}

        mine = [call for call in _calls(record) if call["form_id"] == "F8700-12-42"]
        assert {(c["system"], c["pid"]) for c in mine} >= {("irs", validator.pid), ("stripe", bot.pid)}
        assert len([c for c in mine if c["system"] == "stripe"]) == 1, "charged twice"
    finally:
        bot.send_signal(signal.SIGTERM)
        validator.send_signal(signal.SIGTERM)
        bot_status = bot.wait(timeout=30)
        validator_status = validator.wait(timeout=30)
    # The payment bot finishes the payment in hand, then exits 0; the printed pull loop has no handler for
    # SIGTERM, so the signal ends it (a task it held would go to the next worker when its lease lapsed).
    assert bot_status == 0, log("bot")
    assert log("bot").rstrip().endswith("hms_act.subscribe: stopped")
    assert validator_status == -signal.SIGTERM, log("validator")
    assert "Traceback" not in log("validator") + log("bot")


def _gateway_calls(run_id):
    with open(os.environ["GATEWAY_RECORD"], encoding="utf-8") as handle:
        calls = [json.loads(line) for line in handle if line.strip()]
    return [call for call in calls if call["headers"].get("x-hms-run-id") == run_id]


def test_chapter_002_call_steps_reach_the_gateway_and_a_signal_by_payment_id_ends_the_wait():
    """Chapter 002's workflow (workflows/payment_failed.yaml, verbatim) on hms-act: the `call:` steps are HTTP
    calls hms-act makes itself to the API gateway (outside/gateway.py, HMS_CALL_BASE_URL), waiting for 2xx,
    the two notifications side by side; the citizen's new bank details end the five-day wait through a
    signal naming the payment (`id: 987`, the event's id), so nobody is escalated. The console it prints is
    the chapter's section 8, but for the escalation the signal made unneeded."""
    act = ACTClient()
    act.register_playbook(os.path.join(HERE, "workflows", "payment_failed.yaml"))
    event_id = f"987-{time.time_ns()}"
    accepted = act.emit({"type": "payment_failed", "id": event_id, "payload": {"id": 987}})
    run_id = accepted["runs"][0]
    # Sent at once: if the run has not reached its wait yet, the signal is kept for it.
    answer = act.signal_by_key("wait_for_fix", event_id, payload={"iban": "DE89 3704"}, playbook="payment_failed_flow")
    assert [run["run_id"] for run in answer["runs"]] == [run_id]
    run = act.watch(run_id, timeout="60s")
    assert run["status"] == "completed", run

    calls = _gateway_calls(run_id)
    console = [f"▶ {call['method']} {call['path']}" for call in calls]
    assert console[0] == "▶ POST /finance/freeze"
    assert sorted(console[1:3]) == ["▶ POST /notify/email", "▶ POST /notify/sms"]
    assert console[3:] == ["▶ POST /helpdesk/ticket"], console
    for call in calls:
        assert call["body"] == {"id": 987}
        assert call["headers"]["idempotency-key"] == call["headers"]["x-hms-task-id"] + "#1"
    steps = {step["step_id"]: step for step in run["steps"]}
    assert steps["freeze_payments"]["output"] == {"ok": True, "path": "/finance/freeze"}
    assert steps["wait_for_fix"]["output"] == {"iban": "DE89 3704"}
    assert steps["escalate"]["status"] == "skipped"
    assert all(task["target"] == "http" for task in run["tasks"]), "a call step was published, not called"


def test_chapter_003_an_empty_callback_by_trace_id_resumes_the_paused_step():
    """Chapter 003's `waitFor(`/callbacks/${trace}/${step.id}`)`: the zoning portal posts to the callback URL
    of the run's trace with no body, and no token (the demo's loopback mode); the paused step completes."""
    act = ACTClient()
    accepted = act.emit({"type": "permit.renewal.requested", "id": f"permit-{time.time_ns()}",
                         "payload": {"permit": "STR-2024-118"}})
    run_id = accepted["runs"][0]
    deadline = time.monotonic() + 30
    while True:
        run = act.run(run_id)
        zoning = next((step for step in run["steps"] if step["step_id"] == "zoningApproval"), None)
        if zoning and zoning["status"] == "awaiting_approval":
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    trace = run["trace_id"]
    api = os.environ["HMS_API_URL"].rstrip("/")
    answer = requests.post(f"{api}/callbacks/{trace}/zoningApproval", timeout=10)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"run_id": run_id, "step_id": "zoningApproval", "outcome": "applied"}
    assert act.watch(run_id, timeout="60s")["status"] == "completed"
