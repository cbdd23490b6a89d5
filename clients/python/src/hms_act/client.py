"""``ACTClient``: register playbooks, emit events, start, watch and steer runs over hms-act's HTTP API."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Iterable, Optional, Union

from ._http import Transport, api_url_from_environment, seconds, segment, token_from_environment
from .errors import ACTError

#: Run statuses after which nothing more happens.
FINISHED = ("completed", "failed", "cancelled")


class ACTClient:
    """A client of one hms-act deployment.

    Configuration comes from the arguments, else the environment (``HMS_API_URL``, ``HMS_API_TOKEN``), else
    the local demo's values (``http://127.0.0.1:8100``, ``demo-token``)::

        act = ACTClient()
        act.register_playbook("playbooks/noise_complaint.yaml")
        act.emit({"type": "noise.complaint.filed", "id": "evt-1", "payload": {"address": "123 Oak St"}})
    """

    def __init__(self, api_url: Optional[str] = None, token: Optional[str] = None, timeout: float = 30.0) -> None:
        self._http = Transport(api_url or api_url_from_environment(),
                               token if token is not None else token_from_environment(), timeout)

    @property
    def api_url(self) -> str:
        return self._http.api_url

    # Playbooks

    def register_playbook(self, playbook: str, triggers: Iterable[str] = ()) -> dict[str, Any]:
        """Registers a playbook from a file path or from its YAML/JSON source; returns the registration
        (``playbook``, ``version``, ``created``, ``warnings``). ``triggers`` binds event types in addition
        to the playbook's own. Needs an ``admin`` token. An invalid playbook raises ``ACTError`` whose
        ``problem["diagnostics"]`` lists every problem with its line, column and fix."""
        source, file = playbook, None
        if "\n" not in playbook and os.path.isfile(playbook):
            with open(playbook, encoding="utf-8") as handle:
                source, file = handle.read(), os.path.basename(playbook)
        body: dict[str, Any] = {"source": source, "triggers": list(triggers)}
        if file:
            body["file"] = file
        try:
            return self._http.request("POST", "/v1/playbooks", body)
        except ACTError as error:
            diagnostics = error.problem.get("diagnostics") or []
            if diagnostics:
                lines = [f"  {d.get('line')}:{d.get('column')} {d.get('message')}"
                         + (f" (fix: {d['fix']})" if d.get("fix") else "") for d in diagnostics]
                error.args = (str(error) + "\n" + "\n".join(lines),)
            raise

    def playbooks(self) -> list[dict[str, Any]]:
        return self._http.request("GET", "/v1/playbooks")["playbooks"]

    def playbook_versions(self, playbook: str) -> dict[str, Any]:
        """Every version of ``playbook`` (newest first) with its ``state`` (``active``, ``deprecated``,
        ``disabled``) and ``pinned``, the ``current`` one new runs start on, and the latest ``changes``."""
        return self._http.request("GET", f"/v1/playbooks/{segment(playbook)}/versions")

    def set_version_state(self, playbook: str, version: int, state: str,
                          reason: Optional[str] = None) -> dict[str, Any]:
        """Makes ``version`` ``active``, ``deprecated`` (new runs start on it only when pinned or no version is
        active) or ``disabled`` (never); runs already on it go on. Needs an ``admin`` token; ``ACTError`` (409)
        when disabling the pinned version."""
        body: dict[str, Any] = {"state": state}
        if reason is not None:
            body["reason"] = reason
        return self._http.request("POST", f"/v1/playbooks/{segment(playbook)}/versions/{int(version)}/state", body)

    def pin(self, playbook: str, version: Optional[int], reason: Optional[str] = None) -> dict[str, Any]:
        """Pins the version new runs of ``playbook`` start on; ``None`` unpins (the newest active version
        again). Needs an ``admin`` token; ``ACTError`` (409) when the version is disabled."""
        body: dict[str, Any] = {"version": None if version is None else int(version)}
        if reason is not None:
            body["reason"] = reason
        return self._http.request("POST", f"/v1/playbooks/{segment(playbook)}/pin", body)

    # Events and runs

    def emit(self, event: dict[str, Any]) -> dict[str, Any]:
        """Publishes a trigger event (``{"type", "id"?, "payload"?}``; the chapters' ``name`` works for
        ``type``). Returns ``event_id``, ``runs`` (the runs it started) and ``outcome``. Emitting the same
        ``id`` twice starts nothing new."""
        if not isinstance(event, dict):
            raise TypeError("emit takes a dict: {'type': 'noise.complaint.filed', 'id': '…', 'payload': {…}}")
        return self._http.request("POST", "/v1/events", event)

    def start(self, playbook: str, payload: Optional[dict[str, Any]] = None, id: Optional[str] = None) -> str:
        """Starts a run of ``playbook`` (its id) directly; returns the run id. ``id`` makes it idempotent."""
        body: dict[str, Any] = {"playbook": playbook, "payload": payload or {}, "id": id or str(uuid.uuid4())}
        accepted = self._http.request("POST", "/v1/runs", body)
        runs = accepted.get("runs") or []
        if not runs:
            raise ACTError(f"starting {playbook} started no run: {accepted.get('reason') or accepted}")
        return runs[0]

    def runs(self, status: Optional[str] = None, playbook: Optional[str] = None, limit: int = 50,
             key: Any = None, payload: Optional[dict[str, Any]] = None, created_after: Optional[str] = None,
             created_before: Optional[str] = None) -> list[dict[str, Any]]:
        """Runs, newest first, filtered by status, playbook id, business key (the playbook's ``key:`` on
        the trigger's payload, else the trigger event's id), what the trigger payload contains (``payload=
        {"address": "123 Oak St"}``) and creation time (RFC 3339)."""
        query = [f"limit={int(limit)}"]
        if payload is not None:
            query.append(f"payload={segment(json.dumps(payload, separators=(',', ':')))}")
        if created_after:
            query.append(f"created_after={segment(created_after)}")
        if created_before:
            query.append(f"created_before={segment(created_before)}")
        if status:
            query.append(f"status={segment(status)}")
        if playbook:
            query.append(f"playbook={segment(playbook)}")
        if key is not None:
            query.append(f"key={segment(str(key))}")
        return self._http.request("GET", "/v1/runs?" + "&".join(query))["runs"]

    def run(self, run_id: str) -> dict[str, Any]:
        """Everything about one run: status, steps, tasks and its audit timeline."""
        return self._http.request("GET", f"/v1/runs/{segment(run_id)}")

    def watch(self, run_id: str, timeout: Union[str, float] = "60s", interval: float = 0.25) -> dict[str, Any]:
        """Waits until the run is completed, failed or cancelled and returns it; ``TimeoutError`` (naming
        the run's status and current step) when it takes longer than ``timeout``."""
        deadline = time.monotonic() + (seconds(timeout, "timeout") or 0)
        while True:
            run = self.run(run_id)
            if run.get("status") in FINISHED:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run.get('status')} after {timeout} "
                                   f"(steps: {[s.get('step_id') for s in run.get('steps', [])]})")
            time.sleep(interval)

    def pause(self, run_id: str, reason: Optional[str] = None) -> dict[str, Any]:
        return self._command(run_id, "pause", reason)

    def resume(self, run_id: str, reason: Optional[str] = None) -> dict[str, Any]:
        return self._command(run_id, "resume", reason)

    def cancel(self, run_id: str, reason: Optional[str] = None) -> dict[str, Any]:
        return self._command(run_id, "cancel", reason)

    def signal(self, run_id: str, name: str, payload: Any = None) -> dict[str, Any]:
        """Delivers signal ``name`` to the run (ends a ``wait`` for it)."""
        return self._http.request("POST", f"/v1/runs/{segment(run_id)}/signals/{segment(name)}", {"payload": payload})

    def signal_by_key(self, name: str, key: Any, payload: Any = None, playbook: Optional[str] = None) -> dict[str, Any]:
        """Delivers signal ``name`` to every running or paused run with the business ``key`` (its playbook's
        ``key:`` on the trigger's payload, else its trigger event's id; a string or a number), only of
        ``playbook`` when given. Returns ``{"signal", "key", "runs": [{"run_id", "outcome"}, …]}``; raises
        ``NotFound`` when no running run has the key."""
        body: dict[str, Any] = {"key": key, "payload": payload}
        if playbook is not None:
            body["playbook"] = playbook
        return self._http.request("POST", f"/v1/signals/{segment(name)}", body)

    def approve(self, run_id: str, step_id: str, approved: bool = True, reason: Optional[str] = None,
                payload: Any = None) -> dict[str, Any]:
        """Answers a step waiting for approval; the approver is the token's principal."""
        body: dict[str, Any] = {"approved": approved, "payload": payload}
        if reason is not None:
            body["reason"] = reason
        return self._http.request("POST", f"/v1/callbacks/{segment(run_id)}/{segment(step_id)}", body)

    def rewind(self, run_id: str, step: str, reason: Optional[str] = None) -> dict[str, Any]:
        """Runs a finished run (or one waiting on a step's incident) again from the top-level ``step``: it
        and the steps written after it run again, the outputs of the steps before it are kept. ``ACTError``
        (409) says why when it cannot, e.g. the run is still active or ``step`` was never reached."""
        body: dict[str, Any] = {"step": step}
        if reason is not None:
            body["reason"] = reason
        return self._http.request("POST", f"/v1/runs/{segment(run_id)}/rewind", body)

    # Bulk operations

    def bulk(self, action: str, reason: Optional[str] = None, rate_per_second: int = 200,
             **filter: Any) -> dict[str, Any]:
        """Applies ``action`` (``cancel``, ``pause``, ``resume``, ``retry``) to every run the filter matches
        (``playbook=``, ``status=``, ``key=``, ``created_after=``, ``created_before=``; at least one), in the
        background; returns the operation (poll it with :meth:`bulk_operation`)."""
        body: dict[str, Any] = {"action": action, "filter": filter, "rate_per_second": rate_per_second}
        if reason is not None:
            body["reason"] = reason
        return self._http.request("POST", "/v1/bulk-operations", body)

    def bulk_operation(self, operation_id: int) -> dict[str, Any]:
        """A bulk operation with its ``state`` and ``progress`` (matched, applied, ignored, refused)."""
        return self._http.request("GET", f"/v1/bulk-operations/{int(operation_id)}")

    # Incidents

    def incidents(self, run: Optional[str] = None, status: str = "open", kind: Optional[str] = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """Incidents, newest first: ``status`` ``open``, ``resolved`` or ``all``; of one ``run`` and one
        ``kind`` (``step_failed``, ``compensation_failed``, ``unroutable_task``, …) when given. An incident
        with ``holds_run`` keeps its run in status ``incident`` until it is retried, skipped or failed."""
        query = [f"status={segment(status)}", f"limit={int(limit)}"]
        if run:
            query.append(f"run={segment(run)}")
        if kind:
            query.append(f"kind={segment(kind)}")
        return self._http.request("GET", "/v1/incidents?" + "&".join(query))["incidents"]

    def incident(self, incident_id: int) -> dict[str, Any]:
        """One incident, with its ``detail`` and, once resolved, its ``resolution``."""
        return self._http.request("GET", f"/v1/incidents/{int(incident_id)}")

    def retry_incident(self, incident_id: int, input: Any = None, reason: Optional[str] = None) -> dict[str, Any]:
        """Runs the failed step again (a failed compensation: sends it again). ``input`` is a JSON merge patch
        on the step's ``input:`` (``None`` values remove keys)."""
        body: dict[str, Any] = {}
        if input is not None:
            body["input"] = input
        return self._incident_action(incident_id, "retry", body, reason)

    def skip_incident(self, incident_id: int, output: Any, reason: Optional[str] = None) -> dict[str, Any]:
        """Goes on as if the failed step completed with ``output`` (it is not compensated later)."""
        return self._incident_action(incident_id, "skip", {"output": output}, reason)

    def fail_incident(self, incident_id: int, reason: Optional[str] = None) -> dict[str, Any]:
        """Gives up: the run fails and its completed steps are compensated."""
        return self._incident_action(incident_id, "fail", {}, reason)

    def resolve_incident(self, incident_id: int, reason: Optional[str] = None) -> dict[str, Any]:
        """Marks an incident that holds no run (an unroutable task, …) resolved once its cause is fixed."""
        return self._incident_action(incident_id, "resolve", {}, reason)

    def _incident_action(self, incident_id: int, action: str, body: dict[str, Any],
                         reason: Optional[str]) -> dict[str, Any]:
        if reason is not None:
            body["reason"] = reason
        return self._http.request("POST", f"/v1/incidents/{int(incident_id)}/{action}", body)

    def _command(self, run_id: str, command: str, reason: Optional[str]) -> dict[str, Any]:
        body = {"reason": reason} if reason else {}
        return self._http.request("POST", f"/v1/runs/{segment(run_id)}/{command}", body)
