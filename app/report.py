"""``reasoning-panel report``: where the requests went and what they cost, per day or session.

For each group: requests and tokens per tier, the cost (LiteLLM's figure for each finished
request), what the routed requests' tokens would have cost on the models the clients asked for,
and a what-if: the same tokens under another mapping (``--with medium=fast-coder``), priced with
the proxy config's own prices, else LiteLLM's cost map (:mod:`app.panel.prices`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TextIO

from app.panel.model import PASS, Prices, Request, count_text, money
from app.usage import Usage, group, pair, session_of
from callbacks.core.state import TIERS
from callbacks.stores.base import Store

NO_SESSION: Final = "(no session)"


def log_records(store: Store) -> list[dict[str, Any]]:
    """Every record the store still holds, oldest first (the event log and its rotated files,
    or the fleet's stream)."""
    return store.all_events()


def parse_remap(pairs: list[str]) -> dict[str, str]:
    """``["medium=fast-coder", ...]`` -> ``{"medium": "fast-coder"}``; ValueError says why."""
    remap: dict[str, str] = {}
    for text in pairs:
        tier, _, model = text.partition("=")
        if tier not in TIERS or not model.strip():
            raise ValueError(f"--with {text!r}: expected TIER=MODEL with TIER one of "
                             + ", ".join(TIERS))
        remap[tier] = model.strip()
    return remap


def day_of(request: Request) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(request.time)) if request.time else "unknown"


def usage_dict(usage: Usage) -> dict[str, Any]:
    """A group's figures as JSON (costs in USD; ``*_unknown``: requests without a price)."""
    return {
        "requests": usage.requests, "turns": usage.turns,
        "subagent_requests": usage.subagent_requests, "errors": usage.errors,
        "in_flight": usage.in_flight, "holds": usage.holds, "fallbacks": usage.fallbacks,
        "capped": usage.capped, "first": usage.first, "last": usage.last,
        "clients": sorted(usage.clients), "agents": len(usage.agents),
        "tiers": {tier: vars(usage.tiers[tier]) for tier in usage.tiers_used()},
        "cost": usage.cost, "cost_unknown": usage.cost_unknown,
        "routed_cost": usage.routed_cost, "routed_unknown": usage.routed_unknown,
        "asked_cost": usage.asked, "asked_unknown": usage.asked_unknown,
        "saved": usage.saved, "whatif_cost": usage.whatif, "whatif_unknown": usage.whatif_unknown,
    }


def build_report(records: list[dict[str, Any]], by: str, prices: Prices,
                 remap: Mapping[str, str]) -> dict[str, Any]:
    """The report as data: groups (by ``day`` or ``session``) and the total."""
    requests = [r for r in pair(records) if r.routed is not None or r.outcome is not None]
    if by == "session":
        groups = group(requests, lambda r: session_of(r) or NO_SESSION, prices, remap)
        keys = sorted(groups, key=lambda k: (k == NO_SESSION, groups[k].first or 0.0))
    else:
        groups = group(requests, day_of, prices, remap)
        keys = sorted(groups)
    total = Usage()
    for request in requests:
        total.add(request, prices, remap)
    return {"by": by, "with": dict(remap),
            "groups": [{"key": key, **usage_dict(groups[key])} for key in keys],
            "total": usage_dict(total)}


def _group_lines(title: str, g: dict[str, Any], remap: Mapping[str, str]) -> list[str]:
    finished = g["requests"] - g["in_flight"] - g["errors"]
    routed = finished - g["tiers"].get(PASS, {}).get("requests", 0)
    head = f"{title}  {g['requests']} requests ({g['turns']} turns, {g['subagent_requests']} " \
           f"by subagents) · errors {g['errors']} · held {g['holds']} · fallbacks " \
           f"{g['fallbacks']} · capped {g['capped']}"
    lines = [head, f"  {'tier':<7} {'requests':>8}  {'tokens in / out':>17}  {'cost':>10}"]
    for tier, t in g["tiers"].items():
        tokens = f"{count_text(t['input_tokens'])} / {count_text(t['output_tokens'])}"
        lines.append(f"  {tier:<7} {t['requests']:>8}  {tokens:>17}  "
                     f"{money(t['cost'], t['cost_unknown'], t['requests']):>10}")
    summary = f"  cost {money(g['cost'], g['cost_unknown'], finished)}"
    if routed:
        summary += f" · routed {money(g['routed_cost'], g['routed_unknown'], routed)}, on the " \
                   f"models asked for {money(g['asked_cost'], g['asked_unknown'], routed)}"
    if g["saved"] is not None and g["asked_cost"]:
        summary += f" (routing saved {g['saved'] / g['asked_cost']:.0%})"
    if remap:
        summary += f" · what-if {money(g['whatif_cost'], g['whatif_unknown'], finished)}"
        if not g["whatif_unknown"] and not g["cost_unknown"] and g["cost"]:
            summary += f" ({g['whatif_cost'] / g['cost'] - 1:+.0%})"
    return [*lines, summary]


def render_report(report: dict[str, Any], source: str, out: TextIO) -> None:
    remap = report["with"]
    out.write(f"reasoning-panel report by {report['by']} · {source}\n")
    if remap:
        out.write("what-if: " + ", ".join(f"{t} -> {m}" for t, m in remap.items()) + "\n")
    if not report["groups"]:
        out.write("no requests in the event log yet\n")
        return
    for g in report["groups"]:
        title = g["key"]
        if report["by"] == "session" and g["first"]:
            span = time.strftime("%Y-%m-%d %H:%M", time.localtime(g["first"]))
            clients = ", ".join(g["clients"])
            title = f"{title}  (from {span}{', ' + clients if clients else ''})"
        out.write("\n" + "\n".join(_group_lines(title, g, remap)) + "\n")
    out.write("\n" + "\n".join(_group_lines("total", report["total"], remap)) + "\n")


def run_report(store: Store, by: str, config: Path | None, remap: Mapping[str, str],
               as_json: bool, out: TextIO) -> int:
    from app.panel.prices import pricer

    prices = pricer(config)
    report = build_report(log_records(store), by, prices, remap)
    unpriced = sorted(m for m in remap.values() if prices(m) is None)
    if as_json:
        out.write(json.dumps({**report, "config": str(config) if config else None,
                              "unpriced": unpriced}, indent=2) + "\n")
        return 0
    source = "prices: " + (f"{config}, then LiteLLM's cost map" if config
                           else "LiteLLM's cost map")
    render_report(report, source, out)
    if unpriced:
        out.write(f"\nno price known for {', '.join(unpriced)}: the what-if is unknown for "
                  "requests sent there (give --config with the proxy's prices)\n")
    return 0
