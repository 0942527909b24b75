"""Strength detection: every Claude Code request shape, every precedence rule, malformed input."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbacks.core.detect import ULTRATHINK, Strength, detect_strength
from callbacks.core.state import TIERS, Detection, parse_state

DEFAULT = Detection()
ORDER = {tier: i for i, tier in enumerate(TIERS)}


def cc_body(
    model: str = "claude-opus-4-8",
    thinking: dict[str, Any] | None = None,
    effort: str | None = None,
    prompt: str = "fix the failing test",
    **extra: Any,
) -> dict[str, Any]:
    """A main request as Claude Code 2.1.x sends it to /v1/messages."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        ],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                    {"type": "text", "text": prompt},
                ],
            }
        ],
        "metadata": {"user_id": "user_abc"},
    }
    if thinking is not None:
        body["thinking"] = thinking
    if effort is not None:
        body["output_config"] = {"effort": effort}
    body.update(extra)
    return body


ADAPTIVE = {"type": "adaptive"}
DISABLED = {"type": "disabled"}


def enabled(budget: Any) -> dict[str, Any]:
    return {"type": "enabled", "budget_tokens": budget}


def check(strength: Strength, tier: str, label: str, rule: str | None = None) -> None:
    assert strength.tier == tier, strength
    assert strength.label == label, strength
    if rule is not None:
        assert strength.rule == rule, strength


# --- every row of the "Mapping observed" table of claude-code-requests.md -----------------------

CLAUDE_CODE_ROWS = [
    pytest.param(cc_body(thinking=ADAPTIVE, effort="high"),
                 "high", "output_config.effort=high", "effort", id="default-opus-adaptive-high"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="high", prompt="think harder about this"),
                 "high", "output_config.effort=high", "effort",
                 id="think-harder-keyword-no-change"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="low"),
                 "low", "output_config.effort=low", "effort", id="effort-flag-low"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="medium"),
                 "medium", "output_config.effort=medium", "effort", id="effort-flag-medium"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="high"),
                 "high", "output_config.effort=high", "effort", id="effort-flag-high"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="xhigh"),
                 "high", "output_config.effort=xhigh", "effort", id="effort-flag-xhigh"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="max"),
                 "high", "output_config.effort=max", "effort", id="effort-flag-max"),
    pytest.param(cc_body(thinking=ADAPTIVE),
                 "high", "thinking.type=adaptive", "adaptive", id="effort-level-auto-absent"),
    pytest.param(cc_body(thinking=DISABLED, effort="high"),
                 "none", "thinking.type=disabled", "disabled", id="max-thinking-tokens-0"),
    pytest.param(cc_body(effort="high"),
                 "none", "default", "default", id="disable-thinking-1-thinking-absent"),
    pytest.param(cc_body(model="claude-sonnet-5", thinking=ADAPTIVE, effort="high"),
                 "high", "output_config.effort=high", "effort", id="model-sonnet-5"),
    pytest.param(cc_body(model="claude-sonnet-4-6", thinking=ADAPTIVE, effort="high"),
                 "high", "output_config.effort=high", "effort", id="sonnet-4-6-xhigh-sent-as-high"),
    pytest.param(cc_body(model="claude-sonnet-4-5-20250929", thinking=enabled(1024)),
                 "low", "thinking.budget_tokens=1024", "budget", id="sonnet-4-5-budget-1024"),
    pytest.param(cc_body(model="claude-sonnet-4-5-20250929", thinking=enabled(8000)),
                 "medium", "thinking.budget_tokens=8000", "budget", id="sonnet-4-5-budget-8000"),
    pytest.param(cc_body(model="claude-sonnet-4-5-20250929", thinking=enabled(31999)),
                 "high", "thinking.budget_tokens=31999", "budget", id="sonnet-4-5-budget-31999"),
    pytest.param(cc_body(model="claude-sonnet-4-5-20250929", thinking=enabled(31999)),
                 "high", "thinking.budget_tokens=31999", "budget", id="sonnet-4-5-default"),
    pytest.param(cc_body(model="claude-haiku-4-5-20251001", thinking=enabled(31999)),
                 "high", "thinking.budget_tokens=31999", "budget", id="haiku-4-5-default"),
    pytest.param(cc_body(model="claude-haiku-4-5-20251001", thinking=enabled(8000)),
                 "medium", "thinking.budget_tokens=8000", "budget", id="haiku-4-5-budget-8000"),
    pytest.param(cc_body(model="claude-sonnet-4-5-20250929", thinking=enabled(7999)),
                 "low", "thinking.budget_tokens=7999", "budget", id="max-output-tokens-8000"),
    pytest.param(cc_body(model="claude-sonnet-4-6", thinking=enabled(31999), effort="high"),
                 "high", "output_config.effort=high", "effort",
                 id="disable-adaptive-sonnet-4-6-effort-and-budget"),
]


@pytest.mark.parametrize(("body", "tier", "label", "rule"), CLAUDE_CODE_ROWS)
def test_claude_code_mapping_table(body: dict[str, Any], tier: str, label: str, rule: str) -> None:
    check(detect_strength(body, DEFAULT), tier, label, rule)


@pytest.mark.parametrize(("body", "tier", "label", "rule"), CLAUDE_CODE_ROWS)
def test_resent_without_stream_gives_same_verdict(
    body: dict[str, Any], tier: str, label: str, rule: str
) -> None:
    """A broken stream is retried with the same body minus ``stream``: same verdict."""
    body = {k: v for k, v in body.items() if k != "stream"}
    check(detect_strength(body, DEFAULT), tier, label, rule)


def test_thinking_off_with_effort_records_why_effort_was_ignored() -> None:
    s = detect_strength(cc_body(effort="high"), DEFAULT)
    assert s.tier == "none"
    assert s.notes == ("output_config.effort='high' ignored: thinking is off",)


def test_thinking_extra_keys_are_accepted() -> None:
    body = cc_body(thinking={"type": "adaptive", "display": "summarized"}, effort="medium")
    check(detect_strength(body, DEFAULT), "medium", "output_config.effort=medium", "effort")
    body = cc_body(thinking={"type": "adaptive", "display": "summarized"})
    check(detect_strength(body, DEFAULT), "high", "thinking.type=adaptive", "adaptive")


def test_output_config_format_next_to_effort_does_not_matter() -> None:
    body = cc_body(thinking=ADAPTIVE)
    body["output_config"] = {"effort": "low", "format": {"type": "json_schema", "schema": {}}}
    check(detect_strength(body, DEFAULT), "low", "output_config.effort=low", "effort")
    body["output_config"] = {"format": {"type": "json_schema", "schema": {}}}
    check(detect_strength(body, DEFAULT), "high", "thinking.type=adaptive", "adaptive")


def test_effort_word_is_case_and_space_insensitive_and_value_kept_as_sent() -> None:
    s = detect_strength(cc_body(thinking=ADAPTIVE, effort=" Medium "), DEFAULT)
    assert (s.tier, s.signal, s.value) == ("medium", "output_config.effort", " Medium ")


# --- background requests: the session title --------------------------------------------------

TITLE_FORMAT = {"type": "json_schema", "schema": {"type": "object", "properties": {}}}


def title_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 512,
        "stream": True,
        "tools": [],
        "messages": [{"role": "user", "content": "fix the failing test"}],
        "thinking": {"type": "disabled"},
        "output_config": {"effort": "high", "format": TITLE_FORMAT},
    }
    body.update(extra)
    return body


TITLE_ROWS = [
    pytest.param(title_body(), "none", "thinking.type=disabled", id="title-main-model"),
    pytest.param(
        title_body(messages=[{"role": "user", "content": "ultrathink: refactor the parser"}]),
        "none", "thinking.type=disabled", id="title-with-ultrathink-prompt-stays-none",
    ),
    pytest.param(
        title_body(model="claude-haiku-4-5-20251001", temperature=1,
                   output_config={"format": TITLE_FORMAT}),
        "none", "thinking.type=disabled", id="title-haiku-no-effort",
    ),
    pytest.param(
        {k: v for k, v in title_body(model="claude-haiku-4-5-20251001", temperature=1,
                                     output_config={"format": TITLE_FORMAT}).items()
         if k != "thinking"},
        "none", "default", id="title-haiku-no-thinking-key",
    ),
]


@pytest.mark.parametrize(("body", "tier", "label"), TITLE_ROWS)
def test_title_request(body: dict[str, Any], tier: str, label: str) -> None:
    check(detect_strength(body, DEFAULT), tier, label)


# --- OpenAI-format clients ---------------------------------------------------------------------

OPENAI_ROWS = [
    *(
        pytest.param({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}],
                      "reasoning_effort": word}, tier, f"reasoning_effort={word}",
                     "reasoning_effort", id=f"chat-reasoning_effort-{word}")
        for word, tier in [("minimal", "low"), ("low", "low"), ("medium", "medium"),
                           ("high", "high"), ("none", "none"), ("xhigh", "high")]
    ),
    *(
        pytest.param({"model": "gpt-5", "input": "hi", "reasoning": {"effort": word}},
                     tier, f"reasoning.effort={word}", "reasoning_effort",
                     id=f"responses-reasoning.effort-{word}")
        for word, tier in [("minimal", "low"), ("low", "low"), ("medium", "medium"),
                           ("high", "high"), ("none", "none")]
    ),
    pytest.param({"model": "gpt-5", "input": "hi", "reasoning": {"summary": "auto"}},
                 "medium", "reasoning.effort=absent", "responses_default",
                 id="responses-reasoning-without-effort"),
    pytest.param({"model": "gpt-5.5", "input": [{"role": "user", "content": "hi"}]},
                 "medium", "reasoning.effort=absent", "responses_default",
                 id="responses-no-reasoning-codex-default"),
    pytest.param({"model": "gpt-5.5", "input": "hi", "reasoning": {"effort": "xhigh"}},
                 "high", "reasoning.effort=xhigh", "reasoning_effort", id="responses-xhigh"),
    pytest.param({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]},
                 "none", "default", "default", id="chat-no-reasoning"),
    pytest.param({"model": "gpt-5", "messages": [], "reasoning_effort": "low",
                  "reasoning": {"effort": "high"}},
                 "low", "reasoning_effort=low", "reasoning_effort",
                 id="chat-field-beats-responses-field"),
]


@pytest.mark.parametrize(("body", "tier", "label", "rule"), OPENAI_ROWS)
def test_openai_format_clients(body: dict[str, Any], tier: str, label: str, rule: str) -> None:
    check(detect_strength(body, DEFAULT), tier, label, rule)


# --- every precedence branch of detect.py's docstring ----------------------------------------

PRECEDENCE_ROWS = [
    # 1. thinking disabled beats everything
    pytest.param(cc_body(thinking=DISABLED, prompt="ultrathink now"),
                 "none", "thinking.type=disabled", "disabled", id="1-disabled-beats-keyword"),
    pytest.param(cc_body(thinking=DISABLED, reasoning_effort="high"),
                 "none", "thinking.type=disabled", "disabled",
                 id="1-disabled-beats-reasoning_effort"),
    pytest.param(cc_body(thinking=DISABLED, reasoning={"effort": "high"}),
                 "none", "thinking.type=disabled", "disabled",
                 id="1-disabled-beats-reasoning.effort"),
    pytest.param(cc_body(thinking=DISABLED, effort="max"),
                 "none", "thinking.type=disabled", "disabled", id="1-disabled-beats-effort"),
    pytest.param(cc_body(thinking={"type": "disabled", "budget_tokens": 31999}),
                 "none", "thinking.type=disabled", "disabled", id="1-disabled-beats-budget"),
    # 2. keyword beats OpenAI effort, Anthropic effort, budgets, default
    pytest.param(cc_body(thinking=ADAPTIVE, effort="low", prompt="ultrathink: refactor"),
                 "high", "keyword=ultrathink", "keyword", id="2-keyword-beats-effort"),
    pytest.param(cc_body(thinking=enabled(1024), prompt="please ultrathink"),
                 "high", "keyword=ultrathink", "keyword", id="2-keyword-beats-budget"),
    pytest.param(cc_body(reasoning_effort="minimal", prompt="ultrathink"),
                 "high", "keyword=ultrathink", "keyword", id="2-keyword-beats-reasoning_effort"),
    pytest.param(cc_body(prompt="ULTRATHINK about it"),
                 "high", "keyword=ultrathink", "keyword", id="2-keyword-beats-default-any-case"),
    # 3. OpenAI effort beats Anthropic effort and budget
    pytest.param(cc_body(thinking=ADAPTIVE, effort="high", reasoning_effort="low"),
                 "low", "reasoning_effort=low", "reasoning_effort",
                 id="3-reasoning_effort-beats-effort"),
    pytest.param(cc_body(thinking=enabled(31999), reasoning_effort="medium"),
                 "medium", "reasoning_effort=medium", "reasoning_effort",
                 id="3-reasoning_effort-beats-budget"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="high", reasoning={"effort": "minimal"}),
                 "low", "reasoning.effort=minimal", "reasoning_effort",
                 id="3-reasoning.effort-beats-effort"),
    pytest.param(cc_body(reasoning_effort="turbo", reasoning={"effort": "medium"}),
                 "medium", "reasoning.effort=medium", "reasoning_effort",
                 id="3-unknown-reasoning_effort-falls-to-reasoning.effort"),
    pytest.param(cc_body(reasoning_effort=None, thinking=ADAPTIVE, effort="low"),
                 "low", "output_config.effort=low", "effort",
                 id="3-null-reasoning_effort-is-absent"),
    # 4. output_config.effort needs thinking on; beats the budget
    pytest.param(cc_body(thinking=enabled(1024), effort="high"),
                 "high", "output_config.effort=high", "effort", id="4-effort-beats-low-budget"),
    pytest.param(cc_body(thinking=enabled(31999), effort="low"),
                 "low", "output_config.effort=low", "effort", id="4-effort-beats-high-budget"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="medium"),
                 "medium", "output_config.effort=medium", "effort", id="4-effort-with-adaptive"),
    pytest.param(cc_body(effort="low"),
                 "none", "default", "default", id="4-effort-ignored-without-thinking"),
    # 5. budget thresholds (defaults: < 8000 low, < 16000 medium, else high)
    *(
        pytest.param(cc_body(thinking=enabled(b)), tier, f"thinking.budget_tokens={b}", "budget",
                     id=f"5-budget-{b}")
        for b, tier in [(0, "low"), (1, "low"), (128, "low"), (7999, "low"), (8000, "medium"),
                        (15999, "medium"), (16000, "high"), (10**9, "high")]
    ),
    # 6. adaptive without effort
    pytest.param(cc_body(thinking=ADAPTIVE), "high", "thinking.type=adaptive", "adaptive",
                 id="6-adaptive-without-effort"),
    # 7. default
    pytest.param({}, "none", "default", "default", id="7-empty-body"),
    pytest.param(cc_body(), "none", "default", "default", id="7-no-reasoning-fields"),
    pytest.param(cc_body(thinking={"type": "enabled"}), "none", "default", "default",
                 id="7-enabled-without-budget"),
]


@pytest.mark.parametrize(("body", "tier", "label", "rule"), PRECEDENCE_ROWS)
def test_precedence(body: dict[str, Any], tier: str, label: str, rule: str) -> None:
    check(detect_strength(body, DEFAULT), tier, label, rule)


# --- custom settings -------------------------------------------------------------------------

CUSTOM_THRESHOLDS = Detection(low_below=1000, medium_below=5000)


@pytest.mark.parametrize(
    ("budget", "tier"),
    [
        pytest.param(999, "low", id="999-low"),
        pytest.param(1000, "medium", id="1000-medium"),
        pytest.param(4999, "medium", id="4999-medium"),
        pytest.param(5000, "high", id="5000-high"),
        pytest.param(8000, "high", id="8000-high-not-default-medium"),
    ],
)
def test_custom_thresholds(budget: int, tier: str) -> None:
    s = detect_strength(cc_body(thinking=enabled(budget)), CUSTOM_THRESHOLDS)
    check(s, tier, f"thinking.budget_tokens={budget}", "budget")


def test_equal_thresholds_leave_no_medium_band() -> None:
    settings_ = Detection(low_below=4096, medium_below=4096)
    assert detect_strength(cc_body(thinking=enabled(4095)), settings_).tier == "low"
    assert detect_strength(cc_body(thinking=enabled(4096)), settings_).tier == "high"


CUSTOM_EFFORTS = Detection(effort_map={"high": "medium", "low": "none", "turbo": "high"})


@pytest.mark.parametrize(
    ("body", "tier", "label"),
    [
        pytest.param(cc_body(thinking=ADAPTIVE, effort="high"), "medium",
                     "output_config.effort=high", id="remapped-high"),
        pytest.param(cc_body(thinking=ADAPTIVE, effort="low"), "none",
                     "output_config.effort=low", id="remapped-low"),
        pytest.param(cc_body(thinking=ADAPTIVE, effort="turbo"), "high",
                     "output_config.effort=turbo", id="new-word"),
        pytest.param(cc_body(thinking=ADAPTIVE, effort="max"), "high",
                     "output_config.effort=max", id="word-the-map-leaves-out-keeps-its-default"),
        pytest.param(cc_body(thinking=ADAPTIVE, effort="warp"), "high",
                     "thinking.type=adaptive", id="unknown-word-falls-through"),
        pytest.param({"reasoning_effort": "turbo"}, "high", "reasoning_effort=turbo",
                     id="map-applies-to-reasoning_effort"),
        pytest.param({"reasoning": {"effort": "high"}}, "medium", "reasoning.effort=high",
                     id="map-applies-to-reasoning.effort"),
        pytest.param({"reasoning_effort": "medium"}, "medium", "reasoning_effort=medium",
                     id="word-the-map-leaves-out-reasoning_effort"),
        pytest.param({"reasoning_effort": "warp"}, "none", "default",
                     id="unknown-word-reasoning_effort"),
    ],
)
def test_custom_effort_map(body: dict[str, Any], tier: str, label: str) -> None:
    check(detect_strength(body, CUSTOM_EFFORTS), tier, label)


def test_word_missing_from_custom_map_is_noted() -> None:
    s = detect_strength(cc_body(thinking=ADAPTIVE, effort="warp"), CUSTOM_EFFORTS)
    assert s.notes == ("output_config.effort='warp' ignored: not a known effort word",)


# --- the ultrathink keyword ------------------------------------------------------------------

UT_ROWS = [
    pytest.param({"model": "claude-opus-4-8", "messages": [
        {"role": "user", "content": "ultrathink: why does this deadlock?"}]},
        id="anthropic-string-content"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="low", prompt="Ultrathink please"),
                 id="anthropic-block-content"),
    pytest.param({"model": "claude-opus-4-8", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "look at this"},
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        {"type": "text", "text": "and ultrathink"},
    ]}]}, id="anthropic-keyword-in-later-block"),
    pytest.param({"model": "gpt-5", "reasoning_effort": "low", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "ultrathink this"}]}, id="openai-chat-string"),
    pytest.param({"model": "gpt-5", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "ultrathink this"}]}]},
        id="openai-chat-parts"),
    pytest.param({"model": "gpt-5", "input": "ultrathink this"}, id="responses-input-string"),
    pytest.param({"model": "gpt-5", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "ultrathink this"}]}]},
        id="responses-input-list"),
    pytest.param({"model": "claude-opus-4-8", "messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "now ultrathink"},
        {"role": "assistant", "content": "(prefill)"},
    ]}, id="latest-user-turn-before-assistant-prefill"),
]


@pytest.mark.parametrize("body", UT_ROWS)
def test_ultrathink_keyword(body: dict[str, Any]) -> None:
    check(detect_strength(body, DEFAULT), "high", "keyword=ultrathink", "keyword")


@pytest.mark.parametrize("body", UT_ROWS)
def test_ultrathink_keyword_off_in_settings(body: dict[str, Any]) -> None:
    s = detect_strength(body, Detection(ultrathink=False))
    assert s.rule != "keyword"
    assert s.label != "keyword=ultrathink"
    # the same body without the keyword, decided with the keyword rule on
    expected = detect_strength(json.loads(re.sub("(?i)ultrathink", "plain", json.dumps(body))), DEFAULT)
    assert (s.tier, s.label) == (expected.tier, expected.label)


@pytest.mark.parametrize(
    ("body", "tier", "label"),
    [
        pytest.param({"model": "claude-opus-4-8", "thinking": ADAPTIVE,
                      "output_config": {"effort": "low"}, "messages": [
                          {"role": "user", "content": "ultrathink: plan it"},
                          {"role": "assistant", "content": "done"},
                          {"role": "user", "content": "thanks, now rename it"}]},
                     "low", "output_config.effort=low", id="older-user-message"),
        pytest.param({"model": "claude-opus-4-8", "messages": [
            {"role": "user", "content": "ultrathink: plan it"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"cmd": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "a.py"}]}]},
            "none", "default", id="older-user-message-before-tool-result"),
        pytest.param({"model": "gpt-5", "reasoning_effort": "low", "messages": [
            {"role": "user", "content": "ultrathink"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "next"}]},
            "low", "reasoning_effort=low", id="openai-older-user-message"),
        pytest.param({"model": "claude-opus-4-8", "messages": [
            {"role": "assistant", "content": "ultrathink"},
            {"role": "user", "content": "go"}]},
            "none", "default", id="only-in-assistant-message"),
        pytest.param({"model": "claude-opus-4-8", "system": "ultrathink", "messages": [
            {"role": "user", "content": "go"}]},
            "none", "default", id="only-in-system"),
    ],
)
def test_ultrathink_only_counts_in_latest_user_turn(
    body: dict[str, Any], tier: str, label: str
) -> None:
    check(detect_strength(body, DEFAULT), tier, label)


def test_ultrathink_constant() -> None:
    assert ULTRATHINK == "ultrathink"


# --- malformed values: never raise, fall through, and say why ---------------------------------

MALFORMED_ROWS = [
    pytest.param(cc_body(thinking=enabled("8000")), "none", "default",
                 "thinking.budget_tokens='8000' ignored: not a whole number", id="budget-string"),
    pytest.param(cc_body(thinking=enabled(True)), "none", "default",
                 "thinking.budget_tokens=True ignored: not a whole number", id="budget-bool"),
    pytest.param(cc_body(thinking=enabled(8000.5)), "none", "default",
                 "thinking.budget_tokens=8000.5 ignored: not a whole number", id="budget-float"),
    pytest.param(cc_body(thinking=enabled(None)), "none", "default",
                 "thinking.budget_tokens=None ignored: not a whole number", id="budget-null"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort="extreme"), "high", "thinking.type=adaptive",
                 "output_config.effort='extreme' ignored: not a known effort word",
                 id="unknown-effort-word-falls-to-adaptive"),
    pytest.param(cc_body(thinking=enabled(1024), effort="auto"), "low",
                 "thinking.budget_tokens=1024",
                 "output_config.effort='auto' ignored: not a known effort word",
                 id="unknown-effort-word-falls-to-budget"),
    pytest.param(cc_body(thinking=ADAPTIVE, effort=3), "high", "thinking.type=adaptive",  # type: ignore[arg-type]
                 "output_config.effort=3 ignored: not a known effort word",
                 id="effort-number"),
    pytest.param({"reasoning_effort": "turbo"}, "none", "default",
                 "reasoning_effort='turbo' ignored: not a known effort word",
                 id="unknown-reasoning_effort"),
    pytest.param({"reasoning_effort": 2}, "none", "default",
                 "reasoning_effort=2 ignored: not a known effort word",
                 id="reasoning_effort-number"),
    pytest.param({"reasoning": {"effort": ["high"]}}, "none", "default",
                 "reasoning.effort=['high'] ignored: not a known effort word",
                 id="reasoning.effort-list"),
    pytest.param(cc_body(thinking=None, effort="high") | {"thinking": None}, "none", "default",
                 "thinking=None ignored: not a mapping", id="thinking-null"),
    pytest.param(cc_body() | {"thinking": [{"type": "enabled", "budget_tokens": 31999}]},
                 "none", "default",
                 "thinking=[{'type': 'enabled', 'budget_tokens': 31999}] ignored: not a mapping",
                 id="thinking-list"),
    pytest.param(cc_body() | {"thinking": "adaptive"}, "none", "default",
                 "thinking='adaptive' ignored: not a mapping", id="thinking-string"),
    pytest.param(cc_body(thinking={"type": "on"}), "none", "default",
                 "thinking.type='on' ignored: not enabled, disabled or adaptive",
                 id="thinking-unknown-type"),
    pytest.param(cc_body(thinking={"budget_tokens": 31999}), "none", "default",
                 "thinking.type=None ignored: not enabled, disabled or adaptive",
                 id="thinking-without-type"),
    pytest.param(cc_body(thinking=ADAPTIVE) | {"output_config": [{"effort": "low"}]},
                 "high", "thinking.type=adaptive",
                 "output_config=[{'effort': 'low'}] ignored: not a mapping",
                 id="output_config-list"),
    pytest.param(cc_body() | {"reasoning": "high"}, "none", "default",
                 "reasoning='high' ignored: not a mapping", id="reasoning-string"),
    pytest.param(cc_body(thinking=enabled(20000)) | {"reasoning": ["high"]}, "high",
                 "thinking.budget_tokens=20000", "reasoning=['high'] ignored: not a mapping",
                 id="reasoning-list-falls-to-budget"),
]


@pytest.mark.parametrize(("body", "tier", "label", "note"), MALFORMED_ROWS)
def test_malformed_values_fall_through_with_note(
    body: dict[str, Any], tier: str, label: str, note: str
) -> None:
    s = detect_strength(body, DEFAULT)
    check(s, tier, label)
    assert note in s.notes, s.notes


def test_notes_accumulate_in_order() -> None:
    body = {
        "thinking": {"type": "enabled", "budget_tokens": "lots"},
        "reasoning_effort": "turbo",
        "reasoning": "deep",
        "output_config": {"effort": "bogus"},
    }
    s = detect_strength(body, DEFAULT)
    check(s, "none", "default", "default")
    assert s.notes == (
        "reasoning_effort='turbo' ignored: not a known effort word",
        "reasoning='deep' ignored: not a mapping",
        "output_config.effort='bogus' ignored: not a known effort word",
        "thinking.budget_tokens='lots' ignored: not a whole number",
    )


def test_clean_request_has_no_notes() -> None:
    assert detect_strength(cc_body(thinking=ADAPTIVE, effort="medium"), DEFAULT).notes == ()


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param("ultrathink please", id="string"),
        pytest.param({"role": "user", "content": "ultrathink"}, id="mapping"),
        pytest.param(None, id="null"),
        pytest.param(42, id="number"),
    ],
)
def test_messages_not_a_list_falls_through(messages: Any) -> None:
    body = cc_body(thinking=ADAPTIVE, effort="low") | {"messages": messages}
    check(detect_strength(body, DEFAULT), "low", "output_config.effort=low", "effort")
    check(detect_strength({"messages": messages}, DEFAULT), "none", "default", "default")


@pytest.mark.parametrize(
    "messages",
    [pytest.param("ultrathink please", id="string"), pytest.param({"x": 1}, id="mapping")],
)
def test_messages_not_a_list_is_noted(messages: Any) -> None:
    s = detect_strength({"messages": messages}, DEFAULT)
    assert s.tier == "none"
    assert any(note.startswith("messages=") for note in s.notes), s.notes


@pytest.mark.parametrize(
    ("messages", "tier"),
    [
        pytest.param([None, 3, "ultrathink", ["ultrathink"]], "none", id="non-mapping-items"),
        pytest.param([{"role": "user", "content": None}], "none", id="content-null"),
        pytest.param([{"role": "user", "content": {"text": "ultrathink"}}], "none",
                     id="content-mapping"),
        pytest.param([{"role": "user", "content": [None, {"text": 5}, "ultrathink"]}], "none",
                     id="blocks-malformed"),
        pytest.param([{"role": "user", "content": [{"text": "ultrathink"}]}], "high",
                     id="block-without-type"),
        pytest.param([{"content": "ultrathink"}], "none", id="message-without-role"),
    ],
)
def test_malformed_messages(messages: Any, tier: str) -> None:
    assert detect_strength({"messages": messages}, DEFAULT).tier == tier


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    b1=st.integers(min_value=-(10**6), max_value=10**7),
    b2=st.integers(min_value=-(10**6), max_value=10**7),
    low_below=st.integers(min_value=0, max_value=10**6),
    gap=st.integers(min_value=0, max_value=10**6),
)
def test_budget_tier_is_monotonic(b1: int, b2: int, low_below: int, gap: int) -> None:
    b1, b2 = sorted((b1, b2))
    for det in (DEFAULT, Detection(low_below=low_below, medium_below=low_below + gap)):
        s1 = detect_strength({"thinking": enabled(b1)}, det)
        s2 = detect_strength({"thinking": enabled(b2)}, det)
        assert s1.rule == s2.rule == "budget"
        assert s1.tier != "none" and s2.tier != "none"
        assert ORDER[s1.tier] <= ORDER[s2.tier], (b1, s1.tier, b2, s2.tier, det)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["ultrathink", "enabled", "disabled", "adaptive", "user", "low", "high"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
INTERESTING = ["thinking", "output_config", "reasoning_effort", "reasoning", "messages", "input",
               "model", "stream"]
interesting_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.sampled_from(["ultrathink", "enabled", "disabled", "adaptive", "user", "low", "medium",
                       "high", "max", "xhigh", "minimal", "none", "text"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["type", "budget_tokens", "effort", "role", "content", "text", "format"])
        | st.text(max_size=5),
        children,
        max_size=4,
    ),
    max_leaves=20,
)


def _valid(s: Strength) -> None:
    assert s.tier in TIERS
    assert isinstance(s.signal, str) and s.signal
    assert isinstance(s.label, str) and s.label.startswith(s.signal)
    assert s.rule in ("disabled", "keyword", "reasoning_effort", "effort", "budget", "adaptive",
                      "responses_default", "default")
    assert all(isinstance(note, str) for note in s.notes)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_arbitrary_json_bodies_never_raise(body: dict[str, Any]) -> None:
    _valid(detect_strength(body, DEFAULT))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.dictionaries(st.sampled_from(INTERESTING), interesting_values, max_size=8),
    ultrathink=st.booleans(),
)
def test_interesting_bodies_never_raise(body: dict[str, Any], ultrathink: bool) -> None:
    s = detect_strength(body, Detection(ultrathink=ultrathink))
    _valid(s)
    if s.rule == "keyword":
        assert ultrathink and s.tier == "high"
    if s.rule == "disabled":
        assert s.tier == "none" and body["thinking"]["type"] == "disabled"


@pytest.mark.parametrize("budget,tier", [(7999.0, "low"), (9000.0, "medium"), (16000.0, "high")])
def test_a_whole_number_written_as_a_float_is_a_budget(budget: float, tier: str) -> None:
    """JSON has one number type: 9000.0 is the same budget as 9000."""
    strength = detect_strength(cc_body(thinking=enabled(budget)), DEFAULT)
    assert (strength.tier, strength.value, strength.rule) == (tier, str(int(budget)), "budget")


def test_a_partial_effort_map_keeps_the_other_words() -> None:
    """A state file that remaps one effort word leaves the other standard words where they were."""
    settings = parse_state({"version": 1, "detection": {"effort_map": {"xhigh": "medium"}}}).detection
    assert detect_strength(cc_body(thinking=ADAPTIVE, effort="low"), settings).tier == "low"
    assert detect_strength(cc_body(thinking=ADAPTIVE, effort="xhigh"), settings).tier == "medium"


# --- Claude Code 2.1.328 (claude-code-requests.md, "what changed since 2.1.197") -------------------

def cc328(effort: str | None = "medium", *, thinking: dict[str, Any] | None = None,
          turns: tuple[str | None, ...] | None = None, top: bool = True, **extra: Any
          ) -> dict[str, Any]:
    """A 2.1.328 main request: claude-opus-5-5, thinking with ``display``, and a system-role
    message per turn carrying ``output_config.effort`` (older turns keep their values)."""
    extra.setdefault("model", "claude-opus-5-5")
    body = cc_body(max_tokens=128000,
                   thinking=thinking if thinking is not None else
                   {"type": "adaptive", "display": "updates"},
                   effort=effort if top else None, **extra)
    messages = []
    for i, value in enumerate(turns if turns is not None else (effort,)):
        messages.append({"role": "user", "content": [{"type": "text", "text": f"turn {i}"}]})
        messages.append({"role": "system", "content": [],
                         **({"output_config": {"effort": value}} if value else {})})
    body["messages"] = messages + body["messages"]
    return body


ROWS_328 = [
    pytest.param(cc328(), "medium", "output_config.effort=medium", "effort", id="default-medium"),
    pytest.param(cc328(thinking={"type": "adaptive", "display": "omitted"}), "medium",
                 "output_config.effort=medium", "effort", id="print-mode-display-omitted"),
    pytest.param(cc328("high"), "high", "output_config.effort=high", "effort", id="effort-high"),
    pytest.param(cc328("low", top=False), "low", "messages[1].output_config.effort=low", "effort",
                 id="message-level-effort-only"),
    pytest.param(cc328("high", top=False, turns=("low", "medium", "high")), "high",
                 "messages[5].output_config.effort=high", "effort", id="last-message-level-wins"),
    pytest.param(cc328("xhigh", turns=("medium", "xhigh")), "high",
                 "output_config.effort=xhigh", "effort", id="ultrathink-interactive-xhigh"),
    pytest.param(cc328(None, turns=(None,)), "high", "thinking.type=adaptive", "adaptive",
                 id="effort-level-auto"),
    pytest.param(cc328("medium", thinking={"type": "enabled", "budget_tokens": 4000,
                                           "display": "omitted"}, top=False, turns=(None,)),
                 "low", "thinking.budget_tokens=4000", "budget", id="budget-with-display"),
    pytest.param({k: v for k, v in cc328("high").items() if k != "thinking"}, "none", "default",
                 "default", id="disable-thinking-1-effort-stays"),
    pytest.param(cc328("medium", output_config={"effort": "medium",
                                                "task_budget": {"type": "tokens", "total": 9}}),
                 "medium", "output_config.effort=medium", "effort", id="task-budget"),
    pytest.param(cc328("low", stream=False), "low", "output_config.effort=low", "effort",
                 id="stream-retried-as-false"),
    pytest.param(cc328("medium", model="claude-sonnet-5-5"), "medium",
                 "output_config.effort=medium", "effort", id="sonnet-5-5-alias"),
]


@pytest.mark.parametrize(("body", "tier", "label", "rule"), ROWS_328)
def test_claude_code_2_1_328(body: dict[str, Any], tier: str, label: str, rule: str) -> None:
    check(detect_strength(body, DEFAULT), tier, label, rule)


def test_message_level_effort_is_ignored_with_thinking_off_and_noted() -> None:
    body = cc328("high", top=False)
    del body["thinking"]
    strength = detect_strength(body, DEFAULT)
    assert strength.tier == "none"
    assert strength.notes == ("messages[1].output_config.effort='high' ignored: thinking is off",)
