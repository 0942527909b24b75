"""Start and stop the local pieces: the stand-in provider and a LiteLLM proxy with the callback.

Used by ``reasoning-panel demo``, ``reasoning-panel bench`` and the integration tests. Every
process is started in a session of its own and stopped by its PID (and its process group, as
the proxy's workers are its children), so nothing is left running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from callbacks.launcher import STANDIN_URL_ENV
from callbacks.stores.statefile import HOME_ENV

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DEMO_CONFIG: Final = PROJECT_ROOT / "configs" / "demo.yaml"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def preferred_port(port: int) -> int:
    """``port`` when it is free on 127.0.0.1, else another free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


def cli_command() -> list[str]:
    """How to run ``reasoning-panel`` in this environment (its script, else the module)."""
    script = Path(sys.executable).with_name("reasoning-panel")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers 2xx; raise with the reason when it does not in time."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s: {last}")


@dataclass
class Service:
    """A process this program started, and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10) -> None:
        """Stop the process and its children (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        # the group may outlive its leader (proxy workers): make sure none is left
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log:
            self._log.close()

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")


_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None  # loaded before any fork
PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the process that started it dies, even
    by SIGKILL, so a killed test run or demo never leaves a proxy or stand-in behind."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, cmd: list[str], env: dict[str, str], url: str, log_path: Path | None,
           ready_path: str, timeout: float, cwd: Path = PROJECT_ROOT) -> Service:
    """Start a service and wait until ``url + ready_path`` answers (stopping it if it does not)."""
    log = open(log_path, "wb") if log_path else None  # noqa: SIM115 - closed by Service.stop
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl (libc loaded beforehand)
    )
    service = Service(name, proc, url, log_path, log)
    try:
        wait_http(url + ready_path, timeout, proc)
    except BaseException:
        service.stop()
        raise
    return service


def start_standin(port: int | None = None, log_path: Path | None = None,
                  timeout: float = 30, strict: bool = False) -> Service:
    """Start the stand-in provider and wait until it answers; ``strict`` applies the Anthropic
    API's rules on replayed history (app/standin/server.py)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "app.standin", "--port", str(port), *(["--strict"] if strict else [])]
    return _spawn("stand-in", cmd, dict(os.environ), url, log_path, "/health", timeout)


def start_proxy(home: Path, config: Path = DEMO_CONFIG, *, port: int | None = None,
                standin_url: str | None = None, num_workers: int = 1,
                log_path: Path | None = None, timeout: float = 120,
                env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT) -> Service:
    """Start ``reasoning-panel proxy`` (the real LiteLLM proxy with the callback) and wait
    until it is ready."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = dict(os.environ if env is None else env)
    full_env[HOME_ENV] = str(home)
    if standin_url:
        full_env[STANDIN_URL_ENV] = standin_url
    cmd = [*cli_command(), "--home", str(home), "proxy", "--config", str(config),
           "--port", str(port), "--num-workers", str(num_workers)]
    return _spawn("proxy", cmd, full_env, url, log_path, "/health/liveliness", timeout, cwd)
