"""hms-act's Python client.

- ``ACTClient``: register playbooks, emit events, start, watch, pause, resume, cancel, signal and approve runs.
- ``fetch_task`` / ``complete_task`` / ``fail_task`` / ``heartbeat``: pull workers (agents with
  ``delivery: pull``), with leases.

Configuration: ``HMS_API_URL`` and ``HMS_API_TOKEN`` (default: the local demo, ``http://127.0.0.1:8100``
and ``demo-token``).
"""

from .client import ACTClient
from .errors import ACTError, LeaseLost, NotFound, Unauthorized, Unavailable
from .worker import Task, Worker, complete_task, fail_task, fetch_task, heartbeat

__all__ = [
    "ACTClient", "ACTError", "LeaseLost", "NotFound", "Unauthorized", "Unavailable",
    "Task", "Worker", "fetch_task", "complete_task", "fail_task", "heartbeat",
]
