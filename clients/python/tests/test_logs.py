"""`HMS_LOG_FORMAT=json`: the server's log (scripts/test-python starts it so, and names the file in
HMS_ACT_SERVE_LOG) is one JSON object a line, and a dead-lettered trigger's line, or a failed run's, carries
the trace id of the `traceparent` its trigger came with, so a log pipeline finds it from the trace."""

import json
import os
import secrets
import time
import uuid

import pika

from conftest import publish_trigger
from hms_act import ACTClient
from hms_oms import Workflow


def _lines():
    with open(os.environ["HMS_ACT_SERVE_LOG"], encoding="utf-8") as log:
        return [line for line in log.read().splitlines() if line]


def wait_for_line(predicate, what):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in _lines():
            entry = json.loads(line)
            if predicate(entry):
                return entry
        time.sleep(0.2)
    raise AssertionError(f"no log line {what} in {os.environ['HMS_ACT_SERVE_LOG']}")


def test_a_failed_run_is_logged_with_the_trace_id_of_its_trigger(push_worker):
    push_worker()
    suffix = uuid.uuid4().hex[:8]
    name, event_type = f"py_logs_{suffix}", f"logs.test.{suffix}"
    Workflow(id=name, triggers=[event_type], steps=[{"id": "subscribe_test"}]).save()
    trace_id = secrets.token_hex(16)
    publish_trigger(event_type, {"mode": "fail"}, f"00-{trace_id}-{secrets.token_hex(8)}-01")
    entry = wait_for_line(lambda entry: entry.get("trace_id") == trace_id and entry["message"] == "run failed",
                          f"'run failed' with trace_id {trace_id}")
    assert entry["level"] == "warning" and entry["metadata"]["playbook"] == name
    run = ACTClient().run(entry["metadata"]["run.id"])
    assert run["status"] == "failed" and run["trace_id"] == trace_id


def test_every_line_is_json_and_a_dead_letter_names_its_trace():
    trace_id = secrets.token_hex(16)
    message_id = f"log-test-{uuid.uuid4()}"
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        # A trigger nobody can read: routed to hms-act.triggers (the event type is bound), refused, dead-lettered.
        channel.basic_publish("hms.events", "noise.complaint.filed", b"{this is not json",
                              pika.BasicProperties(message_id=message_id, content_type="application/json",
                                                   headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}),
                              mandatory=True)
    finally:
        connection.close()

    deadline = time.monotonic() + 30
    found = None
    while found is None and time.monotonic() < deadline:
        for line in _lines():
            entry = json.loads(line)
            if entry.get("trace_id") == trace_id:
                found = entry
        time.sleep(0.2)
    assert found is not None, f"no log line with trace_id {trace_id} in {os.environ['HMS_ACT_SERVE_LOG']}"
    assert found["message"] == "message dead-lettered" and found["level"] == "warning"
    assert found["metadata"]["message.id"] == message_id
    assert found["metadata"]["message.routing_key"] == "noise.complaint.filed"
    assert found["time"].endswith("Z")

    for line in _lines():
        entry = json.loads(line)  # every line, not only ours
        assert {"time", "level", "logger", "message", "source"} <= entry.keys(), line
