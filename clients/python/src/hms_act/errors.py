"""Errors of the hms-act client: each says what went wrong and what to do about it."""

from __future__ import annotations

from typing import Any, Optional


class ACTError(Exception):
    """A request hms-act answered with an error (an RFC 9457 problem), or could not be sent.

    ``status`` is the HTTP status (0 when the server could not be reached), ``slug`` the last segment of
    the problem's ``type`` (``lease-lost``, ``run-not-found``, ``invalid-request``…), ``detail`` the
    server's explanation, ``problem`` the whole problem document.
    """

    def __init__(self, message: str, status: int = 0, slug: str = "", detail: str = "",
                 problem: Optional[dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.problem = problem or {}


class Unauthorized(ACTError):
    """401/403: the token is missing, unknown, or lacks the scope the call needs."""


class NotFound(ACTError):
    """404: no such run, task or playbook."""


class LeaseLost(ACTError):
    """409 from a task answer or heartbeat: the lease no longer holds the task (it expired and another
    worker claimed it, the attempt is stale, or the task was answered). Drop the task; do not retry."""


class Unavailable(ACTError):
    """503, or the server could not be reached: PostgreSQL or RabbitMQ is down. Nothing was changed; retry."""


class BrokerError(ACTError):
    """RabbitMQ could not be reached, refused the credentials, or refused a queue, binding or publish of a
    ``@subscribe`` worker; the message names the URL (without its password) and what to change."""
