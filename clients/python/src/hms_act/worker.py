"""Pull workers: claim a pull agent's tasks with a lease, answer them, keep the lease alive.

The agent must say ``delivery: pull`` in hms-act's ``agents/`` folder (docs/playbooks.md); its tasks are
then never published over AMQP and wait for ``fetch_task``::

    from hms_act import fetch_task, complete_task, fail_task

    while True:
        task = fetch_task(topic="validate_tax_id", max_wait="10s")
        if not task:
            continue
        if irs_ok(task.payload["form_id"]):
            complete_task(task.id)
        else:
            fail_task(task.id, reason="IRS mismatch")
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ._http import Transport, api_url_from_environment, seconds, segment, token_from_environment
from .errors import ACTError


@dataclass
class Task:
    """One claimed attempt of a task: the ``hms.task`` message plus its lease."""

    id: str
    attempt: int
    run_id: str
    step_id: str
    payload: Any
    input: Any
    context: Any
    lease_id: str
    lease_expires_at: str
    #: How many leases were granted on this attempt; 2 or more means an earlier holder let it lapse.
    claims: int
    message: dict[str, Any] = field(repr=False)

    @classmethod
    def from_claim(cls, claimed: dict[str, Any]) -> "Task":
        return cls(id=claimed["task_id"], attempt=int(claimed["attempt"]), run_id=claimed["run_id"],
                   step_id=claimed["step_id"], payload=claimed.get("payload"), input=claimed.get("input"),
                   context=claimed.get("context"), lease_id=claimed["lease_id"],
                   lease_expires_at=claimed["lease_expires_at"], claims=int(claimed.get("claims", 1)),
                   message=claimed)


class Worker:
    """Claims and answers one pull agent's tasks. The module functions use a default one built from the
    environment (``HMS_API_URL``, ``HMS_API_TOKEN``)."""

    def __init__(self, api_url: Optional[str] = None, token: Optional[str] = None) -> None:
        self._http = Transport(api_url or api_url_from_environment(),
                               token if token is not None else token_from_environment())
        self._leases: dict[str, Task] = {}
        self._lock = threading.Lock()

    def fetch(self, topic: Optional[str] = None, *, agent: Optional[str] = None, max_wait: Union[str, float] = "10s",
              lease: Union[str, float] = "60s") -> Optional[Task]:
        """The oldest open task of the pull agent, leased to this worker for ``lease``; waits up to
        ``max_wait`` (at most 30 s) for one and returns ``None`` when none came. ``topic`` (the chapters'
        word) and ``agent`` both name the agent: its id in ``agents/`` (``validate_tax_id``,
        ``ai.fraud-labeler``) or the chapters' ``AI:fraud-labeler``."""
        tasks = self.fetch_many(topic, agent=agent, max_wait=max_wait, lease=lease, limit=1)
        return tasks[0] if tasks else None

    def fetch_many(self, topic: Optional[str] = None, *, agent: Optional[str] = None,
                   max_wait: Union[str, float] = "10s", lease: Union[str, float] = "60s", limit: int = 10) -> list[Task]:
        name = agent or topic
        if not name:
            raise ValueError("name the pull agent: fetch_task(topic='validate_tax_id') or agent='ai.fraud-labeler'")
        wait = min(seconds(max_wait, "max_wait") or 0.0, 30.0)
        body: dict[str, Any] = {"max_tasks": int(limit), "lease_seconds": seconds(lease, "lease"), "wait_seconds": wait}
        body["actor" if ":" in name else "agent"] = name
        claimed = self._http.request("POST", "/v1/tasks/claim", body, timeout=wait + 30)["tasks"]
        tasks = [Task.from_claim(item) for item in claimed]
        with self._lock:
            for task in tasks:
                self._leases[task.id] = task
        return tasks

    def complete(self, task: Union[Task, str], output: Any = None) -> dict[str, Any]:
        """Completes the task with ``output`` (default ``{}``). ``LeaseLost`` when this worker's lease no
        longer holds it."""
        held = self._held(task)
        body: dict[str, Any] = {"output": {} if output is None else output}
        if held:
            body.update(attempt=held.attempt, lease_id=held.lease_id)
        return self._answer(task, "complete", body)

    def fail(self, task: Union[Task, str], reason: str, retryable: bool = True) -> dict[str, Any]:
        """Fails the attempt; a retryable failure is retried per the step's ``retry`` while attempts are left."""
        held = self._held(task)
        body: dict[str, Any] = {"reason": reason, "retryable": retryable}
        if held:
            body.update(attempt=held.attempt, lease_id=held.lease_id)
        return self._answer(task, "fail", body)

    def heartbeat(self, task: Union[Task, str], lease: Union[str, float] = "60s") -> str:
        """Extends the lease by ``lease`` from now; returns the new expiry. ``LeaseLost`` when it was lost."""
        held = self._held(task)
        if held is None:
            raise ValueError(f"task {self._id(task)} was not fetched by this worker, so it holds no lease on it")
        extended = self._http.request("POST", f"/v1/tasks/{segment(held.id)}/heartbeat",
                                      {"lease_id": held.lease_id, "attempt": held.attempt,
                                       "lease_seconds": seconds(lease, "lease")})
        held.lease_expires_at = extended["lease_expires_at"]
        return held.lease_expires_at

    def _answer(self, task: Union[Task, str], verb: str, body: dict[str, Any]) -> dict[str, Any]:
        task_id = self._id(task)
        try:
            return self._http.request("POST", f"/v1/tasks/{segment(task_id)}/{verb}", body)
        finally:
            with self._lock:
                self._leases.pop(task_id, None)

    def _held(self, task: Union[Task, str]) -> Optional[Task]:
        if isinstance(task, Task):
            return task
        with self._lock:
            return self._leases.get(task)

    @staticmethod
    def _id(task: Union[Task, str]) -> str:
        if isinstance(task, Task):
            return task.id
        if isinstance(task, str) and task:
            return task
        raise TypeError(f"expected a Task or a task id, got {task!r}")


_default: Optional[Worker] = None
_default_lock = threading.Lock()


def _worker() -> Worker:
    global _default
    with _default_lock:
        if _default is None:
            _default = Worker()
        return _default


def fetch_task(topic: Optional[str] = None, *, agent: Optional[str] = None, max_wait: Union[str, float] = "10s",
               lease: Union[str, float] = "60s") -> Optional[Task]:
    """See ``Worker.fetch``."""
    return _worker().fetch(topic, agent=agent, max_wait=max_wait, lease=lease)


def complete_task(task: Union[Task, str], output: Any = None) -> dict[str, Any]:
    """See ``Worker.complete``."""
    return _worker().complete(task, output)


def fail_task(task: Union[Task, str], reason: str, retryable: bool = True) -> dict[str, Any]:
    """See ``Worker.fail``."""
    return _worker().fail(task, reason, retryable)


def heartbeat(task: Union[Task, str], lease: Union[str, float] = "60s") -> str:
    """See ``Worker.heartbeat``."""
    return _worker().heartbeat(task, lease)


__all__ = ["Task", "Worker", "fetch_task", "complete_task", "fail_task", "heartbeat", "ACTError"]
