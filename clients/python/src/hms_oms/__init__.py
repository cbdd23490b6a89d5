"""Chapter 004's ``hms_oms``: define a workflow in Python and start it, on hms-act.

    from hms_oms import Workflow, start_workflow

    Workflow(id="epa_waste_reg", steps=[{"id": "collect_form", "sla": "5m"}, …]).save()
    instance_id = start_workflow("epa_waste_reg", payload={"form_id": "F8700-12-42"})

``Workflow.save()`` registers the workflow as a playbook (a playbook is YAML, and JSON is YAML); a step
without ``actor`` sends its tasks to the topic named after the step, which a pull worker fetches with
``fetch_task(topic=step_id)`` when the agent ``{"id": step_id, "delivery": "pull"}`` is in ``agents/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from hms_act import ACTClient


@dataclass
class Workflow:
    id: str
    steps: list[dict[str, Any]]
    #: Event types that start it (``hms.events`` routing keys); optional, ``start_workflow`` needs none.
    triggers: list[str] = field(default_factory=list)
    description: Optional[str] = None

    def to_playbook(self) -> dict[str, Any]:
        playbook: dict[str, Any] = {"id": self.id, "steps": self.steps}
        if self.description:
            playbook["description"] = self.description
        return playbook

    def save(self, client: Optional[ACTClient] = None) -> dict[str, Any]:
        """Registers the workflow (a new version when it changed); returns the registration."""
        return (client or ACTClient()).register_playbook(json.dumps(self.to_playbook(), indent=2) + "\n",
                                                         triggers=self.triggers)


def start_workflow(workflow_id: str, payload: Optional[dict[str, Any]] = None, *, id: Optional[str] = None,
                   client: Optional[ACTClient] = None) -> str:
    """Starts a run of the workflow; returns its id (``wf_…``)."""
    return (client or ACTClient()).start(workflow_id, payload=payload, id=id)


__all__ = ["Workflow", "start_workflow"]
