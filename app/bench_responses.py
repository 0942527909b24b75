"""The hook's cost on a long Codex history (``POST /v1/responses``), for ``reasoning-panel bench``.

A 200-item ``input`` late in a Codex session: user messages, 50 reasoning items with encrypted
content made by three models, function calls and their outputs, ending in a tool continuation; the
memory knows every item's producer, so the hook holds the loop and fits the input (drops the other
models' reasoning items), with the SQLite memory and the event log on.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.bench import percentile, settle
from callbacks.core.history import ENCRYPTED_PREFIX
from callbacks.core.state import State
from callbacks.stores.statefile import StateFile


def responses_history(items: int = 200, reasoning_items: int = 50) -> dict[str, Any]:
    """A Codex request body whose ``input`` has ``items`` items, ``reasoning_items`` of them
    reasoning (each before a function call), the last ones a function call and its output."""
    history: list[dict[str, Any]] = []
    step = 0
    while len(history) < items - 3:
        if step % 4 == 0:
            history.append({"type": "message", "role": "user",
                            "content": [{"type": "input_text", "text": f"turn {step} " * 40}]})
        if sum(i["type"] == "reasoning" for i in history) < reasoning_items - 1:
            history.append({"type": "reasoning", "id": f"rs_{step:04d}", "summary": [],
                            "encrypted_content": f"gAAAAA{step:04d}" + "x" * 600})
        history += [{"type": "function_call", "id": f"fc_{step:04d}", "call_id": f"call_{step:04d}",
                     "name": "exec_command", "arguments": '{"cmd": "ls src"}'},
                    {"type": "function_call_output", "call_id": f"call_{step:04d}",
                     "output": "file " * 60}]
        step += 1
    history += [{"type": "reasoning", "id": "rs_last", "summary": [],
                 "encrypted_content": "gAAAAAlast" + "x" * 600},
                {"type": "function_call", "id": "fc_last", "call_id": "call_last",
                 "name": "exec_command", "arguments": '{"cmd": "pytest"}'},
                {"type": "function_call_output", "call_id": "call_last", "output": "ok"}]
    return {"model": "gpt-5.5", "input": history, "stream": True, "store": False,
            "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "medium"},
            "tools": [{"type": "function", "name": "exec_command", "parameters": {
                "type": "object", "properties": {"cmd": {"type": "string"}}}}]}


def measure_responses_history(n: int) -> dict[str, float]:
    """p50 / p99 of the hook on :func:`responses_history` (wall and CPU time), in microseconds."""
    from callbacks.model_route_callback import ReasoningRouter
    from callbacks.stores.memory import Producer

    body = responses_history()
    reasoning = [i for i in body["input"] if i["type"] == "reasoning"]
    calls = [i["call_id"] for i in body["input"] if i["type"] == "function_call"]
    samples: list[float] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        state_file = StateFile.in_home(Path(home))
        state_file.write(replace(State(), route_models=("claude-*", "gpt-5.5*")))
        router = ReasoningRouter(state_file)
        groups = [Producer("medium-reasoning", "", "medium"), Producer("high-reasoning", "", "high"),
                  Producer("low-reasoning", "", "low")]
        for i, item in enumerate(reversed(reasoning)):  # three models; the loop's own: the target
            router.memory.remember(groups[i % 3], [ENCRYPTED_PREFIX + item["encrypted_content"]],
                                   [item["id"]])
        router.memory.remember(groups[0], [], calls)
        router.memory.flush()
        settle(state_file)
        for i in range(n + 200):
            data = dict(body, litellm_metadata={}, litellm_call_id=f"responses-{i}")
            coro = router.async_pre_call_hook(None, None, data, "aresponses")
            start, used = time.perf_counter_ns(), time.thread_time_ns()
            try:
                coro.send(None)  # every call id is remembered: the hook never waits
            except StopIteration:
                pass
            if i >= 200:  # warm-up
                samples.append((time.perf_counter_ns() - start) / 1000)
                cpu.append((time.thread_time_ns() - used) / 1000)
        record = data["litellm_metadata"]["reasoning_panel"]
        assert record["history"]["dropped"] > 0, record  # the bench measures real fitting
        if router.events is not None:
            router.events.flush()
    return {"responses_hook_us_p50": percentile(samples, 50),
            "responses_hook_us_p99": percentile(samples, 99),
            "responses_hook_cpu_us_p50": percentile(cpu, 50),
            "responses_hook_cpu_us_p99": percentile(cpu, 99),
            "responses_items": float(len(body["input"])), "responses_reasoning_items": float(len(reasoning))}
