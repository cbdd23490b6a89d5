"""Runs the chapters' code blocks (this folder) unchanged but for the host, against the hms-act that
scripts/test-python started (HMS_API_URL), and checks each workflow finishes as its chapter says."""

import os
import subprocess
import sys
import time
import urllib.parse

import pytest

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


def _run(name, timeout=60):
    return subprocess.run([sys.executable, "-c", _source(name)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _new_run(act, playbook, before, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [run for run in act.runs(playbook=playbook, limit=20) if run["run_id"] not in before]
        if fresh:
            return fresh[0]["run_id"]
        time.sleep(0.2)
    raise AssertionError(f"no new {playbook} run appeared")


def test_chapter_000_register_then_fire():
    act = ACTClient()
    registered = _run("000_register_playbook.py")
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
