"""Chapter 004's push worker, ``@subscribe(topic)``, against the real service and broker.

Each test registers a one-step workflow whose step is ``subscribe_test`` (scripts/test-python gives that
topic an agent with a queue of its own, so the demo worker never sees its tasks), starts
``subscribe_worker.py`` as a process of its own (a script that only decorates its handler: hms_act starts it
when the script ends), and reads the run back over the HTTP API.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pika
import pytest

from conftest import rabbitmqctl
from hms_act import ACTClient
from hms_oms import Workflow, start_workflow

TOPIC = "subscribe_test"


@pytest.fixture(autouse=True)
def empty_queue():
    """Tasks a failed test left behind would reach the next test's worker: start each test with none."""
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    try:
        channel = connection.channel()
        try:
            channel.queue_purge(TOPIC)
        except pika.exceptions.ChannelClosedByBroker:
            pass  # not declared yet: the first worker declares it
    finally:
        connection.close()


def workflow(retry=None):
    step = {"id": TOPIC, "sla": "1m"}
    if retry is not None:
        step["retry"] = retry
    name = f"py_sub_{uuid.uuid4().hex[:8]}"
    Workflow(id=name, steps=[step]).save()
    return name


def task_completion(run, step_id):
    """The timeline entry that completed or failed the step's task (its actor is the result's ``agent``)."""
    return [entry for entry in run["timeline"]
            if entry["kind"] in ("task.completed", "task.failed") and f"/{step_id}/" in entry["data"].get("task_id", "")]


def test_subscribe_completes_a_run_with_the_handlers_output(push_worker):
    worker = push_worker(HMS_ACT_AGENT="payments#1")
    act = ACTClient()
    name = workflow()
    run_id = start_workflow(name, payload={"mode": "dict", "output": {"charged": 100, "currency": "USD"}})
    run = act.watch(run_id, timeout="60s")
    assert run["status"] == "completed", run
    step = run["steps"][0]
    assert step["step_id"] == TOPIC and step["status"] == "completed"
    assert step["output"] == {"charged": 100, "currency": "USD"}
    assert [task["target"] for task in run["tasks"]] == [f"queue:{TOPIC}"]
    assert [entry["actor"] for entry in task_completion(run, TOPIC)] == ["payments#1"]
    calls = worker.entries()
    assert [(c["run_id"], c["attempt"], c["message_id"]) for c in calls] == [(run_id, 1, f"{run_id}/{TOPIC}/1#1")]
    assert calls[0]["message"]["reply_to"] == {"exchange": "hms.results", "routing_key": f"result.{TOPIC}"}

    plain = start_workflow(name, payload={"mode": "success"})
    run = act.watch(plain, timeout="60s")
    assert run["status"] == "completed" and run["steps"][0]["output"] == {}
    assert worker.terminate() == 0, worker.log()


def test_fail_fails_the_step_without_retrying(push_worker):
    worker = push_worker()
    run_id = start_workflow(workflow(retry=2), payload={"mode": "fail"})
    run = ACTClient().watch(run_id, timeout="60s")
    assert run["status"] == "failed", run
    assert run["failure"]["step"] == TOPIC
    assert "returned 'fail'" in run["failure"]["reason"]
    assert [c["attempt"] for c in worker.entries() if c["run_id"] == run_id] == [1], "a 'fail' was retried"


def test_an_exception_fails_the_attempt_with_its_message_and_the_steps_retry_decides(push_worker):
    worker = push_worker()
    run_id = start_workflow(workflow(retry={"max": 1, "backoff": "fixed", "initial": "200ms"}),
                            payload={"mode": "raise", "message": "card reader on fire"})
    run = ACTClient().watch(run_id, timeout="60s")
    assert run["status"] == "failed", run
    assert run["failure"]["reason"] == "RuntimeError: card reader on fire"
    assert [c["attempt"] for c in worker.entries() if c["run_id"] == run_id] == [1, 2]
    assert "Traceback" in worker.log() and "card reader on fire" in worker.log()


def test_a_task_delivered_again_does_not_run_the_handler_twice(push_worker, repository_root):
    """The broker closes the worker's connection while the handler runs: the result cannot be published, the
    task comes back after the reconnection (redelivered), and the worker sends the result it kept. Then the
    same message is published once more: answered again, the handler still ran once."""
    worker = push_worker()
    run_id = start_workflow(workflow(), payload={"mode": "hold"})
    first = worker.wait_for_entry(lambda c: c["run_id"] == run_id)
    connections = rabbitmqctl(repository_root, "-q", "list_connections", "--no-table-headers", "pid",
                              "client_properties")
    mine = [line.split("\t")[0] for line in connections.splitlines()
            if f'"hms_act.subscribe {worker.process.pid} ' in line]
    assert len(mine) == 1, connections
    rabbitmqctl(repository_root, "close_connection", mine[0], "test: the broker drops the worker")
    open(worker.release, "w").close()
    run = ACTClient().watch(run_id, timeout="60s")
    assert run["status"] == "completed" and run["steps"][0]["output"] == {"held": True}, worker.log()
    log = worker.log()
    assert "lost the connection" in log and "answered before in this process" in log, log

    message = first["message"]
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", TOPIC, json.dumps(message).encode(),
                              pika.BasicProperties(message_id=first["message_id"], content_type="application/json",
                                                   type="hms.task", delivery_mode=2), mandatory=True)
    finally:
        connection.close()
    deadline = time.monotonic() + 30
    while worker.log().count("answered before in this process") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.log().count("answered before in this process") == 2, worker.log()
    assert len([c for c in worker.entries() if c["message_id"] == first["message_id"]]) == 1
    assert worker.terminate() == 0, worker.log()


def test_the_task_is_acked_only_after_the_result_is_confirmed(push_worker):
    """A worker that dies between its handler and the confirmed publish of the result (SIGKILL while the
    publish hangs) has not acknowledged the task: RabbitMQ hands it to the next worker, marked redelivered,
    and the run completes once."""
    doomed = push_worker("doomed", SUBSCRIBE_TEST_HANG_BEFORE_PUBLISH="1")
    run_id = start_workflow(workflow(), payload={"mode": "dict", "output": {"n": 1}})
    publishing = doomed.wait_for_entry(lambda e: e["body"]["task_id"].startswith(run_id), event="publishing")
    assert publishing["body"] == {"agent": publishing["body"]["agent"], "attempt": 1, "output": {"n": 1},
                                  "status": "completed", "task_id": f"{run_id}/{TOPIC}/1"}
    assert ACTClient().run(run_id)["status"] == "running"
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)

    heir = push_worker("heir")
    run = ACTClient().watch(run_id, timeout="60s")
    assert run["status"] == "completed" and run["steps"][0]["output"] == {"n": 1}
    again = [c for c in heir.entries() if c["run_id"] == run_id]
    assert len(again) == 1 and again[0]["redelivered"] is True
    assert again[0]["message_id"] == f"{run_id}/{TOPIC}/1#1"
    assert heir.terminate() == 0, heir.log()


def test_sigterm_finishes_the_task_in_hand_then_exits_0(push_worker):
    worker = push_worker()
    run_id = start_workflow(workflow(), payload={"mode": "hold"})
    worker.wait_for_entry(lambda c: c["run_id"] == run_id)
    worker.process.send_signal(signal.SIGTERM)
    worker.wait_for_log("SIGTERM: stopping after the task in hand")
    time.sleep(0.5)
    assert worker.process.poll() is None, "exited with the task in hand"
    open(worker.release, "w").close()
    assert worker.process.wait(timeout=30) == 0, worker.log()
    assert ACTClient().watch(run_id, timeout="60s")["status"] == "completed"
    assert worker.log().rstrip().endswith("stopped")

    idle = push_worker("idle")
    idle.process.send_signal(signal.SIGINT)
    assert idle.process.wait(timeout=30) == 0, idle.log()


def test_errors_say_what_to_fix(tmp_path):
    script = tmp_path / "bot.py"
    script.write_text("from hms_act import subscribe\n\n@subscribe('charge_fee')\ndef handle(task):\n    return 'success'\n")

    def run_bot(**env):
        return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, **env))

    unreachable = run_bot(AMQP_URL="amqp://payments:s3cret@127.0.0.1:1/%2f")
    assert unreachable.returncode == 1
    assert "cannot connect to RabbitMQ at amqp://payments@127.0.0.1:1/%2f" in unreachable.stderr
    assert "AMQP_URL" in unreachable.stderr and "s3cret" not in unreachable.stderr

    url = re.sub(r"//([^:]+):[^@]+@", r"//\1:wrong@", os.environ["AMQP_URL"])
    refused = run_bot(AMQP_URL=url)
    assert refused.returncode == 1 and "refused the user name or password" in refused.stderr, refused.stderr

    off = run_bot(HMS_ACT_AUTORUN="0")
    assert off.returncode == 0 and off.stderr == ""

    with pytest.raises(ValueError, match="AI:name"):
        from hms_act.push import label
        label("ROBOT:x")
