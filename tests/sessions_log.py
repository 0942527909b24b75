"""A fixed event log of two Claude Code sessions (one with a subagent), for the status line,
the report and the sessions view. It carries the fields other features add when present:
``held`` on a ``routed`` record and ``fallback`` on a ``done`` record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from callbacks.stores.eventlog import EVENTS_NAME

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
DAY = 86_400.0
S1 = "5e0c1d2a-1111-4a8b-9c3d-000000000001"
S2 = "9b7f3e41-2222-4a8b-9c3d-000000000002"
AGENT = "a0123456789abcdef"


def routed(call_id: str, at: float, tier: str | None, *, session: str | None = S1,
           client_model: str = "claude-opus-4-8", value: str = "high", rule: str = "effort",
           strength: str | None = None, **extra: Any) -> dict[str, Any]:
    signal = {"effort": "output_config.effort", "disabled": "thinking.type",
              "default": "default"}[rule]
    return {"v": 1, "type": "routed", "time": at, "call_id": call_id, "endpoint": "/v1/messages",
            "client_model": client_model, "fields": [f"{signal}={value}"], "signal": signal,
            "value": value, "rule": rule, "strength": strength or tier or "none", "tier": tier,
            "target": f"{tier}-reasoning" if tier else None,
            "reason": "routed" if tier else "not_routed", "pin": None, "routing": True,
            "notes": [], "session": session, "agent": None,
            "client": "claude-cli/2.1.328" if session else None, **extra}


def done(call_id: str, at: float, group: str, tokens: tuple[int, int], cost: float | None,
         **extra: Any) -> dict[str, Any]:
    return {"v": 1, "type": "done", "time": at, "call_id": call_id, "model_group": group,
            "deployment": f"standin-{group}", "status": "ok", "stream": True,
            "latency_ms": 400.0, "ttft_ms": 90.0, "input_tokens": tokens[0],
            "output_tokens": tokens[1], "cost": cost, **extra}


def failed(call_id: str, at: float, group: str) -> dict[str, Any]:
    return {"v": 1, "type": "failed", "time": at, "call_id": call_id, "model_group": group,
            "deployment": f"standin-{group}", "status": "error",
            "error_class": "InternalServerError", "status_code": 500,
            "message": "upstream failed", "latency_ms": 200.0}


def sessions_log() -> list[dict[str, Any]]:
    """Session 1 (day 1): a turn on high, a subagent capped to low, a held turn whose call
    fell back, and a failure. Session 2 (day 2): a turn with thinking off and one in flight.
    And a request of an OpenAI-format client with no session, passed through."""
    return [
        routed("s1-a", T0, "high"),
        done("s1-a", T0 + 1, "high-reasoning", (1000, 200), 0.0054),
        routed("s1-b", T0 + 10, "low", value="high", strength="high", agent=AGENT,
               capped="subagent"),
        done("s1-b", T0 + 11, "low-reasoning", (500, 100), 0.00027),
        routed("s1-c", T0 + 20, "medium", value="medium", held=True),
        done("s1-c", T0 + 21, "fast-coder", (2000, 400), 0.00054,
             fallback={"from": "medium-reasoning", "to": "fast-coder", "reason": "error 500"}),
        routed("s1-d", T0 + 30, "low", value="low"),
        failed("s1-d", T0 + 30.5, "low-reasoning"),
        routed("gpt-1", T0 + 40, None, session=None, client_model="gpt-5-mini", rule="default",
               value=""),
        done("gpt-1", T0 + 41, "gpt-5-mini", (40, 9), None),
        routed("s2-a", T0 + DAY, "none", session=S2, value="disabled", rule="disabled"),
        done("s2-a", T0 + DAY + 1, "none-reasoning", (300, 50), 0.00005),
        routed("s2-b", T0 + DAY + 5, "high", session=S2),
    ]


def write_sessions_log(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / EVENTS_NAME
    path.write_text("".join(json.dumps(r) + "\n" for r in sessions_log()))
    return path
