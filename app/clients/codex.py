"""``reasoning-panel codex``: the OpenAI Codex CLI wired to this state folder's proxy.

Uses the proxy that serves the state folder (or starts one, stopped when Codex exits) and runs
``codex`` with ``-c`` overrides that add a model provider pointing at it (the Responses API, the
key in :data:`KEY_ENV`), so ``~/.codex`` is never edited. The model Codex starts with (``-m``,
else :data:`DEFAULT_MODEL`) is added to the state's ``route_models`` when no pattern routes it
yet, and the launcher says so. Unless told not to, Codex also gets the smallest input window a
session can reach (:mod:`app.clients.window`) so it compacts before a tier's model would refuse.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Final, TextIO

from app.clients.proxy import client_proxy, find_client, run_client, teller
from app.clients.window import CLIENT_WINDOW_ENV, codex_window_args, describe, launch_window
from callbacks.stores.store import open_store

PROXY_LOG: Final = "codex-proxy.log"
PROVIDER: Final = "reasoning_panel"
KEY_ENV: Final = "REASONING_PANEL_API_KEY"
DEFAULT_MODEL: Final = "gpt-5.5"


def codex_model(args: list[str]) -> str | None:
    """The model the user asks for in Codex's own arguments (``-m X``, ``--model X``, ``-c model=X``)."""
    for i, arg in enumerate(args):
        if arg in ("-m", "--model") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg in ("-c", "--config") and i + 1 < len(args) and args[i + 1].startswith("model="):
            return args[i + 1].split("=", 1)[1].strip().strip('"')
    return None


def provider_args(url: str, model: str | None) -> list[str]:
    """The ``-c`` overrides that point Codex at the proxy (and its model, when not in ``args``)."""
    table = (f'{{name="reasoning-panel", base_url="{url}/v1", env_key="{KEY_ENV}", '
             f'wire_api="responses"}}')
    out = ["-c", f"model_providers.{PROVIDER}={table}", "-c", f"model_provider={PROVIDER}"]
    return out + (["-c", f'model="{model}"'] if model else [])


def codex_command(codex: str, url: str, args: list[str], window_args: list[str]) -> list[str]:
    """``codex`` with the overrides first; a subcommand (``exec``, ``resume``) gets them after it,
    where Codex reads them too."""
    asked = codex_model(args)
    overrides = provider_args(url, None if asked else DEFAULT_MODEL) + window_args
    if args and not args[0].startswith("-") and args[0] in ("exec", "e", "resume", "review"):
        return [codex, args[0], *overrides, *args[1:]]
    return [codex, *overrides, *args]


def ensure_routed(home: Path, model: str, say: Callable[[str], None]) -> None:
    """Add ``model`` to ``route_models`` when no pattern there routes it (said, never silent)."""
    store = open_store(home)
    state = store.ensure().state
    if any(fnmatch.fnmatchcase(model, pattern) for pattern in state.route_models):
        return
    store.update(lambda s: replace(s, route_models=(*s.route_models, model)))
    say(f"{model} was not routed: added it to route_models (reasoning-panel state shows them)")


def run_codex(home: Path, config: Path | None, args: list[str], err: TextIO | None = None,
              window: bool = True) -> int:
    """Run Codex through this state folder's proxy; its exit code."""
    say = teller(err)
    codex = find_client("codex", "@openai/codex", say)
    if codex is None:
        return 127
    proxy = client_proxy(home, config, PROXY_LOG, say)
    if isinstance(proxy, int):
        return proxy
    try:
        model = codex_model(args) or DEFAULT_MODEL
        ensure_routed(home, model, say)
        say(f"Codex ({model}) -> {proxy.url}"
            + ("" if proxy.started is None else " (stopped when Codex exits)"))
        env = {**os.environ, KEY_ENV: proxy.key}
        window_args: list[str] = []
        if window:
            try:
                found = launch_window(home, proxy.url, proxy.key, say)
                window_args = codex_window_args(found)
                say(describe(found, " ".join(a for a in window_args if a != "-c")))
                if found.window is not None:
                    env[CLIENT_WINDOW_ENV] = str(found.window)
            except Exception as exc:  # noqa: BLE001 - Codex still starts, with its own window
                say(f"could not work out the input window ({exc}); Codex keeps its own")
        return run_client(codex_command(codex, proxy.url, args, window_args), env)
    finally:
        proxy.stop()
