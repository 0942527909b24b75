"""``reasoning-panel bench``: what the callback costs, measured side by side in one run.

- hook cost: the real pre-call hook on Claude-Code-shaped bodies, in this process
  (p50/p99 microseconds per request, state file check included);
- proxy throughput and latency: the stand-in provider and two real LiteLLM proxies on the demo
  config, one without the callback and one with it, loaded in alternating rounds so machine noise
  hits both alike; ``overhead_ratio`` = throughput with / without. Both serve the same
  deployment: the proxy without the callback is asked for ``medium-reasoning`` directly, the one
  with it for ``claude-opus-4-8`` at effort medium, which the callback routes there. (LiteLLM's
  own cost differs from one target model to another; that is not the callback's cost.)
- the context estimate and the fallback hop (:mod:`app.bench.context`; alone with ``--fallbacks``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

from app.bench.context import measure_context, measure_fallback_hop, measure_standalone_hop
from app.bench.context import rows as context_rows
from app.local_stack import DEMO_CONFIG, Service, start_proxy, start_standin
from app.panel.model import percentile as nearest_rank
from callbacks.core.state import State
from callbacks.launcher import saved_master_key
from callbacks.stores.eventlog import EVENTS_NAME, EventLog, read_tail
from callbacks.stores.statefile import StateFile

# Request bodies shaped like Claude Code's (shared/domain/claude-code-requests.md).
TOOLS = [{"name": f"tool_{i}", "description": "A tool", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}}}} for i in range(20)]
# What Claude Code sends with every turn besides the body: its session header (the same id is in
# the body's ``metadata.user_id``) and who it is.
SESSION: Final = "0f4c8a52-6a3e-4d5b-9d0e-2b7e1c9a4f10"
CLAUDE_CODE_HEADERS: Final = {"x-claude-code-session-id": SESSION, "x-app": "cli",
                              "user-agent": "claude-cli/2.1.328 (external, sdk-cli)"}
USER_ID: Final = json.dumps({"device_id": "7" * 64, "account_uuid": "", "session_id": SESSION})
HISTORY = [{"role": "user", "content": "Refactor the parser."},
           {"role": "assistant", "content": [{"type": "text", "text": "Reading it."}]},
           {"role": "user", "content": [{"type": "text", "text": "Go on, think hard."}]}]
BODIES: list[dict[str, Any]] = [
    {"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
     "output_config": {"effort": effort}, "stream": True}
    for effort in ("low", "medium", "high", "xhigh", "max")
] + [
    {"model": "claude-sonnet-4-5-20250929", "thinking": {"type": "enabled", "budget_tokens": b},
     "stream": True} for b in (1024, 8000, 31999)
] + [
    {"model": "claude-opus-4-8", "thinking": {"type": "disabled"},
     "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {}}},
     "context_management": {"edits": [{"type": "clear_thinking_20251015"}]}, "stream": True},
    {"model": "claude-opus-4-8", "output_config": {"effort": "high"}, "stream": True},
]


ROUTED_TARGET = "medium-reasoning"  # where the callback sends the load's effort=medium requests


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank; NaN when there are no values."""
    value = nearest_rank(values, p)
    return float("nan") if value is None else value


def hook_body(i: int, call_id: str) -> dict[str, Any]:
    """The ``i``-th of :data:`BODIES` as the pre-call hook gets a Claude Code turn from LiteLLM:
    with the turn's tools and history, Claude Code's headers and ``metadata.user_id``."""
    return dict(BODIES[i % len(BODIES)], tools=TOOLS, messages=HISTORY,
                metadata={"user_id": USER_ID}, litellm_metadata={}, litellm_call_id=call_id,
                proxy_server_request={"headers": CLAUDE_CODE_HEADERS})


def time_hooks(routers: dict[str, Any], n: int,
               cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Microseconds each router's pre-call hook takes on Claude-Code-shaped bodies: blocks of
    1,000 requests, interleaved between the routers so machine noise hits all alike; the first
    round warms up. ``cpu`` receives the same as this thread's CPU time (what a busy machine's
    preemption does not inflate)."""
    samples: dict[str, list[float]] = {name: [] for name in routers}
    cpu = cpu if cpu is not None else {}
    names = list(routers)
    for block in range(len(names) * (n // 1000 + 1)):
        name = names[block % len(names)]
        hook = routers[name].async_pre_call_hook
        for i in range(1000):
            body = hook_body(i, f"bench-{block}-{i}")
            coro = hook(None, None, body, "anthropic_messages")
            start, used = time.perf_counter_ns(), time.thread_time_ns()
            try:
                coro.send(None)  # the hook never awaits: one step runs it to the end
            except StopIteration:
                pass
            if block >= len(names):
                samples[name].append((time.perf_counter_ns() - start) / 1000)
                cpu.setdefault(name, []).append((time.thread_time_ns() - used) / 1000)
    return samples


def settle(state_file: StateFile) -> None:
    """Wait until the state file is older than the window in which every request compares its
    bytes (a file just written may hide a change: see ``LiveState._racy``), as in a proxy whose
    state nobody is editing."""
    while time.time_ns() - os.stat(state_file.path).st_ctime_ns < 2_100_000_000:
        time.sleep(0.05)


def measure_stops(seconds: float, gap_ns: int = 5_000) -> dict[str, float]:
    """How often, and for how long, the machine stops a busy thread (timer ticks, a virtual
    machine's exits): a thread reads the clock in a loop for ``seconds`` and counts the gaps
    over ``gap_ns``. An operation of D us is hit with a probability of about D times the rate:
    what sets the hook's p99 on a machine that stops it every millisecond."""
    clock = time.perf_counter_ns
    gaps: list[int] = []
    last = start = clock()
    end = start + int(seconds * 1e9)
    while last < end:
        now = clock()
        if now - last > gap_ns:
            gaps.append(now - last)
        last = now
    return {"stops_per_s": len(gaps) / seconds,
            "stop_us_p50": percentile([g / 1000 for g in gaps], 50),
            "stopped_share": sum(gaps) / (last - start)}


def measure_fixed_loop(us: float, n: int) -> dict[str, float]:
    """The p50 and p99 of a fixed pure-Python loop as long as ``us``, timed ``n`` times as the
    hook is: what this machine's stops make of the p99 of any code that long."""
    def spin(k: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(k):
            pass
        return time.perf_counter_ns() - start

    per_pass = statistics.median(spin(10_000) for _ in range(50)) / 10_000
    k = max(1, round(us * 1000 / per_pass))
    for _ in range(3):  # a short loop runs slower a pass than a long one: aim at its median
        k = max(1, round(k * us * 1000 / statistics.median(spin(k) for _ in range(500))))
    samples = [spin(k) / 1000 for _ in range(n)]
    return {"fixed_loop_us_p50": percentile(samples, 50),
            "fixed_loop_us_p99": percentile(samples, 99)}


def measure_hook(n: int) -> dict[str, float]:
    """The pre-call hook's own cost per request, in microseconds, with the event log on (as in
    the proxy), off, and on a disk that takes 200 ms a write, in interleaved blocks."""
    from callbacks.model_route_callback import ReasoningRouter

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        state_file = StateFile.in_home(Path(home))
        state_file.write(State())
        routers = {name: ReasoningRouter(state_file, events=name != "no_events")
                   for name in ("events", "no_events", "slow_disk")}
        slow = routers["slow_disk"].events
        assert isinstance(slow, EventLog)
        slow.path = Path(home) / "slow-events.jsonl"
        slow._write = _slow(slow._write)  # type: ignore[method-assign,assignment]
        settle(state_file)
        cpu: dict[str, list[float]] = {}
        samples = time_hooks(routers, n, cpu)
        for router in routers.values():  # the slow disk's writer may still be writing as the
            router.memory.flush(1.0)     # folder goes: its cleanup ignores what it left
            if router.events is not None and router.events is not slow:
                router.events.flush(5.0)
    return {
        "hook_cpu_us_p50": percentile(cpu["events"], 50),
        "hook_cpu_us_p99": percentile(cpu["events"], 99),
        "hook_us_p50": percentile(samples["events"], 50),
        "hook_us_p99": percentile(samples["events"], 99),
        "hook_us_p50_no_events": percentile(samples["no_events"], 50),
        "hook_us_p99_no_events": percentile(samples["no_events"], 99),
        "hook_us_p99_slow_disk": percentile(samples["slow_disk"], 99),
    }


def long_conversation(messages: int = 200, thinking_blocks: int = 50) -> dict[str, Any]:
    """A Claude Code body late in a session: ``messages`` messages, ``thinking_blocks`` signed
    thinking blocks (on every other assistant turn, the last one included), tool loops, and the
    last message a tool result."""
    turns = messages // 2
    history: list[dict[str, Any]] = []
    for step in range(turns):
        history.append({"role": "user", "content": [{"type": "text", "text": f"turn {step} " * 40}]
                        if step % 3 == 0 else [{"type": "tool_result", "content": "file " * 60,
                                                "tool_use_id": f"toolu_{step - 1:04d}"}]})
        content: list[dict[str, Any]] = []
        if (turns - 1 - step) % 2 == 0 and (turns - 1 - step) // 2 < thinking_blocks:
            content.append({"type": "thinking", "thinking": "reasoning " * 80,
                            "signature": f"E{step:04d}" + "x" * 240})
        content += [{"type": "text", "text": "answer " * 30},
                    {"type": "tool_use", "id": f"toolu_{step:04d}", "name": "tool_1",
                     "input": {"path": f"src/{step}.py"}}]
        history.append({"role": "assistant", "content": content})
    history.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": f"toolu_{turns - 1:04d}", "content": "done"}]})
    return {"model": "claude-opus-4-8", "thinking": {"type": "adaptive"}, "stream": True,
            "output_config": {"effort": "medium"}, "tools": TOOLS, "messages": history}


def time_fitting_hook(router: Any, body: dict[str, Any], call_type: str, n: int
                      ) -> tuple[list[float], list[float]]:
    """Wall and CPU time (us) of ``n`` pre-call hooks on ``body`` after 200 warm-up calls; every
    tool id is remembered, so the hook never waits. Checks it really fitted the history."""
    samples: list[float] = []
    cpu: list[float] = []
    for i in range(n + 200):
        data = dict(body, litellm_metadata={}, litellm_call_id=f"{call_type}-{i}")
        coro = router.async_pre_call_hook(None, None, data, call_type)
        start, used = time.perf_counter_ns(), time.thread_time_ns()
        try:
            coro.send(None)
        except StopIteration:
            pass
        if i >= 200:  # warm-up
            samples.append((time.perf_counter_ns() - start) / 1000)
            cpu.append((time.thread_time_ns() - used) / 1000)
    record = data["litellm_metadata"]["reasoning_panel"]
    assert record["history"]["dropped"] > 0, record  # the bench measures real fitting
    if router.events is not None:
        router.events.flush()
    return samples, cpu


COLD_HEAP: Final = 300_000  # small objects standing in for the proxy's own (LiteLLM's) data
COLD_WALK: Final = 20_000  # of which one request's serving touches, between two hooks


def _read(items: list[dict[str, Any]]) -> int:
    return sum(item["n"] for item in items)


def measure_cold_hook(n: int) -> dict[str, float]:
    """The pre-call hook's CPU time as a loaded proxy makes it: between two of its requests'
    hooks LiteLLM runs about 13 ms of its own code over its own data, and the hook then finds
    little of its code and data in the CPU's caches. Here, before each call, the bench reads
    ``COLD_WALK`` objects picked at random among ``COLD_HEAP`` of its own. (Measured on
    2026-12-04: 220 to 310 us cold against 22 to 28 us warm; inside a loaded proxy the same hook,
    wrapped with the thread's CPU clock, took 207 us.) What the hook costs a loaded proxy is
    this figure, not the warm one."""
    from callbacks.model_route_callback import ReasoningRouter

    rng = random.Random(1)
    heap: list[dict[str, Any]] = [{"n": i, "name": str(i)} for i in range(COLD_HEAP)]
    cpu: list[float] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        state_file = StateFile.in_home(Path(home))
        state_file.write(State())
        router = ReasoningRouter(state_file)
        settle(state_file)
        for i in range(n + 20):
            body = hook_body(i, f"cold-{i}")
            _read(rng.sample(heap, COLD_WALK))  # what LiteLLM's work leaves in the caches
            coro = router.async_pre_call_hook(None, None, body, "anthropic_messages")
            used = time.thread_time_ns()
            try:
                coro.send(None)
            except StopIteration:
                pass
            if i >= 20:  # warm-up: the code specialised, the state read
                cpu.append((time.thread_time_ns() - used) / 1000)
        if router.events is not None:
            router.events.flush(5.0)
    return {"hook_cold_cpu_us_p50": percentile(cpu, 50),
            "hook_cold_cpu_us_p99": percentile(cpu, 99)}


def measure_long_conversation(n: int) -> dict[str, float]:
    """The hook's cost on a long conversation (history fitting, the tool-loop hold, the shared
    SQLite memory, events on), in microseconds."""
    from callbacks.core.history import signatures_in
    from callbacks.model_route_callback import ReasoningRouter
    from callbacks.stores.memory import Producer

    body = long_conversation()
    signatures = signatures_in(body)
    tools = [b["id"] for m in body["messages"] if m["role"] == "assistant"
             for b in m["content"] if b["type"] == "tool_use"]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        state_file = StateFile.in_home(Path(home))
        state_file.write(State())
        router = ReasoningRouter(state_file)
        groups = [Producer("medium-reasoning", "", "medium"), Producer("high-reasoning", "", "high"),
                  Producer("low-reasoning", "", "low")]
        for i, sig in enumerate(reversed(signatures)):  # three models made the history's blocks,
            router.memory.remember(groups[i % 3], [sig], [])  # the loop's last one the target
        router.memory.remember(groups[0], [], tools)
        router.memory.flush()
        settle(state_file)
        samples, cpu = time_fitting_hook(router, body, "anthropic_messages", n)
    return {"long_hook_us_p50": percentile(samples, 50), "long_hook_us_p99": percentile(samples, 99),
            "long_hook_cpu_us_p50": percentile(cpu, 50), "long_hook_cpu_us_p99": percentile(cpu, 99),
            "long_messages": float(len(body["messages"])), "long_thinking_blocks": float(len(signatures))}


def measure_responses_history(n: int) -> dict[str, float]:
    """p50 / p99 of the hook on :func:`responses_history` (wall and CPU time), in microseconds."""
    from app.bench.responses import responses_history
    from callbacks.core.history import ENCRYPTED_PREFIX
    from callbacks.model_route_callback import ReasoningRouter
    from callbacks.stores.memory import Producer

    body = responses_history()
    reasoning = [i for i in body["input"] if i["type"] == "reasoning"]
    calls = [i["call_id"] for i in body["input"] if i["type"] == "function_call"]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        state_file = StateFile.in_home(Path(home))
        state_file.write(State(route_models=("claude-*", "gpt-5.5*")))
        router = ReasoningRouter(state_file)
        groups = [Producer("medium-reasoning", "", "medium"), Producer("high-reasoning", "", "high"),
                  Producer("low-reasoning", "", "low")]
        for i, item in enumerate(reversed(reasoning)):  # three models; the loop's own: the target
            router.memory.remember(groups[i % 3], [ENCRYPTED_PREFIX + item["encrypted_content"]],
                                   [item["id"]])
        router.memory.remember(groups[0], [], calls)
        router.memory.flush()
        settle(state_file)
        samples, cpu = time_fitting_hook(router, body, "aresponses", n)
    return {"responses_hook_us_p50": percentile(samples, 50),
            "responses_hook_us_p99": percentile(samples, 99),
            "responses_hook_cpu_us_p50": percentile(cpu, 50),
            "responses_hook_cpu_us_p99": percentile(cpu, 99),
            "responses_items": float(len(body["input"])), "responses_reasoning_items": float(len(reasoning))}


def _slow(write: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """A disk that takes 200 ms for every write."""
    def slow_write(data: bytes) -> None:
        time.sleep(0.2)
        write(data)
    return slow_write


def event_lag(router: Any, follow_cmd: list[str], rate: int, seconds: float,
              env: dict[str, str] | None = None) -> list[float]:
    """Milliseconds from each record's hook time to ``follow_cmd`` (a ``tail -f --json``
    process) printing it, for ``rate`` requests a second through ``router``'s hook."""
    follower = subprocess.Popen(follow_cmd, stdout=subprocess.PIPE, text=True, env=env)
    delays: list[float] = []
    ready = threading.Event()

    def read() -> None:
        for line in follower.stdout or []:
            record = json.loads(line)
            if record.get("call_id") == "ready":
                ready.set()
            elif record.get("type") == "routed":
                delays.append((time.time() - record["time"]) * 1000)

    threading.Thread(target=read, daemon=True).start()
    body = dict(BODIES[1], messages=HISTORY)
    try:
        while not ready.is_set():  # until the follower reads what is written
            _fire(router, dict(body, litellm_call_id="ready"))
            ready.wait(0.2)
        total = int(rate * seconds)
        start = time.perf_counter()
        for i in range(total):
            _fire(router, dict(body, litellm_call_id=f"paced-{i}"))
            pause = start + (i + 1) / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        deadline = time.monotonic() + 10
        while len(delays) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.terminate()
        follower.wait(10)
    return delays


def measure_events(rate: int, seconds: float) -> dict[str, float]:
    """From the hook firing to the record being read by ``reasoning-panel tail -f`` (a separate
    process), at ``rate`` requests a second."""
    from app.local_stack import cli_command
    from callbacks.model_route_callback import ReasoningRouter

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        state_file = StateFile.in_home(Path(home))
        state_file.write(State())
        router = ReasoningRouter(state_file)
        delays = event_lag(router, [*cli_command(), "--home", home, "tail", "-f", "--json", "-n", "0"],
                           rate, seconds)
    return {"event_ms_p50": percentile(delays, 50), "event_ms_p95": percentile(delays, 95),
            "event_records_seen": float(len(delays))}


def _fire(router: Any, body: dict[str, Any]) -> None:
    coro = router.async_pre_call_hook(None, None, body, "anthropic_messages")
    try:
        coro.send(None)
    except StopIteration:
        pass


def load_body(shape: str, model: str) -> dict[str, Any]:
    """The body the load sends: ``short`` (a Claude Code turn: three messages, 20 tools, effort
    medium) or ``long`` (:func:`long_conversation`: 201 messages, 50 signed thinking blocks, a
    tool continuation), each with Claude Code's ``metadata.user_id`` (its headers are
    :data:`CLAUDE_CODE_HEADERS`). Not streamed, so a round counts whole answers."""
    metadata = {"user_id": USER_ID}
    if shape == "long":
        return dict(long_conversation(), model=model, max_tokens=64, stream=False,
                    metadata=metadata)
    return {"model": model, "max_tokens": 64, "thinking": {"type": "adaptive"}, "tools": TOOLS,
            "output_config": {"effort": "medium"}, "messages": HISTORY, "metadata": metadata}


def seed_memory(home: Path) -> None:
    """What the proxy's memory knows about the long conversation, as if it had served it: its
    thinking blocks made by three tiers' models (so fitting drops some), its tool calls by the
    target's (so the continuation is neither held nor kept waiting)."""
    from callbacks.core.history import signatures_in
    from callbacks.stores.files import FileStore
    from callbacks.stores.memory import Producer

    body = long_conversation()
    memory = FileStore.in_home(home).memory()
    groups = [Producer(f"{t}-reasoning", f"anthropic/standin-{t}", t) for t in
              ("medium", "high", "low")]
    for i, signature in enumerate(reversed(signatures_in(body))):
        memory.remember(groups[i % 3], [signature], [])
    memory.remember(groups[0], [], [b["id"] for m in body["messages"] if m["role"] == "assistant"
                                    for b in m["content"] if b["type"] == "tool_use"])
    memory.flush()


class LoadErrors:
    """The failed answers of a load: how many, and the first one's status and text."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, status: int, text: str) -> None:
        self.count += 1
        self.first = self.first or f"HTTP {status}: {text[:300]}"


async def _load(url: str, key: str, seconds: float, concurrency: int,
                body: dict[str, Any], errors: LoadErrors | None = None) -> list[float]:
    """Send ``body`` for ``seconds`` with ``concurrency`` clients; latencies (s) of successes
    (failed answers go to ``errors``)."""
    latencies: list[float] = []
    errors = errors if errors is not None else LoadErrors()
    content = json.dumps(body).encode()
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={
            "x-api-key": key, "content-type": "application/json", **CLAUDE_CODE_HEADERS}) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.post("/v1/messages", content=content)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors.add(response.status_code, response.text)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def config_without_callback(folder: Path) -> Path:
    return demo_config(folder, "demo-without-callback", [])


def demo_config(folder: Path, name: str, callbacks: list[str]) -> Path:
    """The demo config with these ``callbacks:`` (none: the line removed), as ``name``.yaml."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["litellm_settings"].pop("callbacks", None)
    if callbacks:
        config["litellm_settings"]["callbacks"] = callbacks
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_proxies(pool: ThreadPoolExecutor, configs: dict[str, Path], folder: Path,
                  standin_url: str, services: list[Service],
                  env: Callable[[str], dict[str, str]] | None = None) -> dict[str, Service]:
    """Start one proxy per config at once (half the wait), each in ``folder / name``; every one
    that started is added to ``services`` (for the caller to stop) before a failure is raised.
    ``env``: a proxy's environment, by name. The pool's threads must live until the proxies are
    stopped (a child started with a parent-death signal dies with its thread)."""
    starting = {name: pool.submit(start_proxy, folder / name, config, standin_url=standin_url,
                                  log_path=folder / f"{name}.log",
                                  env=env(name) if env else None)
                for name, config in configs.items()}
    proxies, failures = {}, []
    for name, future in starting.items():
        try:
            proxies[name] = future.result()
            services.append(proxies[name])
        except Exception as exc:  # noqa: BLE001 - raised once all are known
            failures.append(exc)
    if failures:
        raise failures[0]
    return proxies


def _remap(path: Path, model: str) -> tuple[float, float]:
    """Map the medium tier to ``model`` (in the bench's writer process): when the write began
    and when it returned."""
    start = time.time()
    StateFile(path).update(partial(State.with_tier_model, tier="medium", model=model))
    return start, time.time()


async def _reloads(url: str, key: str, state_file: StateFile, changes: int,
                   concurrency: int = 8) -> dict[str, float]:
    """Remap the medium tier back and forth under load. For each write: the time from the
    write to the hook routing the first request that the new model then served (the hook's
    time is in the event log); the load's part of that time (from the write's return to the
    next request reaching the hook, whatever it found); and how many requests sent after the
    write returned, and answered before the next write, still went to the old model."""
    served: list[tuple[float, float, str, str]] = []  # (sent, answered, group, call id)
    stop = asyncio.Event()
    body = {"model": "claude-opus-4-8", "max_tokens": 16, "thinking": {"type": "adaptive"},
            "output_config": {"effort": "medium"}, "messages": HISTORY}
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30) as client:
        async def worker() -> None:
            while not stop.is_set():
                sent = time.time()
                response = await client.post("/v1/messages", json=body)
                served.append((sent, time.time(),
                               response.headers.get("x-litellm-model-group", "?"),
                               response.headers.get("x-litellm-call-id", "")))

        # From a process of its own, as the panel and the CLI write: a thread of this one would
        # wait for the GIL behind the load's clients at each of the write's system calls.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as writer:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(writer, _remap, state_file.path, ROUTED_TARGET)  # start-up
            workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
            writes: list[tuple[float, float, str]] = []
            for n in range(changes):
                await asyncio.sleep(0.25)
                model = ("fast-coder", ROUTED_TARGET)[n % 2]
                start, returned = await loop.run_in_executor(writer, _remap, state_file.path,
                                                             model)
                writes.append((start, returned, model))
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*workers)
    await asyncio.sleep(0.2)  # the event log's writer
    hooked = {r["call_id"]: r["time"] for r in read_tail(state_file.path.with_name(
        EVENTS_NAME))[0] if r.get("type") == "routed"}
    delays, waits, stale = [], [], 0
    hook_times = sorted(hooked.values())
    for i, (start, returned, model) in enumerate(writes):
        until = writes[i + 1][0] if i + 1 < len(writes) else float("inf")
        new = [hooked[call_id] for _, _, group, call_id in served
               if group == model and start <= hooked.get(call_id, 0) < until]
        if new:
            delays.append((min(new) - start) * 1000)
        # the load's part: from the write's return to the next request reaching the hook,
        # whatever the state it found
        after = bisect.bisect_left(hook_times, returned)
        if after < len(hook_times) and hook_times[after] < until:
            waits.append((hook_times[after] - returned) * 1000)
        # sent after the write returned and answered before the next write began: its hook
        # certainly ran under this state
        stale += sum(1 for sent, answered, group, _ in served
                     if returned <= sent and answered < until and group != model)
    took = [(returned - start) * 1000 for start, returned, _ in writes]
    # how long a request of the load waited in LiteLLM before the hook saw it at all
    queued = [(hooked[call_id] - sent) * 1000 for sent, _, _, call_id in served
              if call_id in hooked]
    return {"reload_ms_p50": percentile(delays, 50), "reload_ms_p95": percentile(delays, 95),
            "reload_write_ms_p50": percentile(took, 50), "reload_write_ms_p95": percentile(took, 95),
            "reload_next_hook_ms_p50": percentile(waits, 50),
            "reload_next_hook_ms_p95": percentile(waits, 95),
            "reload_to_hook_ms_p50": percentile(queued, 50),
            "reload_to_hook_ms_p95": percentile(queued, 95),
            "reload_stale_requests": float(stale)}


RELOAD_CLIENTS: Final = 2
"""The reload's load: a coding agent and a subagent sending at once, as a developer's proxy
serves them, below its full throughput. Under the throughput rounds' eight clients the proxy is
saturated: a request waits about 100 ms in LiteLLM before any hook sees it
(``reload_to_hook_ms``), and the first request to meet a new state comes as late as the load's
gaps between requests allow. The reload is measured there too, apart (``reload_saturated_*``)."""


SHAPES = ("short", "long")


def _standin_limit(url: str, model: str) -> None:
    httpx.post(f"{url}/_standin/faults", timeout=10, json={
        "model": model, "rate_limit": {"requests": 10**9, "tokens": 10**12}}).raise_for_status()


def _pgrp(pid: str) -> int | None:
    """The process group of a process, from its ``/proc/.../stat``; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[2])  # after the name: state ppid pgrp
    except (OSError, IndexError, ValueError):
        return None


def _run_s(task: str) -> float:
    """The CPU seconds a thread has run, from the scheduler's own count (``/proc/.../schedstat``,
    in nanoseconds: ``/proc/.../stat`` counts in ticks of 10 ms, 1 % of what a proxy runs in a
    side-by-side round); 0 when it is gone."""
    try:
        with open(f"{task}/schedstat", "rb") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _group(pgid: int) -> list[str]:
    """The live processes of a process group (a proxy and its workers)."""
    return [entry.name for entry in os.scandir("/proc")
            if entry.name.isdigit() and _pgrp(entry.name) == pgid]


def group_cpu_s(pgid: int) -> float:
    """CPU seconds used so far by the live threads of a process group (a proxy and its
    workers): steadier than throughput on a machine others load too."""
    spent = 0.0
    for pid in _group(pgid):
        main, others = thread_cpu_s(int(pid))
        if main == main:  # nan: gone meanwhile
            spent += main + others
    return spent


def thread_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread (the event loop serving requests: LiteLLM, the
    callback's hooks) and of its other threads (the callback's writer, LiteLLM's helpers)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return float("nan"), float("nan")
    main = others = 0.0
    for tid in tids:
        spent = _run_s(f"/proc/{pid}/task/{tid}")
        if tid == str(pid):
            main += spent
        else:
            others += spent
    return main, others


async def _at_once(loads: list[tuple[str, str, dict[str, Any]]], seconds: float,
                   concurrency: int) -> list[list[float]]:
    """Several loads (url, key, body) at the same time: each one's latencies."""
    return list(await asyncio.gather(*(_load(url, key, seconds, concurrency, body)
                                       for url, key, body in loads)))


def pin_group(pgid: int, cpus: set[int]) -> None:
    """Run every thread of a process group (a proxy and its workers) on ``cpus`` only (threads
    started later inherit it)."""
    for pid in _group(pgid):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cpus)


def side_by_side_rounds(rounds: int, seconds: float) -> tuple[int, float]:
    """Three times the rounds, each shorter, for the side-by-side measure. What both proxies
    share in a round (the machine's slow and fast spells) cancels out whatever its length; what
    they do not share comes in whole pauses: a full collection of LiteLLM's heap takes a
    worker about 0.5 s (``gc.callbacks`` in the loaded proxy: about once in 30 s of short
    bodies, once or twice in 5 s of the long conversation). With 7 rounds of 5 s, the rounds
    that held one moved the median (CPU ratio rounds 0.77 to 0.98 on short bodies); with three
    times as many shorter rounds, most hold none and the median stands."""
    return rounds * 3, max(seconds / 2.5, 0.5)


SIDE_PAIRS: Final = 3
"""The pairs of proxy processes the side-by-side rounds are spread over, each pair started
anew (every other one in the other order). Two processes of one program differ by about 1 % for
their whole lives (where their memory landed, their hash seeds): the very same proxy twice, side
by side, four fresh pairs, gave CPU a request 0.986 to 1.001 of each other (2026-12-05), and no
number of rounds from one pair averages that out."""


def measure_side_by_side(proxies: dict[str, tuple[str, str]], groups: dict[str, int],
                         bodies: dict[tuple[str, str], dict[str, Any]], standin_pgid: int,
                         rounds: int, seconds: float, concurrency: int
                         ) -> dict[str, list[float]]:
    """Both proxies loaded at once, every thread of both on the same one CPU, the stand-in and
    this load on the others: each round compares them at the same moment on the same CPU, so
    neither the machine's slow and fast spells nor a slower CPU fall on one of them only. Each
    round's CPU time per request (all threads) and answers, by ``cpu_`` / ``served_`` + name
    + shape suffix. Empty on a machine with one CPU."""
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    cpus = sorted(mine)
    if len(cpus) < 2:
        return {}
    names = list(proxies)
    measured: dict[str, list[float]] = {}
    try:
        for pgid in groups.values():
            pin_group(pgid, {cpus[-1]})
        pin_group(standin_pgid, set(cpus[:-1]))
        os.sched_setaffinity(0, set(cpus[:-1]))
        for shape in SHAPES:
            suffix = "" if shape == "short" else "_long"
            loads = {name: (*proxies[name], bodies[shape, name]) for name in names}
            asyncio.run(_at_once(list(loads.values()), 1.0, concurrency))  # warm up, pinned
            for r in range(rounds):
                # the load started first gets fewer answers (1.6 % in two runs with the same
                # proxy on both sides): each one goes first in every other round, and has its
                # CPU read first
                order = names if r % 2 == 0 else names[::-1]
                used = {name: group_cpu_s(groups[name]) for name in order}
                got = asyncio.run(_at_once([loads[name] for name in order], seconds, concurrency))
                for name, latencies in zip(order, got, strict=True):
                    spent = group_cpu_s(groups[name]) - used[name]
                    measured.setdefault(f"cpu_{name}{suffix}", []).append(
                        spent * 1000 / len(latencies) if latencies else float("nan"))
                    measured.setdefault(f"served_{name}{suffix}", []).append(
                        float(len(latencies)))
    finally:
        for pgid in (*groups.values(), standin_pgid):
            pin_group(pgid, set(cpus))
        os.sched_setaffinity(0, mine)
    return measured


def side_by_side_figures(pairs: list[dict[str, list[float]]]) -> dict[str, float]:
    """The side-by-side ratios over the rounds of every pair (median, interval, spread), and
    the lowest and highest median of a single pair (``_pair_min`` / ``_pair_max``)."""
    figures: dict[str, float] = {}
    pairs = [pair for pair in pairs if pair]
    if not pairs:
        return figures
    for suffix in ("", "_long"):
        for name, top, bottom in (("pinned_cpu_ratio", "cpu_without", "cpu_with"),
                                  ("pinned_overhead_ratio", "served_with", "served_without")):
            key = name + suffix
            figures.update(ratio_figures(key, [v for p in pairs for v in p[top + suffix]],
                                         [v for p in pairs for v in p[bottom + suffix]]))
            each = [ratio_figures(key, p[top + suffix], p[bottom + suffix])[key] for p in pairs]
            figures[key + "_pair_min"], figures[key + "_pair_max"] = min(each), max(each)
    figures["side_pairs"] = float(len(pairs))
    return figures


def start_pair(pool: ThreadPoolExecutor, folder: Path, standin_url: str,
               services: list[Service], first: str, warm_s: float, concurrency: int
               ) -> tuple[dict[str, tuple[str, str]], dict[str, int],
                          dict[tuple[str, str], dict[str, Any]]]:
    """The proxy without the callback and the one with it (``first`` started first), in
    ``folder``, the memory of the one with it seeded and both warmed up ``warm_s`` per body:
    each one's (url, key), process group and bodies by (shape, name). Both are added to
    ``services``."""
    names = [first, "with" if first == "without" else "without"]
    configs = {name: DEMO_CONFIG if name == "with" else config_without_callback(folder)
               for name in names}
    started = start_proxies(pool, configs, folder, standin_url, services)
    seed_memory(folder / "with")
    proxies = {name: (started[name].url, saved_master_key(folder / name))
               for name in ("without", "with")}
    models = {"without": ROUTED_TARGET, "with": "claude-opus-4-8"}
    bodies = {(shape, name): load_body(shape, models[name])
              for shape in SHAPES for name in proxies}
    for (_shape, name), body in bodies.items():  # warm both up
        asyncio.run(_load(*proxies[name], warm_s, concurrency, body))
    return proxies, {name: started[name].proc.pid for name in proxies}, bodies


def another_pair(pool: ThreadPoolExecutor, folder: Path, standin: Service, first: str,
                 rounds: int, seconds: float, concurrency: int,
                 alternating: Callable[[dict[str, tuple[str, str]], dict[str, int],
                                        dict[tuple[str, str], dict[str, Any]]], None]
                 ) -> dict[str, list[float]]:
    """:func:`measure_side_by_side` on a new pair of proxies, ``first`` started first, in
    ``folder``, then ``alternating`` rounds on them; both stopped after."""
    folder.mkdir()
    services: list[Service] = []
    try:
        proxies, groups, bodies = start_pair(pool, folder, standin.url, services, first, 1.0,
                                             concurrency)
        pinned = measure_side_by_side(proxies, groups, bodies, standin.proc.pid, rounds,
                                      seconds, concurrency // 2)
        alternating(proxies, groups, bodies)
        return pinned
    finally:
        for service in reversed(services):
            service.stop()


class Alternating:
    """The alternating rounds, over every pair of proxies: each pair's alike, each round's
    throughput, latencies and CPU per request added up by (shape, name)."""

    def __init__(self, rounds: int, seconds: float, concurrency: int,
                 progress: Callable[[str], None]) -> None:
        self.rounds, self.seconds, self.concurrency = rounds, seconds, concurrency
        self.progress = progress
        keys = [(shape, name) for shape in SHAPES for name in ("without", "with")]
        self.done: dict[tuple[str, str], list[int]] = {key: [] for key in keys}
        self.lat: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
        self.cpu: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
        # the event loop's thread, the other threads (s), requests
        self.split = {key: [0.0, 0.0, 0] for key in keys}
        self.failed = {"without": 0, "with": 0}
        self.ran = 0

    def __call__(self, proxies: dict[str, tuple[str, str]], groups: dict[str, int],
                 bodies: dict[tuple[str, str], dict[str, Any]]) -> None:
        for r in range(self.rounds):
            order = ("without", "with") if r % 2 == 0 else ("with", "without")
            for shape in SHAPES:
                for name in order:
                    self._round(proxies[name], groups[name], bodies[shape, name], shape, name)
            self.ran += 1
            self.progress(f"round {self.ran}: " + ", ".join(
                f"{shape} without {self.done[shape, 'without'][-1] / self.seconds:.0f} req/s, "
                f"with {self.done[shape, 'with'][-1] / self.seconds:.0f} req/s"
                for shape in SHAPES))

    def _round(self, proxy: tuple[str, str], pgid: int, body: dict[str, Any], shape: str,
               name: str) -> None:
        used, threads = group_cpu_s(pgid), thread_cpu_s(pgid)
        errors = LoadErrors()
        got = asyncio.run(_load(*proxy, self.seconds, self.concurrency, body, errors))
        self.failed[name] += errors.count
        if errors.count:
            self.progress(f"  {shape} {name}: {errors.count} failed, the first: {errors.first}")
        used = group_cpu_s(pgid) - used
        after = thread_cpu_s(pgid)
        tally = self.split[shape, name]
        tally[0] += after[0] - threads[0]
        tally[1] += after[1] - threads[1]
        tally[2] += len(got)
        self.cpu[shape, name].append(used * 1000 / len(got) if got else float("nan"))
        self.done[shape, name].append(len(got))
        self.lat[shape, name].extend(got)

    def figures(self) -> dict[str, float]:
        figures = {"rounds": float(self.ran), "round_s": self.seconds,
                   "concurrency": float(self.concurrency),
                   "failed_without": float(self.failed["without"]),
                   "failed_with": float(self.failed["with"])}
        for shape in SHAPES:
            suffix = "" if shape == "short" else "_long"
            for name in ("without", "with"):
                done, lat = self.done[shape, name], self.lat[shape, name]
                figures[f"rps_{name}{suffix}"] = statistics.median(done) / self.seconds
                figures[f"p50_ms_{name}{suffix}"] = percentile(lat, 50) * 1000
                figures[f"p95_ms_{name}{suffix}"] = percentile(lat, 95) * 1000
                figures[f"cpu_ms_per_request_{name}{suffix}"] = statistics.median(
                    self.cpu[shape, name])
                main, others, served = self.split[shape, name]  # over all rounds
                figures[f"main_thread_ms_per_request_{name}{suffix}"] = \
                    main * 1000 / max(served, 1)
                figures[f"other_threads_ms_per_request_{name}{suffix}"] = \
                    others * 1000 / max(served, 1)
            figures.update(ratio_figures(f"overhead_ratio{suffix}", [float(n) for n in self.done[
                shape, "with"]], [float(n) for n in self.done[shape, "without"]]))
            # the same as CPU time per request (without / with): less sensitive to other load
            figures.update(ratio_figures(f"cpu_ratio{suffix}", self.cpu[shape, "without"],
                                         self.cpu[shape, "with"]))
        return figures


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median of ``values`` (seeded: the same rounds give
    the same interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(resamples))
    return medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]


def ratio_figures(name: str, top: list[float], bottom: list[float]) -> dict[str, float]:
    """The median of the per-round ratios ``top / bottom``, their spread, and from five rounds
    on, a 95 % interval of that median."""
    ratios = [t / b for t, b in zip(top, bottom, strict=True) if b and t == t and b == b]
    if not ratios:
        return {name: float("nan")}
    figures = {name: statistics.median(ratios), f"{name}_min": min(ratios),
               f"{name}_max": max(ratios), f"{name}_rounds_stdev": statistics.pstdev(ratios)}
    if len(ratios) >= 5:
        figures[f"{name}_ci_low"], figures[f"{name}_ci_high"] = median_interval(ratios)
    return figures


PROBE: Final = "app.bench.probe.probe"
CALLBACK: Final = "callbacks.model_route_callback.proxy_handler_instance"


def measure_functions(progress: Callable[[str], None]) -> dict[str, float]:
    """The distinct Python functions a proxy's event loop runs for a short request, the
    callback's and the whole proxy's, with and without the callback (:mod:`app.bench.probe`, in
    both proxies: one request at a time). A function run by a loaded proxy is read back into the
    CPU's caches at each request, so the callback's share of them is its share of the cost."""
    services: list[Service] = []
    pool = ThreadPoolExecutor(2)
    counts: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            progress("counting the functions a request runs, with and without the callback ...")
            standin = start_standin()
            services.append(standin)
            configs = {"without": demo_config(folder, "probe-without", [PROBE]),
                       "with": demo_config(folder, "probe-with", [CALLBACK, PROBE])}
            proxies = start_proxies(pool, configs, folder, standin.url, services, lambda name: dict(
                os.environ, REASONING_PANEL_PROBE_OUT=str(folder / f"{name}.json")))
            for name, model in (("without", ROUTED_TARGET), ("with", "claude-opus-4-8")):
                out, body = folder / f"{name}.json", load_body("short", model)
                deadline = time.monotonic() + 60
                while not out.exists() and time.monotonic() < deadline:
                    asyncio.run(_load(proxies[name].url, saved_master_key(folder / name), 0.5, 1,
                                      body))
                if not out.exists():
                    raise RuntimeError(f"the probe in the proxy {name} the callback counted no "
                                       f"functions within 60 s; its log: "
                                       f"{proxies[name].log_text()[-2000:]}")
                counts[name] = json.loads(out.read_text())
            progress("timing the callback's hooks inside a loaded proxy ...")
            times = time_hooks_loaded(proxies["with"], saved_master_key(folder / "with"),
                                      folder / "with.json.hooks", load_body("short",
                                                                            "claude-opus-4-8"))
        finally:
            for service in reversed(services):
                service.stop()
            pool.shutdown()
    with_, without = counts["with"]["functions"], counts["without"]["functions"]
    each, each_without = counts["with"]["per_request"], counts["without"]["per_request"]
    return {**times, "functions_span": float(counts["with"]["requests"]),
            "functions_callback": float(with_.get("callbacks", 0)),
            "functions_callback_per_request": float(each.get("callbacks", 0)),
            "functions_with_per_request": float(sum(each.values())),
            "functions_without_per_request": float(sum(each_without.values())),
            "functions_callback_per_request_pct": each.get("callbacks", 0)
            / max(sum(each.values()), 1) * 100,
            "functions_with": float(sum(with_.values())),
            "functions_without": float(sum(without.values())),
            "functions_litellm_with": float(with_.get("litellm", 0)),
            "functions_litellm_without": float(without.get("litellm", 0)),
            "functions_callback_pct": with_.get("callbacks", 0) / max(sum(with_.values()), 1)
            * 100}


HOOK_LOAD_S: Final = 6.0  # the load the hooks are timed under: seconds
HOOK_LOAD_CLIENTS: Final = 4  # and concurrent clients (the proxy busy, not queueing long)


def time_hooks_loaded(proxy: Service, key: str, times: Path, body: dict[str, Any]
                      ) -> dict[str, float]:
    """The CPU time of each of the callback's hooks a request, inside a proxy under load, and
    their sum's share of the CPU time the proxy's event loop thread takes a request
    (:mod:`app.bench.probe` times them there)."""
    deadline = time.monotonic() + 60
    while not times.exists() and time.monotonic() < deadline:  # the probe's first write
        asyncio.run(_load(proxy.url, key, 0.5, HOOK_LOAD_CLIENTS, body))
    if not times.exists():
        raise RuntimeError(f"the probe timed no hook within 60 s; the proxy's log: "
                           f"{proxy.log_text()[-2000:]}")
    before = json.loads(times.read_text())
    asyncio.run(_load(proxy.url, key, HOOK_LOAD_S, HOOK_LOAD_CLIENTS, body))
    after = json.loads(times.read_text())
    answers = after["answers"] - before["answers"]
    if answers <= 0:
        raise RuntimeError("the probe timed no request under load")
    figures = {}
    for hook, name in (("async_pre_call_hook", "pre_call"),
                       ("async_pre_call_deployment_hook", "deployment"),
                       ("async_log_success_event", "success")):
        figures[f"hook_loaded_{name}_us"] = (after["hooks"][hook][1]
                                             - before["hooks"][hook][1]) / answers / 1000
    loop_us = (after["loop_ns"] - before["loop_ns"]) / answers / 1000
    figures["hook_loaded_us"] = sum(figures.values())
    figures["loop_loaded_ms_per_request"] = loop_us / 1000
    figures["hook_loaded_pct"] = figures["hook_loaded_us"] / loop_us * 100
    return figures


def measure_proxy(rounds: int, seconds: float, concurrency: int,
                  progress: Callable[[str], None], reloads: int = 20,
                  hops: int = 0, pairs: int = SIDE_PAIRS) -> dict[str, float]:
    """Throughput and latency of the proxy without and with the callback, in alternating
    rounds, for short and for long bodies; and both side by side on one CPU. Both are spread
    over ``pairs`` pairs of proxies: ``rounds`` alternating rounds rounded up to as many on
    each pair (7 over 3: 9), so a pair's own difference (:data:`SIDE_PAIRS`) falls on no figure
    whole."""
    services: list[Service] = []
    side_rounds, side_s = side_by_side_rounds(rounds, seconds)
    each = max(side_rounds // pairs, 1)  # rounds a pair
    alternating = Alternating(max(-(-rounds // pairs), 1), seconds, concurrency, progress)
    pool = ThreadPoolExecutor(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            progress("starting the stand-in provider and two proxies ...")
            standin = start_standin()
            services.append(standin)
            # the stand-in's default rate limits (tokens a minute) would refuse the long
            # conversation's load: limits far above it, so both proxies are only served
            for model in ("standin-medium", "standin-fast-coder"):
                _standin_limit(standin.url, model)
            proxies, groups, bodies = start_pair(pool, folder, standin.url, services, "without",
                                                 min(1.0, seconds), concurrency)
            alternating(proxies, groups, bodies)
            progress(f"side by side: both proxies loaded at once on one CPU, {each} rounds of "
                     f"{side_s:.1f} s per body, on {pairs} pairs of proxies ...")
            pinned = [measure_side_by_side(proxies, groups, bodies, standin.proc.pid, each,
                                           side_s, concurrency // 2)]
            state_file = StateFile.in_home(folder / "with")
            progress(f"measuring reload latency ({reloads} state changes, {RELOAD_CLIENTS} "
                     f"clients) ...")
            figures = asyncio.run(_reloads(*proxies["with"], state_file, reloads,
                                           RELOAD_CLIENTS))
            progress(f"measuring reload latency ({reloads} state changes, {concurrency} "
                     f"clients: the proxy saturated) ...")
            saturated = asyncio.run(_reloads(*proxies["with"], state_file, reloads, concurrency))
            figures.update({k.replace("reload_", "reload_saturated_", 1): v
                            for k, v in saturated.items()})
            if hops:
                progress(f"measuring the fallback hop ({hops} requests each way) ...")
                figures.update(measure_fallback_hop(*proxies["with"], StateFile.in_home(
                    folder / "with"), standin.url, hops))
            for pair in range(1, pairs):
                progress(f"pair {pair + 1} of {pairs}: side by side, then alternating ...")
                pinned.append(another_pair(pool, folder / f"pair{pair}",
                                           standin, ("with", "without")[pair % 2 == 0], each,
                                           side_s, concurrency, alternating))
        finally:
            for service in reversed(services):
                service.stop()
            pool.shutdown()
    figures.update(side_by_side_figures(pinned))
    figures.update(alternating.figures())
    figures.update(side_rounds=float(each * pairs), side_round_s=side_s)
    return figures


def run_bench(quick: bool, as_json: bool, fallbacks_only: bool = False) -> int:
    def progress(message: str) -> None:
        if not as_json:
            print(f"  {message}", file=sys.stderr, flush=True)

    if fallbacks_only:  # the context guard's and the fallback hop's figures alone
        figures = measure_context(quick, progress)
        figures.update(measure_standalone_hop(40 if quick else 200, progress))
        _print(figures, context_rows(figures), as_json)
        return 0

    from app.bench.statusline import measure_statusline

    results: dict[str, float] = {"unix_time": time.time(), "cpus": float(os.cpu_count() or 0),
                                 "load_1m_before": os.getloadavg()[0]}
    progress("measuring the hook in-process ...")
    results.update(measure_stops(1.0))
    results.update(measure_hook(3_000 if quick else 20_000))
    results.update(measure_fixed_loop(results["hook_us_p50"], 3_000 if quick else 20_000))
    progress("measuring the hook with the CPU's caches cold, as in a loaded proxy ...")
    results.update(measure_cold_hook(60 if quick else 400))
    progress("measuring the hook on a long conversation (200 messages, 50 thinking blocks) ...")
    results.update(measure_long_conversation(500 if quick else 3_000))
    progress("measuring the hook on a 200-item Codex history (/v1/responses) ...")
    results.update(measure_responses_history(500 if quick else 3_000))
    progress("measuring event latency (hook -> `tail -f`) at 100 requests/s ...")
    results.update(measure_events(rate=100, seconds=3 if quick else 15))
    rounds, seconds = (3, 0.5) if quick else (7, 5.0)
    results.update(measure_context(quick, progress))
    results.update(measure_proxy(rounds, seconds, concurrency=8, progress=progress,
                                 reloads=10 if quick else 30, hops=40 if quick else 200,
                                 pairs=2 if quick else SIDE_PAIRS))
    results.update(measure_functions(progress))
    progress("measuring the status line on a 100,000-record log ...")
    results.update(measure_statusline(10 if quick else 40)[0])
    results["load_1m_after"] = os.getloadavg()[0]
    cold_share = results["hook_cold_cpu_us_p50"] / 1000 / results.get(  # us / ms, as a %
        "main_thread_ms_per_request_without", float("nan")) * 100
    rows = [
        ("run", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results["unix_time"])),
         f"{results['cpus']:.0f} CPUs, load average (1 min) {results['load_1m_before']:.2f} before,"
         f" {results['load_1m_after']:.2f} after"),
        ("hook cost p50 / p99", f"{results['hook_us_p50']:.1f} / {results['hook_us_p99']:.1f} us",
         f"target p99 <= 100 us; CPU time p50 / p99 {results['hook_cpu_us_p50']:.1f} / "
         f"{results['hook_cpu_us_p99']:.1f} us"),
        ("the machine stops a busy thread",
         f"{results['stops_per_s']:.0f} times a second, {results['stop_us_p50']:.1f} us each",
         f"{results['stopped_share'] * 100:.1f} % of the time: an operation of D us is hit with"
         f" a probability of D x {results['stops_per_s'] / 1e6:.4f}"),
        ("a fixed loop as long as the hook's p50, p50 / p99",
         f"{results['fixed_loop_us_p50']:.1f} / {results['fixed_loop_us_p99']:.1f} us",
         "the same code every time: the p99 this machine gives anything that long"),
        ("hook CPU time, caches cold as in a loaded proxy, p50 / p99",
         f"{results['hook_cold_cpu_us_p50']:.1f} / {results['hook_cold_cpu_us_p99']:.1f} us",
         f"what it costs a loaded proxy: {cold_share:.1f} % of the event loop's CPU a short"
         " request takes without the callback"),
        ("functions a short request runs in the proxy: the callback's / all",
         f"{results['functions_callback_per_request']:.1f} / "
         f"{results['functions_with_per_request']:.0f} "
         f"({results['functions_callback_per_request_pct']:.1f} %) a request; "
         f"{results['functions_callback']:.0f} / {results['functions_with']:.0f} "
         f"({results['functions_callback_pct']:.1f} %) over {results['functions_span']:.0f} requests",
         f"without the callback {results['functions_without_per_request']:.0f} a request, "
         f"{results['functions_without']:.0f} over {results['functions_span']:.0f}; LiteLLM's own "
         f"{results['functions_litellm_with']:.0f} with, {results['functions_litellm_without']:.0f}"
         " without. A loaded proxy reads each one back into the CPU's caches"),
        ("the callback's hooks in a loaded proxy, CPU a request: pre-call / deployment / "
         "success",
         f"{results['hook_loaded_pre_call_us']:.1f} / {results['hook_loaded_deployment_us']:.1f}"
         f" / {results['hook_loaded_success_us']:.1f} us, {results['hook_loaded_us']:.1f} in all",
         f"{results['hook_loaded_pct']:.1f} % of the {results['loop_loaded_ms_per_request']:.2f}"
         f" ms the proxy's event loop takes a request ({HOOK_LOAD_CLIENTS} clients; the "
         "callback's writer threads come on top)"),
        ("hook cost without events p50 / p99",
         f"{results['hook_us_p50_no_events']:.1f} / {results['hook_us_p99_no_events']:.1f} us", ""),
        ("hook cost p99, disk taking 200 ms a write", f"{results['hook_us_p99_slow_disk']:.1f} us",
         "writes never block the hook"),
        (f"hook cost on a long conversation ({results['long_messages']:.0f} messages, "
         f"{results['long_thinking_blocks']:.0f} thinking blocks) p50 / p99",
         f"{results['long_hook_us_p50']:.1f} / {results['long_hook_us_p99']:.1f} us",
         f"target p99 <= 500 us; CPU time p50 / p99 {results['long_hook_cpu_us_p50']:.1f} / "
         f"{results['long_hook_cpu_us_p99']:.1f} us"),
        (f"hook cost on a Codex history ({results['responses_items']:.0f} Responses items, "
         f"{results['responses_reasoning_items']:.0f} reasoning items) p50 / p99",
         f"{results['responses_hook_us_p50']:.1f} / {results['responses_hook_us_p99']:.1f} us",
         f"target p99 <= 500 us; CPU time p50 / p99 {results['responses_hook_cpu_us_p50']:.1f} / "
         f"{results['responses_hook_cpu_us_p99']:.1f} us"),
        ("event latency p50 / p95 (100 req/s)",
         f"{results['event_ms_p50']:.1f} / {results['event_ms_p95']:.1f} ms", "target p95 <= 100 ms"),
        (f"proxy load: {results['concurrency']:.0f} concurrent clients, {results['rounds']:.0f}"
         f" alternating rounds of {results['round_s']:.1f} s per body", "", ""),
        *[row for suffix, label in (("", "short bodies"), ("_long", "long conversation"))
          for row in (
              (f"throughput without / with ({label}, median round)",
               f"{results['rps_without' + suffix]:.1f} / {results['rps_with' + suffix]:.1f} req/s",
               ""),
              (f"overhead_ratio{suffix} ({label})",
               _ratio_text(results, "overhead_ratio" + suffix), "target >= 0.98"),
              (f"proxy CPU per request without / with ({label})",
               f"{results['cpu_ms_per_request_without' + suffix]:.2f} / "
               f"{results['cpu_ms_per_request_with' + suffix]:.2f} ms",
               f"cpu_ratio{suffix} {_ratio_text(results, 'cpu_ratio' + suffix)}"),
              (f"side by side on one CPU ({label}): throughput, CPU per request with / without",
               f"{_ratio_text(results, 'pinned_overhead_ratio' + suffix)}; "
               f"{_ratio_text(results, 'pinned_cpu_ratio' + suffix)}",
               f"both loaded at once, each with half the clients: the same moment, the same "
               f"CPU ({results['side_rounds']:.0f} rounds of {results['side_round_s']:.1f} s "
               f"over {results.get('side_pairs', float('nan')):.0f} pairs of proxies; CPU, one "
               f"pair's median: "
               f"{results.get('pinned_cpu_ratio' + suffix + '_pair_min', float('nan')):.3f} to "
               f"{results.get('pinned_cpu_ratio' + suffix + '_pair_max', float('nan')):.3f})"),
              (f"of which the event loop's thread / the other threads ({label})",
               f"{results['main_thread_ms_per_request_without' + suffix]:.2f} / "
               f"{results['main_thread_ms_per_request_with' + suffix]:.2f} ms; "
               f"{results['other_threads_ms_per_request_without' + suffix]:.2f} / "
               f"{results['other_threads_ms_per_request_with' + suffix]:.2f} ms",
               "without / with, over all rounds"),
              (f"latency without / with p50 ({label})",
               f"{results['p50_ms_without' + suffix]:.1f} / {results['p50_ms_with' + suffix]:.1f} ms",
               ""))],
        *[row for prefix, label in (("reload_", f"{RELOAD_CLIENTS} clients"), (
            "reload_saturated_", f"{results['concurrency']:.0f} clients, the proxy saturated"))
          for row in (
              (f"reload_ms p50 / p95 ({label}: write -> hook routes to the new model)",
               f"{results[prefix + 'ms_p50']:.1f} / {results[prefix + 'ms_p95']:.1f} ms",
               "target p95 <= 50 ms" if prefix == "reload_" else ""),
              ("of which the write itself, p50 / p95",
               f"{results[prefix + 'write_ms_p50']:.1f} / {results[prefix + 'write_ms_p95']:.1f}"
               " ms", ""),
              ("the write's return -> the next request's hook, p50 / p95",
               f"{results[prefix + 'next_hook_ms_p50']:.1f} / "
               f"{results[prefix + 'next_hook_ms_p95']:.1f} ms",
               "the load's own gaps between requests: no state to wait for"),
              ("a request's wait in LiteLLM before the hook, p50 / p95",
               f"{results[prefix + 'to_hook_ms_p50']:.1f} / "
               f"{results[prefix + 'to_hook_ms_p95']:.1f} ms", "sent -> the hook sees it"),
              ("requests to the old model after the write returned",
               f"{results[prefix + 'stale_requests']:.0f}", "target 0"))],
        ("statusline wall p50 / p95 (100,000-record log)",
         f"{results['statusline_ms_p50']:.1f} / {results['statusline_ms_p95']:.1f} ms",
         f"target p95 <= 100 ms; a bare interpreter start p50 / p95 "
         f"{results['python_start_ms_p50']:.1f} / {results['python_start_ms_p95']:.1f} ms"),
        *context_rows(results),
    ]
    _print(results, rows, as_json)
    return 0


def _ratio_text(results: dict[str, float], key: str) -> str:
    """A ratio's median, the 95 % interval of that median and the spread of its rounds (nan:
    not measured on this machine)."""
    def get(name: str) -> float:
        return results.get(name, float("nan"))
    return (f"{get(key):.3f} (95 % CI {get(key + '_ci_low'):.3f} to {get(key + '_ci_high'):.3f};"
            f" rounds {get(key + '_min'):.3f} to {get(key + '_max'):.3f})")


def _print(results: dict[str, float], rows: list[tuple[str, str, str]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: round(v, 3) for k, v in results.items()}))
        return
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<34} {target}")
