"""Requests added up: per tier, per session or per day, priced (pure: no I/O, no Textual).

Shared by the sessions view, the status line and ``reasoning-panel report``. A request is a
``routed`` record and its outcome (``done`` / ``failed``), paired by call id
(:class:`app.panel.model.Request`). Fields added by later schema versions (``held``,
``fallback``) are read when present and ignored when not.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.panel.model import PASS, Prices, Request


def pair(records: Iterable[dict[str, Any]]) -> list[Request]:
    """Requests of a stream of records, in the order they were first seen."""
    requests: dict[str, Request] = {}
    for record in records:
        call_id = record.get("call_id")
        kind = record.get("type")
        if not call_id or kind not in ("routed", "done", "failed"):
            continue
        request = requests.setdefault(str(call_id), Request(str(call_id)))
        if kind == "routed":
            request.routed = record
        else:
            request.outcome = record
    return list(requests.values())


@dataclass
class TierUsage:
    """Requests and tokens of one tier."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0


def _tokens(outcome: Mapping[str, Any]) -> tuple[int, int]:
    tokens_in, tokens_out = outcome.get("input_tokens"), outcome.get("output_tokens")
    return (tokens_in if isinstance(tokens_in, int) else 0,
            tokens_out if isinstance(tokens_out, int) else 0)


@dataclass
class Usage:
    """A group of requests added up (a session, a day, everything)."""

    requests: int = 0
    turns: int = 0
    """Requests of the main agent (a subagent's requests are counted in ``requests`` only)."""
    subagent_requests: int = 0
    errors: int = 0
    in_flight: int = 0
    holds: int = 0
    fallbacks: int = 0
    capped: int = 0
    first: float | None = None
    last: float | None = None
    tiers: dict[str, TierUsage] = field(default_factory=dict)
    cost: float = 0.0
    """What finished requests cost (LiteLLM's figure for the model that served)."""
    cost_unknown: int = 0
    routed_cost: float = 0.0
    """The same for routed requests only: what routing is compared on."""
    routed_unknown: int = 0
    asked: float = 0.0
    """Routed requests' tokens priced on the models the clients asked for."""
    asked_unknown: int = 0
    whatif: float = 0.0
    """Every finished request priced under another mapping (tier -> model)."""
    whatif_unknown: int = 0
    clients: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)

    def add(self, request: Request, prices: Prices,
            remap: Mapping[str, str] | None = None) -> None:
        """Count one request; ``remap`` (tier -> model) prices the what-if."""
        routed = request.routed or {}
        outcome = request.outcome or {}
        tier = request.tier
        self.requests += 1
        at = request.time
        if at:
            self.first = at if self.first is None else min(self.first, at)
            self.last = at if self.last is None else max(self.last, at)
        if routed.get("agent"):
            self.subagent_requests += 1
            self.agents.add(str(routed["agent"]))
        elif not routed.get("tool_loop"):  # a human turn, not a tool loop's next step
            self.turns += 1
        if routed.get("client"):
            self.clients.add(str(routed["client"]))
        self.holds += bool(routed.get("held"))
        self.capped += bool(routed.get("capped"))
        self.fallbacks += bool(outcome.get("fallback"))
        stats = self.tiers.setdefault(tier, TierUsage())
        stats.requests += 1
        if request.status == "in flight":
            self.in_flight += 1
            return
        if request.status == "error":
            self.errors += 1
            return
        tokens_in, tokens_out = _tokens(outcome)
        stats.input_tokens += tokens_in
        stats.output_tokens += tokens_out
        raw = outcome.get("cost")
        known = isinstance(raw, int | float) and not isinstance(raw, bool)
        cost = float(raw) if isinstance(raw, int | float) else 0.0
        if known:
            stats.cost += cost
            self.cost += cost
        else:
            stats.cost_unknown += 1
            self.cost_unknown += 1
        if tier != PASS:
            self.routed_cost += cost
            self.routed_unknown += not known
            asked = prices(str(routed.get("client_model") or ""))
            if asked is None:
                self.asked_unknown += 1
            else:
                self.asked += tokens_in * asked[0] + tokens_out * asked[1]
        if remap and tier in remap:
            other = prices(remap[tier])
            if other is None:
                self.whatif_unknown += 1
            else:
                self.whatif += tokens_in * other[0] + tokens_out * other[1]
        elif known:
            self.whatif += cost
        else:
            self.whatif_unknown += 1

    @property
    def saved(self) -> float | None:
        """What routing saved against the models asked for; None when a price is missing."""
        if self.routed_unknown or self.asked_unknown or not self.asked:
            return None
        return self.asked - self.routed_cost

    @property
    def saved_share(self) -> float | None:
        saved = self.saved
        return None if saved is None else saved / self.asked

    def tiers_used(self) -> list[str]:
        from callbacks.core.state import TIERS  # here: the status line imports this module

        return [t for t in (*TIERS, PASS) if t in self.tiers]


def group(requests: Iterable[Request], key: Callable[[Request], Hashable], prices: Prices,
          remap: Mapping[str, str] | None = None) -> dict[Any, Usage]:
    """Requests added up per key, in the order the keys first appear."""
    out: dict[Any, Usage] = {}
    for request in requests:
        out.setdefault(key(request), Usage()).add(request, prices, remap)
    return out


def session_of(request: Request) -> str | None:
    session = (request.routed or {}).get("session")
    return str(session) if session else None
