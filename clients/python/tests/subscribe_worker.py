"""A push worker for the tests (test_subscribe.py), run as its own process the way a user runs one: it only
decorates a handler and ends, and hms_act.subscribe starts it when the script is done.

The task's payload says what the handler does (``mode``): ``success``, ``dict`` (returns the payload's
``output``), ``fail``, ``raise`` (raises RuntimeError with ``message``), ``hold`` (waits until the file
SUBSCRIBE_TEST_RELEASE exists, then returns ``{"held": true}``). Every call is appended as one JSON line to
SUBSCRIBE_TEST_RECORD, so a test can count how often the handler ran for a message id.

SUBSCRIBE_TEST_HANG_BEFORE_PUBLISH=1 is a fault injection at the broker's edge: the result's publish (pika's
basic_publish) records ``publishing`` and then never returns, as if the process died or the confirm never
came between the handler and the confirmed publish. The test then kills the process with SIGKILL.
"""

import json
import os
import time

from hms_act import subscribe

RECORD = os.environ["SUBSCRIBE_TEST_RECORD"]


def record(**entry):
    entry["pid"] = os.getpid()
    with open(RECORD, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


if os.environ.get("SUBSCRIBE_TEST_HANG_BEFORE_PUBLISH") == "1":
    from pika.adapters.blocking_connection import BlockingChannel

    def hang(self, exchange, routing_key, body, properties=None, mandatory=False):
        record(event="publishing", body=json.loads(body))
        while True:
            time.sleep(60)

    BlockingChannel.basic_publish = hang


@subscribe(os.environ.get("SUBSCRIBE_TEST_TOPIC", "subscribe_test"))
def handle(task):
    mode = (task.payload or {}).get("mode", "success")
    record(event="handler", mode=mode, message_id=task.message_id, run_id=task.run_id, task_id=task.id,
           attempt=task.attempt, step_id=task.step_id, redelivered=task.redelivered, message=task.message)
    if mode == "dict":
        return task.payload["output"]
    if mode == "fail":
        return "fail"
    if mode == "raise":
        raise RuntimeError(task.payload["message"])
    if mode == "hold":
        release = os.environ["SUBSCRIBE_TEST_RELEASE"]
        deadline = time.monotonic() + 120
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"held": True}
    return "success"
