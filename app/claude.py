"""``reasoning-panel claude``: Claude Code wired to this state folder's proxy.

Uses the proxy that serves the state folder when it answers, else starts one (and stops it when
Claude Code exits), then runs ``claude`` with ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_AUTH_TOKEN``
pointing at it and, unless told not to, the status line (through ``claude --settings``, so the
user's own settings files are left alone) and the smallest input window a session can reach
(:mod:`app.client_window`), so that Claude Code compacts before any tier's model would refuse it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final, TextIO

from app.client_window import claude_window_env, describe, launch_window
from app.local_stack import Service, preferred_port, start_proxy
from app.statusline import statusline_setting
from callbacks.launcher import master_key, read_proxy_info

DEFAULT_PORT: Final = 4000
PROXY_LOG: Final = "claude-proxy.log"


def proxy_answers(url: str, timeout: float = 1.5) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/liveliness", timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


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
    def say(message: str) -> None:
        print(f"reasoning-panel: {message}", file=err or sys.stderr, flush=True)

    claude = shutil.which("claude")
    if claude is None:
        say("`claude` is not on PATH (npm install -g @anthropic-ai/claude-code)")
        return 127
    info = read_proxy_info(home)
    running = Path(info["config"]) if info.get("config") else None
    started: Service | None = None
    if isinstance(info.get("url"), str) and proxy_answers(info["url"]):
        url = info["url"]
        if config is not None and running is not None and config.resolve() != running:
            say(f"using the running proxy {url} (config {running}); stop it to use {config}")
        config = running or config
    else:
        config = config or running
        if config is None or not config.is_file():
            say(f"no proxy is running for {home} and no config to start one: "
                "give --config FILE (e.g. configs/cerebras.yaml)")
            return 2
        log = home / PROXY_LOG
        say(f"starting a proxy on {config} (about ten seconds; log {log}) ...")
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            started = start_proxy(home, config, port=preferred_port(DEFAULT_PORT), log_path=log,
                                  cwd=Path.cwd())
        except (RuntimeError, TimeoutError) as exc:
            say(f"the proxy did not start: {exc} (see {log})")
            return 1
        url = started.url
    key = master_key(home, config or Path(os.devnull))
    say(f"Claude Code -> {url}" + ("" if started is None else " (stopped when Claude Code exits)"))
    env = claude_environment(url, key.value, dict(os.environ))
    if window:
        try:
            found = launch_window(home, url, key.value, say)
            settings = claude_window_env(found)
            env.update(settings)
            told = " ".join(f"{k}={v}" for k, v in settings.items() if k.startswith("CLAUDE"))
            say(describe(found, told))
        except Exception as exc:  # noqa: BLE001 - Claude Code still starts, with its own window
            say(f"could not work out the input window ({exc}); Claude Code keeps its own")
    # Ctrl+C belongs to Claude Code (it reaches the whole foreground group): stay to clean up.
    # A handler, not SIG_IGN: an ignored signal would stay ignored in claude after exec.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code = subprocess.call(claude_command(claude, home, statusline, args), env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
        if started is not None:
            started.stop()
    return code if code >= 0 else 128 - code
