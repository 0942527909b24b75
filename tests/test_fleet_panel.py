"""The dashboard in fleet mode, on a real ``redis-server``: the status line says which version
every worker applied and who is behind, that Redis is down, and an edit made from a stale view
is refused, not written over the newer state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Static

from app.panel.app import ReasoningPanel
from callbacks.stores.redis_store import RedisStore

from .redis_server import RedisServer
from .test_panel import SIZE, cell, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis_server = RedisServer(tmp_path / "redis").start()
    yield redis_server
    redis_server.stop()


def opened(server: RedisServer, home: Path) -> RedisStore:
    return RedisStore(server.url, home, {"REASONING_PANEL_FLEET": "panel"})


def status(app: ReasoningPanel) -> str:
    return str(app.query_one("#status", Static).render())


async def test_the_status_line_follows_the_fleet(server: RedisServer, tmp_path: Path) -> None:
    store = opened(server, tmp_path / "panel")
    store.ensure()
    worker = opened(server, tmp_path / "worker").live()
    app = ReasoningPanel(tmp_path / "panel", store=store, poll_s=0.2)
    try:
        async with app.run_test(size=SIZE):
            await wait_for(lambda: "v1 applied by 1/1" in status(app), 10)
            opened(server, tmp_path / "cli").update(lambda s: s.with_tier_model("low", "fast-coder"))
            await wait_for(lambda: cell(app, "tiers", "low", "model") == "fast-coder", 10)
            await wait_for(lambda: "v2 applied by 1/1" in status(app), 10)
            far = {"id": "far-away:7", "host": "far-away", "pid": 7, "workers": 2,
                   "applied_version": 1, "seen": time.time()}
            server.client().set(store.keys.instance("far-away:7"), json.dumps(far), ex=60)
            server.client().sadd(store.keys.instances, "far-away:7")
            await wait_for(lambda: "v2 applied by 1/2; behind: far-away:7 (v1)" in status(app), 10)
            server.kill()
            await wait_for(lambda: "Redis down: cannot reach Redis" in status(app), 10)
            assert cell(app, "tiers", "low", "model") == "fast-coder"  # the last state read stays
            server.start()
            await wait_for(lambda: "applied by" in status(app), 20)  # the worker put it back
    finally:
        worker.close()  # type: ignore[attr-defined]


async def test_an_edit_from_a_stale_view_is_refused_and_the_view_refreshed(
        server: RedisServer, tmp_path: Path) -> None:
    store = opened(server, tmp_path / "panel")
    store.ensure()
    app = ReasoningPanel(tmp_path / "panel", store=store, live=False)
    async with app.run_test(size=SIZE) as pilot:
        opened(server, tmp_path / "cli").update(lambda s: replace(s, pin="high"))  # unseen
        await pilot.press("r")  # routing off, decided on the view of v1
        await pilot.pause()
        stored = store.read()
        assert stored.version == 2 and stored.state.routing is True and stored.state.pin == "high"
        assert "pinned" in cell(app, "tiers", "high", "model")  # now shown
        await pilot.press("r")  # again, on the fresh view: it lands
        await pilot.pause()
        assert store.read().state.routing is False and store.read().version == 3
