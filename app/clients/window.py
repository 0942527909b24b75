"""The input window a client should believe it has: the smallest among the models a session
can reach, so that it compacts its history before any of them would refuse it.

A session can reach each tier's model and that tier's fallback chain (a switch, a pin, a
fallback) and the ``long_context`` model (the context guard's last resort). Each one's window is
what the context guard uses (:func:`callbacks.core.context.tier_limit`): the tier's
``max_input_tokens`` for its own model, else LiteLLM's model info as the proxy reports it
(``/model/info``, the smallest of a group's deployments). A model whose window nobody knows is
skipped, and said so.

The launchers (``reasoning-panel claude`` and the Codex one) start their client with a
compaction point a little below that window (:data:`MARGIN`), and export
:data:`CLIENT_WINDOW_ENV` so the status line can warn when the mapping later reaches a smaller
window than the client was given. They also keep the model windows they read in
``windows.json`` in the state folder (:func:`save_windows`): the status line and the panel read
them there instead of asking the proxy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from callbacks.core.context import group_limit
from callbacks.core.state import TIERS, State

CLIENT_WINDOW_ENV: Final = "REASONING_PANEL_CLIENT_WINDOW"
"""The window a launcher gave its client (tokens), for the status line's check."""
WINDOWS_FILE: Final = "windows.json"
MARGIN: Final = 0.10
"""The compaction point sits this share below the window. The context guard estimates a body's
tokens from its characters and errs up to about a fifth high; a client that compacts 10 % below
the window (Claude Code also keeps its own reserve of about 33k tokens for the summary below
its auto-compact window) sends bodies the guard lets through instead of moving them up a
tier."""
MIN_WINDOW: Final = 32_000
"""A window below this is too small for a coding agent to work in (Codex's instructions and tools
alone take about 9k tokens; it would compact on every turn): such a model is left to the
context guard, which moves a request too large for it up a tier, and the launcher says so."""
CLAUDE_WINDOW_ENV: Final = "CLAUDE_CODE_AUTO_COMPACT_WINDOW"
CLAUDE_MAX_ENV: Final = "CLAUDE_CODE_MAX_CONTEXT_TOKENS"

Windows = Callable[[str], int | None]
"""Model group -> its input window from LiteLLM's model info (None when unknown)."""


@dataclass(frozen=True)
class ClientWindow:
    """The smallest window a session can reach, and where it comes from."""

    window: int | None
    """The smallest known window (tokens); None when no reachable model's window is known."""
    model: str | None
    """The model group that has it."""
    windows: Mapping[str, int | None] = field(default_factory=dict)
    """Every reachable model group and its window (None: unknown)."""

    @property
    def too_small(self) -> tuple[str, ...]:
        """Reachable model groups whose window is below :data:`MIN_WINDOW` (left to the guard)."""
        return tuple(m for m, w in self.windows.items() if w is not None and w < MIN_WINDOW)

    @property
    def unknown(self) -> tuple[str, ...]:
        """Reachable model groups whose window nobody knows (skipped)."""
        return tuple(m for m, w in self.windows.items() if w is None)

    @property
    def compact_at(self) -> int | None:
        """The compaction point: :data:`MARGIN` below the window, in whole thousands."""
        if self.window is None:
            return None
        return max(int(self.window * (1 - MARGIN)) // 1000 * 1000, 1000)


def reachable_models(state: State) -> list[str]:
    """The model groups a routed session can be sent to, each once: every tier's model and its
    fallbacks (lowest tier first), then ``long_context``."""
    found: dict[str, None] = {}
    for tier in TIERS:
        target = state.tiers[tier]
        found.update(dict.fromkeys((target.model, *target.fallbacks)))
    if state.long_context:
        found[state.long_context] = None
    return list(found)


def model_window(state: State, model: str, windows: Windows) -> int | None:
    """``model``'s window as the context guard sees it: a tier's ``max_input_tokens`` when
    ``model`` is that tier's own model (the smallest, if several tiers set one), else
    ``windows``."""
    own = [t.max_input_tokens for t in state.tiers.values()
           if t.model == model and t.max_input_tokens is not None]
    return min(own) if own else windows(model)


def client_window(state: State, windows: Windows) -> ClientWindow:
    """The smallest input window among the models a session on ``state`` can reach."""
    found = {model: model_window(state, model, windows) for model in reachable_models(state)}
    known = [(w, m) for m, w in found.items() if w is not None and w >= MIN_WINDOW]
    if not known:
        return ClientWindow(None, None, found)
    window, model = min(known)
    return ClientWindow(window, model, found)


# --- the proxy's model info ------------------------------------------------------------------


def group_windows(model_info: Any) -> dict[str, int]:
    """Model group -> window from the proxy's ``/model/info`` answer (known ones only)."""
    rows = model_info.get("data") if isinstance(model_info, dict) else None
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("model_name"), str):
            groups.setdefault(row["model_name"], []).append(row)
    out = {}
    for group, deployments in groups.items():
        # /model/info already merges LiteLLM's model map into each deployment's model_info
        limit = group_limit(deployments, lambda _model: None)
        if limit is not None:
            out[group] = limit
    return out


def proxy_windows(url: str, key: str, timeout: float = 10.0) -> dict[str, int] | None:
    """The proxy's known windows by model group; None when it cannot be asked."""
    import urllib.error  # here: the status line imports this module and must start fast
    import urllib.request

    request = urllib.request.Request(f"{url}/model/info",
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return group_windows(json.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def save_windows(home: Path, windows: Mapping[str, int]) -> None:
    """Keep the proxy's windows beside the state (for the status line and the panel)."""
    from callbacks.stores.statefile import atomic_write, ensure_private_dir

    atomic_write(ensure_private_dir(home) / WINDOWS_FILE,
                 json.dumps(dict(sorted(windows.items()))) + "\n")


def saved_windows(home: Path) -> dict[str, int]:
    """The windows the last launch (or the panel) read from the proxy ({} when none)."""
    try:
        data = json.loads((home / WINDOWS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


# --- what the launchers set and say ----------------------------------------------------------


def claude_window_env(window: ClientWindow) -> dict[str, str]:
    """Claude Code's settings for ``window`` (none when it is unknown): the auto-compact window
    (Claude Code compacts below it, keeping its own summary reserve) and the context size."""
    if window.window is None or window.compact_at is None:
        return {}
    return {CLAUDE_WINDOW_ENV: str(window.compact_at), CLAUDE_MAX_ENV: str(window.window),
            CLIENT_WINDOW_ENV: str(window.window)}


def codex_window_args(window: ClientWindow) -> list[str]:
    """Codex's ``-c`` overrides for ``window`` (none when it is unknown)."""
    if window.window is None or window.compact_at is None:
        return []
    return ["-c", f"model_context_window={window.window}",
            "-c", f"model_auto_compact_token_limit={window.compact_at}"]


def describe(window: ClientWindow, told: str = "") -> str:
    """One sentence: the window chosen and why (or why none); ``told``: what was set."""
    skipped = window.unknown
    unknown = f" (unknown window, skipped: {', '.join(skipped)})" if skipped else ""
    if window.too_small:
        unknown += (f" (below {MIN_WINDOW:,} tokens, left to the context guard: "
                    f"{', '.join(window.too_small)})")
    if window.window is None or window.compact_at is None:
        return ("no reachable model has a known input window (set tiers.<tier>.max_input_tokens "
                f"or model_info.max_input_tokens){unknown}: the client keeps its own")
    return (f"input window {window.window:,} tokens, the smallest a session can reach "
            f"({window.model}); compacting by {window.compact_at:,}"
            + (f": {told}" if told else "") + unknown)


def shrunk(given: int, state: State, windows: Windows) -> ClientWindow | None:
    """The current window when the mapping now reaches a smaller one than ``given``."""
    now = client_window(state, windows)
    return now if now.window is not None and now.window < given else None


def window_warning(home: Path, env: Mapping[str, str]) -> str | None:
    """For the status line of a client a launcher started: a warning when the mapping now
    reaches a smaller window than the client was given (None otherwise, or when unsure)."""
    given = env.get(CLIENT_WINDOW_ENV, "")
    if not given.isdigit():
        return None
    from callbacks.stores.store import open_store

    now = shrunk(int(given), open_store(home, env=env).read().state, saved_windows(home).get)
    if now is None or now.window is None:
        return None
    return (f"⚠ window now {now.window:,} ({now.model}) < {int(given):,} given at launch: "
            "restart via reasoning-panel claude")


def launch_window(home: Path, url: str, key: str, say: Callable[[str], None]) -> ClientWindow:
    """For a launcher: the window of the state folder's current mapping, from the proxy's model
    info at ``url`` (kept in ``windows.json``, or the last kept copy when the proxy does not
    answer); says what it found."""
    from callbacks.stores.store import open_store

    state = open_store(home).ensure().state
    windows = proxy_windows(url, key)
    if windows is None:
        say(f"could not read the proxy's model info at {url}/model/info; "
            "using the windows last read")
        windows = saved_windows(home)
    else:
        save_windows(home, windows)
    return client_window(state, windows.get)
