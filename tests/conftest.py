"""Shared fixtures: one stand-in provider and real LiteLLM proxies, started once per session."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
os.environ["TZ"] = "UTC"  # times on screen (snapshots) do not depend on the machine's zone
time.tzset()

from app.local_stack import Service, start_proxy, start_standin  # noqa: E402 - after the env is set
from callbacks.core.state import State  # noqa: E402 - after the env is set
from callbacks.launcher import saved_master_key  # noqa: E402 - after the env is set
from callbacks.stores.statefile import StateFile  # noqa: E402 - after the env is set

# The files that take longest (seconds of test time in a whole run, 2026-12-03), run first: each
# worker takes one file at a time, so a long file taken last keeps one worker busy alone at the
# end. (xdist's own order, most tests first, took the one-test bench file last.)
LONGEST_FIRST = ("test_faults.py", "test_headroom_proxy.py", "test_fleet.py",  # 142, 111, 108
                 "test_bench.py", "test_demo.py", "test_proxy.py",  # 91, 90, 65
                 "test_opencode_cli.py", "test_fallbacks.py", "test_panel.py")  # 61, 56, 53


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (``LONGEST_FIRST``); the others keep their order, and every file's
    tests theirs (a stable sort)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@dataclass
class StandIn:
    service: Service

    @property
    def url(self) -> str:
        return self.service.url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    def requests(self) -> list[dict[str, Any]]:
        """What the stand-in received, oldest first."""
        return self._call("GET", "/_standin/requests")  # type: ignore[no-any-return]

    def clear(self) -> None:
        self._call("DELETE", "/_standin/requests")

    def fault(self, model: str, status: int | None = None, delay_ms: int = 0) -> None:
        self._call("POST", "/_standin/faults",
                   {"model": model, "status": status, "delay_ms": delay_ms})

    # Misbehaviour on purpose (app/standin/server.py documents each kind and its error texts).
    def misbehave(self, model: str, kind: str, count: int | None = None,
                  retry_after: int | None = None, delay_ms: int | None = None,
                  status: int | None = None, every: int | None = None) -> None:
        """``kind``: rate_limit, overloaded, server, stall or status; ``count``: only the next
        N requests to ``model`` (``"*"``: every model), then it recovers by itself; ``every``:
        only every Nth request."""
        self._call("POST", "/_standin/faults", {
            "model": model, "kind": kind, "count": count, "retry_after": retry_after,
            "delay_ms": delay_ms, "status": status, "every": every})

    def recover(self, model: str) -> None:
        """Clear ``model``'s fault (its context limit stays)."""
        self._call("POST", "/_standin/faults", {"model": model, "kind": None})

    def limit_context(self, model: str, max_input_tokens: int | None) -> None:
        """Requests to ``model`` of more input tokens get the provider's context-length error."""
        self._call("POST", "/_standin/faults",
                   {"model": model, "max_input_tokens": max_input_tokens})

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/_standin/faults")  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        """Every fault and context limit gone."""
        self._call("DELETE", "/_standin/faults")

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        """The requests that reached ``model`` (all when None), oldest first."""
        return [r for r in self.requests() if model is None or r["model"] == model]

    def rejected(self) -> list[dict[str, Any]]:
        """The requests the stand-in answered with an error (strict rules, faults, limits)."""
        return [r for r in self.requests() if r["rejected"]]


@dataclass
class Proxy:
    service: Service
    home: Path

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def key(self) -> str:
        return saved_master_key(self.home)

    @property
    def state_file(self) -> StateFile:
        return StateFile.in_home(self.home)


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    log = tmp_path_factory.mktemp("standin") / "standin.log"
    service = start_standin(log_path=log, strict=True)  # the Anthropic API's rules on history
    yield StandIn(service)
    service.stop()


def _proxy(tmp_path_factory: pytest.TempPathFactory, standin: StandIn, workers: int
           ) -> Iterator[Proxy]:
    home = tmp_path_factory.mktemp(f"home-{workers}w")
    # started from an unrelated folder: the command must work from any cwd; each test worker
    # (pytest -n) starts its own, at times both at once on a loaded machine: hence 300 s
    service = start_proxy(home, standin_url=standin.url, num_workers=workers,
                          log_path=home / "proxy.log", cwd=tmp_path_factory.mktemp("cwd"),
                          timeout=300)
    yield Proxy(service, home)
    service.stop()


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Proxy]:
    """A real ``reasoning-panel proxy`` on configs/demo.yaml, one worker."""
    yield from _proxy(tmp_path_factory, standin, 1)


@pytest.fixture(scope="session")
def proxy2(tmp_path_factory: pytest.TempPathFactory, standin: StandIn) -> Iterator[Proxy]:
    """The same with ``--num_workers 2``."""
    yield from _proxy(tmp_path_factory, standin, 2)


def reset_state(proxy: Proxy) -> None:
    """Put the default state back (every test starts from it)."""
    proxy.state_file.write(State())


@pytest.fixture(autouse=True)
def _default_state(request: pytest.FixtureRequest) -> None:
    """Every test on a shared proxy starts from the default state, whatever the files run on
    the same worker before it left there (files run in any order)."""
    for name in ("proxy", "proxy2"):
        if name in request.fixturenames:
            reset_state(request.getfixturevalue(name))
