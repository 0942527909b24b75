"""``reasoning-panel bench --statusline``: how long the status line takes, as Claude Code runs it.

Writes a 100,000-record event log (50,000 requests of 40 Claude Code sessions, with subagents,
failures and costs) into a temporary state folder, then runs ``reasoning-panel --home H
statusline`` as a new process with Claude Code's JSON on stdin, over and over, and prints the
wall time (process start to exit) p50 / p95 / max, and its CPU time (steadier than the wall
time on a busy machine).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from app.local_stack import cli_command
from app.panel.model import percentile
from callbacks.stores.eventlog import EVENTS_NAME

RECORDS: Final = 100_000
SESSIONS: Final = 40
RUNS: Final = 40
T0: Final = 1_800_000_000.0
EFFORTS: Final = (("high", "high"), ("medium", "medium"), ("low", "low"), ("xhigh", "high"))


def session_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def synthetic_records(records: int = RECORDS, sessions: int = SESSIONS) -> Iterator[dict[str, Any]]:
    """``records`` records of Claude Code sessions: a ``routed`` and an outcome per request."""
    for i in range(records // 2):
        effort, tier = EFFORTS[i % len(EFFORTS)]
        call_id = f"bench-{i:07d}"
        at = T0 + i * 0.5
        yield {"v": 1, "type": "routed", "time": at, "call_id": call_id,
               "endpoint": "/v1/messages", "client_model": "claude-opus-4-8",
               "fields": [f"output_config.effort={effort}", "thinking.type=adaptive"],
               "signal": "output_config.effort", "value": effort, "rule": "effort",
               "strength": tier, "tier": tier, "target": f"{tier}-reasoning", "reason": "routed",
               "pin": None, "routing": True, "notes": [], "session": session_id(i % sessions),
               "agent": f"a{i:016x}" if i % 5 == 0 else None, "client": "claude-cli/2.1.328"}
        if i % 50 == 7:
            yield {"v": 1, "type": "failed", "time": at + 0.2, "call_id": call_id,
                   "model_group": f"{tier}-reasoning", "deployment": f"standin-{tier}",
                   "status": "error", "error_class": "InternalServerError", "status_code": 500,
                   "message": "upstream failed", "latency_ms": 200.0}
        else:
            yield {"v": 1, "type": "done", "time": at + 0.4, "call_id": call_id,
                   "model_group": f"{tier}-reasoning", "deployment": f"standin-{tier}",
                   "status": "ok", "stream": True, "latency_ms": 400.0, "ttft_ms": 90.0,
                   "input_tokens": 1800 + i % 400, "output_tokens": 300 + i % 90,
                   "cost": 0.0002 + (i % 7) * 0.0001}


def _children_cpu() -> float:
    """CPU seconds (user + system) used by finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_log(home: Path, records: int = RECORDS) -> Path:
    path = home / EVENTS_NAME
    with open(path, "w", encoding="utf-8") as f:
        for record in synthetic_records(records):
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path


def measure_statusline(runs: int = RUNS) -> tuple[dict[str, float], str]:
    """Wall and CPU time of ``runs`` status line runs on a 100,000-record log, a bare
    interpreter start beside each; and the line it printed."""
    with tempfile.TemporaryDirectory(prefix="reasoning-panel-bench-") as folder:
        home = Path(folder)
        log = write_log(home)
        payload = json.dumps({"session_id": session_id(3), "cwd": folder,
                              "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
                              "workspace": {"current_dir": folder, "project_dir": folder},
                              "version": "2.1.328", "cost": {"total_cost_usd": 0.5}})
        cmd = [*cli_command(), "--home", str(home), "statusline"]
        # as Python runs by default: the first run caches the bytecode, the others use it
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        times, cpu, bare, line = [], [], [], ""
        for _ in range(runs + 2):
            start, used = time.perf_counter(), _children_cpu()
            done = subprocess.run(cmd, input=payload, capture_output=True, text=True, check=False,
                                  env=env)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((_children_cpu() - used) * 1000)
            line = done.stdout.strip()
            start = time.perf_counter()  # the interpreter alone, for scale on a busy machine
            subprocess.run([sys.executable, "-c", "pass"], check=False, env=env)
            bare.append((time.perf_counter() - start) * 1000)
        # the first runs cache the bytecode and warm the disk
        times, cpu, bare = times[2:], cpu[2:], bare[2:]
        figures = {"statusline_ms_p50": statistics.median(times),
                   "statusline_ms_p95": percentile(times, 95) or 0.0,
                   "statusline_ms_max": max(times), "statusline_cpu_ms_p50": statistics.median(cpu),
                   "python_start_ms_p50": statistics.median(bare),
                   "python_start_ms_p95": percentile(bare, 95) or 0.0,
                   "statusline_runs": float(runs), "log_records": float(RECORDS),
                   "log_mb": log.stat().st_size / 1e6}
    return figures, line


def run_statusline_bench(as_json: bool = False, runs: int = RUNS) -> int:
    figures, line = measure_statusline(runs)
    if as_json:
        print(json.dumps({**{k: round(v, 2) for k, v in figures.items()}, "runs": runs,
                          "line": line}))
    else:
        print(f"statusline on a {RECORDS:,}-record log ({figures['log_mb']:.0f} MB), {runs} runs, "
              f"wall time per run (a new process each, as Claude Code runs it):")
        print(f"  p50 {figures['statusline_ms_p50']:.1f} ms · p95 "
              f"{figures['statusline_ms_p95']:.1f} ms · max {figures['statusline_ms_max']:.1f} ms")
        print(f"  CPU time (user + system) p50 {figures['statusline_cpu_ms_p50']:.1f} ms; Python "
              f"starting and exiting alone: p50 {figures['python_start_ms_p50']:.1f} / p95 "
              f"{figures['python_start_ms_p95']:.1f} ms wall")
        print(f"  it printed: {line}")
    return 0
