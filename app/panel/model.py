"""What the dashboard shows, computed from event records (pure: no Textual, no I/O).

:class:`PanelModel` folds ``routed`` / ``done`` / ``failed`` / ``state`` records into bounded
request rows and per-tier figures; :func:`explain` turns one request into the step-by-step
account the detail view shows.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

Prices = Callable[[str], tuple[float, float] | None]
"""Model name -> (USD per input token, USD per output token), or None when unknown."""

SPARK: Final = "▁▂▃▄▅▆▇█"
RATE_BUCKETS: Final = 12
RATE_BUCKET_S: Final = 5.0
LATENCY_WINDOW: Final = 2_000
HEALTH_WINDOW_S: Final = 300.0  # "recent" 429s: the last five minutes
PASS: Final = "pass"  # the row key of requests that were not routed

RULES: Final = {
    "disabled": "1. thinking.type is disabled -> none",
    "keyword": "2. \"ultrathink\" in the latest user turn -> high",
    "reasoning_effort": "3. OpenAI reasoning effort -> effort map",
    "effort": "4. output_config.effort with thinking on -> effort map",
    "budget": "5. thinking budget -> budget thresholds",
    "adaptive": "6. adaptive thinking without an effort -> high",
    "responses_default": "7. Responses API call without an effort -> as medium (the default)",
    "default": "8. no reasoning signal -> none",
}
REASONS: Final = {
    "routed": "routed by strength",
    "pinned": "pinned: every routed request goes to the pinned tier",
    "routing_off": "routing is off: passed through unchanged",
    "not_routed": "the client model is not in route_models: passed through unchanged",
    "same_model": "the tier's model is the requested model: passed through",
    "held": "held: a tool loop continues on the model that made its tool_use (a change applies "
            "from the next human turn)",
    "error": "the callback hit an internal error: passed through unchanged",
}


@dataclass
class Request:
    """One request as the panel knows it: its decision and, once it ended, its outcome."""

    call_id: str
    routed: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None

    @property
    def time(self) -> float:
        return float((self.routed or self.outcome or {}).get("time") or 0.0)

    @property
    def status(self) -> str:
        if self.outcome is None:
            return "in flight"
        return "error" if self.outcome.get("type") == "failed" else "ok"

    @property
    def tier(self) -> str:
        """The tier it was sent to, or ``pass`` when it was not routed."""
        routed = self.routed or {}
        return str(routed["tier"]) if routed.get("target") and routed.get("tier") else PASS

    @property
    def signal(self) -> str:
        """Short form of the deciding signal, e.g. ``effort=high``, ``budget=8000``."""
        routed = self.routed or {}
        rule, value = routed.get("rule"), routed.get("value")
        return {
            "disabled": "thinking off",
            "keyword": "ultrathink",
            "reasoning_effort": f"reasoning_effort={value}",
            "effort": f"effort={value}",
            "budget": f"budget={value}",
            "adaptive": "adaptive",
            "responses_default": "effort unset",
            "default": "no signal",
        }.get(str(rule), "-" if not routed else str(routed.get("reason", "-")))


    @property
    def held(self) -> bool:
        return bool((self.routed or {}).get("held"))

    @property
    def headroom(self) -> dict[str, Any]:
        """What headroom did (``routed.headroom``): moved it (``to``) or kept it (``kept``)."""
        value = (self.routed or {}).get("headroom")
        return value if isinstance(value, dict) else {}

    @property
    def fallback(self) -> dict[str, Any] | None:
        """``{from, to, reason, status_code}`` when a fallback of the tier's chain served it."""
        fallback = (self.outcome or {}).get("fallback")
        return fallback if isinstance(fallback, dict) else None

    @property
    def context(self) -> dict[str, Any]:
        """The context guard's record: moved (``to``) or not fitting anywhere (``warning``)."""
        context = (self.routed or {}).get("context")
        return context if isinstance(context, dict) else {}

    @property
    def reasoning_lost(self) -> str | None:
        """Why the provider got less reasoning than the request asked for, if it did."""
        routed, outcome = self.routed or {}, self.outcome or {}
        if routed.get("reasoning_lost"):  # the record says why: a loop not held, no signed block
            return "sent without thinking: " + str(routed["reasoning_lost"]).split(": sent with")[0]
        if outcome.get("hidden_retry"):
            return "LiteLLM retried it without thinking after the provider refused a block"
        sent = outcome.get("sent")
        asked = routed.get("strength") not in (None, "none") and routed.get("tier") != "none"
        if asked and isinstance(sent, dict) and not reasoning_sent(sent):
            return "the provider got no reasoning (the target drops it)"
        return None


def reasoning_sent(sent: dict[str, Any]) -> bool:
    """Whether a ``done`` record's ``sent`` carries any reasoning request."""
    return any(v for k, v in sent.items() if k != "thinking_blocks"
               and not (k == "thinking.type" and v == "disabled"))


def sent_text(sent: Any) -> str:
    """A ``done`` record's ``sent`` (what the provider received), short: ``thinking=adaptive
    effort=high blocks=2``, ``no reasoning``, ``?`` (not reported)."""
    if not isinstance(sent, dict):
        return "?"
    if not sent:
        return "no reasoning"
    short = {"thinking.type": "thinking", "thinking.budget_tokens": "budget",
             "output_config.effort": "effort", "reasoning.effort": "effort",
             "reasoning_effort": "reasoning_effort", "thinking_blocks": "blocks"}
    return " ".join(f"{short.get(k, k)}={v}" for k, v in sent.items())


def count_text(n: Any) -> str:
    """A token count, short: ``842``, ``1.2k``, ``3.4M``; ``-`` when unknown."""
    if not isinstance(n, int):
        return "-"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def percentile(values: Iterable[float], p: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class TierStats:
    """Figures of one tier since the panel started."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0  # finished requests without a price
    client_cost: float = 0.0  # the same tokens on the models the clients asked for
    client_cost_unknown: int = 0
    reasoning_lost: int = 0  # finished requests whose provider got less reasoning than asked
    fallbacks: int = 0  # finished requests a fallback of the chain served
    headroom: int = 0  # requests headroom sent to a fallback before the tier's model ran out
    finished: int = 0  # requests whose outcome arrived
    rate_limited: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    """When the tier's calls were answered 429 (every attempt, fallbacks' included)."""
    cooldown_until: float = 0.0
    """Until when the tier's model asked not to be called (the latest Retry-After)."""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    times: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.latencies, 50)

    def health(self, now: float, quota: dict[str, Any] | None = None) -> str:
        """``3×429 ⏳12:03:05 ↪40% ⤳2 ▮20%→12:04:00``: 429s in the last five minutes, until
        when the provider asked to wait, the share of finished requests a fallback served, the
        requests headroom moved, and the smallest share of its rate limit the tier's model last
        reported left (``quota``, a ``done.quota``) with its reset; "" when all is well."""
        parts = []
        recent = sum(1 for t in self.rate_limited if 0 <= now - t < HEALTH_WINDOW_S)
        if recent:
            parts.append(f"{recent}×429")
        if self.cooldown_until > now:
            parts.append("⏳" + time.strftime("%H:%M:%S", time.localtime(self.cooldown_until)))
        if self.fallbacks and self.finished:
            parts.append(f"↪{self.fallbacks / self.finished:.0%}")
        if self.headroom:
            parts.append(f"⤳{self.headroom}")
        left = quota_left(quota, now) if quota else None
        if left is not None:
            share, reset = left
            parts.append(f"▮{share:.0%}" + ("→" + time.strftime("%H:%M:%S", time.localtime(reset))
                                            if reset else ""))
        return " ".join(parts)

    def rate(self, now: float) -> list[int]:
        """Requests per bucket over the last minute, oldest first."""
        counts = [0] * RATE_BUCKETS
        for t in self.times:
            age = now - t
            if 0 <= age < RATE_BUCKETS * RATE_BUCKET_S:
                counts[RATE_BUCKETS - 1 - int(age // RATE_BUCKET_S)] += 1
        return counts


def quota_left(quota: dict[str, Any], now: float) -> tuple[float, float | None] | None:
    """The smallest share left among a ``done.quota``'s limits whose window has not reset, and
    that window's reset time (None: nothing current to show)."""
    found = []
    for kind in ("requests", "tokens"):
        figures = quota.get(kind)
        if not isinstance(figures, dict):
            continue
        remaining, limit, reset = figures.get("remaining"), figures.get("limit"), figures.get("reset")
        if not isinstance(remaining, int) or not isinstance(limit, int) or limit <= 0:
            continue
        if isinstance(reset, int | float) and reset <= now:
            continue  # a new window began: the figures say nothing any more
        found.append((remaining / limit, float(reset) if isinstance(reset, int | float) else None))
    return min(found, key=lambda pair: pair[0]) if found else None


def sparkline(counts: list[int]) -> str:
    top = max(counts) if counts else 0
    if not top:
        return " " * len(counts)
    return "".join(SPARK[min(len(SPARK) - 1, round(c / top * (len(SPARK) - 1)))] if c else " "
                   for c in counts)


@dataclass
class Changes:
    """What one batch of records changed, for the view to update only that."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)


class PanelModel:
    """Requests (the last ``max_rows``) and per-tier figures, folded from event records."""

    def __init__(self, max_rows: int = 1000, prices: Prices | None = None) -> None:
        self.max_rows = max_rows
        self.prices = prices or (lambda model: None)
        self.requests: OrderedDict[str, Request] = OrderedDict()
        from callbacks.core.state import TIERS  # here: the status line imports this module

        self.tiers: dict[str, TierStats] = {t: TierStats() for t in (*TIERS, PASS)}
        self.last_state: dict[str, Any] | None = None
        self.records_seen = 0
        self.quotas: dict[str, dict[str, Any]] = {}  # model group -> its latest done.quota

    def apply(self, records: Iterable[dict[str, Any]]) -> Changes:
        changes = Changes()
        added: set[str] = set()
        for record in records:
            self.records_seen += 1
            kind = record.get("type")
            if kind == "state":
                if record.get("event") != "preflight":  # a worker's start-up checks: no reload
                    self.last_state = record
                changes.states.append(record)
                continue
            call_id = record.get("call_id")
            if kind not in ("routed", "done", "failed") or not call_id:
                continue
            request = self.requests.get(call_id)
            if request is None:
                request = self.requests[call_id] = Request(call_id)
                changes.added.append(call_id)
                added.add(call_id)
            elif call_id not in added:
                changes.updated.append(call_id)
            if kind == "routed":
                request.routed = record
                self._count(request)
            else:
                if kind == "done" and (request.outcome or {}).get("type") == "failed" \
                        and request.routed is not None:  # a retry served it after all
                    self.tiers[request.tier].errors -= 1
                    self.tiers[request.tier].finished -= 1
                request.outcome = record
                self._finish(request)
                if isinstance(record.get("quota"), dict) and record.get("model_group"):
                    self.quotas[str(record["model_group"])] = record["quota"]
        while len(self.requests) > self.max_rows:
            old, _ = self.requests.popitem(last=False)
            if old in added:
                changes.added.remove(old)
                added.discard(old)
            else:
                changes.removed.append(old)
        changes.updated = [c for c in dict.fromkeys(changes.updated) if c in self.requests]
        return changes

    def _count(self, request: Request) -> None:
        stats = self.tiers[request.tier]
        stats.requests += 1
        stats.headroom += bool(request.headroom.get("to"))
        stats.times.append(request.time)
        if request.outcome is not None:  # the outcome came first (read out of order)
            self._finish(request)

    def _finish(self, request: Request) -> None:
        outcome = request.outcome or {}
        if request.routed is None:
            return  # counted when (if) its decision arrives
        stats = self.tiers[request.tier]
        if outcome.get("type") == "failed":
            stats.errors += 1
        self._health(stats, request)
        if isinstance(outcome.get("latency_ms"), int | float):
            stats.latencies.append(float(outcome["latency_ms"]))
        tokens_in = outcome.get("input_tokens") or 0
        tokens_out = outcome.get("output_tokens") or 0
        if outcome.get("type") != "done":
            return
        stats.reasoning_lost += request.reasoning_lost is not None
        stats.input_tokens += int(tokens_in)
        stats.output_tokens += int(tokens_out)
        if isinstance(outcome.get("cost"), int | float):
            stats.cost += float(outcome["cost"])
        else:
            stats.cost_unknown += 1
        price = self.prices(str((request.routed or {}).get("client_model") or ""))
        if price is None:
            stats.client_cost_unknown += 1
        else:
            stats.client_cost += tokens_in * price[0] + tokens_out * price[1]

    @staticmethod
    def _health(stats: TierStats, request: Request) -> None:
        outcome = request.outcome or {}
        attempts = [a for a in outcome.get("attempts") or [] if isinstance(a, dict)]
        if not attempts and outcome.get("type") == "failed":  # no chain: the call itself
            attempts = [{**outcome, "group": outcome.get("model_group")}]
        planned = (request.routed or {}).get("target")
        for attempt in attempts:
            at = attempt.get("time")
            if not isinstance(at, int | float):
                continue
            if attempt.get("status_code") == 429:
                stats.rate_limited.append(float(at))
            wait = attempt.get("retry_after")
            if isinstance(wait, int | float) and attempt.get("group") == planned:
                stats.cooldown_until = max(stats.cooldown_until, at + wait)
        stats.fallbacks += request.fallback is not None
        stats.finished += 1

    def total(self, tiers: Iterable[str] | None = None) -> TierStats:
        """Tiers added up, all by default (latency and rate windows are not merged)."""
        out = TierStats()
        for stats in (self.tiers[t] for t in (tiers or self.tiers)):
            out.requests += stats.requests
            out.errors += stats.errors
            out.input_tokens += stats.input_tokens
            out.output_tokens += stats.output_tokens
            out.cost += stats.cost
            out.cost_unknown += stats.cost_unknown
            out.client_cost += stats.client_cost
            out.client_cost_unknown += stats.client_cost_unknown
            out.reasoning_lost += stats.reasoning_lost
            out.fallbacks += stats.fallbacks
        return out

    def visible(self, tier: str | None, status: str | None) -> list[Request]:
        """Requests passing the filters, oldest first."""
        return [r for r in self.requests.values()
                if (tier is None or r.tier == tier) and (status is None or r.status == status)]


def money(value: float, unknown: int, total: int) -> str:
    """A cost figure; "unknown" when no finished request had a price."""
    if total and unknown >= total:
        return "unknown"
    text = f"${value:.4f}" if value < 1 else f"${value:.2f}"
    return text + ("+?" if unknown else "")


def who_sent_lines(routed: dict[str, Any]) -> list[str]:
    """Session, subagent and client of a request, for those the record names."""
    labels = (("session", "session     "), ("agent", "subagent    "), ("client", "client      "))
    return [f"  {label}  {routed[key]}" for key, label in labels if routed.get(key)]


def explain(request: Request) -> list[str]:
    """The decision, step by step, and the timings, as lines of text."""
    routed = request.routed or {}
    outcome = request.outcome or {}
    lines = [f"Request {request.call_id}"]
    if not routed:
        lines.append("No decision record (the request started before the log's window).")
    else:
        lines += [
            f"  endpoint      {routed.get('endpoint', '?')}",
            f"  client model  {routed.get('client_model', '?')}",
            *who_sent_lines(routed),
            "",
            "What the request carried",
        ]
        fields = routed.get("fields") or []
        lines += [f"  {f}" for f in fields] or ["  no reasoning fields"]
        for note in routed.get("notes") or []:
            lines.append(f"  ignored: {note}")
        lines += [
            "",
            "Which rule decided",
            f"  {RULES.get(str(routed.get('rule')), str(routed.get('rule')))}",
            f"  signal {routed.get('signal')}"
            + (f" = {routed.get('value')}" if routed.get("value") else ""),
            f"  strength {routed.get('strength')}",
            "",
            "Where it went",
            f"  {REASONS.get(str(routed.get('reason')), str(routed.get('reason')))}",
        ]
        if routed.get("capped"):
            lines.append(f"  capped: {routed['capped']} requests go no higher than "
                         f"{routed.get('tier')}")
        if routed.get("target"):
            lines.append(f"  tier {routed.get('tier')} -> model {routed.get('target')}")
        lines.append(f"  routing {'on' if routed.get('routing') else 'off'}, "
                     f"pin {routed.get('pin') or 'off'} at that moment")
        held, hold = routed.get("held") or {}, routed.get("hold") or {}
        if held:
            lines.append(f"  held: it continues a tool loop (tool_use {held.get('tool_use')}) "
                         f"made by {held.get('target')}; without the hold it would have gone "
                         f"to {held.get('instead_of')}")
        if hold.get("failed"):
            lines.append(f"  not held: {hold['failed']}")
        history = routed.get("history")
        if history:
            why = ", ".join(f"{n} {reason}" for reason, n in (history.get("why") or {}).items())
            lines += ["", "History (thinking blocks replayed)",
                      f"  kept {history.get('kept', 0)}, dropped {history.get('dropped', 0)}"
                      + (f" ({why})" if why else "")
                      + (f"; {history['kept_unknown']} kept that this proxy never saw"
                         if history.get("kept_unknown") else "")]
        for refit in routed.get("refits") or []:
            lines.append(f"  fitted again for {refit.get('group')} ({refit.get('model')})")
        headroom = request.headroom
        if headroom:
            figures = ", ".join(
                f"{kind} {f.get('remaining')} of {f.get('limit')} left (keeps {f.get('min')})"
                for kind in ("requests", "tokens") if isinstance(f := headroom.get(kind), dict))
            until = headroom.get("until")
            at = time.strftime("%H:%M:%S", time.localtime(until)) \
                if isinstance(until, int | float) else "?"
            lines += ["", "Headroom",
                      f"  {headroom.get('from')} reported {figures}, until {at}"]
            lines.append(f"  sent to its fallback {headroom['to']}" if headroom.get("to") else
                         f"  kept on {headroom.get('from')}: {headroom.get('kept')}")
        context = request.context
        if context:
            lines += ["", "Context guard",
                      f"  about {count_text(context.get('estimate'))} input tokens, over the "
                      f"{count_text(context.get('limit'))} of {context.get('from')}"]
            lines.append(f"  moved to {context['to']}" if context.get("to") else
                         f"  ⚠ {context.get('warning')}")
        if routed.get("fallbacks"):
            lines.append(f"  fallbacks if it fails: {', '.join(routed['fallbacks'])}")
        if routed.get("preview"):
            lines += ["", "Latest user turn (preview)", f"  {routed['preview']}"]
    lines += ["", "Outcome"]
    if not outcome:
        lines.append("  in flight")
        return lines
    lines.append(f"  served by {outcome.get('model_group')} "
                 f"(deployment {outcome.get('deployment') or '?'})")
    for attempt in outcome.get("attempts") or []:
        wait = attempt.get("retry_after")
        lines.append(f"  tried {attempt.get('group')}: {attempt.get('status_code') or ''} "
                     f"{attempt.get('reason')}"
                     + (f", asked to wait {wait:g} s" if isinstance(wait, int | float) else ""))
    if request.fallback:
        lines.append(f"  ↪ a fallback served it: {request.fallback.get('from')} -> "
                     f"{request.fallback.get('to')} ({request.fallback.get('reason')})")
    if outcome.get("type") == "failed":
        lines.append(f"  error {outcome.get('status_code') or ''} {outcome.get('error_class')}: "
                     f"{outcome.get('message')}")
    else:
        lines.append(f"  ok, {'streamed' if outcome.get('stream') else 'not streamed'}")
    latency, ttft = outcome.get("latency_ms"), outcome.get("ttft_ms")
    if latency is not None:
        lines.append(f"  latency {latency:.0f} ms" + (f", first token after {ttft:.0f} ms"
                                                      if ttft is not None else ""))
    if outcome.get("type") == "done":
        asked = " ".join(routed.get("fields") or []) or "no reasoning fields"
        lines += [f"  reasoning asked: {asked}", f"  reasoning sent:  {sent_text(outcome.get('sent'))}"]
        if request.reasoning_lost:
            lines.append(f"  ⚠ {request.reasoning_lost}")
        cost = outcome.get("cost")
        lines.append(f"  tokens {outcome.get('input_tokens')} in / "
                     f"{outcome.get('output_tokens')} out, cost "
                     + ("unknown" if cost is None else f"${cost:.6f}"))
    return lines
