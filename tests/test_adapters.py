"""Request rewrites: reasoning patches per tier, Cerebras/OpenRouter adapters, patch application."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from callbacks.core.adapters import (
    DELETE,
    adapter_patch,
    apply_patch,
    clean_schema,
    reasoning_patch,
)
from callbacks.core.state import Adapter, TierTarget

PLAIN = TierTarget("some-model")
FORMAT = {"type": "json_schema", "schema": {"type": "object"}}


def patched(body: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    apply_patch(out, patch)
    return out


def cc_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 32000,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
    }
    body.update(extra)
    return body


# --- apply_patch -----------------------------------------------------------------------------


def test_apply_patch_sets_replaces_and_deletes() -> None:
    body = {"a": 1, "b": 2, "c": 3}
    apply_patch(body, {"a": DELETE, "b": 20, "d": {"x": 1}, "missing": DELETE})
    assert body == {"b": 20, "c": 3, "d": {"x": 1}}


def test_apply_patch_empty_patch_is_a_no_op() -> None:
    body = {"a": 1}
    apply_patch(body, {})
    assert body == {"a": 1}


def test_apply_patch_none_value_is_set_not_deleted() -> None:
    body = {"a": 1}
    apply_patch(body, {"a": None})
    assert body == {"a": None}


# --- reasoning_patch: the none tier ----------------------------------------------------------


def test_none_tier_removes_effort_keeps_format() -> None:
    body = cc_body(output_config={"effort": "high", "format": FORMAT})
    patch = reasoning_patch(body, "none", PLAIN)
    assert patch["output_config"] == {"format": FORMAT}
    assert patch["thinking"] == {"type": "disabled"}
    out = patched(body, patch)
    assert out["output_config"] == {"format": FORMAT}
    assert out["thinking"] == {"type": "disabled"}


def test_none_tier_deletes_output_config_holding_only_effort() -> None:
    patch = reasoning_patch(cc_body(), "none", PLAIN)
    assert patch["output_config"] is DELETE
    assert "output_config" not in patched(cc_body(), patch)


def test_none_tier_keeps_output_config_without_effort() -> None:
    body = cc_body(output_config={"format": FORMAT})
    patch = reasoning_patch(body, "none", PLAIN)
    assert "output_config" not in patch
    assert patched(body, patch)["output_config"] == {"format": FORMAT}


def test_none_tier_removes_openai_reasoning_fields() -> None:
    body = {"model": "gpt-5", "messages": [], "reasoning_effort": "high",
            "reasoning": {"effort": "high", "summary": "auto"}}
    patch = reasoning_patch(body, "none", PLAIN)
    assert patch == {"reasoning_effort": DELETE, "reasoning": DELETE}
    assert patched(body, patch) == {"model": "gpt-5", "messages": []}


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        pytest.param({"type": "adaptive"}, {"type": "disabled"}, id="adaptive"),
        pytest.param({"type": "enabled", "budget_tokens": 31999}, {"type": "disabled"},
                     id="enabled"),
        pytest.param({"type": "adaptive", "display": "summarized"}, {"type": "disabled"},
                     id="extra-keys"),
        pytest.param(None, {"type": "disabled"}, id="null"),
    ],
)
def test_none_tier_disables_present_thinking(thinking: Any, expected: Any) -> None:
    body = {"model": "m", "thinking": thinking}
    assert patched(body, reasoning_patch(body, "none", PLAIN)) == {"model": "m",
                                                                   "thinking": expected}


def test_none_tier_leaves_already_disabled_thinking_alone() -> None:
    body = {"model": "m", "thinking": {"type": "disabled"}}
    assert reasoning_patch(body, "none", PLAIN) == {}


def test_none_tier_does_not_add_thinking() -> None:
    body = {"model": "m", "messages": [], "output_config": {"effort": "high"}}
    patch = reasoning_patch(body, "none", PLAIN)
    assert "thinking" not in patch
    assert patched(body, patch) == {"model": "m", "messages": []}


def test_none_tier_on_a_body_without_reasoning_is_empty() -> None:
    assert reasoning_patch({"model": "m", "messages": []}, "none", PLAIN) == {}


CLEAR_THINKING = {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 1}}
CLEAR_TOOLS = {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens",
                                                               "value": 30000}}


@pytest.mark.parametrize(
    ("context_management", "expected"),
    [
        pytest.param({"edits": [CLEAR_THINKING, CLEAR_TOOLS]}, {"edits": [CLEAR_TOOLS]},
                     id="keeps-other-edits"),
        pytest.param({"edits": [CLEAR_TOOLS, {"type": "clear_thinking_v2"}, CLEAR_THINKING]},
                     {"edits": [CLEAR_TOOLS]}, id="drops-every-clear_thinking-prefix"),
        pytest.param({"edits": [CLEAR_THINKING]}, DELETE, id="no-edits-left-drops-key"),
        pytest.param({"edits": [CLEAR_THINKING], "other": 1}, {"other": 1},
                     id="no-edits-left-keeps-other-keys"),
    ],
)
def test_none_tier_drops_clear_thinking_edits(context_management: Any, expected: Any) -> None:
    body = cc_body(context_management=context_management)
    patch = reasoning_patch(body, "none", PLAIN)
    out = patched(body, patch)
    if expected is DELETE:
        assert patch["context_management"] is DELETE
        assert "context_management" not in out
    else:
        assert patch["context_management"] == expected
        assert out["context_management"] == expected


@pytest.mark.parametrize(
    "context_management",
    [
        pytest.param({"edits": [CLEAR_TOOLS]}, id="no-clear-thinking"),
        pytest.param({"edits": []}, id="empty-edits"),
        pytest.param({"edits": "clear_thinking"}, id="edits-not-a-list"),
        pytest.param(["clear_thinking"], id="not-a-mapping"),
        pytest.param({"edits": [None, "clear_thinking_x", {"type": 5}]}, id="odd-items"),
    ],
)
def test_none_tier_leaves_context_management_without_clear_thinking(
    context_management: Any,
) -> None:
    body = cc_body(context_management=context_management)
    assert "context_management" not in reasoning_patch(body, "none", PLAIN)


# --- reasoning_patch: other tiers ------------------------------------------------------------


@pytest.mark.parametrize("tier", ["low", "medium", "high"])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(cc_body(), id="anthropic-adaptive"),
        pytest.param(cc_body(thinking={"type": "enabled", "budget_tokens": 1024},
                             context_management={"edits": [CLEAR_THINKING]}), id="budget"),
        pytest.param({"model": "gpt-5", "reasoning_effort": "minimal"}, id="openai"),
        pytest.param({"model": "m", "thinking": {"type": "disabled"},
                      "context_management": {"edits": [CLEAR_THINKING]}}, id="thinking-off"),
    ],
)
def test_tier_without_params_keeps_the_client_fields(tier: str, body: dict[str, Any]) -> None:
    assert reasoning_patch(body, tier, PLAIN) == {}


def test_params_replace_client_reasoning_fields() -> None:
    body = cc_body(output_config={"effort": "high", "format": FORMAT}, reasoning_effort="high",
                   reasoning={"effort": "high"})
    target = TierTarget("gpt-oss", {"reasoning_effort": "low"})
    patch = reasoning_patch(body, "low", target)
    assert patch == {
        "reasoning_effort": "low",
        "reasoning": DELETE,
        "thinking": DELETE,
        "output_config": {"format": FORMAT},
    }
    out = patched(body, patch)
    assert out["reasoning_effort"] == "low"
    assert "thinking" not in out and "reasoning" not in out
    assert out["output_config"] == {"format": FORMAT}


def test_params_on_a_plain_openai_body() -> None:
    body = {"model": "gpt-5", "messages": [], "reasoning_effort": "high"}
    patch = reasoning_patch(body, "medium", TierTarget("x", {"reasoning_effort": "medium"}))
    assert patched(body, patch) == {"model": "gpt-5", "messages": [], "reasoning_effort": "medium"}


def test_params_thinking_replaces_client_thinking_and_keeps_clear_thinking_edits() -> None:
    body = cc_body(context_management={"edits": [CLEAR_THINKING]})
    thinking = {"type": "enabled", "budget_tokens": 4096}
    patch = reasoning_patch(body, "medium", TierTarget("sonnet-4-5", {"thinking": thinking}))
    assert patch == {"thinking": thinking, "output_config": DELETE}
    out = patched(body, patch)
    assert out["thinking"] == thinking
    assert out["context_management"] == {"edits": [CLEAR_THINKING]}


def test_params_without_thinking_drop_clear_thinking_edits() -> None:
    body = cc_body(context_management={"edits": [CLEAR_THINKING, CLEAR_TOOLS]})
    patch = reasoning_patch(body, "low", TierTarget("gpt-oss", {"reasoning_effort": "low"}))
    assert patch["thinking"] is DELETE
    assert patch["context_management"] == {"edits": [CLEAR_TOOLS]}


def test_params_output_config_merges_with_the_client_format() -> None:
    body = cc_body(output_config={"effort": "high", "format": FORMAT})
    target = TierTarget("opus", {"output_config": {"effort": "low"},
                                 "thinking": {"type": "adaptive"}})
    out = patched(body, reasoning_patch(body, "low", target))
    assert out["output_config"] == {"format": FORMAT, "effort": "low"}
    assert out["thinking"] == {"type": "adaptive"}


def test_params_output_config_when_client_sent_only_effort() -> None:
    body = cc_body()
    target = TierTarget("opus", {"output_config": {"effort": "medium"}})
    out = patched(body, reasoning_patch(body, "medium", target))
    assert out["output_config"] == {"effort": "medium"}
    assert "thinking" not in out


def test_none_tier_with_params() -> None:
    body = {"model": "gpt-5", "reasoning_effort": "high"}
    target = TierTarget("gpt-5-nano", {"reasoning_effort": "minimal"})
    assert patched(body, reasoning_patch(body, "none", target)) == {
        "model": "gpt-5", "reasoning_effort": "minimal"}


BODIES = [
    pytest.param(cc_body(output_config={"effort": "high", "format": FORMAT},
                         context_management={"edits": [CLEAR_THINKING, CLEAR_TOOLS]},
                         reasoning_effort="high", reasoning={"effort": "low"}), id="everything"),
    pytest.param(cc_body(context_management={"edits": [CLEAR_THINKING]}), id="only-clear"),
    pytest.param({"model": "gpt-5", "reasoning_effort": "high", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, id="openai"),
]
TARGETS = [
    pytest.param("none", PLAIN, id="none"),
    pytest.param("low", TierTarget("x", {"reasoning_effort": "low"}), id="low-params"),
    pytest.param("medium", TierTarget("x", {"output_config": {"effort": "medium"}}),
                 id="medium-output_config"),
    pytest.param("high", TierTarget("x", {"thinking": {"type": "enabled", "budget_tokens": 9}}),
                 id="high-thinking"),
]


@pytest.mark.parametrize(("tier", "target"), TARGETS)
@pytest.mark.parametrize("body", BODIES)
def test_reasoning_patch_never_mutates_body_or_params(
    body: dict[str, Any], tier: str, target: TierTarget
) -> None:
    before, params_before = copy.deepcopy(body), copy.deepcopy(dict(target.params))
    patch = reasoning_patch(body, tier, target)
    assert body == before
    assert dict(target.params) == params_before
    assert patch  # every case here changes something
    assert patched(body, patch) != before


# --- Cerebras: schema cleaning ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({"type": "string", "format": "date-time"},
                     {"type": "string", "description": "(format: date-time)"},
                     id="creates-description"),
        pytest.param({"type": "string", "description": "When it ran.", "format": "date-time"},
                     {"type": "string", "description": "When it ran. (format: date-time)"},
                     id="appends-to-description"),
        pytest.param({"type": "string", "format": "email", "description": "Mail"},
                     {"type": "string", "description": "Mail (format: email)"},
                     id="description-after-format"),
        pytest.param({"type": "string", "minLength": 3, "format": "uri"},
                     {"type": "string", "description": "(minLength: 3; format: uri)"},
                     id="several-keywords"),
        pytest.param({"type": "array", "minItems": 1, "items": {"type": "string"}},
                     {"type": "array", "items": {"type": "string"}, "description": "(minItems: 1)"},
                     id="minItems"),
        pytest.param({"type": "string", "description": "", "minLength": 1},
                     {"type": "string", "description": "(minLength: 1)"},
                     id="empty-description"),
        pytest.param({"type": "string", "maxLength": 9, "pattern": "^a"},
                     {"type": "string", "maxLength": 9, "pattern": "^a"}, id="nothing-to-move"),
        pytest.param(True, True, id="boolean-schema"),
    ],
)
def test_clean_schema(schema: Any, expected: Any) -> None:
    before = copy.deepcopy(schema)
    assert clean_schema(schema) == expected
    assert schema == before


NESTED = {
    "type": "object",
    "description": "Args",
    "properties": {
        "when": {"type": "string", "format": "date"},
        "format": {"type": "string", "enum": ["json", "yaml"]},  # a property named "format"
        "tags": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 2, "description": "tag"},
        },
        "target": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]},
        "one": {"oneOf": [{"type": "string", "format": "ipv4"}]},
        "ref": {"$ref": "#/$defs/Id"},
    },
    "$defs": {"Id": {"type": "string", "format": "uuid"}},
    "additionalProperties": {"type": "string", "format": "email"},
    "required": ["when", "format"],
}
NESTED_CLEAN = {
    "type": "object",
    "description": "Args",
    "properties": {
        "when": {"type": "string", "description": "(format: date)"},
        "format": {"type": "string", "enum": ["json", "yaml"]},
        "tags": {
            "type": "array",
            "items": {"type": "string", "description": "tag (minLength: 2)"},
            "description": "(minItems: 1)",
        },
        "target": {"anyOf": [{"type": "string", "description": "(format: uri)"},
                             {"type": "null"}]},
        "one": {"oneOf": [{"type": "string", "description": "(format: ipv4)"}]},
        "ref": {"$ref": "#/$defs/Id"},
    },
    "$defs": {"Id": {"type": "string", "description": "(format: uuid)"}},
    "additionalProperties": {"type": "string", "description": "(format: email)"},
    "required": ["when", "format"],
}


def test_clean_schema_nested() -> None:
    before = copy.deepcopy(NESTED)
    assert clean_schema(NESTED) == NESTED_CLEAN
    assert before == NESTED


CEREBRAS = Adapter(cerebras=True)
CEREBRAS_OR = Adapter(cerebras=True, openrouter=True)


@pytest.mark.parametrize("adapter", [CEREBRAS, CEREBRAS_OR], ids=["direct", "openrouter"])
def test_cerebras_cleans_anthropic_tools(adapter: Adapter) -> None:
    body = {"model": "m", "tools": [
        {"name": "Plan", "description": "plan", "input_schema": NESTED},
        {"type": "web_search_20250305", "name": "web_search"},
    ]}
    before = copy.deepcopy(body)
    patch = adapter_patch(body, adapter)
    assert patch["tools"] == [
        {"name": "Plan", "description": "plan", "input_schema": NESTED_CLEAN},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    assert body == before


@pytest.mark.parametrize("adapter", [CEREBRAS, CEREBRAS_OR], ids=["direct", "openrouter"])
def test_cerebras_cleans_openai_tools(adapter: Adapter) -> None:
    body = {"model": "m", "tools": [
        {"type": "function", "function": {"name": "plan", "description": "plan",
                                          "parameters": NESTED, "strict": True}},
        {"type": "function", "function": {"name": "noargs"}},
    ]}
    before = copy.deepcopy(body)
    patch = adapter_patch(body, adapter)
    assert patch["tools"] == [
        {"type": "function", "function": {"name": "plan", "description": "plan",
                                          "parameters": NESTED_CLEAN, "strict": True}},
        {"type": "function", "function": {"name": "noargs"}},
    ]
    assert body == before


# --- Cerebras reached directly: no streaming, plain-text content -----------------------------

AGENT_BODY: dict[str, Any] = {
    "model": "claude-opus-4-8",
    "stream": True,
    "system": [
        {"type": "text", "text": "You are Claude Code."},
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "list the files"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "secret", "signature": "sig"},
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "toolu_01ABC", "name": "Bash",
             "input": {"command": "ls -la"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01ABC",
             "content": "README.md\nsetup.py"},
            {"type": "tool_result", "tool_use_id": "toolu_02DEF", "is_error": True,
             "content": [{"type": "text", "text": "permission denied"}]},
            {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        ]},
        {"role": "user", "content": "plain string stays"},
    ],
}


def test_cerebras_direct_plain_text_and_no_stream() -> None:
    before = copy.deepcopy(AGENT_BODY)
    patch = adapter_patch(AGENT_BODY, CEREBRAS)
    assert AGENT_BODY == before
    assert patch["stream"] is False
    assert patch["system"] == "You are Claude Code.\nBe brief."
    messages = patch["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "user"]
    assert all(isinstance(m["content"], str) for m in messages)
    assert messages[0]["content"] == "list the files"
    assistant = messages[1]["content"]
    assert "secret" not in assistant  # thinking blocks are dropped
    assert "Listing." in assistant
    assert "Bash" in assistant and "toolu_01ABC" in assistant and "ls -la" in assistant
    assert assistant == 'Listing.\n[tool_use Bash id=toolu_01ABC] {"command": "ls -la"}'
    results = messages[2]["content"]
    assert "toolu_01ABC" in results and "README.md\nsetup.py" in results
    assert "toolu_02DEF" in results and "permission denied" in results
    assert results == (
        "[tool_result id=toolu_01ABC] README.md\nsetup.py\n"
        "[tool_result error id=toolu_02DEF] permission denied\n"
        "[image omitted]"
    )
    assert messages[3] == {"role": "user", "content": "plain string stays"}
    out = patched(AGENT_BODY, patch)
    assert out["stream"] is False and out["model"] == "claude-opus-4-8"


def test_cerebras_direct_openai_messages() -> None:
    body = {"model": "gpt-5", "stream": True, "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]}
    patch = adapter_patch(body, CEREBRAS)
    assert patch["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "a\nb\n[image_url omitted]"},
        body["messages"][2],
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    assert "system" not in patch
    assert patch["stream"] is False


@pytest.mark.parametrize("stream", [False, None], ids=["false", "absent"])
def test_cerebras_direct_leaves_non_streaming_alone(stream: bool | None) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [], "system": "s"}
    if stream is not None:
        body["stream"] = stream
    assert adapter_patch(body, CEREBRAS) == {"messages": []}


def test_cerebras_through_openrouter_keeps_streaming_and_content() -> None:
    body = copy.deepcopy(AGENT_BODY)
    body["tools"] = [{"name": "T", "input_schema": {"type": "string", "format": "uri"}}]
    patch = adapter_patch(body, CEREBRAS_OR)
    assert patch == {"tools": [{"name": "T", "input_schema": {"type": "string",
                                                             "description": "(format: uri)"}}]}
    out = patched(body, patch)
    assert out["stream"] is True
    assert out["messages"] == AGENT_BODY["messages"]
    assert out["system"] == AGENT_BODY["system"]


@pytest.mark.parametrize(
    "adapter",
    [Adapter(), Adapter(openrouter=True)],
    ids=["plain", "openrouter-without-cerebras"],
)
def test_not_cerebras_is_empty(adapter: Adapter) -> None:
    body = copy.deepcopy(AGENT_BODY)
    body["tools"] = [{"name": "T", "input_schema": {"type": "string", "format": "uri"}}]
    assert adapter_patch(body, adapter) == {}


def test_cerebras_without_tools_or_messages() -> None:
    assert adapter_patch({"model": "m"}, CEREBRAS) == {}
    assert adapter_patch({"model": "m", "tools": "bad", "messages": "bad"}, CEREBRAS) == {}


# --- effort at every depth (Claude Code 2.1.328's per-turn effort) ---------------------------------

def body_328(effort: str = "high") -> dict[str, Any]:
    return {
        "model": "claude-opus-5-5", "thinking": {"type": "adaptive", "display": "updates"},
        "output_config": {"effort": effort, "task_budget": {"type": "tokens", "total": 9}},
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "system", "content": [], "output_config": {"effort": "low"}},
            {"role": "user", "content": "b"},
            {"role": "system", "content": [], "output_config": {"effort": effort, "x": 1}},
        ],
    }


def _efforts(body: dict[str, Any]) -> list[Any]:
    found = [body.get("output_config", {}).get("effort")]
    return found + [m.get("output_config", {}).get("effort") for m in body["messages"]]


def test_none_tier_removes_the_effort_at_every_depth() -> None:
    body = body_328()
    sent = patched(body, reasoning_patch(body, "none", TierTarget("none-reasoning")))
    assert _efforts(sent) == [None] * 5
    assert sent["thinking"] == {"type": "disabled"}
    assert sent["output_config"] == {"task_budget": {"type": "tokens", "total": 9}}
    assert sent["messages"][1] == {"role": "system", "content": []}
    assert sent["messages"][3] == {"role": "system", "content": [], "output_config": {"x": 1}}
    assert body == body_328()  # the client's body is not mutated


def test_params_rewrite_the_effort_at_every_depth_and_keep_display() -> None:
    body = body_328()
    params = TierTarget("low-reasoning", {"output_config": {"effort": "low"},
                                          "thinking": {"type": "adaptive"}})
    sent = patched(body, reasoning_patch(body, "low", params))
    assert _efforts(sent) == ["low", None, "low", None, "low"]
    assert sent["thinking"] == {"type": "adaptive", "display": "updates"}


def test_params_without_an_effort_remove_the_message_level_ones() -> None:
    body = body_328()
    sent = patched(body, reasoning_patch(body, "low",
                                         TierTarget("low-reasoning", {"reasoning_effort": "low"})))
    assert _efforts(sent) == [None] * 5 and sent["reasoning_effort"] == "low"


def test_a_tier_without_params_keeps_every_effort() -> None:
    body = body_328()
    assert reasoning_patch(body, "high", TierTarget("high-reasoning")) == {}
