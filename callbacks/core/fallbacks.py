"""Fallback chains (pure): where a request may fall back to, why an attempt failed, and what the
records say about it.

The chain itself runs in LiteLLM's router (request-level ``fallbacks``); this module only says
which groups are in it and reads what happened from LiteLLM's exceptions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from callbacks.core.events import SCHEMA, redact
from callbacks.core.state import State, Tier

CONTEXT_TEXTS: Final = ("prompt is too long", "context_length_exceeded", "maximum context length",
                        "context window")
# LiteLLM reports a refused or failed connection as a 500; its text says what happened
CONNECTION_TEXTS: Final = ("cannot connect", "connect call failed", "connection refused",
                           "connection error", "connection reset", "name or service not known")


def fallback_chain(state: State, tier: Tier | None, target: str) -> list[str]:
    """The groups tried after ``target`` fails: the chain of ``tier`` (the tier whose model
    serves the request), without ``target`` itself."""
    if tier is None:
        return []
    return [model for model in state.tiers[tier].fallbacks if model != target]


def failure_reason(status_code: int | None, error_class: str, message: str) -> str:
    """One word for why an attempt failed."""
    text = message.lower()
    if "ContextWindow" in error_class or any(t in text for t in CONTEXT_TEXTS):
        return "context_window"
    if status_code == 429 or "RateLimit" in error_class:
        return "rate_limit"
    if status_code in (529, 503) or "overloaded" in text:
        return "overloaded"
    if status_code == 408 or "Timeout" in error_class or "timed out" in text:
        return "timeout"
    if "Connection" in error_class or any(t in text for t in CONNECTION_TEXTS):
        return "connection"
    if status_code is not None and status_code >= 500:
        return "server_error"
    if status_code is not None and status_code >= 400:
        return "bad_request"
    return "error"


def _header(headers: Any, name: str) -> Any:
    getter = getattr(headers, "get", None)
    return getter(name) if callable(getter) else None


def retry_after(exc: BaseException | None) -> float | None:
    """The seconds a provider asked to wait (``retry-after`` / ``retry-after-ms``), if it did."""
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(response, "headers", None)):
        if headers is None:
            continue
        for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            try:
                value = float(str(_header(headers, name)))
            except (TypeError, ValueError):
                continue
            if value >= 0:
                return value / scale
    return None


def status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def attempt_record(group: str, deployment: Any, exc: BaseException,
                   at: float | None = None) -> dict[str, Any]:
    """One failed attempt: ``{time, group, deployment, status_code, reason, retry_after}``."""
    status = status_of(exc)
    error_class = type(exc).__name__
    record: dict[str, Any] = {
        "time": round(at or time.time(), 3), "group": group,
        "deployment": deployment if isinstance(deployment, str) else None,
        "status_code": status, "reason": failure_reason(status, error_class, str(exc)),
    }
    wait = retry_after(exc)
    if wait is not None:
        record["retry_after"] = wait
    return record


def fallback_record(planned: Any, served: Any, attempts: list[Mapping[str, Any]]
                    ) -> dict[str, Any] | None:
    """``{from, to, reason, status_code}`` when another group than ``planned`` served."""
    if not isinstance(planned, str) or not isinstance(served, str) or not served \
            or served == planned:
        return None
    first = next((a for a in attempts if a.get("group") == planned), None) or \
        (attempts[0] if attempts else {})
    return {"from": planned, "to": served, "reason": first.get("reason", "error"),
            "status_code": first.get("status_code")}


def chain_failed_record(call_id: Any, routed: Mapping[str, Any], exc: BaseException,
                        started: Any) -> dict[str, Any]:
    """The one ``failed`` record of a call whose whole chain failed: the error the client got
    (LiteLLM's, about the planned group) and every attempt."""
    attempts = list(routed.get("attempts") or [])
    now = time.time()
    return {"v": SCHEMA, "type": "failed", "time": round(now, 6), "call_id": str(call_id),
            "model_group": routed.get("target"),
            "deployment": attempts[0].get("deployment") if attempts else None,
            "latency_ms": round((now - started) * 1000, 3) if isinstance(started, float) else None,
            "status": "error", "error_class": type(exc).__name__, "status_code": status_of(exc),
            "message": redact(str(exc)), "attempts": attempts}
