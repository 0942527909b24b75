"""Who sent a request (session, subagent, client), caps and presets: the pure core."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.core.detect import Strength
from callbacks.core.policy import Decision, decide
from callbacks.core.sessions import is_subagent, who_sent
from callbacks.core.state import (
    TIERS,
    Preset,
    State,
    StateError,
    TierTarget,
    parse_state,
    state_to_dict,
)
from callbacks.stores.statefile import parse_state_text

SESSION = "2f4c1e9a-7b3d-4c2e-9f10-5a6b7c8d9e0f"
AGENT = "a1b2c3d4e5f6a7b8c"
USER_ID = json.dumps({"device_id": "f" * 64, "account_uuid": "", "session_id": SESSION})
BILLING = "x-anthropic-billing-header: cc_version=2.1.328; cc_entrypoint=cli; cc_is_subagent=true;"


def with_headers(headers: dict[str, str], **body: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-8", **body,
            "proxy_server_request": {"headers": headers, "body": dict(body)}}


# --- who sent it ------------------------------------------------------------------------------


@pytest.mark.parametrize("data,expected", [
    pytest.param(with_headers({"x-claude-code-session-id": SESSION,
                               "user-agent": "claude-cli/2.1.328 (external, cli)"}),
                 {"session": SESSION, "agent": None, "client": "claude-cli/2.1.328"},
                 id="claude-code-header"),
    pytest.param(with_headers({"X-Claude-Code-Session-Id": SESSION,
                               "User-Agent": "claude-cli/2.1.197 (external, sdk-cli)"}),
                 {"session": SESSION, "agent": None, "client": "claude-cli/2.1.197"},
                 id="header-names-in-any-case"),
    pytest.param(with_headers({}, metadata={"user_id": USER_ID}),
                 {"session": SESSION, "agent": None, "client": None},
                 id="metadata-user-id-json"),
    pytest.param({"model": "m", "metadata": {"user_id": USER_ID}},
                 {"session": SESSION, "agent": None, "client": None},
                 id="metadata-without-proxy-copy"),
    pytest.param(with_headers({"x-claude-code-session-id": SESSION,
                               "x-claude-code-agent-id": AGENT},
                              system=[{"type": "text", "text": BILLING}]),
                 {"session": SESSION, "agent": AGENT, "client": None},
                 id="subagent"),
    pytest.param(with_headers({"user-agent": "OpenAI/Python 1.99.0"}, user="alice-session"),
                 {"session": "alice-session", "agent": None, "client": "OpenAI/Python 1.99.0"},
                 id="openai-user"),
    pytest.param(with_headers({"x-session-id": "opencode-1234"}),
                 {"session": "opencode-1234", "agent": None, "client": None},
                 id="generic-session-header"),
    pytest.param({"model": "m"}, {"session": None, "agent": None, "client": None},
                 id="anonymous"),
    pytest.param(with_headers({}, metadata={"user_id": "{not json"}),
                 {"session": None, "agent": None, "client": None}, id="user-id-not-json"),
    pytest.param(with_headers({}, metadata={"user_id": "plain-user"}),
                 {"session": None, "agent": None, "client": None}, id="user-id-not-a-session"),
    pytest.param({"proxy_server_request": "nonsense", "metadata": [1], "user": 5},
                 {"session": None, "agent": None, "client": None}, id="malformed"),
])
def test_who_sent(data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert who_sent(data) == expected


def test_the_header_wins_over_metadata() -> None:
    data = with_headers({"x-claude-code-session-id": "from-header"}, metadata={"user_id": USER_ID})
    assert who_sent(data)["session"] == "from-header"


def test_long_values_are_cut() -> None:
    assert len(who_sent(with_headers({"x-session-id": "s" * 1000}))["session"] or "") == 100


@pytest.mark.parametrize("data,subagent", [
    pytest.param(with_headers({"x-claude-code-agent-id": AGENT}), True, id="agent-header"),
    pytest.param({"system": [{"type": "text", "text": BILLING}, {"type": "text", "text": "x"}]},
                 True, id="system-0-mark"),
    pytest.param({"system": BILLING}, True, id="system-string"),
    pytest.param({"system": [{"type": "text", "text": "x"}, {"type": "text", "text": BILLING}]},
                 False, id="mark-not-in-system-0"),
    pytest.param(with_headers({"x-claude-code-session-id": SESSION}), False, id="main-agent"),
    pytest.param({"system": [None]}, False, id="malformed"),
])
def test_is_subagent(data: dict[str, Any], subagent: bool) -> None:
    assert is_subagent(data) is subagent


# --- caps ---------------------------------------------------------------------------------------


def strength(tier: str) -> Strength:
    return Strength(tier, "output_config.effort", tier, "effort")  # type: ignore[arg-type]


CAPPED = replace(State(), caps={"subagent": "low", "claude-haiku-*": "none"})


@pytest.mark.parametrize("model,subagent,detected,expected", [
    ("claude-opus-4-8", True, "high", Decision("routed", "low", "low-reasoning", "subagent")),
    ("claude-opus-4-8", True, "low", Decision("routed", "low", "low-reasoning")),
    ("claude-opus-4-8", True, "none", Decision("routed", "none", "none-reasoning")),
    ("claude-opus-4-8", False, "high", Decision("routed", "high", "high-reasoning")),
    ("claude-haiku-4-5-20251001", False, "medium",
     Decision("routed", "none", "none-reasoning", "claude-haiku-*")),
    # both apply: the lowest cap wins
    ("claude-haiku-4-5-20251001", True, "high",
     Decision("routed", "none", "none-reasoning", "claude-haiku-*")),
])
def test_a_cap_is_the_highest_tier(model: str, subagent: bool, detected: str,
                                   expected: Decision) -> None:
    assert decide(CAPPED, model, strength(detected), subagent) == expected


@pytest.mark.parametrize("pin", TIERS)
def test_a_cap_holds_even_when_pinned(pin: str) -> None:
    state = replace(CAPPED, pin=pin)
    decision = decide(state, "claude-opus-4-8", strength("none"), subagent=True)
    expected = pin if TIERS.index(pin) <= TIERS.index("low") else "low"
    assert decision.tier == expected and decision.reason == "pinned"
    assert decision.capped == (None if expected == pin else "subagent")


def test_caps_do_not_touch_requests_that_pass_through() -> None:
    assert decide(replace(CAPPED, routing=False), "claude-haiku-4-5", strength("high"), True) \
        == Decision("routing_off", None, None)
    assert decide(CAPPED, "gpt-5-mini", strength("high"), True) == Decision("not_routed", None, None)


def test_caps_parse_and_round_trip() -> None:
    state = parse_state_text("version: 1\ncaps: {subagent: low, 'claude-haiku-*': none}\n")
    assert state.caps == {"subagent": "low", "claude-haiku-*": "none"}
    assert parse_state(state_to_dict(state)) == state
    assert state_to_dict(State())["caps"] == {}


@pytest.mark.parametrize("text,message", [
    ("caps: {subagent: extreme}", "caps.subagent: 'extreme' is not valid; expected one of none"),
    ("caps: {subagent: off}", "caps.subagent: False is not valid"),
    ("caps: [low]", "caps: ['low'] is not valid; expected a mapping"),
    ("caps: {'': low}", "caps: '' is not valid"),
])
def test_bad_caps_are_refused_with_the_key(text: str, message: str) -> None:
    with pytest.raises(StateError) as exc:
        parse_state_text("version: 1\n" + text + "\n")
    assert message in str(exc.value)


# --- presets ------------------------------------------------------------------------------------


def test_presets_parse_apply_and_round_trip() -> None:
    state = parse_state_text("""version: 1
presets:
  cheap:
    tiers: {medium: fast-coder, high: {model: medium-reasoning, params: {reasoning_effort: low}}}
    pin: off
    caps: {subagent: none}
  focus: {pin: high}
""")
    assert state.presets["cheap"] == Preset(
        tiers={"medium": TierTarget("fast-coder"),
               "high": TierTarget("medium-reasoning", {"reasoning_effort": "low"})},
        pin=None, caps={"subagent": "none"})
    assert parse_state(state_to_dict(state)) == state
    pinned = replace(state, pin="low", caps={"subagent": "medium"})
    used = pinned.with_preset("cheap")
    assert used.tiers["medium"].model == "fast-coder"
    assert used.tiers["low"].model == "low-reasoning"  # not named: kept
    assert used.pin is None and used.caps == {"subagent": "none"}
    focus = used.with_preset("focus")
    assert focus.pin == "high" and focus.caps == {} and focus.tiers == used.tiers


def test_as_preset_then_use_gives_the_same_mapping() -> None:
    state = replace(CAPPED, pin="medium").with_tier_model("low", "fast-coder")
    saved = replace(State(), presets={"mine": state.as_preset()})
    assert saved.with_preset("mine").tiers == state.tiers
    assert saved.with_preset("mine").caps == state.caps


def test_an_unknown_preset_names_the_known_ones() -> None:
    state = replace(State(), presets={"cheap": Preset(), "focus": Preset(pin="high")})
    with pytest.raises(StateError, match="no preset 'fast' \\(known: cheap, focus\\)"):
        state.with_preset("fast")


@pytest.mark.parametrize("text,message", [
    ("presets: {cheap: {tiers: {ultra: x}}}", "presets.cheap.tiers.ultra: unknown key"),
    ("presets: {cheap: {pin: extreme}}", "presets.cheap.pin: 'extreme' is not valid"),
    ("presets: {cheap: {caps: {subagent: 3}}}", "presets.cheap.caps.subagent: 3 is not valid"),
    ("presets: {cheap: {colour: red}}", "presets.cheap.colour: unknown key"),
    ("presets: {cheap: fast-coder}", "presets.cheap: 'fast-coder' is not valid; expected a mapping"),
])
def test_bad_presets_are_refused_with_the_key(text: str, message: str) -> None:
    with pytest.raises(StateError) as exc:
        parse_state_text("version: 1\n" + text + "\n")
    assert message in str(exc.value)


names = st.from_regex(r"[a-z0-9][a-z0-9*._/-]{0,15}", fullmatch=True)
caps = st.dictionaries(names, st.sampled_from(TIERS), max_size=3)
presets = st.dictionaries(names, st.builds(
    Preset,
    tiers=st.dictionaries(st.sampled_from(TIERS), st.builds(TierTarget, names), max_size=4),
    pin=st.none() | st.sampled_from(TIERS),
    caps=caps,
), max_size=3)


@settings(max_examples=100, deadline=None)
@given(caps=caps, presets=presets)
def test_caps_and_presets_round_trip(caps: dict[str, Any], presets: dict[str, Preset]) -> None:
    state = replace(State(), caps=caps, presets=presets)
    assert parse_state(state_to_dict(state)) == state
