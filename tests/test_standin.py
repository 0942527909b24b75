"""The stand-in provider as strict as a real one: the Anthropic API's history rules with their
official error texts, reasoning and tool calls in each API's shape, faults on purpose, and what
it records for tests. Most tests talk to the app in process; the last ones go through a real
proxy with the official SDKs, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anthropic
import openai
import pytest
from starlette.testclient import TestClient

from app.standin.rules import (
    EXPECTED_THINKING,
    count_input_tokens,
    encrypted_by,
    redacted_data,
    sign,
    verifies,
)
from app.standin.server import StandIn as StandInApp

from .conftest import Proxy, StandIn

pytestmark = pytest.mark.timeout(180)

CODEX: Final = shutil.which("codex")

TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["path", "limit"]}}]
ADAPTIVE = {"type": "adaptive"}
EXPECTED_THINKING_TEXT = (
    "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please "
    "consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking")


@pytest.fixture
def app() -> Iterator[TestClient]:
    with TestClient(StandInApp(strict=True).app()) as client:
        yield client


def messages_body(messages: list[dict[str, Any]], model: str = "m-high", **extra: Any
                  ) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1024, "thinking": ADAPTIVE,
            "output_config": {"effort": "high"}, "messages": messages, **extra}


def thought(model: str, text: str = "I should read it.") -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": sign(model, text)}


def loop(first: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tool continuation whose assistant message holds ``first`` then a tool_use."""
    return [{"role": "user", "content": "read it"},
            {"role": "assistant", "content": [*first, {"type": "tool_use", "id": "toolu_1",
                                                       "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "file"}]}]


def error_of(response: Any) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


# --- signatures ---------------------------------------------------------------------------------

def test_signatures_are_per_model_and_per_text_and_look_real() -> None:
    signature = sign("m-high", "text")
    assert signature == sign("m-high", "text")  # deterministic
    assert signature != sign("m-low", "text") and signature != sign("m-high", "text!")
    assert signature.startswith("E") and len(signature) > 200
    block = {"type": "thinking", "thinking": "text", "signature": signature}
    assert verifies("m-high", block) and not verifies("m-low", block)
    assert not verifies("m-high", {**block, "thinking": "changed"})
    data = redacted_data("m-high", "seed")
    assert verifies("m-high", {"type": "redacted_thinking", "data": data})
    assert not verifies("m-low", {"type": "redacted_thinking", "data": data})


# --- strict Anthropic rules, with the official texts ----------------------------------------------

def test_own_history_is_accepted_and_recorded_as_own(app: TestClient) -> None:
    redacted = {"type": "redacted_thinking", "data": redacted_data("m-high", "x")}
    response = app.post("/v1/messages", json=messages_body(loop([thought("m-high"), redacted])))
    assert response.status_code == 200, response.text
    [record] = app.get("/_standin/requests").json()
    assert record["status"] == 200 and not record["rejected"] and record["error"] is None
    assert [b["signature"] for b in record["history"]["thinking"]] == ["own", "own"]
    assert record["history"]["tool_loop"]["first_block"] == "thinking"
    assert record["history"]["tool_loop"]["first_block_signature"] == "own"


@pytest.mark.parametrize("block,message", [
    pytest.param({"type": "thinking", "thinking": "t"},
                 "messages.1.content.0.thinking.signature: Field required", id="missing"),
    pytest.param({"type": "thinking", "thinking": "t", "signature": None},
                 "messages.1.content.0.thinking.signature.str: Input should be a valid string",
                 id="null"),
    pytest.param(thought("m-low"), "messages.1.content.0: Invalid `signature` in `thinking` block",
                 id="another-models"),
    pytest.param({"type": "thinking", "thinking": "t", "signature": ""},
                 "messages.1.content.0: Invalid `signature` in `thinking` block", id="empty"),
    pytest.param({"type": "thinking", "thinking": "t", "signature": "bm90LWEtc2lnbmF0dXJl"},
                 "messages.1.content.0: Invalid `signature` in `thinking` block", id="made-up"),
    pytest.param({"type": "thinking", "thinking": "t",
                  "signature": "litellm_encrypted_reasoning:gAAAAAabc"},
                 "messages.1.content.0: Invalid `signature` in `thinking` block",
                 id="litellm-encrypted"),
    pytest.param({**thought("m-high"), "thinking": "edited"},
                 "messages.1.content.0: Invalid `signature` in `thinking` block", id="edited-text"),
    pytest.param({"type": "redacted_thinking", "data": redacted_data("m-low")},
                 "messages.1.content.0: Invalid `data` in `redacted_thinking` block",
                 id="redacted-another-models"),
    pytest.param({"type": "redacted_thinking", "data": None},
                 "messages.1.content.0.redacted_thinking.data.str: Input should be a valid string",
                 id="redacted-null"),
])
def test_a_block_this_model_did_not_make_is_refused(app: TestClient, block: dict[str, Any],
                                                    message: str) -> None:
    history = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": [block, {"type": "text", "text": "hello"}]},
               {"role": "user", "content": "and now?"}]
    assert error_of(app.post("/v1/messages", json=messages_body(history))) == message
    [record] = app.get("/_standin/requests").json()
    assert record["rejected"] and record["status"] == 400
    assert record["error"] == {"type": "invalid_request_error", "message": message}


def test_a_tool_continuation_without_its_thinking_block_is_refused(app: TestClient) -> None:
    message = error_of(app.post("/v1/messages", json=messages_body(loop([]))))
    assert message == EXPECTED_THINKING_TEXT == EXPECTED_THINKING.format(i=1, found="tool_use")
    # a text before the tool_use is named as what was found
    text_first = loop([{"type": "text", "text": "Let me look."}])
    assert "but found `text`" in error_of(app.post("/v1/messages",
                                                   json=messages_body(text_first)))


def test_system_messages_after_the_tool_results_still_make_a_continuation(app: TestClient) -> None:
    """Claude Code 2.1.328+ puts system-role messages (per-turn effort, notices) after them."""
    history = loop([]) + [{"role": "system", "content": [], "output_config": {"effort": "high"}}]
    assert error_of(app.post("/v1/messages", json=messages_body(history))) == EXPECTED_THINKING_TEXT


def test_a_tool_result_needs_its_tool_use_in_the_message_before(app: TestClient) -> None:
    history = loop([thought("m-high")])
    history[-1]["content"][0]["tool_use_id"] = "toolu_other"
    assert error_of(app.post("/v1/messages", json=messages_body(history))) == (
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
        "toolu_other. Each `tool_result` block must have a corresponding `tool_use` block in the "
        "previous message.")


@pytest.mark.parametrize("thinking", [{"type": "disabled"}, None])
def test_thinking_off_refuses_thinking_in_the_final_assistant_message(
        app: TestClient, thinking: dict[str, Any] | None) -> None:
    body = messages_body(loop([thought("m-high")]), thinking=thinking)
    assert error_of(app.post("/v1/messages", json=body)) == (
        "messages.1.content.0: When thinking is disabled, an `assistant` message in the final "
        "position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your "
        "request.")
    # without the block the continuation is accepted, and earlier foreign blocks are stripped
    history = [{"role": "user", "content": "x"},
               {"role": "assistant", "content": [thought("m-low"), {"type": "text", "text": "y"}]},
               *loop([])]
    assert app.post("/v1/messages", json=messages_body(history, thinking=thinking)
                    ).status_code == 200


def test_lenient_accepts_any_history() -> None:
    with TestClient(StandInApp().app()) as lenient:
        bad = loop([{"type": "thinking", "thinking": "t", "signature": None}])
        assert lenient.post("/v1/messages", json=messages_body(bad)).status_code == 200
        assert lenient.get("/health").json()["strict"] is False


# --- reasoning and tool calls, Anthropic shapes --------------------------------------------------

def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for chunk in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        if lines.get("data", "").startswith("{"):
            out.append((lines.get("event", ""), json.loads(lines["data"])))
    return out


def test_thinking_replies_start_with_a_signed_block(app: TestClient) -> None:
    body = messages_body([{"role": "user", "content": "hi redacted=1"}],
                         thinking={"type": "enabled", "budget_tokens": 2048})
    reply = app.post("/v1/messages", json=body).json()
    thinking, redacted, text = reply["content"]
    assert thinking["type"] == "thinking" and "budget_tokens=2048" in thinking["thinking"]
    assert thinking["signature"] == sign("m-high", thinking["thinking"])
    assert redacted["type"] == "redacted_thinking" and verifies("m-high", redacted)
    assert text["text"].startswith("[m-high] ") and reply["stop_reason"] == "end_turn"
    # thinking off: text only
    off = app.post("/v1/messages", json=messages_body(body["messages"], thinking=None)).json()
    assert [b["type"] for b in off["content"]] == ["text"]


def test_streamed_thinking_sends_thinking_deltas_then_a_signature_delta(app: TestClient) -> None:
    with app.stream("POST", "/v1/messages", json=messages_body(
            [{"role": "user", "content": "hi"}], stream=True)) as response:
        events = sse_events(response.read().decode())
    deltas = [e["delta"] for kind, e in events if kind == "content_block_delta" and e["index"] == 0]
    kinds = [d["type"] for d in deltas]
    assert kinds[-1] == "signature_delta" and set(kinds[:-1]) == {"thinking_delta"}
    text = "".join(d["thinking"] for d in deltas[:-1])
    assert deltas[-1]["signature"] == sign("m-high", text) and "effort=high" in text
    assert [k for k, _ in events][:2] == ["message_start", "ping"]
    assert [k for k, _ in events][-2:] == ["message_delta", "message_stop"]


def test_steps_n_makes_a_tool_loop_of_n_calls_then_text(app: TestClient) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "read the files steps=2"}]
    ids = []
    for step in (1, 2):
        reply = app.post("/v1/messages", json=messages_body(messages, tools=TOOLS)).json()
        assert reply["stop_reason"] == "tool_use"
        thinking, use = reply["content"]
        assert thinking["type"] == "thinking" and f"Step {step} of 2" in thinking["thinking"]
        assert use["name"] == "Read" and use["input"] == {"path": f"standin-step-{step}",
                                                          "limit": step}
        assert use["id"].startswith("toolu_") and use["id"] not in ids
        ids.append(use["id"])
        messages += [{"role": "assistant", "content": reply["content"]},
                     {"role": "user", "content": [{"type": "tool_result",
                                                   "tool_use_id": use["id"], "content": "ok"}]}]
    final = app.post("/v1/messages", json=messages_body(messages, tools=TOOLS)).json()
    assert final["stop_reason"] == "end_turn" and final["content"][-1]["type"] == "text"
    records = app.get("/_standin/requests").json()
    assert [r["reply"]["tool_use_id"] for r in records] == [*ids, None]
    assert records[2]["history"]["tool_loop"]["made_by"] == ["m-high"]
    # a new human turn starts a new count; no steps=N: text at once
    messages.append({"role": "assistant", "content": final["content"]})
    messages.append({"role": "user", "content": "thanks"})
    assert app.post("/v1/messages", json=messages_body(messages, tools=TOOLS)
                    ).json()["stop_reason"] == "end_turn"


# --- chat completions ----------------------------------------------------------------------------

def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "c-1", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_chat_answers_reasoning_when_asked(app: TestClient) -> None:
    message = app.post("/v1/chat/completions", json=chat_body(reasoning_effort="low")
                       ).json()["choices"][0]["message"]
    assert message["reasoning_content"] == message["reasoning"]
    assert "reasoning_effort=low" in message["reasoning_content"]
    plain = app.post("/v1/chat/completions", json=chat_body()).json()["choices"][0]["message"]
    assert "reasoning_content" not in plain and plain["content"].startswith("[c-1] ")
    with app.stream("POST", "/v1/chat/completions",
                    json=chat_body(reasoning={"effort": "high"}, stream=True)) as response:
        chunks = [json.loads(line[6:]) for line in response.read().decode().splitlines()
                  if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    assert "reasoning=" in reasoning and "".join(d.get("content") or "" for d in deltas
                                                 ).startswith("[c-1] ")
    assert deltas.index(next(d for d in deltas if d.get("content"))) > 0  # reasoning comes first


def test_chat_tool_calls_and_thinking_blocks_are_recorded(app: TestClient) -> None:
    tools = [{"type": "function", "function": {"name": "Read", "parameters": TOOLS[0][
        "input_schema"]}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go steps=1"}]
    first = app.post("/v1/chat/completions", json=chat_body(messages=messages, tools=tools)).json()
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "Read", "arguments": json.dumps(
        {"path": "standin-step-1", "limit": 1})}
    messages += [{"role": "assistant", "content": None, "tool_calls": [call],
                  "thinking_blocks": [thought("m-high"), thought("c-1")]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "ok"}]
    done = app.post("/v1/chat/completions", json=chat_body(messages=messages, tools=tools)).json()
    assert done["choices"][0]["finish_reason"] == "stop"
    record = app.get("/_standin/requests").json()[-1]
    assert not record["rejected"]  # chat targets never refuse history
    assert record["history"]["thinking"] == [
        {"at": "messages.1.thinking_blocks.0", "type": "thinking", "signature": "unknown"},
        {"at": "messages.1.thinking_blocks.1", "type": "thinking", "signature": "own"}]


# --- Responses ------------------------------------------------------------------------------------

def responses_body(**extra: Any) -> dict[str, Any]:
    return {"model": "r-1", "input": [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "hi"}]}], **extra}


def test_responses_reasoning_items_as_openai_sends_them(app: TestClient) -> None:
    asked = {"reasoning": {"effort": "medium"}, "include": ["reasoning.encrypted_content"]}
    reply = app.post("/v1/responses", json=responses_body(**asked)).json()
    reasoning, message = reply["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == []
    assert encrypted_by("r-1", reasoning["encrypted_content"])
    assert not encrypted_by("r-2", reasoning["encrypted_content"])
    assert message["content"][0]["text"].startswith("[r-1] ") and reply["status"] == "completed"
    summarised = app.post("/v1/responses", json=responses_body(
        reasoning={"effort": "low", "summary": "auto"})).json()["output"][0]
    assert "encrypted_content" not in summarised
    assert summarised["summary"][0]["type"] == "summary_text"
    assert [i["type"] for i in app.post("/v1/responses", json=responses_body()).json()["output"]
            ] == ["message"]
    # the next turn replays the item and its message: recorded as this model's own
    again = [*responses_body()["input"], reasoning, message, *responses_body()["input"]]
    assert app.post("/v1/responses", json=responses_body(input=again)).status_code == 200
    assert app.get("/_standin/requests").json()[-1]["history"]["thinking"] == [
        {"at": "input.1", "type": "reasoning", "id": reasoning["id"], "signature": "own"}]


def test_responses_stream_the_real_event_sequence(app: TestClient) -> None:
    tools = [{"type": "function", "name": "Read", "parameters": TOOLS[0]["input_schema"]}]
    body = responses_body(stream=True, tools=tools, reasoning={"effort": "high", "summary": "auto"},
                          input="go steps=1")
    with app.stream("POST", "/v1/responses", json=body) as response:
        events = sse_events(response.read().decode())
    assert [k for k, _ in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 4, "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [e["sequence_number"] for _, e in events] == list(range(len(events)))
    done = events[-1][1]["response"]
    assert [i["type"] for i in done["output"]] == ["reasoning", "function_call"]
    reasoning, call = done["output"]
    # its result ends the loop (the reasoning item is stored: store defaults to true)
    final = app.post("/v1/responses", json=responses_body(tools=tools, input=[
        {"role": "user", "content": "go steps=1"}, reasoning, call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}])).json()
    assert [i["type"] for i in final["output"]] == ["message"]


# --- Responses: Codex's tool loops and the API's replay rules, with the official texts -----------

EXEC = {"type": "function", "name": "exec_command", "strict": False, "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
    "required": ["cmd"], "additionalProperties": False}}
PATCH = {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def codex_body(items: list[dict[str, Any]], model: str = "r-1", **extra: Any) -> dict[str, Any]:
    """A request as Codex sends it (store off, encrypted reasoning included, its tools)."""
    return {"model": model, "input": items, "tools": [PATCH, EXEC], "tool_choice": "auto",
            "parallel_tool_calls": True, "reasoning": {"effort": "low", "summary": "auto"},
            "store": False, "include": ["reasoning.encrypted_content"], "stream": False, **extra}


def run_loop(app: TestClient, items: list[dict[str, Any]], model: str = "r-1", **extra: Any
             ) -> list[dict[str, Any]]:
    """Answer every tool call as Codex does until the model answers a message; the history."""
    items = list(items)
    while True:
        response = app.post("/v1/responses", json=codex_body(items, model, **extra))
        assert response.status_code == 200, response.text
        output = response.json()["output"]
        items += output
        calls = [i for i in output if i["type"] == "function_call"]
        if not calls:
            return items
        items += [{"type": "function_call_output", "call_id": c["call_id"], "output": "ok"}
                  for c in calls]


def openai_error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


def test_codex_tool_loop_calls_exec_command_n_times_then_answers(app: TestClient) -> None:
    history = run_loop(app, [user("look at a.py steps=2")])
    kinds = [i["type"] for i in history[1:]]
    assert kinds == ["reasoning", "function_call", "function_call_output"] * 2 + [
        "reasoning", "message"]
    for step, at in ((1, 1), (2, 4)):
        reasoning, call = history[at], history[at + 1]
        assert reasoning["id"].startswith("rs_") and encrypted_by("r-1", reasoning["encrypted_content"])
        assert f"Step {step} of 2" in reasoning["summary"][0]["text"]
        assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
        assert (call["name"], json.loads(call["arguments"])) == (
            "exec_command", {"cmd": f"echo standin-step-{step}"})
    assert history[-1]["content"][0]["text"].endswith("Done after 2 tool results.")
    # every continuation carried its own reasoning item before the call it continues
    records = app.get("/_standin/requests").json()
    loops = [r["history"]["tool_loop"] for r in records]
    assert loops[0] is None
    assert [(lp["at"], lp["first_block"], lp["first_block_signature"], lp["made_by"])
            for lp in loops[1:]] == [("input.1", "reasoning", "own", ["r-1"]),
                                     ("input.4", "reasoning", "own", ["r-1"])]
    assert loops[2]["tool_use_ids"] == [history[5]["call_id"]]


@pytest.mark.parametrize("tools,call", [
    pytest.param([{"type": "function", "name": "shell", "parameters": {}}],
                 ("shell", {"command": ["echo", "standin-step-1"]}), id="shell"),
    pytest.param([PATCH, {"type": "function", "name": "Read", "parameters": TOOLS[0][
        "input_schema"]}], ("Read", {"path": "standin-step-1", "limit": 1}), id="first-function"),
])
def test_without_exec_command_the_loop_uses_shell_or_the_first_function(
        app: TestClient, tools: list[dict[str, Any]], call: tuple[str, dict[str, Any]]) -> None:
    body = codex_body([user("go steps=1")], tools=tools)
    item = app.post("/v1/responses", json=body).json()["output"][-1]
    assert (item["name"], json.loads(item["arguments"])) == call


def test_a_non_reasoning_request_gets_no_reasoning_items(app: TestClient) -> None:
    history = run_loop(app, [user("go steps=1")], reasoning=None)
    assert [i["type"] for i in history[1:]] == ["function_call", "function_call_output", "message"]


def test_another_models_encrypted_reasoning_cannot_be_verified(app: TestClient) -> None:
    history = run_loop(app, [user("look steps=1")], model="r-1")
    blob = history[1]["encrypted_content"]
    error = openai_error(app.post("/v1/responses", json=codex_body(
        [*history, user("more")], model="r-2")))
    assert error == {"message": f"The encrypted content {blob[:4]}...{blob[-4:]} could not be "
                                "verified. Reason: Encrypted content could not be decrypted or "
                                "parsed.",
                     "type": "invalid_request_error", "param": None,
                     "code": "invalid_encrypted_content"}
    assert error["message"].startswith("The encrypted content gAAA...")
    record = app.get("/_standin/requests").json()[-1]
    assert record["rejected"] and record["status"] == 400 and record["error"] == error
    assert [t["signature"] for t in record["history"]["thinking"]] == ["other:r-1"] * 2
    # made up content is refused the same way
    forged = {**history[1], "encrypted_content": "gAAAAABnot-a-real-one=="}
    assert openai_error(app.post("/v1/responses", json=codex_body(
        [history[0], forged, *history[2:]])))["code"] == "invalid_encrypted_content"


def test_a_reasoning_item_by_id_alone_is_not_found_unless_stored(app: TestClient) -> None:
    history = run_loop(app, [user("look steps=1")])
    bare = {k: v for k, v in history[1].items() if k != "encrypted_content"}
    rs_id = bare["id"]
    error = openai_error(app.post("/v1/responses", json=codex_body(
        [history[0], bare, *history[2:]])), status=404)
    assert error == {"message": f"Item with id '{rs_id}' not found. Items are not persisted when "
                                "`store` is set to false. Try again with `store` set to true, or "
                                "remove this item from your input.",
                     "type": "invalid_request_error", "param": "input", "code": None}
    # with store on, only an item the API stored is found
    assert openai_error(app.post("/v1/responses", json=codex_body(
        [history[0], bare, *history[2:]], store=True)), status=404)["message"] == (
        f"Item with id '{rs_id}' not found.")
    stored = run_loop(app, [user("look steps=1")], store=True)
    by_id = {k: v for k, v in stored[1].items() if k != "encrypted_content"}
    assert app.post("/v1/responses", json=codex_body(
        [stored[0], by_id, *stored[2:]], store=True)).status_code == 200


def test_a_reasoning_item_needs_its_following_item(app: TestClient) -> None:
    history = run_loop(app, [user("hi")])
    rs_id = history[1]["id"]
    for items in ([*history[:2]], [*history[:2], user("and?")]):
        assert openai_error(app.post("/v1/responses", json=codex_body(items))) == {
            "message": f"Item '{rs_id}' of type 'reasoning' was provided without its required "
                       "following item.",
            "type": "invalid_request_error", "param": "input", "code": None}


def test_an_own_output_item_needs_its_reasoning_item(app: TestClient) -> None:
    history = run_loop(app, [user("look steps=1")])
    rs_id, call = history[1]["id"], history[2]
    error = openai_error(app.post("/v1/responses", json=codex_body(
        [history[0], *history[2:4]])))  # the continuation without its reasoning item
    assert error == {"message": f"Item '{call['id']}' of type 'function_call' was provided "
                                f"without its required 'reasoning' item: '{rs_id}'.",
                     "type": "invalid_request_error", "param": "input", "code": None}
    record = app.get("/_standin/requests").json()[-1]
    assert record["history"]["tool_loop"]["first_block"] == "function_call"
    assert record["history"]["tool_loop"]["first_block_signature"] is None
    # the final message too
    message = history[-1]
    assert openai_error(app.post("/v1/responses", json=codex_body(
        [*history[:-2], message, user("more")])))["message"] == (
        f"Item '{message['id']}' of type 'message' was provided without its required 'reasoning' "
        f"item: '{history[-2]['id']}'.")
    # another model takes the turn without the foreign reasoning items (what a router sends)
    foreign_dropped = [i for i in history if i["type"] != "reasoning"] + [user("more")]
    assert app.post("/v1/responses", json=codex_body(foreign_dropped, "r-2")).status_code == 200


def test_a_tool_output_needs_its_call(app: TestClient) -> None:
    output = {"type": "function_call_output", "call_id": "call_nowhere", "output": "ok"}
    assert openai_error(app.post("/v1/responses", json=codex_body([user("x"), output]))) == {
        "message": "No tool call found for function call output with call_id call_nowhere.",
        "type": "invalid_request_error", "param": "input", "code": None}


def test_previous_response_id_continues_only_the_same_models_stored_response(
        app: TestClient) -> None:
    first = app.post("/v1/responses", json=codex_body([user("look steps=2")], store=True)).json()
    assert first["previous_response_id"] is None
    call = first["output"][-1]
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
    second = app.post("/v1/responses", json=codex_body(
        [result], store=True, previous_response_id=first["id"])).json()
    assert second["previous_response_id"] == first["id"]
    assert "Step 2 of 2" in second["output"][0]["summary"][0]["text"]  # the stored history counts

    def refused(response_id: str, model: str = "r-1") -> dict[str, Any]:
        return openai_error(app.post("/v1/responses", json=codex_body(
            [user("again")], model, previous_response_id=response_id)))

    expected = {"message": f"Previous response with id '{first['id']}' not found.",
                "type": "invalid_request_error", "param": "previous_response_id",
                "code": "previous_response_not_found"}
    assert refused(first["id"], "r-2") == expected  # another model's
    assert refused("resp_never")["message"] == "Previous response with id 'resp_never' not found."
    unstored = app.post("/v1/responses", json=codex_body([user("hi")])).json()
    assert refused(unstored["id"])["code"] == "previous_response_not_found"  # store was false


def test_lenient_accepts_any_responses_input() -> None:
    with TestClient(StandInApp().app()) as lenient:
        items = [user("x"), {"type": "reasoning", "id": "rs_1", "summary": [],
                             "encrypted_content": "gAAAAAbogus"},
                 {"type": "function_call_output", "call_id": "call_nowhere", "output": "ok"}]
        assert lenient.post("/v1/responses", json=codex_body(
            items, previous_response_id="resp_never")).status_code == 200


# --- Responses through the official openai SDK --------------------------------------------------

def sdk(app: TestClient) -> openai.OpenAI:
    """The official client, talking to the stand-in app in process."""
    return openai.OpenAI(base_url="http://testserver/v1", api_key="standin", http_client=app,
                         max_retries=0)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_the_openai_sdk_runs_a_tool_loop_and_sees_the_refusals(app: TestClient,
                                                               stream: bool) -> None:
    client = sdk(app)
    items: list[Any] = [user("look at a.py steps=1")]
    kwargs: dict[str, Any] = dict(tools=[EXEC], store=False, reasoning={"effort": "low"},
                                  include=["reasoning.encrypted_content"])

    def ask(model: str = "r-1") -> Any:
        if not stream:
            return client.responses.create(model=model, input=items, **kwargs)
        with client.responses.stream(model=model, input=items, **kwargs) as events:
            kinds = [e.type for e in events]
            assert kinds[:2] == ["response.created", "response.in_progress"]
            assert kinds[-1] == "response.completed"
            return events.get_final_response()

    first = ask()
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and encrypted_by("r-1", reasoning.encrypted_content)
    assert call.type == "function_call" and json.loads(call.arguments) == {
        "cmd": "echo standin-step-1"}
    items += [i.model_dump(exclude_none=True) for i in first.output]
    items.append({"type": "function_call_output", "call_id": call.call_id, "output": "ok"})
    final = ask()
    assert final.output_text.startswith("[r-1] ") and final.usage and final.usage.input_tokens
    items += [i.model_dump(exclude_none=True) for i in final.output]
    items.append(user("thanks"))
    with pytest.raises(openai.BadRequestError) as refused:
        ask("r-2")
    assert refused.value.code == "invalid_encrypted_content"
    assert "could not be verified" in refused.value.message
    items[1].pop("encrypted_content")
    with pytest.raises(openai.NotFoundError) as missing:
        ask()
    assert "Items are not persisted when `store` is set to false" in missing.value.message


# --- faults -------------------------------------------------------------------------------------

def fault(app: TestClient, **spec: Any) -> dict[str, Any]:
    response = app.post("/_standin/faults", json=spec)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind,api,status,error_type", [
    ("rate_limit", "messages", 429, "rate_limit_error"),
    ("rate_limit", "chat", 429, "requests"),
    ("overloaded", "messages", 529, "overloaded_error"),
    ("overloaded", "responses", 503, "server_error"),
    ("server", "messages", 500, "api_error"),
    ("server", "chat", 500, "server_error"),
])
def test_faults_answer_in_each_apis_shape_and_recover_after_count(
        app: TestClient, kind: str, api: str, status: int, error_type: str) -> None:
    path, body = {"messages": ("/v1/messages", messages_body([{"role": "user", "content": "x"}])),
                  "chat": ("/v1/chat/completions", chat_body(model="m-high")),
                  "responses": ("/v1/responses", responses_body(model="m-high"))}[api]
    fault(app, model="m-high", kind=kind, count=2, retry_after=3)
    for _ in range(2):
        response = app.post(path, json=body)
        assert response.status_code == status
        error = response.json()["error"]
        assert error["type"] == error_type
        if api != "messages":
            assert set(error) == {"message", "type", "param", "code"}
        if kind == "rate_limit":
            assert response.headers["retry-after"] == "3"
            assert api == "messages" or error["code"] == "rate_limit_exceeded"
    assert app.post(path, json=body).status_code == 200  # recovered by itself
    records = app.get("/_standin/requests").json()
    assert [(r["status"], r["fault"]) for r in records] == [(status, kind)] * 2 + [(200, None)]
    assert app.get("/_standin/faults").json() == {"faults": {}, "limits": {}, "rate_limits": {}}


def test_fault_api_forms(app: TestClient) -> None:
    body = messages_body([{"role": "user", "content": "x"}])
    fault(app, model="m-high", status=502, delay_ms=0)  # the old form
    response = app.post("/v1/messages", json=body)
    assert response.status_code == 502 and "fails on purpose" in response.json()["error"]["message"]
    fault(app, model="m-high", status=None)  # clears it
    assert app.post("/v1/messages", json=body).status_code == 200
    fault(app, model="*", kind="server")  # every model
    assert app.post("/v1/messages", json=body).status_code == 500
    fault(app, model="m-high", kind="stall", delay_ms=10)  # slow, then a normal answer
    assert app.post("/v1/messages", json=body).status_code == 200
    stalled = app.get("/_standin/requests").json()[-1]
    assert (stalled["fault"], stalled["status"], stalled["rejected"]) == ("stall", 200, False)
    app.delete("/_standin/faults")
    assert app.post("/v1/messages", json=body).status_code == 200
    assert app.post("/v1/messages", json={**body, "model": "x-fail"}).status_code == 500
    for bad in ({"model": "m", "kind": "teapot"}, {"model": "m", "kind": "server", "count": -1},
                {"model": "m", "max_input_tokens": "lots"}):
        refused = app.post("/_standin/faults", json=bad)
        assert refused.status_code == 400 and refused.json()["error"]


def test_context_limits_give_each_providers_error(app: TestClient) -> None:
    long = "word " * 800  # 4,000 characters: about 1,000 tokens
    body = messages_body([{"role": "user", "content": long}])
    tokens = count_input_tokens(body)
    assert 1000 <= tokens < 1100
    fault(app, model="m-high", max_input_tokens=500)
    assert error_of(app.post("/v1/messages", json=body)) == \
        f"prompt is too long: {tokens} tokens > 500 maximum"
    chat = chat_body(model="m-high", messages=[{"role": "user", "content": long}])
    error = app.post("/v1/chat/completions", json=chat).json()["error"]
    assert error["code"] == "context_length_exceeded" and error["message"] == (
        f"This model's maximum context length is 500 tokens. However, your messages resulted in "
        f"{count_input_tokens(chat)} tokens. Please reduce the length of the messages.")
    error = app.post("/v1/responses", json=responses_body(model="m-high", input=long)
                     ).json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "input"
    assert app.post("/v1/messages", json=messages_body([{"role": "user", "content": "short"}])
                    ).status_code == 200
    fault(app, model="m-high", max_input_tokens=None)
    assert app.post("/v1/messages", json=body).status_code == 200


# --- through a real proxy ------------------------------------------------------------------------

@pytest.fixture
def fresh(standin: StandIn) -> Iterator[StandIn]:
    standin.clear()
    standin.clear_faults()
    yield standin
    standin.clear_faults()


def claude(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)


def gpt(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=proxy.key, max_retries=0)


USER = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_an_anthropic_target_signs_its_thinking_through_the_proxy(
        proxy: Proxy, fresh: StandIn, stream: bool) -> None:
    body: dict[str, Any] = dict(model="high-reasoning", max_tokens=1024, messages=USER,
                                thinking={"type": "enabled", "budget_tokens": 1024})
    if stream:
        with claude(proxy).messages.stream(**body) as events:
            kinds = [e.delta.type for e in events if e.type == "content_block_delta"]
            message = events.get_final_message()
        assert "signature_delta" in kinds and "thinking_delta" in kinds
    else:
        message = claude(proxy).messages.create(**body)
    thinking, text = message.content
    assert thinking.type == "thinking" and text.type == "text"
    assert thinking.signature == sign("standin-high", thinking.thinking)
    assert text.text.startswith("[standin-high] ")
    [received] = fresh.requests()
    assert received["reply"]["signature"] == thinking.signature and not received["rejected"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_responses_target_answers_messages_with_its_reasoning(
        proxy: Proxy, fresh: StandIn, stream: bool) -> None:
    body: dict[str, Any] = dict(model="openai-reasoner", max_tokens=1024, tools=TOOLS,
                                messages=[{"role": "user", "content": "read it steps=1"}],
                                thinking={"type": "enabled", "budget_tokens": 4096})
    if stream:
        with claude(proxy).messages.stream(**body) as events:
            message = events.get_final_message()
    else:
        message = claude(proxy).messages.create(**body)
    redacted, use = message.content
    assert redacted.type == "redacted_thinking" and message.stop_reason == "tool_use"
    assert redacted.data.startswith("litellm_encrypted_reasoning:gAAAAA")
    assert encrypted_by("standin-openai-reasoner",
                        redacted.data.removeprefix("litellm_encrypted_reasoning:"))
    assert use.type == "tool_use" and use.name == "Read"
    [received] = fresh.requests()
    assert received["path"].endswith("/responses") and received["api"] == "responses"
    assert received["reasoning"].startswith("reasoning=")  # LiteLLM mapped the budget to an effort
    assert received["reply"]["content"] == ["reasoning", "function_call"]


def test_a_responses_tool_loop_through_the_proxy_replays_its_own_reasoning(
        proxy: Proxy, fresh: StandIn) -> None:
    """LiteLLM passes Codex-shaped Responses input to an ``openai/...`` deployment as it is."""
    items: list[Any] = [user("look steps=2")]
    for _ in range(3):
        response = gpt(proxy).responses.create(
            model="openai-reasoner", input=items, tools=[EXEC], store=False,
            include=["reasoning.encrypted_content"], reasoning={"effort": "low"})
        items += [i.model_dump(exclude_none=True) for i in response.output]
        items += [{"type": "function_call_output", "call_id": i.call_id, "output": "ok"}
                  for i in response.output if i.type == "function_call"]
    assert response.output_text.endswith("Done after 2 tool results.")
    calls = fresh.calls()
    assert [(c["api"], c["status"]) for c in calls] == [("responses", 200)] * 3
    assert [(lp["first_block"], lp["first_block_signature"]) for c in calls[1:]
            for lp in [c["history"]["tool_loop"]]] == [("reasoning", "own")] * 2


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_chat_target_answers_with_reasoning_content(proxy: Proxy, fresh: StandIn,
                                                      stream: bool) -> None:
    body: dict[str, Any] = dict(model="gpt-5-mini", messages=USER, reasoning_effort="high")
    if stream:
        chunks = [c for c in gpt(proxy).chat.completions.create(stream=True, **body) if c.choices]
        reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                            for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
    else:
        message = gpt(proxy).chat.completions.create(**body).choices[0].message
        reasoning, text = getattr(message, "reasoning_content", ""), message.content or ""
    assert reasoning == "[standin-gpt-5-mini] Thinking it over (reasoning_effort=high)."
    assert text.startswith("[standin-gpt-5-mini] ")


def test_a_rate_limit_reaches_the_client_then_the_model_recovers(proxy: Proxy,
                                                                 fresh: StandIn) -> None:
    fresh.misbehave("standin-gpt-5-mini", "rate_limit", count=1, retry_after=7)
    with pytest.raises(openai.RateLimitError) as exc:
        gpt(proxy).chat.completions.create(model="gpt-5-mini", messages=USER)
    assert exc.value.response.headers["llm_provider-retry-after"] == "7"
    assert "Rate limit reached for standin-gpt-5-mini" in str(exc.value)
    assert gpt(proxy).chat.completions.create(model="gpt-5-mini", messages=USER,
                                              ).choices[0].message.content
    fresh.misbehave("standin-high", "rate_limit", count=1)
    with pytest.raises(anthropic.RateLimitError) as error:
        claude(proxy).messages.create(model="high-reasoning", max_tokens=64, messages=USER)
    assert "rate_limit_error" in str(error.value)
    assert [r["status"] for r in fresh.calls()] == [429, 200, 429]
    assert [r["fault"] for r in fresh.rejected()] == ["rate_limit", "rate_limit"]


def test_a_context_length_error_reaches_the_client(proxy: Proxy, fresh: StandIn) -> None:
    fresh.limit_context("standin-high", 100)
    long = [{"role": "user", "content": "word " * 200}]
    with pytest.raises(anthropic.BadRequestError) as error:
        claude(proxy).messages.create(model="high-reasoning", max_tokens=64, messages=long)
    assert "prompt is too long: " in str(error.value) and "tokens > 100 maximum" in str(error.value)
    fresh.limit_context("standin-gpt-5-mini", 100)
    with pytest.raises(openai.BadRequestError) as exc:
        gpt(proxy).chat.completions.create(model="gpt-5-mini", messages=long)
    assert "This model's maximum context length is 100 tokens" in str(exc.value)
    assert fresh.faults()["limits"] == {"standin-high": 100, "standin-gpt-5-mini": 100}


def test_a_stall_outlasts_the_clients_timeout_then_the_model_answers(proxy: Proxy,
                                                                     fresh: StandIn) -> None:
    fresh.misbehave("standin-high", "stall", count=1, delay_ms=5000)
    with pytest.raises(anthropic.APITimeoutError):
        claude(proxy).messages.create(model="high-reasoning", max_tokens=64, messages=USER,
                                      timeout=1)
    answer = claude(proxy).messages.create(model="high-reasoning", max_tokens=64, messages=USER)
    assert answer.content[0].type == "text"
    assert [r["fault"] for r in fresh.calls("standin-high")] == ["stall", None]


# --- the real Codex CLI, straight to the stand-in -------------------------------------------------

CODEX_CONFIG: Final = """\
model = "standin-codex-a"
model_provider = "standin"
model_reasoning_effort = "low"
[model_providers.standin]
name = "standin"
base_url = "{url}/v1"
env_key = "STANDIN_KEY"
wire_api = "responses"
"""


@pytest.mark.skipif(CODEX is None, reason="the OpenAI Codex CLI (`codex`) is not on PATH "
                                          "(npm i -g @openai/codex)")
def test_the_real_codex_cli_loops_resumes_and_breaks_when_the_model_changes(
        fresh: StandIn, tmp_path: Path) -> None:
    """Codex runs a two-step tool loop, resumes on the same model (its own reasoning replayed),
    then resumes on another model: refused, as OpenAI refuses it (the bug a router must fix)."""
    assert CODEX is not None
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(CODEX_CONFIG.format(url=fresh.url))
    (work / "a.py").write_text("print('hi')\n")
    env = {**os.environ, "CODEX_HOME": str(home), "STANDIN_KEY": "standin-needs-no-key"}

    def codex(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CODEX, "exec", "--skip-git-repo-check", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    first = codex("look at a.py steps=2")
    assert first.returncode == 0, first.stderr
    assert "[standin-codex-a] Hello from the reasoning-panel stand-in provider. Done after 2 tool " \
        "results." in first.stdout
    calls = fresh.calls()
    assert [(c["model"], c["status"], c["stream"]) for c in calls] == [
        ("standin-codex-a", 200, True)] * 3
    body = calls[0]["body"]
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert calls[0]["reply"]["content"] == ["reasoning", "function_call"]
    # Codex ran the command it was given, and each step came back with its own reasoning item
    outputs = [i["output"] for i in calls[2]["body"]["input"] if i["type"] == "function_call_output"]
    assert len(outputs) == 2
    assert "standin-step-1" in outputs[0] and "standin-step-2" in outputs[1]
    for call in calls[1:]:
        loop = call["history"]["tool_loop"]
        assert (loop["first_block"], loop["first_block_signature"], loop["made_by"]) == (
            "reasoning", "own", ["standin-codex-a"])

    fresh.clear()
    same = codex("resume", "--last", "again steps=1")
    assert same.returncode == 0, same.stderr
    assert "Done after 1 tool results." in same.stdout
    resumed = fresh.calls()
    assert [c["status"] for c in resumed] == [200, 200]
    assert {t["signature"] for c in resumed for t in c["history"]["thinking"]} == {"own"}

    fresh.clear()
    switched = codex("resume", "--last", "-m", "standin-codex-b", "and now steps=1")
    assert switched.returncode == 1
    assert "invalid_encrypted_content" in switched.stdout + switched.stderr
    refused = fresh.calls()
    assert refused and all(c["model"] == "standin-codex-b" and c["status"] == 400 for c in refused)
    assert refused[0]["error"]["code"] == "invalid_encrypted_content"
    assert {t["signature"] for t in refused[0]["history"]["thinking"]} == {"other:standin-codex-a"}


# --- rate limits: headers that count down per model, a 429 when used up, a reset -------------

RATE_PATHS: Final = {
    "messages": ("/v1/messages", lambda model: messages_body([{"role": "user", "content": "x"}],
                                                             model=model)),
    "chat": ("/v1/chat/completions", lambda model: chat_body(model=model)),
    "responses": ("/v1/responses", lambda model: responses_body(model=model)),
}


def remaining(api: str, headers: Any) -> tuple[int, int]:
    """(requests, tokens) left, as the API's own headers say."""
    if api == "messages":
        return (int(headers["anthropic-ratelimit-requests-remaining"]),
                int(headers["anthropic-ratelimit-tokens-remaining"]))
    return (int(headers["x-ratelimit-remaining-requests"]),
            int(headers["x-ratelimit-remaining-tokens"]))


@pytest.mark.parametrize("api", ["messages", "chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_rate_limit_headers_count_down_per_model_then_429(app: TestClient, api: str,
                                                          stream: bool) -> None:
    path, body = RATE_PATHS[api]
    fault(app, model="m-low", rate_limit={"requests": 3, "window_s": 60})
    seen = []
    for _ in range(3):
        response = app.post(path, json={**body("m-low"), "stream": stream})
        assert response.status_code == 200
        seen.append(remaining(api, response.headers))
    assert [r for r, _ in seen] == [2, 1, 0]
    assert seen[0][1] > seen[1][1] > seen[2][1]  # tokens count down too
    other = app.post(path, json=body("m-high"))  # another model has its own (large) limit
    assert remaining(api, other.headers)[0] == 9_999_999
    refused = app.post(path, json={**body("m-low"), "stream": stream})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert remaining(api, refused.headers)[0] == 0
    if api == "messages":
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert refused.headers["anthropic-ratelimit-requests-limit"] == "3"
        assert refused.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    else:
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert refused.headers["x-ratelimit-limit-requests"] == "3"
        assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert app.get("/_standin/requests").json()[-1]["fault"] == "rate_limited"


def test_a_rate_limit_resets_after_its_window(app: TestClient) -> None:
    import time

    body = chat_body(model="m-low")
    fault(app, model="m-low", rate_limit={"requests": 1, "window_s": 0.5})
    assert app.post("/v1/chat/completions", json=body).status_code == 200
    assert app.post("/v1/chat/completions", json=body).status_code == 429
    deadline = time.monotonic() + 10
    while (response := app.post("/v1/chat/completions", json=body)).status_code == 429:
        assert time.monotonic() < deadline, "the window never reset"
        time.sleep(0.05)
    assert remaining("chat", response.headers)[0] == 0  # a fresh window, its one request used
    assert fault(app, model="m-low", rate_limit=None)["rate_limits"] == {}
    assert app.post("/v1/chat/completions", json=body).status_code == 200  # back to the default


def test_a_token_limit_refuses_too(app: TestClient) -> None:
    fault(app, model="m-low", rate_limit={"tokens": 10, "window_s": 60})
    first = app.post("/v1/messages", json=messages_body([{"role": "user", "content": "x"}],
                                                         model="m-low"))
    assert first.status_code == 200 and remaining("messages", first.headers)[1] == 0
    assert app.post("/v1/messages", json=messages_body([{"role": "user", "content": "x"}],
                                                       model="m-low")).status_code == 429
    bad = app.post("/_standin/faults", json={"model": "m-low", "rate_limit": {"requests": 0}})
    assert bad.status_code == 400
