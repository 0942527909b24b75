"""``reasoning-panel tail``: the live request stream without the dashboard."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from app.panel.model import Request, count_text, sent_text
from callbacks.stores.base import Store, StoreError

OUTCOMES = ("done", "failed")
COLOURS = {"none": "2", "low": "36", "medium": "33", "high": "35", "ok": "32", "error": "31",
           "dim": "2", "state": "34"}


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _paint(text: str, key: str, colour: bool) -> str:
    return f"\033[{COLOURS[key]}m{text}\033[0m" if colour and key in COLOURS else text


def _clock(at: Any) -> str:
    if not isinstance(at, int | float):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(at))


def signal_label(routed: dict[str, Any]) -> str:
    signal, value = routed.get("signal"), routed.get("value")
    if not signal:
        return "-"
    return f"{signal}={value}" if value else str(signal)


def format_request(routed: dict[str, Any] | None, outcome: dict[str, Any] | None,
                   colour: bool = False) -> str:
    """One readable line for a request: decision and outcome merged."""
    routed = routed or {}
    outcome = outcome or {}
    strength = routed.get("strength") or "?"
    if routed.get("target"):
        pin = f" (pinned {routed.get('pin')})" if routed.get("reason") == "pinned" else ""
        if routed.get("held"):
            pin = f" (held: tool loop; else {routed['held'].get('instead_of')})"
        pin += context_text(routed.get("context"))
        where = f"{_paint(f'{strength:<6}', strength, colour)} -> {routed['target']}{pin}"
    elif routed:
        where = f"{_paint(f'{strength:<6}', strength, colour)} -> (pass: {routed.get('reason')})"
    else:
        where = f"{'?':<6} -> {outcome.get('model_group') or '?'}"
    if outcome.get("type") == "failed":
        code = outcome.get("status_code")
        status = _paint(f"error {code or ''}".strip(), "error", colour)
    elif outcome:
        status = _paint("ok", "ok", colour)
        fallback = outcome.get("fallback")
        if isinstance(fallback, dict):  # served, by the chain: not an error
            status += _paint(f" ↪ {fallback.get('to')} ({fallback.get('reason')} "
                             f"{fallback.get('status_code') or ''})".replace(" )", ")"),
                             "state", colour)
    else:
        status = _paint("in flight", "dim", colour)
    latency = outcome.get("latency_ms")
    timing = f"{latency:.0f}ms" if isinstance(latency, int | float) else "-"
    if isinstance(outcome.get("ttft_ms"), int | float):
        timing += f" (ttft {outcome['ttft_ms']:.0f}ms)"
    tokens = (f"{count_text(outcome.get('input_tokens'))}/"
              f"{count_text(outcome.get('output_tokens'))} tok")
    parts = [
        _clock(routed.get("time") or outcome.get("time")),
        f"{routed.get('client_model') or outcome.get('model_group') or '?':<28}",
        f"{signal_label(routed):<28}",
        where,
        status,
        timing,
        tokens if outcome.get("type") == "done" else "",
    ]
    if outcome.get("type") == "done":
        parts.append(f"sent: {sent_text(outcome.get('sent'))}")
    lost = Request("", routed or None, outcome or None).reasoning_lost
    if lost:
        parts.append(_paint(f"⚠ {lost}", "error", colour))
    if outcome.get("type") == "failed" and outcome.get("message"):
        parts.append(_paint(str(outcome["message"])[:80], "dim", colour))
    return "  ".join(p for p in parts if p)


def context_text(context: Any) -> str:
    """The context guard's note: `` (⇡ 150k > 131k tok, from X)`` or a warning."""
    if not isinstance(context, dict):
        return ""
    size = f"{count_text(context.get('estimate'))} > {count_text(context.get('limit'))} tok"
    if context.get("to"):
        return f" (⇡ {size}, from {context.get('from')})"
    return f" (⚠ {size}: fits no model, sent as asked)"


def format_fleet(record: dict[str, Any], colour: bool = False) -> str:
    text = (f"Redis back after {record.get('down_s')} s on {record.get('instance')}; "
            f"{record.get('dropped')} records dropped meanwhile")
    return f"{_clock(record.get('time'))}  {_paint(text, 'state', colour)}"


def format_state(record: dict[str, Any], colour: bool = False) -> str:
    if record.get("event") == "preflight":  # a proxy worker's start-up checks
        bad = [c for c in record.get("checks") or [] if isinstance(c, dict) and c.get("status") != "ok"]
        text = "proxy started, checks ok" if not bad else "proxy started: " + "; ".join(
            f"{c.get('status')} {c.get('name')}: {c.get('message')}" for c in bad)
        return f"{_clock(record.get('time'))}  {_paint(text, 'state' if not bad else 'error', colour)}"
    if record.get("event") == "refused":
        text = f"state file refused, last good state stays: {record.get('message')}"
        return f"{_clock(record.get('time'))}  {_paint(text, 'error', colour)}"
    changes = ", ".join(f"{c.get('key')}: {c.get('old')} -> {c.get('new')}"
                        for c in record.get("changes") or [])
    return f"{_clock(record.get('time'))}  {_paint('state reloaded: ' + changes, 'state', colour)}"


def last_requests(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The records of the last ``n`` requests (and the state records among them)."""
    seen: set[str] = set()
    start = len(records)
    for i in range(len(records) - 1, -1, -1):
        call_id = records[i].get("call_id")
        if call_id and call_id not in seen:
            if len(seen) == n:
                break
            seen.add(call_id)
        start = i
    # a request's decision can lie before the window when requests overlap: take it too
    return [r for i, r in enumerate(records)
            if r.get("call_id") in seen or (i >= start and r.get("type") in ("state", "fleet"))]


class Merger:
    """Pairs ``routed`` and outcome records by call id into lines."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.routed: dict[str, dict[str, Any]] = {}

    def feed(self, records: Iterable[dict[str, Any]], final: bool = False) -> list[str]:
        lines = []
        for record in records:
            kind = record.get("type")
            if kind == "state":
                lines.append(format_state(record, self.colour))
            elif kind == "fleet":
                lines.append(format_fleet(record, self.colour))
            elif kind == "routed":
                self.routed[str(record.get("call_id"))] = record
            elif kind in OUTCOMES:
                routed = self.routed.pop(str(record.get("call_id")), None)
                lines.append(format_request(routed, record, self.colour))
        if final:  # requests still in flight
            lines += [format_request(r, None, self.colour) for r in self.routed.values()]
            self.routed.clear()
        while len(self.routed) > 10_000:  # never grow without bound (outcomes that never came)
            self.routed.pop(next(iter(self.routed)))
        return lines


def run_tail(store: Store, n: int, follow_log: bool, as_json: bool,
             out: TextIO = sys.stdout) -> int:
    """Print the last ``n`` requests of the store's events (files or the fleet's stream)."""
    try:
        recent, position = store.read_events(lambda rs: len({r.get("call_id") for r in rs}) > n)
    except StoreError as exc:
        print(f"reasoning-panel: {exc}" + (" (waiting for it)" if follow_log else ""),
              file=sys.stderr, flush=True)
        if not follow_log:
            return 1
        recent, position = [], None  # from whatever comes once it is back
    records = last_requests(recent, n)
    merger = Merger(use_colour(out))

    def emit(batch: list[dict[str, Any]], final: bool = False) -> None:
        if as_json:
            for record in batch:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            for line in merger.feed(batch, final):
                out.write(line + "\n")
        out.flush()

    emit(records, final=not follow_log)
    if not follow_log:
        return 0
    try:
        for batch in store.follow_events(position):
            if batch:
                emit(batch)
    except KeyboardInterrupt:
        pass
    return 0
