"""The proxy a client launcher uses: this state folder's running proxy, or one it starts.

Shared by ``reasoning-panel claude`` and ``reasoning-panel codex``: a launcher never changes the
user's own client configuration; it points the client at this proxy for one run, and stops only
the proxy it started itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from app.local_stack import Service, preferred_port, start_proxy
from callbacks.launcher import master_key, read_proxy_info

DEFAULT_PORT: Final = 4000


def proxy_answers(url: str, timeout: float = 1.5) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/liveliness", timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ClientProxy:
    """The proxy a client talks to: its address, its key, and the service when we started it."""

    url: str
    key: str
    started: Service | None = None

    def stop(self) -> None:
        if self.started is not None:
            self.started.stop()


def client_proxy(home: Path, config: Path | None, log_name: str,
                 say: Callable[[str], None]) -> ClientProxy | int:
    """Reuse the proxy serving ``home`` when it answers, else start one on ``config``; an exit
    code (having said why) when neither is possible."""
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
        log = home / log_name
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
    return ClientProxy(url, key.value, started)


def teller(err: TextIO | None) -> Callable[[str], None]:
    """How a launcher speaks: one ``reasoning-panel: ...`` line on stderr."""
    def say(message: str) -> None:
        print(f"reasoning-panel: {message}", file=err or sys.stderr, flush=True)
    return say


def find_client(name: str, package: str, say: Callable[[str], None]) -> str | None:
    """The client program on PATH, or None (having said how to install it)."""
    found = shutil.which(name)
    if found is None:
        say(f"`{name}` is not on PATH (npm install -g {package})")
    return found


def run_client(command: list[str], env: dict[str, str]) -> int:
    """Run the client in the foreground; its exit code (128 + N when signal N ended it).

    Ctrl+C belongs to the client (it reaches the whole foreground group): the launcher stays
    to clean up. A handler, not SIG_IGN: an ignored signal would stay ignored in the client."""
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        code = subprocess.call(command, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    return code if code >= 0 else 128 - code
