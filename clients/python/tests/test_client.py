"""The chapters' Python against the real service: chapter 000's ACTClient, chapter 004's hms_oms and pull
worker, leases and the errors a user meets first. Chapter 004's ``charge_fee`` step goes to a push worker
(the ``charge_fee_worker`` fixture; the push worker itself is tested in test_subscribe.py)."""

import os
import threading
import time
import uuid

import pytest

from hms_act import ACTClient, ACTError, LeaseLost, Unauthorized, Worker, complete_task, fail_task, fetch_task
from hms_oms import Workflow, start_workflow


def test_chapter_000_registers_the_playbook_and_an_emitted_event_runs_to_completion(repository_root):
    act = ACTClient()
    registration = act.register_playbook(os.path.join(repository_root, "playbooks", "noise_complaint.yaml"))
    assert registration["playbook"] == "NoiseComplaint.v1"
    event = {"type": "noise.complaint.filed", "id": str(uuid.uuid4()),
             "payload": {"address": "123 Oak St", "evidence": "phone_video.mp4"}}
    accepted = act.emit(event)
    assert accepted["outcome"] == "applied" and len(accepted["runs"]) == 1
    run = act.watch(accepted["runs"][0], timeout="60s")
    assert run["status"] == "completed"
    assert act.emit(event)["runs"] == accepted["runs"], "the same event id started a second run"


@pytest.mark.usefixtures("charge_fee_worker")
def test_chapter_004_the_tax_validator_pulls_its_task_and_the_workflow_completes():
    instance_id = start_workflow("epa_waste_reg", payload={"form_id": "F8700-12-42"})
    assert instance_id.startswith("wf_")
    task = None
    deadline = time.monotonic() + 60
    while task is None and time.monotonic() < deadline:
        task = fetch_task(topic="validate_tax_id", max_wait="10s")
        if task is not None and task.run_id != instance_id:
            complete_task(task.id)  # a leftover of another test: answer it and keep looking
            task = None
    assert task is not None, "validate_tax_id never reached the pull worker"
    assert task.payload["form_id"] == "F8700-12-42" and task.step_id == "validate_tax_id"
    assert complete_task(task.id)["outcome"] == "applied"
    assert ACTClient().watch(instance_id, timeout="60s")["status"] == "completed"


def test_a_failed_tax_check_fails_the_workflow():
    instance_id = start_workflow("epa_waste_reg", payload={"form_id": "F-BAD"})
    task = _fetch_for(instance_id)
    assert fail_task(task.id, reason="IRS mismatch", retryable=False)["outcome"] == "applied"
    run = ACTClient().watch(instance_id, timeout="60s")
    assert run["status"] == "failed"


@pytest.mark.usefixtures("charge_fee_worker")
def test_two_workers_never_hold_one_task_and_a_lapsed_lease_is_refused():
    instance_id = start_workflow("epa_waste_reg", payload={"form_id": "F-LEASE"})
    first = Worker()
    task = _fetch_for(instance_id, worker=first, lease="1s")
    second = Worker()
    assert second.fetch("validate_tax_id", max_wait=0) is None, "a leased task was handed out twice"
    time.sleep(1.5)
    again = second.fetch("validate_tax_id", max_wait="5s")
    assert again is not None and again.id == task.id and again.claims == 2
    with pytest.raises(LeaseLost) as lost:
        first.complete(task, {"valid": True})
    assert "claimed again" in str(lost.value)
    second.heartbeat(again, lease="30s")
    assert second.complete(again, {"valid": True})["outcome"] == "applied"
    assert ACTClient().watch(instance_id, timeout="60s")["status"] == "completed"


@pytest.mark.usefixtures("charge_fee_worker")
def test_concurrent_fetchers_share_the_work_without_overlap():
    runs = [start_workflow("epa_waste_reg", payload={"form_id": f"F-{n}"}) for n in range(6)]
    seen, lock = [], threading.Lock()

    def poll():
        worker = Worker()
        stop = time.monotonic() + 60
        while time.monotonic() < stop:
            with lock:
                if len(seen) >= len(runs):
                    return
            task = worker.fetch("validate_tax_id", max_wait="2s")
            if task is not None:
                with lock:
                    seen.append((task.id, task.run_id))
                worker.complete(task, {"valid": True})

    threads = [threading.Thread(target=poll) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [task_id for task_id, run_id in seen if run_id in runs]
    assert len(ids) == len(set(ids)) == len(runs)
    for run_id in runs:
        assert ACTClient().watch(run_id, timeout="60s")["status"] == "completed"


def test_a_workflow_defined_in_python_is_saved_and_started():
    name = f"py_{uuid.uuid4().hex[:8]}"
    registration = Workflow(id=name, steps=[{"id": "validate_tax_id", "sla": "2m"}]).save()
    assert registration["created"] is True
    instance_id = start_workflow(name, payload={"form_id": "F-PY"})
    task = _fetch_for(instance_id)
    complete_task(task)
    assert ACTClient().watch(instance_id, timeout="60s")["status"] == "completed"


def test_errors_say_what_to_fix():
    with pytest.raises(Unauthorized) as refused:
        ACTClient(token="not-a-token").runs()
    assert "HMS_API_TOKEN" in str(refused.value)
    with pytest.raises(Exception) as invalid:
        ACTClient().register_playbook("id: broken\nsteps:\n  - id: a\n    next: nowhere\n")
    assert "nowhere" in str(invalid.value)
    with pytest.raises(ValueError) as bad_wait:
        fetch_task(topic="validate_tax_id", max_wait="ten seconds")
    assert "500ms" in str(bad_wait.value)


def test_an_operator_retries_a_failed_step_with_a_patched_input_and_rewinds_the_run():
    act = ACTClient()
    name = f"drill_{uuid.uuid4().hex[:8]}"
    act.register_playbook(f"""
id: {name}
on_failure: incident
steps:
  - id: validate_tax_id
    input: {{strict: true, source: irs}}
""")
    run_id = act.start(name, payload={"form_id": "F-INC"})
    assert [run["run_id"] for run in act.runs(payload={"form_id": "F-INC"}, playbook=name)] == [run_id]
    task = _fetch_for(run_id)
    assert task.input == {"strict": True, "source": "irs"}
    fail_task(task.id, reason="IRS offline", retryable=False)
    deadline = time.monotonic() + 30
    while act.run(run_id)["status"] != "incident" and time.monotonic() < deadline:
        time.sleep(0.1)
    run = act.run(run_id)
    assert run["status"] == "incident" and run["incident"]["reason"] == "IRS offline"
    [incident] = act.incidents(run=run_id)
    assert incident["kind"] == "step_failed" and incident["holds_run"] is True
    with pytest.raises(ACTError) as refused:
        act.resolve_incident(incident["id"])
    assert refused.value.status == 409 and "retry, skip or fail" in str(refused.value)

    assert act.retry_incident(incident["id"], input={"strict": None}, reason="IRS back")["outcome"] == "applied"
    again = _fetch_for(run_id)
    assert again.input == {"source": "irs"}
    complete_task(again, {"valid": True})
    assert act.watch(run_id, timeout="60s")["status"] == "completed"
    resolved = act.incident(incident["id"])
    assert resolved["status"] == "resolved" and resolved["resolution"]["action"] == "retry"

    assert act.rewind(run_id, "validate_tax_id", reason="re-check")["outcome"] == "applied"
    third = _fetch_for(run_id)
    complete_task(third, {"valid": True})
    run = act.watch(run_id, timeout="60s")
    assert run["status"] == "completed"
    assert [step["visit"] for step in run["steps"]] == [3]


def test_a_bulk_cancel_stops_every_run_of_a_playbook():
    act = ACTClient()
    name = f"bulk_{uuid.uuid4().hex[:8]}"
    act.register_playbook(f"id: {name}\nsteps:\n  - id: validate_tax_id\n")
    runs = [act.start(name, payload={"n": n}) for n in range(3)]
    with pytest.raises(ACTError) as refused:
        act.bulk("cancel")
    assert refused.value.status == 400 and "filter" in str(refused.value)
    operation = act.bulk("cancel", reason="withdrawn", rate_per_second=100, playbook=name, status="running")
    deadline = time.monotonic() + 60
    while operation["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        operation = act.bulk_operation(operation["id"])
    assert operation["state"] == "done" and operation["progress"]["applied"] == 3
    assert {act.watch(run, timeout="30s")["status"] for run in runs} == {"cancelled"}


def test_an_operator_pins_and_disables_versions_and_new_runs_follow():
    act = ACTClient()
    name = f"versions_{uuid.uuid4().hex[:8]}"
    # Steps the demo worker answers: a pull agent's queue (validate_tax_id) must not hold these runs' tasks.
    v1 = act.register_playbook(f"id: {name}\nsteps:\n  - id: review\n")["version"]
    v2 = act.register_playbook(f"id: {name}\nsteps:\n  - id: review\n  - id: notify\n")["version"]
    assert act.playbook_versions(name)["current"] == v2
    assert act.set_version_state(name, v2, "disabled", reason="charges twice")["current"] == v1
    first = act.start(name)
    assert act.run(first)["playbook_version"] == v1
    with pytest.raises(ACTError) as refused:
        act.pin(name, v2)
    assert refused.value.status == 409 and "disabled" in str(refused.value)
    act.set_version_state(name, v2, "active")
    assert act.pin(name, v1, reason="hold v1 for the audit")["current"] == v1
    second = act.start(name)
    assert act.run(second)["playbook_version"] == v1
    versions = act.pin(name, None)
    assert versions["current"] == v2 and versions["pinned"] is None
    assert [change["action"] for change in versions["changes"]] == ["unpin", "pin", "active", "disabled"]
    assert {act.watch(run, timeout="30s")["status"] for run in (first, second)} == {"completed"}


def _fetch_for(run_id, worker=None, lease="60s"):
    """The validate_tax_id task of `run_id`, answering any other run's it meets first."""
    worker = worker or Worker()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = worker.fetch("validate_tax_id", max_wait="5s", lease=lease)
        if task is None:
            continue
        if task.run_id == run_id:
            return task
        worker.complete(task, {"valid": True})
    raise AssertionError(f"the validate_tax_id task of {run_id} never came")
