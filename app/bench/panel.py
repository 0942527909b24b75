"""``reasoning-panel bench --panel``: how the dashboard keeps up, measured headless.

- start-up on a 100,000-record log (time to the first full screen, memory after);
- records/s it keeps up with: a writer appends at fixed rates while the panel runs; for each,
  how far behind the panel's model is at the end, its CPU share and memory;
- remap latency: from a key press pinning a tier to the first request served by the new model,
  with the real stand-in, proxy and traffic generator.
"""

from __future__ import annotations

import asyncio
import json
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from callbacks.core.state import State
from callbacks.stores.eventlog import EVENTS_NAME
from callbacks.stores.statefile import StateFile


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _pair(i: int, at: float) -> list[dict[str, Any]]:
    tier = ("none", "low", "medium", "high")[i % 4]
    call_id = f"bench-{i}"
    return [
        {"v": 1, "type": "routed", "time": at, "call_id": call_id, "endpoint": "/v1/messages",
         "client_model": "claude-opus-4-8", "fields": [], "signal": "output_config.effort",
         "value": tier, "rule": "effort", "strength": tier, "tier": tier,
         "target": f"{tier}-reasoning", "reason": "routed", "pin": None, "routing": True,
         "notes": []},
        {"v": 1, "type": "done", "time": at + 0.3, "call_id": call_id,
         "model_group": f"{tier}-reasoning", "deployment": f"d-{tier}", "status": "ok",
         "stream": True, "latency_ms": 300.0, "ttft_ms": 80.0, "input_tokens": 1200,
         "output_tokens": 150, "cost": 0.0002},
    ]


def _home(folder: Path, records: int) -> Path:
    StateFile.in_home(folder).write(State())
    now = time.time() - records
    with open(folder / EVENTS_NAME, "w") as f:
        for i in range(records // 2):
            for record in _pair(i, now + i):
                f.write(json.dumps(record) + "\n")
    return folder


async def _startup(home: Path) -> dict[str, float]:
    from app.panel.app import ReasoningPanel

    before = _rss_mb()
    start = time.perf_counter()
    app = ReasoningPanel(home, live=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        elapsed = time.perf_counter() - start
        rows = app.query_one("#requests").row_count  # type: ignore[attr-defined]
    return {"startup_s_100k_records": elapsed, "startup_rows": float(rows),
            "startup_rss_growth_mb": _rss_mb() - before}


async def _keep_up(home: Path, rate: int, seconds: float) -> dict[str, float]:
    from app.panel.app import ReasoningPanel

    app = ReasoningPanel(home, live=True)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        start = time.perf_counter()
        i = 10_000_000
        with open(home / EVENTS_NAME, "a") as f:
            while not stop.is_set():
                for record in _pair(i, time.time()):
                    f.write(json.dumps(record) + "\n")
                f.flush()
                written[0] += 2
                i += 1
                pause = start + written[0] / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)

    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.5)
        seen_before = app.model.records_seen
        cpu_before = time.process_time()
        wall_before = time.perf_counter()
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        await asyncio.sleep(seconds)
        stop.set()
        thread.join()
        behind = written[0] - (app.model.records_seen - seen_before)
        cpu = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
        for _ in range(100):  # then: does it catch up?
            if app.model.records_seen - seen_before >= written[0]:
                break
            await asyncio.sleep(0.05)
        caught_up = app.model.records_seen - seen_before >= written[0]
    return {f"records_behind_at_{rate}_per_s": float(behind),
            f"cpu_share_at_{rate}_per_s": cpu,
            f"rss_mb_at_{rate}_per_s": _rss_mb(),
            f"caught_up_at_{rate}_per_s": float(caught_up)}


async def _remap_latency(presses: int) -> dict[str, float]:
    from textual.widgets import DataTable

    from app.demo import demo_stack
    from app.local_stack import DEMO_CONFIG
    from app.panel.app import ReasoningPanel

    delays: list[float] = []
    stale: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, \
            demo_stack(Path(tmp), pace_s=(0.02, 0.05)) as demo:
        app = ReasoningPanel(Path(tmp), proxy_url=demo.proxy.url, config=DEMO_CONFIG)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause(1.0)
            tiers = app.query_one("#tiers", DataTable)
            for n in range(presses):
                row = 3 if n % 2 == 0 else 0  # pin high, then none, ...
                target = ("high-reasoning", "none-reasoning")[n % 2]
                tiers.move_cursor(row=row)
                pressed = time.time()
                await pilot.press("p")  # pins (the next press on the other tier re-pins)
                written = time.time()

                def served_new(target: str = target, pressed: float = pressed) -> list[Any]:
                    return sorted((r for r in app.model.requests.values()
                                   if r.outcome and r.outcome.get("model_group") == target
                                   and r.routed and r.routed["time"] >= pressed),
                                  key=lambda r: r.routed["time"])

                for _ in range(400):
                    if served_new():
                        break
                    await asyncio.sleep(0.01)
                if served_new():
                    delays.append((served_new()[0].outcome["time"] - pressed) * 1000)
                stale.append(sum(1 for r in app.model.requests.values()
                                 if r.routed and r.routed["time"] >= written
                                 and r.routed.get("target") not in (target, None)))
                await pilot.pause(0.3)
    delays.sort()
    return {"remap_ms_p50": delays[len(delays) // 2] if delays else float("nan"),
            "remap_ms_max": delays[-1] if delays else float("nan"),
            "requests_to_old_model_after_write": float(sum(stale))}


def run_panel_bench(as_json: bool) -> dict[str, float]:
    results: dict[str, float] = {}

    def say(message: str) -> None:
        if not as_json:
            print(f"  {message}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        say("start-up on a 100,000-record log ...")
        results.update(asyncio.run(_startup(_home(Path(tmp), 100_000))))
    for rate in (200, 1000, 4000):
        with tempfile.TemporaryDirectory() as tmp:
            say(f"keeping up with {rate} records/s ...")
            results.update(asyncio.run(_keep_up(_home(Path(tmp), 1000), rate, 8.0)))
    say("remap latency with the real proxy ...")
    results.update(asyncio.run(_remap_latency(10)))
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results
