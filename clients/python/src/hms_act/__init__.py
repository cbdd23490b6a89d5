"""hms-act's Python client.

- ``ACTClient``: register playbooks, emit events, start, watch, pause, resume, cancel, signal and approve runs.
- ``fetch_task`` / ``complete_task`` / ``fail_task`` / ``heartbeat``: pull workers (agents with
  ``delivery: pull``), with leases.
- ``@subscribe(topic)``: push workers over AMQP (chapter 004's payment bot); the script becomes the worker
  when it ends, or at ``run()``. Needs ``pika``.

Configuration: ``HMS_API_URL`` and ``HMS_API_TOKEN`` (default: the local demo, ``http://127.0.0.1:8100``
and ``demo-token``); ``AMQP_URL`` for ``subscribe`` (default: the local stack's broker).
"""

from .client import ACTClient
from .errors import ACTError, BrokerError, LeaseLost, NotFound, Unauthorized, Unavailable
from .push import PushedTask, Subscriber, TaskFailed, run, stop, subscribe
from .worker import Task, Worker, complete_task, fail_task, fetch_task, heartbeat

__all__ = [
    "ACTClient", "ACTError", "BrokerError", "LeaseLost", "NotFound", "Unauthorized", "Unavailable",
    "Task", "Worker", "fetch_task", "complete_task", "fail_task", "heartbeat",
    "PushedTask", "Subscriber", "TaskFailed", "subscribe", "run", "stop",
]
