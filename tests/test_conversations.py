"""Conversations that survive tier switches, against the real proxy and the strict stand-in.

The stand-in holds replayed history to the Anthropic API's rules (signatures per model, the
tool-loop rule) and makes tool calls when asked (``steps=N``), so a long conversation whose tiers
change under it, including in the middle of tool loops, shows what a real provider would do. What
a user would see is asserted: every call succeeds, the provider got exactly one call per request
(no hidden retry without thinking), thinking stayed on, every continuation carried its own signed
block, and the event records say what was held and what history was dropped.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anthropic
import pytest

from app.local_stack import start_proxy
from callbacks.core.state import State
from callbacks.stores.eventlog import EVENTS_NAME
from callbacks.stores.memory import MEMORY_NAME, SqliteMemory

from .conftest import Proxy, StandIn
from .redis_server import poll
from .test_eventlog import all_records

pytestmark = pytest.mark.timeout(300)

TOOLS = [{"name": "Read", "description": "Read a file",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                           "required": ["path"]}}]
EFFORT_GROUP = {"low": "low-reasoning", "medium": "medium-reasoning", "high": "high-reasoning"}


def _block(block: Any) -> dict[str, Any]:
    """A reply block as a client replays it."""
    kind = block.type
    if kind == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


@dataclass
class Call:
    call_id: str
    group: str
    continuation: bool
    thinking: bool


@dataclass
class Conversation:
    """A Claude-Code-like client: growing history, tool loops answered, one effort per turn."""

    url: str
    key: str
    stream: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def _send(self, effort: str | None) -> tuple[Any, str, str]:
        client = anthropic.Anthropic(base_url=self.url, api_key=self.key, max_retries=0)
        body: dict[str, Any] = {
            "model": "claude-opus-4-8", "max_tokens": 2048, "tools": TOOLS,
            "messages": self.messages,
            "thinking": {"type": "adaptive", "display": "summarized"} if effort else
            {"type": "disabled"},
        }
        if effort:
            body["output_config"] = {"effort": effort}
        if self.stream:
            with client.messages.stream(**body) as stream:
                message = stream.get_final_message()
                headers = stream.response.headers
        else:
            raw = client.messages.with_raw_response.create(**body)
            message, headers = raw.parse(), raw.headers
        return message, headers["x-litellm-model-group"], headers["x-litellm-call-id"]

    def turn(self, text: str, effort: str | None, steps: int,
             between: Callable[[int], None] | None = None) -> list[Call]:
        """One human turn: the text, then the tool loop of ``steps`` steps to its end.
        ``between(k)`` runs after step k's tool_use arrived, before its result is sent."""
        self.messages.append({"role": "user", "content": f"{text} steps={steps}"})
        made: list[Call] = []
        for k in range(steps + 1):
            message, group, call_id = self._send(effort)
            made.append(Call(call_id, group, continuation=k > 0, thinking=effort is not None))
            self.messages.append({"role": "assistant",
                                  "content": [_block(b) for b in message.content]})
            uses = [b for b in message.content if b.type == "tool_use"]
            if message.stop_reason != "tool_use":
                break
            if between:
                between(k)
            self.messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": u.id, "content": f"file {k}"} for u in uses]})
        self.calls += made
        return made


def routed(home: Path, call_ids: list[str], wait: float = 15.0) -> dict[str, dict[str, Any]]:
    """The routed and outcome records of these calls, once all have ended."""
    deadline = time.monotonic() + wait
    while True:
        records = all_records(home / EVENTS_NAME)
        by_id = {r["call_id"]: r for r in records if r.get("type") == "routed"}
        ended = {r["call_id"]: r for r in records if r.get("type") in ("done", "failed")}
        if set(call_ids) <= set(ended) or time.monotonic() > deadline:
            return {c: {**by_id.get(c, {}), "outcome": ended.get(c)} for c in call_ids}
        time.sleep(0.05)


def change(proxy: Proxy, edit: Callable[[State], State]) -> None:
    proxy.state_file.update(edit)


@pytest.fixture(autouse=True)
def _fresh(proxy2: Proxy, standin: StandIn) -> None:
    standin.clear()


def assert_provider_saw_it_whole(standin: StandIn, calls: list[Call]) -> None:
    """One provider call per client request, none refused, thinking on where asked, and every
    continuation to an Anthropic target carrying its own signed block."""
    received = standin.requests()
    assert [r for r in received if r["rejected"]] == []
    assert len(received) == len(calls), "a hidden retry (or a lost call) between proxy and provider"
    for r, call in zip(received, calls, strict=True):  # one conversation: calls in order
        if r["api"] != "messages":
            assert r["reasoning"] or not call.thinking, r  # a chat target got its reasoning
            continue
        loop = (r.get("history") or {}).get("tool_loop")
        thinking = (r["body"].get("thinking") or {}).get("type")
        if call.thinking and r["model"] != "standin-none":
            assert thinking in ("adaptive", "enabled"), r  # asked for, and kept on the way
        if loop and thinking in ("adaptive", "enabled"):
            assert loop["first_block"] == "thinking" and loop["first_block_signature"] == "own", r
        for block in (r.get("history") or {}).get("thinking", []):
            assert block["signature"] == "own", (r["model"], block)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_tiers_switching_under_a_long_conversation(proxy2: Proxy, standin: StandIn,
                                                   stream: bool) -> None:
    talk = Conversation(proxy2.url, proxy2.key, stream=stream)
    expect: list[str] = []

    talk.turn("read the parser", "high", 2)
    expect += ["high-reasoning"] * 3

    # a remap in the middle of a tool loop: the loop stays where it started
    talk.turn("now the lexer", "low", 3,
              between=lambda k: k == 0 and change(proxy2, lambda s: s.with_tier_model("low", "fast-coder")))
    expect += ["low-reasoning"] * 4
    # ... and the next human turn follows the new mapping; a pin mid-loop is held off too
    talk.turn("and the tests", "low", 2,
              between=lambda k: k == 0 and change(proxy2, lambda s: replace(s, pin="high")))
    expect += ["fast-coder"] * 3
    # pinned; routing switched off in the middle of the loop
    talk.turn("explain it", "medium", 2,
              between=lambda k: k == 0 and change(proxy2, lambda s: replace(s, pin=None, routing=False)))
    expect += ["high-reasoning"] * 3
    # routing off: passed through; routing back on mid-loop
    talk.turn("refactor", "medium", 2,
              between=lambda k: k == 0 and change(proxy2, lambda s: replace(s, routing=True)))
    expect += ["claude-opus-4-8"] * 3
    # thinking off: the none tier (no thinking blocks may reach it)
    talk.turn("rename a variable", None, 1)
    expect += ["none-reasoning"] * 2
    # a chat-completions reasoning target for one turn, then Anthropic again
    change(proxy2, lambda s: s.with_tier_model("medium", "cerebras-coder"))
    talk.turn("summarise", "medium", 2)
    expect += ["cerebras-coder"] * 3
    # an OpenAI Responses reasoning target (LiteLLM sends /v1/messages there as Responses)
    change(proxy2, lambda s: s.with_tier_model("low", "openai-reasoner"))
    talk.turn("one more", "low", 2)
    expect += ["openai-reasoner"] * 3
    talk.turn("last check", "high", 2)
    expect += ["high-reasoning"] * 3

    assert [c.group for c in talk.calls] == expect
    assert_provider_saw_it_whole(standin, talk.calls)

    records = routed(proxy2.home, [c.call_id for c in talk.calls])
    held = [records[c.call_id] for c in talk.calls if records[c.call_id].get("reason") == "held"]
    # each switch made mid-loop held the rest of that loop: 3 + 2 + 2 + 2 continuations
    assert [(r["held"]["target"], r["held"]["instead_of"]) for r in held] == \
        [("low-reasoning", "fast-coder")] * 3 + [("fast-coder", "high-reasoning")] * 2 + \
        [("high-reasoning", "claude-opus-4-8")] * 2 + [("claude-opus-4-8", "medium-reasoning")] * 2
    assert all(r["outcome"]["type"] == "done" for r in records.values())
    assert not any(r.get("reasoning_lost") for r in records.values())
    # the last turn's history held other models' blocks: dropped, and the record says why
    last = records[talk.calls[-3].call_id]["history"]
    assert last["dropped"] > 0 and last["kept"] > 0 and "other model" in last["why"]
    # the none tier got no thinking blocks at all
    none_call = records[talk.calls[-11].call_id]
    assert none_call["target"] == "none-reasoning" and none_call["history"]["kept"] == 0
    # done records say what reasoning the provider really got
    high = records[talk.calls[0].call_id]["outcome"]
    assert high["sent"]["thinking.type"] == "adaptive"
    assert high["sent"]["output_config.effort"] == "high"
    assert records[none_call["call_id"]]["outcome"]["sent"] == {"thinking.type": "disabled"}
    assert not any(r["outcome"].get("hidden_retry") for r in records.values())
    # ... and how many thinking blocks it got: each call's count is the provider's own
    received = standin.requests()
    for r, call in zip(received, talk.calls, strict=True):
        if r["api"] == "messages":
            got = sum(b.get("type") in ("thinking", "redacted_thinking") for m in r["body"]["messages"]
                      if m["role"] == "assistant" and isinstance(m["content"], list)
                      for b in m["content"])
            assert records[call.call_id]["outcome"]["sent"].get("thinking_blocks", 0) == got, r
    assert any(r["outcome"]["sent"].get("thinking_blocks") for r in records.values())


def test_a_continuation_that_cannot_be_held_goes_without_thinking_and_says_so(
        proxy2: Proxy, standin: StandIn) -> None:
    """A tool loop begun outside the proxy (unknown tool_use, another model's block): thinking
    off is the only request the provider accepts: sent so, and recorded as a loss."""
    messages = [
        {"role": "user", "content": "fix it steps=2"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "made elsewhere", "signature": "bm90LWEtcmVhbC1zaWduYXR1cmU="},
            {"type": "tool_use", "id": "toolu_made_elsewhere", "name": "Read", "input": {"path": "a"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_made_elsewhere",
                                      "content": "ok"}]},
    ]
    client = anthropic.Anthropic(base_url=proxy2.url, api_key=proxy2.key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=1024, tools=TOOLS, messages=messages,  # type: ignore[arg-type]
        thinking={"type": "adaptive"}, output_config={"effort": "high"})  # type: ignore[call-arg]
    assert raw.headers["x-litellm-model-group"] == "high-reasoning"
    call_id = raw.headers["x-litellm-call-id"]
    record = routed(proxy2.home, [call_id])[call_id]
    assert record["hold"]["tool_use"] == "toolu_made_elsewhere"
    assert "not made through this proxy" in record["hold"]["failed"]
    assert record["reasoning_lost"].startswith("tool continuation without its own thinking block")
    [sent] = standin.requests()
    assert not sent["rejected"]
    assert sent["body"]["thinking"] == {"type": "disabled"}
    assert "output_config" not in sent["body"]


def test_a_none_tier_request_from_claude_code_2_1_328_carries_no_effort(
        proxy2: Proxy, standin: StandIn) -> None:
    change(proxy2, lambda s: replace(s, pin="none"))
    client = anthropic.Anthropic(base_url=proxy2.url, api_key=proxy2.key, max_retries=0)
    messages = [
        {"role": "user", "content": "turn one"},
        {"role": "system", "content": [], "output_config": {"effort": "low"}},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "turn two"},
        {"role": "system", "content": [], "output_config": {"effort": "medium"}},
    ]
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=1024, messages=messages,  # type: ignore[arg-type]
        thinking={"type": "adaptive", "display": "updates"},  # type: ignore[typeddict-unknown-key]
        output_config={"effort": "medium"})  # type: ignore[call-arg]
    assert raw.headers["x-litellm-model-group"] == "none-reasoning"
    [sent] = standin.requests()
    body = sent["body"]
    assert "effort" not in str(body), body
    assert body.get("thinking", {"type": "disabled"}) == {"type": "disabled"}


def test_a_conversation_survives_a_proxy_restart(standin: StandIn, tmp_path: Path) -> None:
    """The memory is kept across a restart: a loop begun before it is still held after it."""
    home = tmp_path / "home"
    service = start_proxy(home, standin_url=standin.url, log_path=tmp_path / "proxy.log")
    proxy = Proxy(service, home)
    standin.clear()
    talk = Conversation(proxy.url, proxy.key)

    def restart(k: int) -> None:
        nonlocal service
        if k == 0:
            service.stop()
            change(proxy, lambda s: s.with_tier_model("low", "fast-coder"))
            service = start_proxy(home, standin_url=standin.url, port=int(proxy.url.rsplit(":", 1)[1]),
                                  log_path=tmp_path / "proxy2.log")
    try:
        talk.turn("read", "low", 2, between=restart)
        talk.turn("again", "low", 1)
    finally:
        service.stop()
    assert [c.group for c in talk.calls] == ["low-reasoning"] * 3 + ["fast-coder"] * 2
    assert_provider_saw_it_whole(standin, talk.calls)


def test_a_stopped_proxy_writes_what_it_had_queued(standin: StandIn, tmp_path: Path) -> None:
    """SIGTERM stops a one-worker proxy normally: what its memory keeps up to a second before
    writing (who made each thinking block) is on disk once it has stopped."""
    home = tmp_path / "home"
    service = start_proxy(home, standin_url=standin.url, log_path=tmp_path / "proxy.log")
    try:
        client = anthropic.Anthropic(base_url=service.url, api_key=Proxy(service, home).key,
                                     max_retries=0)
        reply = client.messages.create(
            model="claude-opus-4-8", max_tokens=64, messages=[{"role": "user", "content": "hi"}],
            thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
            output_config={"effort": "high"})  # type: ignore[call-arg]
        [signature] = [b.signature for b in reply.content if b.type == "thinking"]
        # the call's done record is written: its success hook, which also remembers, has run
        poll(lambda: any(r["type"] == "done" for r in all_records(home / EVENTS_NAME)),
             timeout=10, what="the done record")
    finally:
        service.stop()
    assert service.proc.returncode == 128 + signal.SIGTERM  # it exited; the signal did not kill it
    producer = SqliteMemory(home / MEMORY_NAME).recall([signature], []).signatures[signature]
    assert (producer.group, producer.tier) == ("high-reasoning", "high")


def test_a_hidden_retry_without_thinking_is_recorded(proxy2: Proxy, standin: StandIn) -> None:
    """A block the proxy never saw is kept for an Anthropic target (it is most likely that
    model's own); when the provider refuses it, LiteLLM silently calls again without thinking.
    The client gets its answer, and the done record says the reasoning was lost on the way."""
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "made elsewhere", "signature": "bm90LWEtcmVhbC1zaWduYXR1cmU="},
            {"type": "text", "text": "hi"}]},
        {"role": "user", "content": "and now?"},
    ]
    client = anthropic.Anthropic(base_url=proxy2.url, api_key=proxy2.key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=1024, messages=messages,  # type: ignore[arg-type]
        thinking={"type": "adaptive"}, output_config={"effort": "high"})  # type: ignore[call-arg]
    call_id = raw.headers["x-litellm-call-id"]
    record = routed(proxy2.home, [call_id])[call_id]
    assert record["history"] == {"kept": 1, "dropped": 0, "kept_unknown": 1}
    done = record["outcome"]
    assert done["type"] == "done" and done["hidden_retry"] is True
    assert "thinking.type" not in done["sent"] and "thinking_blocks" not in done["sent"]
    first, second = standin.requests()
    assert first["rejected"] and "Invalid `signature`" in first["error"]["message"]
    assert not second["rejected"] and "thinking" not in second["body"]
