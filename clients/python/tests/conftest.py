"""The tests talk to a real hms-act started by scripts/test-python (HMS_API_URL, HMS_API_TOKEN), with the
repository's playbooks, the demo worker answering pushed tasks, the pull agent ``validate_tax_id``, and the
agents ``charge_fee`` and ``subscribe_test`` whose tasks go to queues of their own for Python push workers
(``hms_act.subscribe``; the broker is AMQP_URL, the local stack's administrator)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config):
    if not os.environ.get("HMS_API_URL"):
        raise pytest.UsageError("run these through scripts/test-python: it starts hms-act and sets HMS_API_URL")


@pytest.fixture(scope="session")
def repository_root():
    return os.path.abspath(os.path.join(HERE, "..", "..", ".."))


class PushWorker:
    """A push worker process (a script that only decorates its handler), its logs and its record."""

    def __init__(self, directory, name, script, env):
        self.name = name
        self.record = os.path.join(directory, f"{name}.record.jsonl")
        self.stdout = os.path.join(directory, f"{name}.out")
        self.stderr = os.path.join(directory, f"{name}.err")
        self.release = os.path.join(directory, f"{name}.release")
        environment = dict(os.environ, SUBSCRIBE_TEST_RECORD=self.record, SUBSCRIBE_TEST_RELEASE=self.release,
                           PYTHONUNBUFFERED="1")
        environment.update(env)
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen([sys.executable, script], stdout=out, stderr=err, env=environment)

    def log(self):
        with open(self.stderr, encoding="utf-8") as handle:
            return handle.read()

    def entries(self, event="handler"):
        if not os.path.exists(self.record):
            return []
        with open(self.record, encoding="utf-8") as handle:
            return [entry for entry in map(json.loads, handle) if entry.get("event") == event]

    def wait_for_log(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"worker {self.name} never logged {text!r}:\n{self.log()}")

    def wait_for_entry(self, predicate, event="handler", timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [entry for entry in self.entries(event) if predicate(entry)]
            if found:
                return found[0]
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"worker {self.name} never recorded the {event} awaited:\n{self.log()}")

    def terminate(self, timeout=30):
        """SIGTERM, then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def push_worker(tmp_path):
    """Starts ``subscribe_worker.py`` (topic ``subscribe_test``) and waits until it consumes; killed at the end."""
    started = []

    def start(name="worker", wait=True, **env):
        worker = PushWorker(str(tmp_path), name, os.path.join(HERE, "subscribe_worker.py"), env)
        started.append(worker)
        if wait:
            worker.wait_for_log("connected to")
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture(scope="module")
def charge_fee_worker(tmp_path_factory):
    """Chapter 004's payment step answered by a push worker, for the tests that run ``epa_waste_reg`` to
    its end (the demo worker does not serve ``charge_fee``: it has a queue of its own)."""
    directory = tmp_path_factory.mktemp("charge_fee")
    worker = PushWorker(str(directory), "charge_fee", os.path.join(HERE, "subscribe_worker.py"),
                        {"SUBSCRIBE_TEST_TOPIC": "charge_fee", "HMS_ACT_AGENT": "tests.charge_fee"})
    worker.wait_for_log("connected to")
    yield worker
    assert worker.terminate() == 0, worker.log()


def rabbitmqctl(repository_root, *args):
    """rabbitmqctl against the local stack's node (scripts/lib/rabbitmq.sh), for what only the broker can do."""
    script = ('source scripts/lib/common.sh; source scripts/lib/rabbitmq.sh; _rmq_ctl "$@"')
    return subprocess.run(["bash", "-c", script, "rabbitmqctl", *args], cwd=repository_root, capture_output=True,
                          text=True, timeout=60, check=True).stdout


def publish_trigger(event_type, payload, traceparent):
    """Publishes a trigger on ``hms.events`` with a ``traceparent`` header, confirmed; retried while its type
    is not bound yet (hms-act binds a new trigger type once it has read the playbook's registration)."""
    import uuid

    import pika

    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        deadline = time.monotonic() + 30
        while True:
            try:
                channel.basic_publish("hms.events", event_type, json.dumps(payload).encode(),
                                      pika.BasicProperties(message_id=f"trigger-{uuid.uuid4()}", delivery_mode=2,
                                                           content_type="application/json", type=event_type,
                                                           headers={"traceparent": traceparent}),
                                      mandatory=True)
                return
            except pika.exceptions.UnroutableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        connection.close()

