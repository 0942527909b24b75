"""``reasoning-panel claude``: Claude Code wired to this state folder's proxy.

Uses the proxy that serves the state folder when it answers, else starts one (and stops it when
Claude Code exits), then runs ``claude`` with ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_AUTH_TOKEN``
pointing at it and, unless told not to, the status line (through ``claude --settings``, so the
user's own settings files are left alone) and the smallest input window a session can reach
(:mod:`app.clients.window`), so that Claude Code compacts before any tier's model would refuse it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final, TextIO

from app.clients.proxy import client_proxy, find_client, run_client, teller
from app.clients.statusline import statusline_setting
from app.clients.window import claude_window_env, describe, launch_window

PROXY_LOG: Final = "claude-proxy.log"


def claude_environment(url: str, key: str, env: dict[str, str]) -> dict[str, str]:
    """Claude Code's environment: the proxy's address and key. A real Anthropic API key in
    the environment would be sent instead of the proxy's key, so it is left out."""
    out = {k: v for k, v in env.items() if k != "ANTHROPIC_API_KEY"}
    out["ANTHROPIC_BASE_URL"] = url
    out["ANTHROPIC_AUTH_TOKEN"] = key
    return out


def claude_command(claude: str, home: Path, statusline: bool, args: list[str]) -> list[str]:
    """``claude`` with the status line through ``--settings`` (unless the user passes theirs)."""
    if not statusline or "--settings" in args:
        return [claude, *args]
    settings = json.dumps({"statusLine": statusline_setting(home)})
    return [claude, "--settings", settings, *args]


def run_claude(home: Path, config: Path | None, statusline: bool, args: list[str],
               err: TextIO | None = None, window: bool = True) -> int:
    """Run Claude Code through this state folder's proxy; its exit code."""
    say = teller(err)
    claude = find_client("claude", "@anthropic-ai/claude-code", say)
    if claude is None:
        return 127
    proxy = client_proxy(home, config, PROXY_LOG, say)
    if isinstance(proxy, int):
        return proxy
    url, started = proxy.url, proxy.started
    say(f"Claude Code -> {url}" + ("" if started is None else " (stopped when Claude Code exits)"))
    env = claude_environment(url, proxy.key, dict(os.environ))
    if window:
        try:
            found = launch_window(home, url, proxy.key, say)
            settings = claude_window_env(found)
            env.update(settings)
            told = " ".join(f"{k}={v}" for k, v in settings.items() if k.startswith("CLAUDE"))
            say(describe(found, told))
        except Exception as exc:  # noqa: BLE001 - Claude Code still starts, with its own window
            say(f"could not work out the input window ({exc}); Claude Code keeps its own")
    try:
        return run_client(claude_command(claude, home, statusline, args), env)
    finally:
        proxy.stop()
