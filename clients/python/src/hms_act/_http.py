"""A small JSON-over-HTTP transport on the standard library (no dependency to install)."""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional, Union

from .errors import ACTError, LeaseLost, NotFound, Unauthorized, Unavailable

#: The demo's values (scripts/demo): hms-act on port 8100 with the token ``demo-token``.
DEFAULT_API_URL = "http://127.0.0.1:8100"
DEFAULT_TOKEN = "demo-token"


def api_url_from_environment() -> str:
    return os.environ.get("HMS_API_URL", DEFAULT_API_URL).rstrip("/")


def token_from_environment() -> str:
    return os.environ.get("HMS_API_TOKEN", DEFAULT_TOKEN)


def seconds(value: Union[str, int, float, None], name: str) -> Optional[float]:
    """``"10s"``, ``"500ms"``, ``"5m"``, ``"2h"`` or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a duration like '10s' or a number of seconds, not {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise ValueError(f"{name}={value!r} is not a duration: write e.g. '500ms', '10s', '5m' or '2h'")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def segment(text: str) -> str:
    """A path segment: task ids contain ``/`` and travel as ``%2F``."""
    return urllib.parse.quote(text, safe="")


class Transport:
    def __init__(self, api_url: str, token: str, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, *, raw: Optional[bytes] = None,
                content_type: str = "application/json", timeout: Optional[float] = None) -> Any:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.api_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                payload = response.read()
                return json.loads(payload) if payload else None
        except urllib.error.HTTPError as error:
            raise self._problem(method, path, error) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise Unavailable(
                f"{method} {self.api_url}{path}: cannot reach hms-act ({reason}); is it running? "
                f"Set HMS_API_URL to its address (now {self.api_url})") from None

    def _problem(self, method: str, path: str, error: urllib.error.HTTPError) -> ACTError:
        text = error.read().decode("utf-8", "replace")
        try:
            problem = json.loads(text)
        except ValueError:
            problem = {"detail": text.strip()}
        if not isinstance(problem, dict):
            problem = {"detail": str(problem)}
        detail = str(problem.get("detail") or problem.get("title") or error.reason)
        slug = str(problem.get("type", "")).rstrip("/").rsplit("/", 1)[-1]
        message = f"{method} {path}: {error.code} {detail}"
        kind: type[ACTError] = ACTError
        if error.code in (401, 403):
            kind = Unauthorized
            message += " (set HMS_API_TOKEN to a token with the scope this call needs; see docs/http-api.md)"
        elif error.code == 404:
            kind = NotFound
        elif error.code == 409 and slug in ("lease-lost", "stale-attempt", "lease-mismatch", "task-closed"):
            kind = LeaseLost
        elif error.code == 503:
            kind = Unavailable
        return kind(message, status=error.code, slug=slug, detail=detail, problem=problem)
