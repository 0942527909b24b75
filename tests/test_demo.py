"""``reasoning-panel demo``: records flow, a remap changes later requests, nothing is left."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from app.demo import DEMO_INFO_FILE, demo_stack
from app.local_stack import DEMO_CONFIG, cli_command, free_port
from app.panel.app import ReasoningPanel
from callbacks.stores.statefile import StateFile

from .redis_server import poll
from .test_panel import request_rows, wait_for

pytestmark = pytest.mark.timeout(240)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (its parent has not reaped it yet)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_headless_demo_remap_changes_later_requests(tmp_path: Path) -> None:
    with demo_stack(tmp_path, pace_s=(0.05, 0.15)) as demo:
        pids = [s.proc.pid for s in demo.services]
        app = ReasoningPanel(tmp_path, proxy_url=demo.proxy.url, config=DEMO_CONFIG, poll_s=0.5)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(lambda: len(request_rows(app)) >= 5, 30)
            await wait_for(lambda: app.proxy_up is True, 10)
            # pin the high tier from the dashboard, as a user would
            app.query_one("#tiers", DataTable).move_cursor(row=3)
            await pilot.press("p")
            assert StateFile.in_home(tmp_path).read().pin == "high"
            pinned_at = time.time()

            def routed_after() -> list[Any]:  # a tool loop begun before the pin is held
                return [r for r in app.model.requests.values()
                        if r.routed and r.routed["time"] > pinned_at + 0.2
                        and r.routed.get("target") and r.outcome is not None
                        and r.routed.get("reason") != "held"]

            await wait_for(lambda: len(routed_after()) >= 5, 30)
            later = routed_after()
            assert {r.routed["target"] for r in later} == {"high-reasoning"}
            assert {r.outcome["model_group"] for r in later if r.status == "ok"} == \
                {"high-reasoning"}
            assert {r.routed["reason"] for r in later} == {"pinned"}
            await pilot.press("q")
        assert demo.traffic.sent >= 10
    poll(lambda: not [pid for pid in pids if alive(pid)], 10, what="the demo's children gone")


def test_demo_conversations_replay_cleaned_histories(tmp_path: Path) -> None:
    """The demo's traffic is real conversations: growing histories whose effort changes between
    turns (other models' thinking blocks dropped), tool loops of several steps, and the strict
    stand-in refuses none of it."""
    from app.demo import Traffic
    from callbacks.stores.eventlog import EVENTS_NAME, read_tail

    home = tmp_path / "not-yet" / "home"  # --home may name a folder that does not exist yet
    with demo_stack(home, traffic=False) as demo:
        traffic = Traffic(demo.proxy.url, demo.key, pace_s=(0.0, 0.02), seed=7)
        thread = traffic.start()

        def seen() -> list[dict[str, Any]]:
            return read_tail(home / EVENTS_NAME)[0]

        def ready() -> bool:
            records = seen()
            dropped = [r for r in records if (r.get("history") or {}).get("dropped")]
            loops = [r for r in records if r.get("type") == "routed"
                     and isinstance(r.get("history"), dict) and r["history"].get("kept")]
            codex = [r for r in records if r.get("type") == "routed"
                     and r.get("endpoint") == "/v1/responses" and r.get("tool_loop")]
            return len(dropped) >= 3 and len(loops) >= 3 and len(codex) >= 3

        deadline = time.monotonic() + 120
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        traffic.stop.set()
        thread.join(60)
        assert ready()
        failed = [r for r in seen() if r.get("type") == "failed" and r.get("model_group") != "flaky"]
        assert failed == [], json.dumps(failed)[:3000]
        lost = [r for r in seen() if r.get("hidden_retry") or r.get("reasoning_lost")]
        assert not lost, json.dumps(lost)[:3000]
        codex = [r for r in seen() if r.get("endpoint") == "/v1/responses"]
        assert {r["client"] for r in codex} == {"codex_exec/0.171.0"} and all(r["session"] for r in codex)


def _run_demo_in_a_terminal(home: Path) -> tuple[subprocess.Popen[bytes], int]:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*cli_command(), "--home", str(home), "demo", "--port", str(free_port())],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"},
    )
    os.close(terminal)
    return proc, controller


def _drain(controller: int) -> None:
    """Keep the terminal's buffer from filling (the app blocks writing otherwise)."""
    import select

    while select.select([controller], [], [], 0)[0]:
        try:
            if not os.read(controller, 65536):
                return
        except OSError:
            return


@pytest.mark.parametrize("how", ["ctrl+c", "terminal closed"])
def test_quitting_the_demo_stops_everything(tmp_path: Path, how: str) -> None:
    proc, controller = _run_demo_in_a_terminal(tmp_path)
    try:
        info_path = tmp_path / DEMO_INFO_FILE
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
                info_path.exists() and (tmp_path / "events.jsonl").exists()
                and (tmp_path / "events.jsonl").read_text().count('"done"') >= 2):
            _drain(controller)
            assert proc.poll() is None, "the demo exited early"
            time.sleep(0.2)
        info = json.loads(info_path.read_text())
        children = [info["standin"], info["proxy"]]
        assert all(alive(pid) for pid in children)
        if how == "ctrl+c":
            os.write(controller, b"\x03")
        else:
            os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            _drain(controller)
            time.sleep(0.1)
        assert proc.returncode == 0
        poll(lambda: not [pid for pid in children if alive(pid)], 10,
             what="the demo's children gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(controller)
