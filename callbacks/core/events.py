"""Event records: the contract between the callback and the panel / ``tail`` (pure).

One JSON object a line in ``events.jsonl``; every record has ``v`` (schema version), ``type``
and ``time`` (Unix seconds). Types:

- ``routed``: the hook decided (``call_id``, ``endpoint``, ``client_model``, ``signal``,
  ``value``, ``rule``, ``strength``, ``tier``, ``target``, ``reason``, ``pin``, ``routing``,
  ``notes``, ``session``, ``agent``, ``client`` (who sent it, :mod:`callbacks.core.sessions`),
  ``capped`` when a cap lowered the tier; ``fallbacks`` (the chain), ``context`` (the
  context guard moved it, or warns) and ``headroom`` (the tier's model was below its
  ``min_remaining``: moved, or ``kept``) when they apply; ``preview`` only when the state opts in);
- ``done``: the call ended well (``call_id``, ``model_group``, ``deployment``, ``status``,
  ``stream``, ``latency_ms``, ``ttft_ms``, ``input_tokens``, ``output_tokens``, ``cost``;
  ``fallback`` and ``attempts`` when a fallback of the chain served it; ``quota``, the
  serving deployment's reported rate limit, when it reported one);
- ``failed``: the call failed (``call_id``, ``model_group``, ``deployment``, ``error_class``,
  ``status_code``, ``message``, ``latency_ms``; ``retry_after`` when the provider asked to wait;
  ``attempts`` when a whole fallback chain failed: one record, after the last attempt);
- ``state``: ``event`` is ``reload`` (``changes``: list of ``{key, old, new}``), ``refused``
  (``message``) or ``preflight`` (once per proxy worker at start-up: ``ok``, ``checks``,
  ``config``; :mod:`callbacks.core.preflight`); ``pid`` says which proxy worker saw it;
- ``fleet`` (fleet mode only): ``event`` is ``recovered`` (Redis is back after ``down_s``
  seconds; ``dropped`` records were lost meanwhile).

In fleet mode every record also has ``instance``: the proxy worker (``host:pid``) that wrote it.

Records never hold API keys, auth headers or the master key, and no prompt or response text
unless the state file opts in (``event_log.preview``: a short preview of the latest user turn).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any, Final

from callbacks.core.state import State, state_to_dict

SCHEMA: Final = 1
MESSAGE_CHARS: Final = 300
# Anything shaped like a key or bearer token is masked in free text (error messages).
_SECRET: Final = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._\-]{6,}|(?:api[_-]?key|token|authorization)"
    r"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9._\-]{6,})",
    re.IGNORECASE,
)


def redact(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Free text made safe for the log: secrets masked, one line, bounded length."""
    text = _SECRET.sub("[redacted]", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _base(kind: str, call_id: Any = None, at: float | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"v": SCHEMA, "type": kind, "time": round(at or time.time(), 6)}
    if call_id is not None:
        record["call_id"] = str(call_id)
    return record


def routed_record(call_id: Any, decision: Mapping[str, Any], at: float) -> dict[str, Any]:
    """The ``routed`` record of a decision (the dict the hook stores in the metadata)."""
    return {**_base("routed", call_id, at), **decision}


def _ms(start: Any, end: Any) -> float | None:
    if isinstance(start, int | float) and isinstance(end, int | float) and end >= start > 0:
        return round((end - start) * 1000, 3)
    return None


def outcome_record(kwargs: Mapping[str, Any], failed: bool,
                   started: float | None = None) -> dict[str, Any]:
    """The ``done`` or ``failed`` record of a finished call, from LiteLLM's logging kwargs.

    ``started`` is when the proxy hook saw the request: latency and time to first token are
    measured from there (for streams LiteLLM's own start time is taken once the provider has
    answered its headers, which hides a provider that is slow to start).
    """
    slo = kwargs.get("standard_logging_object") or {}
    call_id = kwargs.get("litellm_call_id") or slo.get("litellm_call_id")
    record = _base("failed" if failed else "done", call_id)
    start = started if isinstance(started, int | float) else slo.get("startTime")
    record.update(
        model_group=slo.get("model_group"),
        deployment=slo.get("model_id"),
        latency_ms=_ms(start, slo.get("endTime")),
    )
    if failed:
        info = slo.get("error_information") or {}
        exc = kwargs.get("exception")
        code = info.get("error_code") or getattr(exc, "status_code", None)
        record.update(
            status="error",
            error_class=info.get("error_class") or (type(exc).__name__ if exc else None),
            status_code=int(str(code)) if str(code or "").isdigit() else None,
            message=redact(info.get("error_message") or slo.get("error_str") or str(exc or "")),
        )
        return record
    stream = bool(slo.get("stream"))
    cost = slo.get("response_cost")
    # LiteLLM reports 0.0 for models missing from its cost map: that is "unknown", not free
    prices = (slo.get("model_map_information") or {}).get("model_map_value")
    priced = isinstance(prices, Mapping) and bool(
        prices.get("input_cost_per_token") or prices.get("output_cost_per_token"))
    unknown_cost = slo.get("response_cost_failure_debug_info") is not None or (
        not cost and not priced)
    record.update(
        status="ok",
        stream=stream,
        ttft_ms=_ms(start, slo.get("completionStartTime")) if stream else None,
        input_tokens=slo.get("prompt_tokens"),
        output_tokens=slo.get("completion_tokens"),
        cost=None if unknown_cost or not isinstance(cost, int | float) else cost,
    )
    return record


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):  # an empty mapping adds no key: {} and absent are alike
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def state_changes(old: State, new: State) -> list[dict[str, Any]]:
    """What changed between two states, as ``{key, old, new}`` with dotted keys."""
    a, b = _flat(state_to_dict(old)), _flat(state_to_dict(new))
    return [{"key": k, "old": a.get(k), "new": b.get(k)}
            for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def reload_record(old: State, new: State) -> dict[str, Any]:
    return {**_base("state"), "event": "reload", "changes": state_changes(old, new),
            "pid": os.getpid()}


def refused_record(message: str) -> dict[str, Any]:
    return {**_base("state"), "event": "refused", "message": redact(message, 500),
            "pid": os.getpid()}


def fleet_record(event: str, **fields: Any) -> dict[str, Any]:
    return {**_base("fleet"), "event": event, **fields, "pid": os.getpid()}
