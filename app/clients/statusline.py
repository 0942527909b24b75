"""``reasoning-panel statusline``: one line for Claude Code's status line.

Claude Code runs the ``statusLine`` command after each assistant message with a JSON object on
stdin (``session_id``, ``transcript_path``, ``cwd``, ``model: {id, display_name}``,
``workspace: {current_dir, project_dir, added_dirs}``, ``version``, ``output_style``,
``cost: {total_cost_usd, total_duration_ms, ...}``, ``context_window``, ...) and shows the first
line it prints. This prints, for that session: the tier and model of its latest request, the
signal that decided it, held / fallback / cap marks, and the session's cost and what routing saved.

It must answer fast and never fail: it reads only the tail of the event log, imports little
(see :mod:`app.entry`; what it needs only once the session has requests is imported then), and
prints a placeholder on any error, exiting 0.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from callbacks.stores.eventlog import EVENTS_NAME, read_tail

if TYPE_CHECKING:
    from app.panel.model import Request

PLACEHOLDER: Final = "reasoning-panel: -"
CLIENT_WINDOW_ENV: Final = "REASONING_PANEL_CLIENT_WINDOW"  # app.clients.window's, imported late
WINDOW_CHECK: Final = "window-check.json"
TAIL_BYTES: Final = 2 * 1024 * 1024  # about 5,000 requests: the recent past of every session
CALL_ID: Final = re.compile(rb'"call_id":\s*"([^"]*)"')
SETTINGS_ENV: Final = "CLAUDE_CONFIG_DIR"


def of_session(session: str) -> Callable[[bytes], list[bytes]]:
    """Picks a session's lines out of the raw tail: those naming it, and the outcome of each of
    its calls (outcomes do not name the session; each is the next line holding its call id,
    which is unique). Byte searches, no per-line work: a large tail takes a few milliseconds."""
    quoted = json.dumps(session).encode()

    def select(data: bytes) -> list[bytes]:
        found: dict[int, bytes] = {}  # start offset -> line, to keep the file's order
        at = data.find(quoted)
        while at >= 0:
            start, end = _line_at(data, at)
            line = found[start] = data[start:end]
            call = CALL_ID.search(line)
            outcome = data.find(b'"' + call[1] + b'"', end) if call else -1
            if outcome >= 0:
                start_of, end_of = _line_at(data, outcome)
                found[start_of] = data[start_of:end_of]
            at = data.find(quoted, end)
        return [found[offset] for offset in sorted(found)]

    return select


def _line_at(data: bytes, at: int) -> tuple[int, int]:
    """(start, end) of the line holding offset ``at``."""
    end = data.find(b"\n", at)
    return data.rfind(b"\n", 0, at) + 1, len(data) if end < 0 else end


def session_records(home: Path, session: str | None) -> list[dict[str, Any]]:
    """Recent records of ``session`` (all sessions for None), oldest first.

    The one place the status line reads events: another store plugs in here.
    """
    def found(records: list[dict[str, Any]]) -> bool:
        return any(r.get("type") == "routed" for r in records)

    fleet = os.environ.get("REASONING_PANEL_REDIS_URL", "").strip()  # stores.base.REDIS_URL_ENV
    if fleet:  # the fleet's stream (imported only then: the status line imports little)
        from callbacks.stores.store import open_store

        def of_it(records: list[dict[str, Any]]) -> bool:  # pages back until it shows up
            return any(r.get("type") == "routed" and session in (None, r.get("session"))
                       for r in records)

        return open_store(home, fleet).read_events(of_it, limit=TAIL_BYTES)[0]
    select = of_session(session) if session is not None else None
    records, _ = read_tail(home / EVENTS_NAME, found, limit=TAIL_BYTES if select else 64 * 1024,
                           select=select)
    return records


def session_requests(records: list[dict[str, Any]], session: str | None) -> list[Request]:
    """The requests of one session (subagents included), or all of them for None."""
    from app.usage import pair

    return [r for r in pair(records) if r.routed is not None
            and (session is None or r.routed.get("session") == session)]


def marks(request: Request) -> list[str]:
    routed = request.routed or {}
    outcome = request.outcome or {}
    out = []
    if routed.get("agent"):
        out.append("subagent")
    if routed.get("capped"):
        out.append(f"capped by {routed['capped']}")
    if routed.get("held"):
        out.append("held")
    fallback = outcome.get("fallback")
    if fallback:
        to = fallback.get("to") if isinstance(fallback, dict) else None
        out.append(f"fallback → {to}" if to else "fallback")
    if request.status == "error":
        code = outcome.get("status_code")
        out.append(f"error {code}" if code else "error")
    elif request.status == "in flight":
        out.append("…")
    return out


def status_text(requests: list[Request]) -> str:
    """The line for a session's requests (oldest first)."""
    if not requests:
        return "reasoning-panel: no requests from this session yet"
    from app.panel.model import PASS, money
    from app.panel.prices import price
    from app.usage import Usage

    latest = max(requests, key=lambda r: r.time)
    routed = latest.routed or {}
    if latest.tier == PASS:
        where = f"pass → {routed.get('client_model') or '?'} ({routed.get('reason') or '?'})"
    else:
        where = f"{latest.tier} → {routed.get('target')}"
    usage = Usage()
    for request in requests:
        usage.add(request, price)
    finished = usage.requests - usage.in_flight - usage.errors
    total = f"session {money(usage.cost, usage.cost_unknown, finished)}"
    if usage.saved_share is not None:
        total += f", saved {usage.saved_share:.0%}"
    total += f" ({usage.requests} req)"
    return " · ".join([where, latest.signal, *marks(latest), total])


def render(payload: str, home: Path) -> str:
    """The status line for Claude Code's JSON ``payload``; the placeholder on any problem."""
    try:
        session = None
        if payload.strip():
            data = json.loads(payload)
            session = data.get("session_id") if isinstance(data, dict) else None
            if not isinstance(session, str) or not session:
                return PLACEHOLDER
        line = status_text(session_requests(session_records(home, session), session))
        return with_window_warning(line, home)
    except Exception:  # noqa: BLE001 - the status line must never fail
        return PLACEHOLDER


def with_window_warning(line: str, home: Path) -> str:
    """``line`` led by a warning when the mapping now reaches a smaller input window than the
    launcher gave Claude Code (only for a Claude Code the launcher started).

    Reading the state costs the YAML parser (about 70 ms with its imports), so the answer is
    kept in ``window-check.json`` beside it, keyed by the state file's and the windows' size
    and time: only the first status line after an edit pays for it.
    """
    given = os.environ.get(CLIENT_WINDOW_ENV, "")
    if not given.isdigit():
        return line
    try:
        warning = _window_warning(home, given)
    except Exception:  # noqa: BLE001 - no state to compare with: the plain line
        return line
    return f"{warning} · {line}" if warning else line


def _window_warning(home: Path, given: str) -> str | None:
    key = [given]
    for name in ("state.yaml", "windows.json"):
        try:
            stat = (home / name).stat()
            key.append(f"{stat.st_mtime_ns}:{stat.st_size}")
        except FileNotFoundError:
            key.append("-")
    cache = home / WINDOW_CHECK
    fleet = bool(os.environ.get("REASONING_PANEL_REDIS_URL"))  # the state is not a file there
    if not fleet:
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if cached.get("key") == key:
                return cached.get("warning")  # type: ignore[no-any-return]
        except (OSError, ValueError, AttributeError):
            pass
    from app.clients.window import window_warning

    warning = window_warning(home, os.environ)
    if not fleet:
        from callbacks.stores.statefile import atomic_write

        atomic_write(cache, json.dumps({"key": key, "warning": warning}))
    return warning


def main(home: Path, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Print the line for the session on ``stdin`` (the latest request of any session when
    stdin is a terminal or empty). Always exits 0."""
    stdin, out = stdin or sys.stdin, out or sys.stdout
    try:
        payload = "" if stdin.isatty() else stdin.read()
    except Exception:  # noqa: BLE001 - e.g. a closed stdin
        payload = ""
    line = render(payload, home)
    try:
        out.write(line.replace("\n", " ") + "\n")
        out.flush()
    except Exception:  # noqa: BLE001 - nowhere to complain to
        pass
    return 0


# --- installing it in Claude Code's settings ---------------------------------------------------


def settings_path() -> Path:
    """Claude Code's user settings: ``$CLAUDE_CONFIG_DIR/settings.json`` or ~/.claude's."""
    base = os.environ.get(SETTINGS_ENV) or os.path.join("~", ".claude")
    return Path(base).expanduser() / "settings.json"


def statusline_setting(home: Path) -> dict[str, Any]:
    """The ``statusLine`` entry that runs this command for the state folder ``home``."""
    from app.local_stack import cli_command

    command = shlex.join([*cli_command(), "--home", str(home), "statusline"])
    return {"type": "command", "command": command, "padding": 0}


def install(home: Path, dry_run: bool = False, out: TextIO | None = None,
            err: TextIO | None = None) -> int:
    """Merge the status line into Claude Code's settings: other keys kept, a backup of the
    file beside it, nothing written when it is already there; ``dry_run`` prints the result."""
    from callbacks.stores.statefile import atomic_write

    out, err = out or sys.stdout, err or sys.stderr
    path = settings_path()
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        settings = json.loads(text) if text.strip() else {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        err.write(f"reasoning-panel: cannot read {path} as JSON, not changed: {exc}\n")
        return 1
    if not isinstance(settings, dict):
        err.write(f"reasoning-panel: {path} is not a JSON object, not changed\n")
        return 1
    wanted = statusline_setting(home)
    merged = {**settings, "statusLine": wanted}
    rendered = json.dumps(merged, indent=2, ensure_ascii=False) + "\n"
    if dry_run:
        out.write(rendered)
        err.write(f"(dry run: {path} not changed)\n")
        return 0
    if settings.get("statusLine") == wanted:
        out.write(f"already installed in {path}\n")
        return 0
    previous = settings.get("statusLine")
    mode = 0o600
    if text:
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
        mode = path.stat().st_mode & 0o777
        atomic_write(backup, text, mode=mode)
        out.write(f"backup: {backup}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, rendered, mode=mode)
    if previous is not None:
        out.write(f"replaced the statusLine that was there: {json.dumps(previous)}\n")
    out.write(f"installed in {path}: {wanted['command']}\n")
    return 0
