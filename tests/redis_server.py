"""A real ``redis-server`` for the fleet tests: started on a free port, killed, paused (SIGSTOP),
restarted on the same port, stopped. Skips with the reason where the binary is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from app.local_stack import _die_with_parent, free_port

REDIS_SERVER = shutil.which("redis-server")
MISSING = ("redis-server is not installed here (Debian: `apt-get install redis-server`; "
           ".ci/run installs it): the fleet-mode tests need a real one")


def need_redis_server() -> str:
    if REDIS_SERVER is None:
        print(f"SKIPPED: {MISSING}")
        pytest.skip(MISSING)
    return REDIS_SERVER


def poll(condition: Callable[[], object], timeout: float = 30.0, every: float = 0.02,
         what: str = "condition") -> None:
    """Wait until ``condition()`` is true; fail naming ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:.0f} s")
        time.sleep(every)


@dataclass
class RedisServer:
    folder: Path
    password: str | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, decode_responses=True,
                           socket_timeout=5)

    def start(self) -> RedisServer:
        """Start (or restart, on the same port) an empty Redis without persistence."""
        binary = need_redis_server()
        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no"]
        if self.password:
            cmd += ["--requirepass", self.password]
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)  # noqa: PLW1509
        log.close()

        def answers() -> bool:
            assert self.proc is not None and self.proc.poll() is None, \
                (self.folder / "redis.log").read_text()
            with contextlib.suppress(redis.RedisError):
                return bool(self.client().ping())
            return False

        poll(answers, 20, what="redis-server answering")
        return self

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing saved."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
