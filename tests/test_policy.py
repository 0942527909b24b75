"""Policy: state + strength -> decision (reason, tier, target)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from callbacks.core.detect import Strength, detect_strength
from callbacks.core.policy import REASON_TEXT, Decision, decide
from callbacks.core.state import TIERS, State, TierTarget, state_from_env


def strength(tier: str) -> Strength:
    return Strength(tier, "output_config.effort", tier, "effort")  # type: ignore[arg-type]


DEFAULT = State()


@pytest.mark.parametrize(
    ("tier", "target"),
    [
        pytest.param("none", "none-reasoning", id="none"),
        pytest.param("low", "low-reasoning", id="low"),
        pytest.param("medium", "medium-reasoning", id="medium"),
        pytest.param("high", "high-reasoning", id="high"),
    ],
)
def test_routed_by_strength(tier: str, target: str) -> None:
    d = decide(DEFAULT, "claude-opus-4-8", strength(tier))
    assert d == Decision("routed", tier, target)  # type: ignore[arg-type]
    assert d.routes is True


@pytest.mark.parametrize("pin", TIERS)
@pytest.mark.parametrize("detected", TIERS)
def test_pin_overrides_strength(pin: str, detected: str) -> None:
    state = replace(DEFAULT, pin=pin)
    d = decide(state, "claude-opus-4-8", strength(detected))
    assert d == Decision("pinned", pin, f"{pin}-reasoning")  # type: ignore[arg-type]


def test_pin_none_tier_is_a_real_pin() -> None:
    """``pin: none`` is the string "none" (a tier), not a missing pin."""
    state = replace(DEFAULT, pin="none")
    assert decide(state, "claude-opus-4-8", strength("high")) == Decision(
        "pinned", "none", "none-reasoning"
    )


@pytest.mark.parametrize("pin", [None, "high"])
def test_routing_off_passes_through(pin: str | None) -> None:
    state = replace(DEFAULT, routing=False, pin=pin)
    d = decide(state, "claude-opus-4-8", strength("high"))
    assert d == Decision("routing_off", None, None)
    assert d.routes is False
    assert REASON_TEXT[d.reason] == "routing is off"


@pytest.mark.parametrize(
    ("model", "routed"),
    [
        pytest.param("claude-opus-4-8", True, id="claude-opus-4-8"),
        pytest.param("claude-sonnet-5", True, id="claude-sonnet-5"),
        pytest.param("claude-haiku-4-5-20251001", True, id="claude-haiku"),
        pytest.param("claude-", True, id="bare-prefix"),
        pytest.param("gpt-5", False, id="gpt-5"),
        pytest.param("Claude-opus-4-8", False, id="case-sensitive"),
        pytest.param("anthropic/claude-opus-4-8", False, id="provider-prefixed"),
        pytest.param("", False, id="empty"),
    ],
)
def test_default_glob_claude_star(model: str, routed: bool) -> None:
    d = decide(DEFAULT, model, strength("medium"))
    if routed:
        assert d == Decision("routed", "medium", "medium-reasoning")
    else:
        assert d == Decision("not_routed", None, None)
        assert REASON_TEXT[d.reason] == "client model is not routed"


def test_not_routed_when_pinned_either() -> None:
    state = replace(DEFAULT, pin="high")
    assert decide(state, "gpt-5", strength("low")) == Decision("not_routed", None, None)


def test_no_strength_is_not_routed() -> None:
    assert decide(DEFAULT, "claude-opus-4-8", None) == Decision("not_routed", None, None)


@pytest.mark.parametrize(
    ("env_value", "model", "routed"),
    [
        pytest.param("claude-opus-4-8", "claude-opus-4-8", True, id="exact-match"),
        pytest.param("claude-opus-4-8", "claude-sonnet-5", False, id="exact-other-claude"),
        pytest.param("claude-opus-4-8", "gpt-5", False, id="exact-other"),
        pytest.param("claude-opus-4-8, gpt-5", "gpt-5", True, id="comma-second"),
        pytest.param("claude-opus-4-8, gpt-5", "claude-opus-4-8", True, id="comma-first"),
        pytest.param("claude-opus-4-8, gpt-5", "claude-sonnet-5", False, id="comma-unlisted"),
        pytest.param(" gpt-*, ,o3 ", "o3", True, id="comma-blanks-and-spaces"),
        pytest.param(" gpt-*, ,o3 ", "gpt-5-mini", True, id="comma-glob"),
        pytest.param(" gpt-*, ,o3 ", "claude-opus-4-8", False, id="comma-replaces-default"),
        pytest.param("", "claude-sonnet-5", True, id="empty-means-default"),
        pytest.param(" , ", "claude-sonnet-5", True, id="only-commas-means-default"),
    ],
)
def test_route_models_from_env(env_value: str, model: str, routed: bool) -> None:
    state = state_from_env({"LITELLM_PROXY_REASONING_STRENGTH_ROUTE_MODEL": env_value})
    d = decide(state, model, strength("low"))
    assert d == (Decision("routed", "low", "low-reasoning") if routed
                 else Decision("not_routed", None, None))


def test_route_models_from_env_tuple() -> None:
    state = state_from_env({"LITELLM_PROXY_REASONING_STRENGTH_ROUTE_MODEL": "a, b*,c"})
    assert state.route_models == ("a", "b*", "c")


def test_same_model_passes_through() -> None:
    state = DEFAULT.with_tier_model("high", "claude-opus-4-8")
    d = decide(state, "claude-opus-4-8", strength("high"))
    assert d == Decision("same_model", "high", None)
    assert d.routes is False
    assert REASON_TEXT[d.reason] == "target equals the requested model"
    # another tier of the same state still routes
    assert decide(state, "claude-opus-4-8", strength("low")) == Decision(
        "routed", "low", "low-reasoning"
    )


def test_same_model_when_pinned() -> None:
    state = replace(DEFAULT.with_tier_model("none", "claude-sonnet-5"), pin="none")
    assert decide(state, "claude-sonnet-5", strength("high")) == Decision(
        "same_model", "none", None
    )
    assert decide(state, "claude-opus-4-8", strength("high")) == Decision(
        "pinned", "none", "claude-sonnet-5"
    )


def test_custom_tier_models_and_globs() -> None:
    state = replace(
        DEFAULT,
        route_models=("claude-opus-*", "gpt-?"),
        tiers={**DEFAULT.tiers, "medium": TierTarget("cerebras-qwen", {"reasoning_effort": "low"})},
    )
    assert decide(state, "claude-opus-4-8", strength("medium")) == Decision(
        "routed", "medium", "cerebras-qwen"
    )
    assert decide(state, "gpt-5", strength("medium")).target == "cerebras-qwen"
    assert decide(state, "gpt-55", strength("medium")).reason == "not_routed"
    assert decide(state, "claude-sonnet-5", strength("medium")).reason == "not_routed"


def test_decide_with_detected_strength_end_to_end() -> None:
    body = {"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
            "output_config": {"effort": "medium"}}
    s = detect_strength(body, DEFAULT.detection)
    assert decide(DEFAULT, body["model"], s) == Decision("routed", "medium", "medium-reasoning")


def test_reason_text_covers_every_reason() -> None:
    assert set(REASON_TEXT) == {"routed", "pinned", "routing_off", "not_routed", "same_model",
                                "held", "error"}
    assert REASON_TEXT["routed"] == "routed by strength"
    assert REASON_TEXT["pinned"] == "pinned to a tier"
