"""Fallback chains and the context guard without a proxy: the state keys, the estimate, the
guard's decision, failure reasons, and how the panel, ``tail`` and the settings show them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from app.panel.model import PanelModel, Request, explain
from app.panel.screens import SettingsScreen
from app.tail import format_request
from callbacks.core.context import CHARS_PER_TOKEN, MEDIA_TOKENS, estimate_tokens, guard
from callbacks.core.fallbacks import failure_reason, fallback_chain, fallback_record
from callbacks.core.state import State, StateError, TierTarget, parse_state, state_to_dict
from callbacks.routing import route_request
from callbacks.stores.eventlog import EVENTS_NAME
from callbacks.stores.statefile import LiveState, StateFile, parse_state_text

from .test_panel import SIZE, T0, cell, panel

# --- the state file -------------------------------------------------------------------------------


def with_tiers(**tiers: Any) -> dict[str, Any]:
    data = state_to_dict(State())
    data["tiers"].update(tiers)
    return data


def test_chains_limits_and_long_context_parse_and_write_back() -> None:
    text = """
version: 1
tiers:
  low: cheap
  medium: {model: mid, fallbacks: [fast, cheap], max_input_tokens: 131072}
  high: {model: big, fallbacks: spare}
long_context: huge
"""
    state = parse_state_text(text)
    assert state.tiers["low"] == TierTarget("cheap")
    assert state.tiers["medium"] == TierTarget("mid", {}, ("fast", "cheap"), 131072)
    assert state.tiers["high"].fallbacks == ("spare",)  # one name is a chain of one
    assert state.long_context == "huge"
    data = state_to_dict(state)
    assert data["tiers"]["low"] == "cheap"  # the plain form stays plain
    assert data["tiers"]["medium"] == {"model": "mid", "fallbacks": ["fast", "cheap"],
                                       "max_input_tokens": 131072}
    assert data["long_context"] == "huge"
    assert parse_state(data) == state


@pytest.mark.parametrize(("data", "words"), [
    (with_tiers(medium={"model": "m", "fallbacks": "x y"}), None),  # one (odd) name: valid
    (with_tiers(medium={"model": "m", "fallbacks": {"a": 1}}),
     ["tiers.medium.fallbacks", "a list of model names"]),
    (with_tiers(medium={"model": "m", "fallbacks": ["a", ""]}),
     ["tiers.medium.fallbacks[1]", "a non-empty model name"]),
    (with_tiers(medium={"model": "m", "fallbacks": ["m"]}),
     ["tiers.medium.fallbacks[0]", "'m'", "another model than the tier's own"]),
    (with_tiers(medium={"model": "m", "fallbacks": ["a", "a"]}),
     ["tiers.medium.fallbacks[1]", "each model once"]),
    (with_tiers(medium={"model": "m", "max_input_tokens": 0}),
     ["tiers.medium.max_input_tokens", "0", "a whole number of tokens >= 1"]),
    (with_tiers(medium={"model": "m", "max_input_tokens": "128k"}),
     ["tiers.medium.max_input_tokens", "'128k'"]),
    (with_tiers(medium={"model": "m", "fallback": ["a"]}),
     ["tiers.medium.fallback: unknown key", "fallbacks", "max_input_tokens"]),
    ({**state_to_dict(State()), "long_context": ["a"]}, ["long_context", "a non-empty model"]),
])
def test_bad_chains_and_limits_are_refused_with_clear_errors(
        data: dict[str, Any], words: list[str] | None) -> None:
    if words is None:
        parse_state(data)
        return
    with pytest.raises(StateError) as raised:
        parse_state(data)
    for word in words:
        assert word in str(raised.value)


def test_remapping_a_tier_to_one_of_its_fallbacks_takes_it_out_of_the_chain() -> None:
    state = State().with_tier_fallbacks("medium", ("fast", "spare"))
    moved = state.with_tier_model("medium", "fast")
    assert moved.tiers["medium"] == TierTarget("fast", {}, ("spare",))
    assert parse_state(state_to_dict(moved)) == moved
    assert moved.with_tier_fallbacks("medium", ()).tiers["medium"] == TierTarget("fast")


# --- the estimate -------------------------------------------------------------------------------


def test_the_estimate_counts_what_a_model_reads() -> None:
    text = "word " * 1000
    plain = estimate_tokens({"messages": [{"role": "user", "content": text}]})
    assert plain == pytest.approx(len(text) / CHARS_PER_TOKEN, rel=0.02)
    # a signature is opaque data, not text the model reads; an image is a fixed cost
    signed = estimate_tokens({"messages": [{"role": "user", "content": text}, {
        "role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "E" + "x" * 5000},
            {"type": "image", "source": {"type": "base64", "data": "A" * 100_000}}]}]})
    assert MEDIA_TOKENS < signed - plain < MEDIA_TOKENS + 20
    # system, tools and the Responses API's input count too; other fields do not
    assert estimate_tokens({"system": text, "max_tokens": 10 ** 6}) == pytest.approx(plain, 5)
    assert estimate_tokens({"tools": [{"description": text}]}) == pytest.approx(plain, 10)
    assert estimate_tokens({"input": [{"role": "user", "content": text}]}) == plain


# --- the guard ----------------------------------------------------------------------------------

def state_with(**limits: int | None) -> State:
    tiers = {t: replace(target, max_input_tokens=limits.get(t))
             for t, target in State().tiers.items()}
    return replace(State(), tiers=tiers)


def known(**limits: int) -> Any:
    return lambda group: limits.get(group.replace("-", "_"))


def test_a_request_that_fits_or_has_no_known_limit_is_left_alone() -> None:
    calls: list[int] = []

    def estimate() -> int:
        calls.append(1)
        return 5000

    assert guard(State(), "low", "low-reasoning", estimate, known()) is None
    assert calls == []  # no limit known: nothing estimated
    assert guard(state_with(low=8000), "low", "low-reasoning", estimate, known()) is None
    # a raw body far below the limit is not even estimated
    calls.clear()
    assert guard(state_with(low=8000), "low", "low-reasoning", estimate, known(),
                 body_bytes=1000) is None
    assert calls == []


def test_a_request_too_long_goes_to_the_nearest_tier_above_that_fits() -> None:
    state = state_with(low=1000, medium=2000)
    moved = guard(state, "low", "low-reasoning", lambda: 5000, known(high_reasoning=8000))
    assert moved == {"estimate": 5000, "limit": 1000, "from": "low-reasoning",
                     "to": "high-reasoning", "tier": "high"}
    # a tier above whose limit is not known is taken to fit
    assert guard(state_with(low=1000), "low", "low-reasoning", lambda: 5000, known()
                 )["to"] == "medium-reasoning"  # type: ignore[index]
    # LiteLLM's model info is the limit when the state sets none
    assert guard(State(), "medium", "medium-reasoning", lambda: 5000,
                 known(medium_reasoning=4000))["to"] == "high-reasoning"  # type: ignore[index]


def test_else_the_long_context_model_else_on_as_asked_with_a_warning() -> None:
    state = state_with(medium=1000, high=2000)
    warned = guard(state, "medium", "medium-reasoning", lambda: 5000, known())
    assert warned is not None and "to" not in warned and warned["limit"] == 1000
    assert "fits no tier above" in warned["warning"]
    state = replace(state, long_context="long-context")
    assert guard(state, "medium", "medium-reasoning", lambda: 5000, known(long_context=10 ** 6)
                 ) == {"estimate": 5000, "limit": 1000, "from": "medium-reasoning",
                       "to": "long-context", "tier": None}
    too_small = guard(state, "high", "high-reasoning", lambda: 5000, known(long_context=3000))
    assert too_small is not None and "warning" in too_small


def test_the_hook_moves_the_request_and_takes_the_new_tiers_chain(tmp_path: Path) -> None:
    state = state_with(low=100).with_tier_fallbacks("low", ("spare-low",)) \
        .with_tier_fallbacks("medium", ("spare-medium",))
    file = StateFile.in_home(tmp_path)
    file.write(state)
    data: dict[str, Any] = {"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
                            "output_config": {"effort": "low"},
                            "messages": [{"role": "user", "content": "x" * 2000}]}
    record = route_request(LiveState(file), data, "/v1/messages")
    assert data["model"] == "medium-reasoning" and record["tier"] == "low"
    assert record["context"]["to"] == "medium-reasoning"
    # the chain of the tier that serves it; no retries first: the chain is the retry
    assert data["fallbacks"] == ["spare-medium"] == record["fallbacks"]
    assert data["num_retries"] == 0
    short = {"model": "claude-opus-4-8", "messages": [{"role": "user", "content": "hi"}],
             "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}
    assert route_request(LiveState(file), short, "/v1/messages")["fallbacks"] == ["spare-low"]
    passed = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert "fallbacks" not in route_request(LiveState(file), passed, "/v1/chat/completions")
    assert "fallbacks" not in passed


# --- chains and failures --------------------------------------------------------------------------

def test_the_chain_is_the_tiers_without_the_target() -> None:
    state = State().with_tier_fallbacks("high", ("a", "b"))
    assert fallback_chain(state, "high", "high-reasoning") == ["a", "b"]
    assert fallback_chain(state, "high", "a") == ["b"]  # e.g. a held loop on a fallback
    assert fallback_chain(state, None, "long-context") == []


@pytest.mark.parametrize(("status", "error_class", "message", "reason"), [
    (429, "RateLimitError", "", "rate_limit"),
    (500, "InternalServerError", '{"type":"overloaded_error","message":"Overloaded"}',
     "overloaded"),
    (503, "ServiceUnavailableError", "", "overloaded"),
    (500, "InternalServerError", "Internal server error", "server_error"),
    (408, "Timeout", "", "timeout"),
    (500, "InternalServerError", "Cannot connect to host 127.0.0.1:9", "connection"),
    (None, "APIConnectionError", "", "connection"),
    (400, "ContextWindowExceededError", "", "context_window"),
    (400, "BadRequestError", "prompt is too long: 5000 tokens > 1000 maximum", "context_window"),
    (400, "BadRequestError", "code: context_length_exceeded", "context_window"),
    (400, "BadRequestError", "Expected `thinking`", "bad_request"),
    (None, "Exception", "", "error"),
])
def test_failure_reasons(status: int | None, error_class: str, message: str,
                         reason: str) -> None:
    assert failure_reason(status, error_class, message) == reason


def test_a_fallback_record_names_the_first_failure_of_the_planned_model() -> None:
    attempts = [{"group": "a", "status_code": 429, "reason": "rate_limit"},
                {"group": "b", "status_code": 500, "reason": "server_error"}]
    assert fallback_record("a", "c", attempts) == {"from": "a", "to": "c",
                                                   "reason": "rate_limit", "status_code": 429}
    assert fallback_record("a", "a", attempts) is None
    assert fallback_record(None, "c", attempts) is None


# --- what the panel and tail show -----------------------------------------------------------------

def fallback_log() -> list[dict[str, Any]]:
    """A medium tier whose model is rate limited: two calls a fallback served, one that failed
    on the whole chain, one that fitted; a low request moved up by the context guard."""
    out: list[dict[str, Any]] = []

    def routed(call_id: str, at: float, tier: str = "medium", **extra: Any) -> None:
        out.append({"v": 1, "type": "routed", "time": at, "call_id": call_id,
                    "client_model": "claude-opus-4-8", "rule": "effort", "value": tier,
                    "strength": tier, "tier": tier, "target": f"{tier}-reasoning",
                    "reason": "routed", "fallbacks": ["fast-coder"], **extra})

    def attempt(at: float) -> dict[str, Any]:
        return {"time": at, "group": "medium-reasoning", "status_code": 429,
                "reason": "rate_limit", "retry_after": 30}

    for i in range(2):
        at = T0 + 40 + i
        routed(f"fb-{i}", at)
        out.append({"v": 1, "type": "done", "time": at + 0.1, "call_id": f"fb-{i}",
                    "model_group": "fast-coder", "status": "ok", "latency_ms": 90.0,
                    "input_tokens": 10, "output_tokens": 5, "cost": None,
                    "fallback": {"from": "medium-reasoning", "to": "fast-coder",
                                 "reason": "rate_limit", "status_code": 429},
                    "attempts": [attempt(at)]})
    routed("chain-failed", T0 + 45)
    out.append({"v": 1, "type": "failed", "time": T0 + 45.1, "call_id": "chain-failed",
                "model_group": "medium-reasoning", "status": "error", "status_code": 429,
                "error_class": "RateLimitError", "message": "rate limited",
                "attempts": [attempt(T0 + 45), {"time": T0 + 45, "group": "fast-coder",
                                                 "status_code": 500, "reason": "overloaded"}]})
    routed("fits", T0 + 46)
    out.append({"v": 1, "type": "done", "time": T0 + 46.1, "call_id": "fits",
                "model_group": "medium-reasoning", "status": "ok", "latency_ms": 50.0})
    routed("bumped", T0 + 47, tier="low", target="medium-reasoning",
           context={"estimate": 150_000, "limit": 131_072, "from": "low-reasoning",
                    "to": "medium-reasoning", "tier": "medium"})
    out.append({"v": 1, "type": "done", "time": T0 + 47.1, "call_id": "bumped",
                "model_group": "medium-reasoning", "status": "ok", "latency_ms": 50.0})
    return out


def test_tier_health_counts_429s_the_cooldown_and_the_fallback_share() -> None:
    model = PanelModel()
    model.apply(fallback_log())
    medium = model.tiers["medium"]
    assert medium.errors == 1  # only the call the whole chain failed
    assert medium.fallbacks == 2
    assert medium.health(T0 + 62) == "3×429 ⏳08:01:15 ↪50%"  # cooldown: 08:00:45 + 30 s
    assert medium.health(T0 + 400) == "↪50%"  # the 429s are old, the cooldown over
    assert model.tiers["low"].health(T0 + 62) == ""
    # a call LiteLLM retried after reporting its first failure is not an error
    model.apply([{"type": "routed", "call_id": "r", "time": T0, "tier": "high", "target": "h"},
                 {"type": "failed", "call_id": "r", "time": T0, "status_code": 500},
                 {"type": "done", "call_id": "r", "time": T0 + 1}])
    assert model.tiers["high"].errors == 0 and model.tiers["high"].finished == 1


def test_the_detail_and_tail_say_what_happened() -> None:
    model = PanelModel()
    model.apply(fallback_log())
    served = model.requests["fb-0"]
    detail = "\n".join(explain(served))
    assert "fallbacks if it fails: fast-coder" in detail
    assert "tried medium-reasoning: 429 rate_limit, asked to wait 30 s" in detail
    assert "↪ a fallback served it: medium-reasoning -> fast-coder (rate_limit)" in detail
    bumped = model.requests["bumped"]
    assert "about 150.0k input tokens, over the 131.1k of low-reasoning" in "\n".join(
        explain(bumped))
    assert "ok ↪ fast-coder (rate_limit 429)" in format_request(served.routed, served.outcome)
    line = format_request(bumped.routed, bumped.outcome)
    assert "-> medium-reasoning (⇡ 150.0k > 131.1k tok, from low-reasoning)" in line
    warned = dict(bumped.routed or {}, target="low-reasoning",
                  context={"estimate": 150_000, "limit": 131_072, "from": "low-reasoning",
                           "warning": "fits no tier above"})
    assert "⚠ 150.0k > 131.1k tok: fits no model" in format_request(warned, None)
    failed = model.requests["chain-failed"]
    assert "error 429" in format_request(failed.routed, failed.outcome)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    StateFile.in_home(tmp_path).write(State().with_tier_fallbacks("medium", ("fast-coder",)))
    (tmp_path / EVENTS_NAME).write_text("".join(json.dumps(r) + "\n" for r in fallback_log()))
    return tmp_path


async def test_the_panel_marks_fallen_back_and_moved_rows_and_shows_health(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE):
        assert cell(app, "requests", "fb-0", "target") == "↪ fast-coder"
        assert cell(app, "requests", "fb-0", "status") == "ok"
        assert cell(app, "requests", "bumped", "target") == "⇡ medium-reasoning"
        assert cell(app, "requests", "fits", "target") == "medium-reasoning"
        assert cell(app, "requests", "chain-failed", "status") == "error 429"
        assert cell(app, "tiers", "medium", "health") == "3×429 ⏳08:01:15 ↪50%"
        assert cell(app, "tiers", "medium", "model") == "medium-reasoning  ↪ fast-coder"
        assert cell(app, "tiers", "high", "health") == "-"


async def test_settings_edit_the_chains_limits_and_long_context(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert screen.query_one("#fallbacks", Input).value == \
            "{none: [], low: [], medium: [fast-coder], high: []}"
        screen.query_one("#fallbacks", Input).value = "{medium: [fast-coder, medium-reasoning]}"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)  # a tier's own model is refused
        assert "another model than the tier's own" in str(
            screen.query_one("#settings-error", Static).render())
        screen.query_one("#fallbacks", Input).value = "{medium: [fast-coder], high: [spare]}"
        screen.query_one("#input-limits", Input).value = "{low: 131072}"
        screen.query_one("#long-context", Input).value = "long-context"
        await pilot.press("ctrl+s")
        await pilot.pause()
        state = StateFile.in_home(home).read()
        assert state.tiers["high"].fallbacks == ("spare",)
        assert state.tiers["medium"].fallbacks == ("fast-coder",)
        assert state.tiers["low"].max_input_tokens == 131072
        assert state.long_context == "long-context"


def test_a_request_is_shown_in_the_detail_with_its_chain() -> None:
    request = Request("x", {"target": "m", "fallbacks": ["a", "b"]}, None)
    assert "  fallbacks if it fails: a, b" in explain(request)


def test_a_groups_limit_is_its_smallest_deployments_own_first() -> None:
    from callbacks.core.context import group_limit

    model_map = {"anthropic/claude-x": 200_000, "openai/shared": 128_000}.get
    assert group_limit([], model_map) is None
    assert group_limit([{"litellm_params": {"model": "anthropic/claude-x"}}], model_map) == 200_000
    assert group_limit([{"litellm_params": {"model": "anthropic/claude-x"},
                         "model_info": {"max_input_tokens": 32_768}},
                        {"litellm_params": {"model": "openai/shared"}},
                        {"litellm_params": {"model": "made-up"}}], model_map) == 32_768


def test_show_lists_the_chains_limits_and_long_context() -> None:
    from app.cli import describe

    state = replace(state_with(medium=131072).with_tier_fallbacks("medium", ("a", "b")),
                    long_context="huge")
    text = describe(state)
    assert "  medium  medium-reasoning  then a, b  (max 131072 input tokens)" in text
    assert "long context: huge" in text
