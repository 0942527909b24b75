"""Codex-shaped conversations over ``POST /v1/responses`` that survive tier switches, against the
real proxy (two workers) and the strict stand-in (the Responses API's replay rules).

A client like the Codex CLI replays every output item (encrypted reasoning, function calls) in
``input``; the tiers here map to different OpenAI models, so without fitting the second tier's
model would refuse the first one's reasoning (``invalid_encrypted_content``). What a user would
see is asserted: every turn succeeds on its tier's model, the provider refused nothing, every
continuation carried its own reasoning item, and the records say what was held and dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import openai
import pytest

from callbacks.core.state import State

from .conftest import Proxy, StandIn
from .test_conversations import change, routed

pytestmark = pytest.mark.timeout(300)

EXEC = {"type": "function", "name": "exec_command", "strict": False, "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
    "required": ["cmd"], "additionalProperties": False}}
SESSION = "0199c0de-5e55-7000-8000-00000000c0de"
HEADERS = {"session-id": SESSION, "thread-id": SESSION, "originator": "codex_exec",
           "user-agent": "codex_exec/0.171.0 (Debian 12; x86_64)",
           "x-codex-turn-metadata": '{"agent_name": "/root", "request_kind": "turn"}'}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@dataclass
class Call:
    call_id: str
    group: str
    continuation: bool
    effort: str | None


@dataclass
class Codex:
    """A Codex-like client: ``store: false``, encrypted reasoning replayed, tool loops answered."""

    url: str
    key: str
    stream: bool = True
    items: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def _send(self, effort: str | None) -> tuple[list[Any], str, str]:
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=self.key, max_retries=0)
        body: dict[str, Any] = dict(model="gpt-5.5", input=self.items, tools=[EXEC], store=False,
                                    include=["reasoning.encrypted_content"],
                                    prompt_cache_key=SESSION, extra_headers=HEADERS)
        if effort:
            body["reasoning"] = {"effort": effort, "summary": "auto"}
        raw = client.responses.with_raw_response.create(stream=self.stream, **body)
        if self.stream:
            done = [e.response for e in raw.parse() if e.type == "response.completed"]
            output = done[-1].output
        else:
            output = raw.parse().output
        return output, raw.headers["x-litellm-model-group"], raw.headers["x-litellm-call-id"]

    def turn(self, text: str, effort: str | None, steps: int,
             between: Callable[[int], None] | None = None) -> list[Call]:
        self.items.append(user(f"{text} steps={steps}"))
        made: list[Call] = []
        for k in range(steps + 1):
            output, group, call_id = self._send(effort)
            made.append(Call(call_id, group, continuation=k > 0, effort=effort))
            self.items += [item.model_dump(exclude_none=True) for item in output]
            calls = [item for item in output if item.type == "function_call"]
            if not calls:
                break
            if between:
                between(k)
            self.items += [{"type": "function_call_output", "call_id": c.call_id,
                            "output": f"exit 0, step {k}"} for c in calls]
        self.calls += made
        return made


OPENAI_TIERS = {"none": "gpt-5-mini", "low": "openai-fast", "medium": "openai-reasoner",
                "high": "openai-deep"}


def codex_state() -> State:
    state = replace(State(), route_models=("claude-*", "gpt-5.5*"))
    for tier, group in OPENAI_TIERS.items():
        state = state.with_tier_model(tier, group)  # type: ignore[arg-type]
    return state


@pytest.fixture(autouse=True)
def _fresh(proxy2: Proxy, standin: StandIn) -> None:
    proxy2.state_file.write(codex_state())
    standin.clear()


def assert_provider_accepted_it_whole(standin: StandIn, calls: list[Call]) -> None:
    """One provider call per request, none refused; every reasoning item a native Responses
    target received was its own, and every continuation there began with its own reasoning."""
    received = standin.requests()
    assert [(r["model"], r.get("error")) for r in received if r["rejected"]] == []
    assert len(received) == len(calls), "a hidden retry (or a lost call) between proxy and provider"
    for r, call in zip(received, calls, strict=True):
        if r["api"] != "responses":
            continue
        history = r.get("history") or {}
        assert all(item["signature"] == "own" for item in history.get("thinking", [])), r
        loop = history.get("tool_loop")
        if loop and call.effort not in (None, "none") and r["model"] != "standin-gpt-5-mini":
            assert (loop["first_block"], loop["first_block_signature"]) == ("reasoning", "own"), r


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_codex_tiers_switching_under_one_conversation(proxy2: Proxy, standin: StandIn,
                                                      stream: bool) -> None:
    talk = Codex(proxy2.url, proxy2.key, stream=stream)
    expect: list[str] = []

    talk.turn("read the parser", "high", 2)
    expect += ["openai-deep"] * 3
    # a remap in the middle of a tool loop: the loop stays on the model that made its calls
    talk.turn("now the lexer", "low", 3,
              between=lambda k: k == 0 and change(proxy2, lambda s: s.with_tier_model("low", "openai-coder")))
    expect += ["openai-fast"] * 4
    # the next user message follows the new mapping; a pin mid-loop is held off too
    talk.turn("and the tests", "low", 2,
              between=lambda k: k == 0 and change(proxy2, lambda s: replace(s, pin="high")))
    expect += ["openai-coder"] * 3
    change(proxy2, lambda s: replace(s, pin=None))
    # no effort at all (Codex with no model_reasoning_effort): the models' default, medium
    talk.turn("explain it", None, 1)
    expect += ["openai-reasoner"] * 2
    # effort none: the none tier, no reasoning items, no reasoning parameter
    talk.turn("rename a variable", "none", 1)
    expect += ["gpt-5-mini"] * 2
    # back to a tier whose model made reasoning earlier: its own items kept, others dropped
    talk.turn("last check", "high", 2)
    expect += ["openai-deep"] * 3

    assert [c.group for c in talk.calls] == expect
    assert_provider_accepted_it_whole(standin, talk.calls)

    records = routed(proxy2.home, [c.call_id for c in talk.calls])
    assert all(r["outcome"]["type"] == "done" for r in records.values())
    held = [records[c.call_id] for c in talk.calls if records[c.call_id].get("reason") == "held"]
    assert [(r["held"]["target"], r["held"]["instead_of"]) for r in held] == \
        [("openai-fast", "openai-coder")] * 3 + [("openai-coder", "openai-deep")] * 2
    first = records[talk.calls[0].call_id]
    assert (first["endpoint"], first["signal"], first["value"]) == \
        ("/v1/responses", "reasoning.effort", "high")
    assert (first["session"], first["agent"], first["client"]) == \
        (SESSION, None, "codex_exec/0.171.0")
    default = records[talk.calls[10].call_id]
    assert (default["rule"], default["strength"], default["target"]) == \
        ("responses_default", "medium", "openai-reasoner")
    last = records[talk.calls[-3].call_id]["history"]
    assert last["kept"] > 0 and last["dropped"] > 0 and "other model" in last["why"]
    assert not any(r.get("reasoning_lost") for r in records.values())
    # the none tier: nothing about reasoning reached the provider
    none_calls = [r for r in standin.requests() if r["model"] == "standin-gpt-5-mini"]
    assert len(none_calls) == 2
    for r in none_calls:
        assert "reasoning" not in r["body"] and r["history"]["thinking"] == []
        assert "reasoning.encrypted_content" not in (r["body"].get("include") or [])


def test_a_conversation_on_one_model_is_forwarded_as_it_is(proxy2: Proxy, standin: StandIn) -> None:
    talk = Codex(proxy2.url, proxy2.key, stream=False)
    talk.turn("read it", "low", 2)
    talk.turn("more", "low", 1)
    sent = standin.requests()
    assert [r["model"] for r in sent] == ["standin-openai-fast"] * 5
    # what the provider got is what the client sent: the same items, in the same order
    assert [len(r["body"]["input"]) for r in sent] == [1, 4, 7, 10, 13]
    assert sent[-1]["body"]["input"] == talk.items[:13]
    records = routed(proxy2.home, [c.call_id for c in talk.calls])
    assert all(r["history"]["dropped"] == 0 for r in list(records.values())[1:])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_a_responses_conversation_on_translated_targets(proxy2: Proxy, standin: StandIn,
                                                        stream: bool) -> None:
    """Tiers on an Anthropic model and a chat-completions model (LiteLLM translates the Responses
    call): the providers accept every request; a tool loop on Anthropic keeps its signed thinking
    or, where LiteLLM gives none back to replay, goes on with reasoning off and says so."""
    change(proxy2, lambda s: s.with_tier_model("high", "high-reasoning")
           .with_tier_model("medium", "cerebras-coder"))
    talk = Codex(proxy2.url, proxy2.key, stream=stream)
    talk.turn("read the parser", "low", 1)
    talk.turn("now on claude", "high", 2)
    talk.turn("now on a chat model", "medium", 2)
    talk.turn("back to claude", "high", 1)
    talk.turn("no effort set", None, 0)  # decides as medium: the chat model is told so
    assert [c.group for c in talk.calls] == ["openai-fast"] * 2 + ["high-reasoning"] * 3 + \
        ["cerebras-coder"] * 3 + ["high-reasoning"] * 2 + ["cerebras-coder"]
    received = standin.requests()
    assert [(r["model"], r.get("error")) for r in received if r["rejected"]] == []
    assert len(received) == len(talk.calls)
    records = routed(proxy2.home, [c.call_id for c in talk.calls])
    assert all(r["outcome"]["type"] == "done" for r in records.values())
    assert records[talk.calls[-1].call_id]["effort_set"]["to"] == "medium"
    assert received[-1]["api"] == "chat" and received[-1]["reasoning"]  # it did reason
    for call, r in zip(talk.calls, received, strict=True):
        if r["api"] != "messages" or not call.continuation:
            continue
        loop = r["history"]["tool_loop"]
        thinking = (r["body"].get("thinking") or {}).get("type")
        if thinking in ("enabled", "adaptive"):  # kept on: its own signed block replayed
            assert (loop["first_block"], loop["first_block_signature"]) == ("thinking", "own"), r
        else:  # turned off: the loss is in the record
            assert records[call.call_id].get("reasoning_lost"), records[call.call_id]


def test_a_chain_by_previous_response_id_stays_where_its_history_is(proxy2: Proxy,
                                                                    standin: StandIn) -> None:
    """``store: true`` and ``previous_response_id``: the history lives with the provider that
    stored it, so a chain stays on that model when the effort changes (held, and recorded)."""
    client = openai.OpenAI(base_url=proxy2.url + "/v1", api_key=proxy2.key, max_retries=0)
    first = client.responses.with_raw_response.create(
        model="gpt-5.5", input="read the parser", reasoning={"effort": "high"}, store=True)
    second = client.responses.with_raw_response.create(
        model="gpt-5.5", input="now the lexer", reasoning={"effort": "low"}, store=True,
        previous_response_id=first.parse().id)
    assert [first.headers["x-litellm-model-group"], second.headers["x-litellm-model-group"]] == \
        ["openai-deep", "openai-deep"]
    assert second.parse().output_text.startswith("[standin-openai-deep]")
    assert [r["status"] for r in standin.requests()] == [200, 200]
    record = routed(proxy2.home, [second.headers["x-litellm-call-id"]])[
        second.headers["x-litellm-call-id"]]
    assert record["reason"] == "held" and record["held"]["instead_of"] == "openai-fast"
    assert record["held"]["previous_response"] == first.parse().id
    # a new chain (no previous_response_id) follows the effort again
    third = client.responses.with_raw_response.create(
        model="gpt-5.5", input="something else", reasoning={"effort": "low"}, store=True)
    assert third.headers["x-litellm-model-group"] == "openai-fast"
