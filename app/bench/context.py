"""Figures for fallbacks and the context guard, printed by ``reasoning-panel bench``.

- the context estimate's cost on a 200k-token Claude Code body (the estimate alone, and the whole
  pre-call hook with a tier limit that makes the guard run), p50/p99 microseconds;
- the estimate's error against real tokenizers on Claude-Code-shaped bodies: tiktoken's
  ``o200k_base`` (GPT-4o/GPT-5 and gpt-oss, the models behind the fast providers whose small
  windows the guard protects) and the Claude tokenizer LiteLLM bundles (Claude 2's: later
  Claude tokenizers are not public);
- the added latency of a fallback hop on the stand-in: a tier whose model answers 429 and falls
  back, against the fallback model asked directly, through the same proxy.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from app.local_stack import PROJECT_ROOT
from app.panel.model import percentile as nearest_rank
from callbacks.core.context import MEDIA_TOKENS, MESSAGE_TOKENS, estimate_tokens
from callbacks.core.state import State, TierTarget
from callbacks.stores.statefile import StateFile

SOURCES = sorted((PROJECT_ROOT / "callbacks").rglob("*.py")) + sorted(
    (PROJECT_ROOT / "app").rglob("*.py"))
PROSE = "\n".join(page.read_text(encoding="utf-8") for page in [
    PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))] if page.exists()
) or "A paragraph of prose. " * 400


def _pct(values: list[float], p: float) -> float:
    value = nearest_rank(values, p)
    return float("nan") if value is None else value


def _paragraphs() -> list[str]:
    return [p.strip() for p in PROSE.split("\n\n") if len(p.strip()) > 80] or [PROSE]


def claude_code_tools(rng: random.Random) -> list[dict[str, Any]]:
    """Tools shaped like Claude Code's: long prose descriptions, JSON schemas."""
    paragraphs = _paragraphs()
    specs = {"Bash": {"command": "string", "timeout": "number", "description": "string"},
             "Read": {"file_path": "string", "offset": "number", "limit": "number"},
             "Edit": {"file_path": "string", "old_string": "string", "new_string": "string",
                      "replace_all": "boolean"},
             "Write": {"file_path": "string", "content": "string"},
             "Grep": {"pattern": "string", "path": "string", "glob": "string",
                      "output_mode": "string", "-i": "boolean", "head_limit": "number"},
             "Glob": {"pattern": "string", "path": "string"},
             "TodoWrite": {"todos": "array"}, "WebFetch": {"url": "string", "prompt": "string"},
             "WebSearch": {"query": "string", "allowed_domains": "array"},
             "Task": {"description": "string", "prompt": "string", "subagent_type": "string"},
             "NotebookEdit": {"notebook_path": "string", "cell_id": "string",
                              "new_source": "string"},
             "ExitPlanMode": {"plan": "string"}}
    tools = []
    for name, fields in specs.items():
        description = "\n\n".join(rng.sample(paragraphs, min(len(paragraphs), rng.randint(1, 6))))
        tools.append({"name": name, "description": description, "input_schema": {
            "type": "object", "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
            "required": list(fields)[:1],
            "properties": {f: {"type": t, "description": rng.choice(paragraphs)[:160]}
                           for f, t in fields.items()}}})
    return tools


def claude_code_body(tokens: int, rng: random.Random) -> dict[str, Any]:
    """A Claude Code request late in a session, of about ``tokens`` input tokens: a system
    prompt, its tools, and turns of prose prompts, thinking, text, tool calls (Read, Bash,
    Edit) and their results (this project's source files, command output)."""
    paragraphs = _paragraphs()
    files = [p for p in SOURCES if p.stat().st_size > 500] or SOURCES
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.328;"},
              {"type": "text", "text": "\n\n".join(rng.sample(paragraphs, min(8, len(paragraphs)))),
               "cache_control": {"type": "ephemeral"}}]
    body: dict[str, Any] = {"model": "claude-opus-4-8", "max_tokens": 32000, "stream": True,
                            "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
                            "system": system, "tools": claude_code_tools(rng), "messages": []}
    messages: list[dict[str, Any]] = body["messages"]
    step = 0
    while True:
        messages.append({"role": "user", "content": [
            {"type": "text", "text": rng.choice(paragraphs)[: rng.randint(60, 600)]}]})
        for _ in range(rng.randint(1, 5)):
            step += 1
            tool_id = f"toolu_01{rng.getrandbits(80):020x}"
            source = rng.choice(files)
            code = source.read_text(encoding="utf-8")
            kind = rng.choice(["Read", "Read", "Bash", "Edit"])
            if kind == "Read":
                call, result = {"file_path": str(source)}, code
            elif kind == "Bash":
                call = {"command": f"uv run pytest -q tests/test_{source.stem}.py",
                        "description": "Run the tests"}
                result = "\n".join(f"tests/test_{source.stem}.py::test_{i} PASSED"
                                   for i in range(rng.randint(5, 60)))
            else:
                start = rng.randrange(max(1, len(code) - 800))
                old = code[start:start + rng.randint(100, 800)]
                call = {"file_path": str(source), "old_string": old,
                        "new_string": old.replace("  ", "    ")}
                result = f"The file {source} has been updated."
            thinking = rng.choice(paragraphs)[: rng.randint(100, 1200)]
            messages.append({"role": "assistant", "content": [
                {"type": "thinking", "thinking": thinking,
                 "signature": "E" + "".join(rng.choices("abcdefABCDEF0123456789+/", k=300))},
                {"type": "text", "text": rng.choice(paragraphs)[:200]},
                {"type": "tool_use", "id": tool_id, "name": kind, "input": call}]})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool_id, "content": result}]})
            if len(json.dumps(body)) > tokens * 4.2:
                messages.append({"role": "assistant", "content": [
                    {"type": "text", "text": rng.choice(paragraphs)}]})
                messages.append({"role": "user", "content": "Go on."})
                return body
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": rng.choice(paragraphs)}]})


def reference_tokens(body: dict[str, Any], count: Callable[[list[str]], int]) -> int:
    """Tokens a model reads of ``body`` by a real tokenizer: every text (system, prompts,
    thinking, tool results), tool calls and tool definitions as JSON, and the same per-message
    and per-image costs as the estimate (they are not the estimate's error)."""
    texts: list[str] = []
    extra = 0
    system = body.get("system")
    texts += [system] if isinstance(system, str) else [b["text"] for b in system or []]
    texts += [json.dumps(tool) for tool in body.get("tools") or []]
    for message in body.get("messages") or []:
        extra += MESSAGE_TOKENS
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            kind = block.get("type")
            if kind in ("text", "thinking"):
                texts.append(block[kind])
            elif kind == "tool_use":
                texts += [block["id"], block["name"], json.dumps(block["input"])]
            elif kind == "tool_result":
                result = block["content"]
                texts += [block["tool_use_id"]] + ([result] if isinstance(result, str) else
                                                   [b.get("text", "") for b in result])
            elif kind in ("image", "document"):
                extra += MEDIA_TOKENS
    return count(texts) + extra


def _tokenizers() -> dict[str, Callable[[list[str]], int]]:
    """The real tokenizers the estimate is checked against (both ship with LiteLLM)."""
    import litellm.litellm_core_utils.default_encoding  # noqa: F401 - points tiktoken at its copy
    import tiktoken

    o200k = tiktoken.get_encoding("o200k_base")
    counters: dict[str, Callable[[list[str]], int]] = {
        "o200k": lambda texts: sum(map(len, o200k.encode_ordinary_batch(texts)))}
    try:
        import litellm
        from tokenizers import Tokenizer

        claude = Tokenizer.from_file(str(Path(litellm.__file__).parent / "litellm_core_utils" /
                                         "tokenizers" / "anthropic_tokenizer.json"))
        counters["claude2"] = lambda texts: sum(
            len(e.ids) for e in claude.encode_batch(texts, add_special_tokens=False))
    except Exception:  # noqa: BLE001 - only o200k then
        pass
    return counters


def measure_estimate_error(bodies: int, seed: int = 7) -> dict[str, float]:
    """Relative error of the estimate ((estimate - tokens) / tokens, in %) on ``bodies``
    Claude-Code-shaped bodies from 2k to 200k tokens, per tokenizer: median, the 5th and 95th
    percentile, and the share of bodies the estimate counts too low."""
    rng = random.Random(seed)
    counters = _tokenizers()
    errors: dict[str, list[float]] = {name: [] for name in counters}
    for i in range(bodies):
        body = claude_code_body(int(2_000 * 100 ** (i / max(1, bodies - 1))), rng)
        estimate = estimate_tokens(body)
        for name, count in counters.items():
            real = reference_tokens(body, count)
            errors[name].append((estimate - real) / real * 100)
    out: dict[str, float] = {"estimate_bodies": float(bodies)}
    for name, values in errors.items():
        out[f"estimate_err_{name}_p50"] = _pct(values, 50)
        out[f"estimate_err_{name}_p5"] = _pct(values, 5)
        out[f"estimate_err_{name}_p95"] = _pct(values, 95)
        out[f"estimate_under_{name}_share"] = sum(v < 0 for v in values) / len(values) * 100
    return out


def measure_estimate_cost(n: int) -> dict[str, float]:
    """The estimate on a 200k-token body, alone and inside the pre-call hook (the tier's limit
    set below the body, so the guard estimates and moves it), in microseconds."""
    from callbacks.model_route_callback import ReasoningRouter

    body = claude_code_body(200_000, random.Random(1))
    alone: list[float] = []
    hooked: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        state_file = StateFile.in_home(Path(home))
        tiers = dict(State().tiers)
        tiers["high"] = TierTarget("high-reasoning", max_input_tokens=100_000)
        state_file.write(replace(State(), tiers=tiers, long_context="long-context"))
        router = ReasoningRouter(state_file, events=False)
        for i in range(n + 20):
            start = time.perf_counter_ns()
            tokens = estimate_tokens(body)
            if i >= 20:
                alone.append((time.perf_counter_ns() - start) / 1000)
            data = dict(body, litellm_metadata={}, litellm_call_id=f"ctx-{i}")
            coro = router.async_pre_call_hook(None, None, data, "anthropic_messages")
            start = time.perf_counter_ns()
            try:
                coro.send(None)  # not a tool continuation: the hook never waits
            except StopIteration:
                pass
            if i >= 20:
                hooked.append((time.perf_counter_ns() - start) / 1000)
        moved = data["litellm_metadata"]["reasoning_panel"].get("context") or {}
        assert moved.get("to") == "long-context", moved  # the bench measures a real move
    return {"estimate_us_p50": _pct(alone, 50), "estimate_us_p99": _pct(alone, 99),
            "context_hook_us_p50": _pct(hooked, 50), "context_hook_us_p99": _pct(hooked, 99),
            "context_body_tokens": float(reference_tokens(body, _tokenizers()["o200k"])),
            "context_body_estimate": float(tokens), "context_body_kb": len(json.dumps(body)) / 1024}


async def _latencies(url: str, key: str, effort: str, n: int, model: str = "claude-opus-4-8"
                     ) -> list[float]:
    body = {"model": model, "max_tokens": 32, "thinking": {"type": "adaptive"},
            "output_config": {"effort": effort}, "messages": [{"role": "user", "content": "hi"}]}
    out = []
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30) as client:
        for _ in range(n):
            start = time.perf_counter()
            response = await client.post("/v1/messages", json=body)
            if response.status_code == 200:
                out.append((time.perf_counter() - start) * 1000)
    return out


def measure_fallback_hop(url: str, key: str, state_file: StateFile, standin_url: str,
                         n: int) -> dict[str, float]:
    """Latency of requests to a tier whose model answers 429 and falls back to ``fast-coder``,
    against the low tier sent to ``fast-coder`` directly (same proxy, same stand-in), in
    alternating blocks. The difference is the hop: the refused call and LiteLLM's fallback."""
    before = state_file.read()
    tiers = dict(before.tiers)
    tiers["medium"] = TierTarget("medium-reasoning", fallbacks=("fast-coder",))
    tiers["low"] = TierTarget("fast-coder")
    state_file.write(replace(before, tiers=tiers))
    httpx.post(f"{standin_url}/_standin/faults", json={"model": "standin-medium",
                                                       "kind": "rate_limit", "retry_after": 1})
    direct: list[float] = []
    hop: list[float] = []
    try:
        asyncio.run(_latencies(url, key, "medium", 5))  # warm up both paths
        asyncio.run(_latencies(url, key, "low", 5))
        for _ in range(max(1, n // 20)):
            direct += asyncio.run(_latencies(url, key, "low", 20))
            hop += asyncio.run(_latencies(url, key, "medium", 20))
    finally:
        httpx.post(f"{standin_url}/_standin/faults", json={"model": "standin-medium", "kind": None})
        state_file.write(before)
    return {"fallback_direct_ms_p50": _pct(direct, 50), "fallback_hop_ms_p50": _pct(hop, 50),
            "fallback_direct_ms_p95": _pct(direct, 95), "fallback_hop_ms_p95": _pct(hop, 95),
            "fallback_added_ms_p50": _pct(hop, 50) - _pct(direct, 50),
            "fallback_served": float(len(hop))}


def measure_standalone_hop(n: int, progress: Callable[[str], None]) -> dict[str, float]:
    """The fallback hop on a stand-in and proxy of its own (``bench --fallbacks``)."""
    from app.local_stack import start_proxy, start_standin
    from callbacks.launcher import saved_master_key

    with tempfile.TemporaryDirectory() as tmp:
        progress("starting the stand-in provider and a proxy ...")
        standin = start_standin()
        try:
            home = Path(tmp) / "home"
            proxy = start_proxy(home, standin_url=standin.url, log_path=Path(tmp) / "proxy.log")
            try:
                progress(f"measuring the fallback hop ({n} requests each way) ...")
                return measure_fallback_hop(proxy.url, saved_master_key(home),
                                            StateFile.in_home(home), standin.url, n)
            finally:
                proxy.stop()
        finally:
            standin.stop()


def measure_context(quick: bool, progress: Callable[[str], None]) -> dict[str, float]:
    """The context estimate's cost and error (in this process)."""
    progress("measuring the context estimate on a 200k-token body ...")
    results = measure_estimate_cost(100 if quick else 500)
    progress("measuring the estimate's error against real tokenizers ...")
    results.update(measure_estimate_error(12 if quick else 40))
    return results


def rows(results: dict[str, float]) -> list[tuple[str, str, str]]:
    """The figures of this module as (name, value, note) lines."""
    out = [
        (f"context estimate on a {results['context_body_tokens'] / 1000:.0f}k-token body "
         f"({results['context_body_kb']:.0f} KB, o200k) p50 / p99",
         f"{results['estimate_us_p50']:.0f} / {results['estimate_us_p99']:.0f} us",
         "no tokenizer run"),
        ("hook cost on that body, guard moving it, p50 / p99",
         f"{results['context_hook_us_p50']:.0f} / {results['context_hook_us_p99']:.0f} us",
         "history fitting included"),
    ]
    for name, label in (("o200k", "o200k_base"), ("claude2", "Claude 2 tokenizer")):
        if f"estimate_err_{name}_p50" in results:
            out.append((f"estimate error vs {label} p50 [p5, p95] "
                        f"({results['estimate_bodies']:.0f} bodies)",
                        f"{results[f'estimate_err_{name}_p50']:+.1f}% "
                        f"[{results[f'estimate_err_{name}_p5']:+.1f}%, "
                        f"{results[f'estimate_err_{name}_p95']:+.1f}%]",
                        f"under in {results[f'estimate_under_{name}_share']:.0f}% of bodies"))
    if "fallback_added_ms_p50" in results:
        out.append(("fallback hop: direct / via a 429 p50 (added)",
                    f"{results['fallback_direct_ms_p50']:.1f} / "
                    f"{results['fallback_hop_ms_p50']:.1f} ms "
                    f"(+{results['fallback_added_ms_p50']:.1f})",
                    f"{results['fallback_served']:.0f} served by the fallback"))
    return out
