"""Traces end to end: a trigger with a known ``traceparent`` over AMQP, a run of three steps (one retried,
one with an SLA warning) answered by a Python push worker that traces with the OpenTelemetry SDK, and every
span received over real OTLP/HTTP by ``otlp_receiver.py`` (scripts/test-python starts it and points
hms-act and the workers at it), decoded with the official opentelemetry-proto definitions.

The trace must be one tree: hms-act's root continues the trigger's span; each dispatch is its child; each
worker span is a child of its task's dispatch; each result applied is a child of the worker's span and
links back to the dispatch; the SLA warning and the run's end hang off the root.
"""

import json
import os
import secrets
import time
import uuid

import pytest
import requests

from conftest import HERE, PushWorker, publish_trigger
from hms_act import ACTClient
from hms_oms import Workflow


def spans_of(trace_id):
    path = os.environ["OTLP_RECORD"]
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [span for span in map(json.loads, handle) if span["trace_id"] == trace_id]


def wait_for_spans(trace_id, predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = spans_of(trace_id)
        if predicate(spans):
            return spans
        time.sleep(0.1)
    names = sorted(f"{span['service']}: {span['name']}" for span in spans_of(trace_id))
    raise AssertionError(f"never received {what}; spans of trace {trace_id}: {names}")


def named(spans, name, service="hms-act"):
    found = [span for span in spans if span["name"] == name and span["service"] == service]
    assert len(found) == 1, f"{len(found)} spans named {name!r} from {service}: {found}"
    return found[0]


@pytest.fixture
def trace_worker(tmp_path):
    worker = PushWorker(str(tmp_path), "trace", os.path.join(HERE, "trace_worker.py"),
                        {"TRACE_TEST_RELEASE": str(tmp_path / "release")})
    worker.wait_for_log("connected to")
    yield worker, tmp_path / "release"
    worker.kill()


def test_a_run_is_one_trace_from_the_trigger_through_the_worker_and_back(trace_worker):
    worker, release = trace_worker
    suffix = uuid.uuid4().hex[:8]
    name, event_type = f"py_trace_{suffix}", f"trace.test.{suffix}"
    Workflow(id=name, triggers=[event_type], steps=[
        {"id": "collect", "agent": "svc.trace_test"},
        {"id": "review", "agent": "svc.trace_test", "retry": {"max": 2, "backoff": "fixed", "initial": "1s"}},
        {"id": "decide", "agent": "svc.trace_test", "sla": "10s"},
    ]).save()
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    publish_trigger(event_type, {"complaint": "loud"}, f"00-{trace_id}-{caller_span}-01")

    # `decide` holds until its SLA warning (at 80% of 10 s) has been exported.
    wait_for_spans(trace_id, lambda spans: any(span["name"] == "sla.warning decide" for span in spans),
                   "the SLA warning of step decide", timeout=60)
    release.touch()
    act = ACTClient()
    deadline = time.monotonic() + 30
    runs = []
    while not runs and time.monotonic() < deadline:
        runs = act.runs(playbook=name)
        time.sleep(0.1)
    run = act.watch(runs[0]["run_id"], timeout="60s")
    assert run["status"] == "completed", run
    assert run["trace_id"] == trace_id
    # An API call in the same trace: its server span is a child of the caller's span.
    requests.get(f"{act.api_url}/v1/runs/{run['run_id']}", timeout=30,
                 headers={"Authorization": f"Bearer {os.environ['HMS_API_TOKEN']}",
                          "traceparent": f"00-{trace_id}-{caller_span}-01"}).raise_for_status()

    spans = wait_for_spans(trace_id, lambda spans: any(span["name"] == "run.completed" for span in spans)
                           and any(span["kind"] == "SPAN_KIND_SERVER" for span in spans)
                           and sum(span["name"] == "handle svc.trace_test" for span in spans) == 4,
                           "the run's end, the API call and four worker spans")
    ids = {span["span_id"]: span for span in spans}
    assert len(ids) == len(spans), "a span id came twice"

    root = named(spans, f"process {event_type}")
    assert root["kind"] == "SPAN_KIND_CONSUMER" and root["parent_span_id"] == caller_span
    assert root["attributes"]["messaging.system"] == "rabbitmq"
    assert root["attributes"]["messaging.destination.name"] == "hms.events"
    assert root["attributes"]["messaging.rabbitmq.destination.routing_key"] == event_type
    assert root["attributes"]["hms.run_id"] == run["run_id"] and root["attributes"]["hms.playbook"] == name

    for step, attempt, outcome in [("collect", 1, "completed"), ("review", 1, "failed"), ("review", 2, "completed"),
                                   ("decide", 1, "completed")]:
        dispatch = named(spans, f"dispatch {step} #{attempt}")
        assert dispatch["kind"] == "SPAN_KIND_PRODUCER" and dispatch["parent_span_id"] == root["span_id"]
        attributes = dispatch["attributes"]
        assert (attributes["hms.step_id"], attributes["hms.attempt"]) == (step, attempt)
        assert attributes["hms.task_id"].startswith(run["run_id"] + f"/{step}/")
        assert attributes["messaging.message.id"] == f"{attributes['hms.task_id']}#{attempt}"
        assert attributes["messaging.destination.name"] in ("", "svc.trace_test")  # the agent's queue
        assert attributes["hms.agent"] == "svc.trace_test"

        handled = [span for span in spans if span["service"] == "trace-test-worker"
                   and span["parent_span_id"] == dispatch["span_id"]]
        assert [span["name"] for span in handled] == ["handle svc.trace_test"], handled
        assert handled[0]["attributes"]["hms.attempt"] == attempt

        result = named(spans, f"result {step} #{attempt}")
        assert result["kind"] == "SPAN_KIND_CONSUMER"
        assert result["parent_span_id"] == handled[0]["span_id"], "the result continues the worker's span"
        assert result["links"] == [{"trace_id": trace_id, "span_id": dispatch["span_id"],
                                    "attributes": {"hms.link": "dispatch"}}]
        assert result["attributes"]["hms.outcome"] == outcome
        if outcome == "failed":
            assert result["status"]["code"] == "STATUS_CODE_ERROR"
            assert "records office timed out" in result["status"]["message"]
            assert result["attributes"]["hms.retryable"] is True
            assert handled[0]["status"]["code"] == "STATUS_CODE_ERROR"

    warning = named(spans, "sla.warning decide")
    assert warning["parent_span_id"] == root["span_id"]
    assert warning["links"][0]["span_id"] == named(spans, "dispatch decide #1")["span_id"]
    end = named(spans, "run.completed")
    assert end["parent_span_id"] == root["span_id"] and end["attributes"]["hms.run.status"] == "completed"

    server = [span for span in spans if span["kind"] == "SPAN_KIND_SERVER"]
    assert [span["name"] for span in server] == ["GET /v1/runs/{id}"]
    assert server[0]["parent_span_id"] == caller_span
    assert server[0]["attributes"]["http.route"] == "/v1/runs/{id}"
    assert server[0]["attributes"]["http.response.status_code"] == 200

    # One tree: every parent is in the trace, but the root's (the caller's span, not exported here).
    for span in spans:
        assert span["start"] <= span["end"], span
        if span is not root and span["parent_span_id"] != caller_span:
            assert span["parent_span_id"] in ids, f"{span['name']} has a parent outside the trace"

    # Each batch is a span of its own trace (the PostgreSQL transaction), linked to the run spans it made.
    with open(os.environ["OTLP_RECORD"], encoding="utf-8") as handle:
        batches = [span for span in map(json.loads, handle) if span["name"] == "apply batch"
                   and any(link["span_id"] == root["span_id"] for link in span["links"])]
    assert len(batches) == 1 and batches[0]["attributes"]["db.system.name"] == "postgresql"
    assert worker.terminate() == 0, worker.log()


def test_a_trigger_posted_over_http_hangs_under_the_requests_span():
    suffix = uuid.uuid4().hex[:8]
    name, event_type = f"py_trace_http_{suffix}", f"trace.http.{suffix}"
    Workflow(id=name, triggers=[event_type], steps=[{"id": "hold", "wait": "signal"}]).save()
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    act = ACTClient()
    answer = requests.post(f"{act.api_url}/v1/events", timeout=30,
                           json={"type": event_type, "id": f"trace-http-{suffix}", "data": {}},
                           headers={"Authorization": f"Bearer {os.environ['HMS_API_TOKEN']}",
                                    "traceparent": f"00-{trace_id}-{caller_span}-01"})
    answer.raise_for_status()
    spans = wait_for_spans(trace_id, lambda spans: any(span["name"] == f"process {event_type}" for span in spans)
                           and any(span["name"] == "POST /v1/events" for span in spans),
                           "the request's span and the run's root")
    server, root = named(spans, "POST /v1/events"), named(spans, f"process {event_type}")
    assert server["parent_span_id"] == caller_span and server["kind"] == "SPAN_KIND_SERVER"
    assert root["parent_span_id"] == server["span_id"], "the run continues the request's span"
    run = act.run(answer.json()["runs"][0])
    assert run["trace_id"] == trace_id
    act.cancel(run["run_id"], reason="test done")
