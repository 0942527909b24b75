"""State model: validation messages, round trips, environment defaults, adapter lookup."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.core.state import (
    DEFAULT_EFFORT_MAP,
    DEFAULT_TIER_MODELS,
    REASONING_PARAM_KEYS,
    TIERS,
    Adapter,
    Detection,
    State,
    StateError,
    TierTarget,
    parse_state,
    state_from_env,
    state_to_dict,
)
from callbacks.stores.statefile import parse_state_text


def base(**changes: Any) -> dict[str, Any]:
    """A valid canonical state mapping with some top-level keys changed."""
    data = state_to_dict(State())
    data.update(changes)
    return data


def with_path(path: str, value: Any) -> dict[str, Any]:
    """The default mapping with ``a.b.c`` set to ``value`` (intermediate mappings created)."""
    data = state_to_dict(State())
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


# --- validation ------------------------------------------------------------------------------

BAD = [
    # (data, text the message must contain, ...)
    pytest.param(None, ["the state file is empty"], id="empty"),
    pytest.param(["version", 1], ["state", "['version', 1]", "a mapping"], id="not-a-mapping"),
    pytest.param(base(colour="blue"), ["colour: unknown key", "routing", "tiers"],
                 id="unknown-top-level-key"),
    pytest.param(base(version=2), ["version", "2", "expected 1"], id="wrong-version"),
    pytest.param(base(version="1"), ["version", "'1'"], id="version-string"),
    pytest.param({k: v for k, v in base().items() if k != "version"}, ["version", "None"],
                 id="version-missing"),
    pytest.param(base(routing="yes"), ["routing", "'yes'", "true or false"], id="routing-string"),
    pytest.param(base(routing=1), ["routing", "1", "true or false"], id="routing-int"),
    pytest.param(base(pin="extreme"), ["pin", "'extreme'", "none, low, medium, high"],
                 id="pin-unknown-tier"),
    pytest.param(base(pin=True), ["pin", "True"], id="pin-bool"),
    pytest.param(base(route_models=5), ["route_models", "5", "list"], id="route_models-int"),
    pytest.param(base(route_models=["claude-*", ""]), ["route_models[1]", "''"],
                 id="route_models-empty-name"),
    pytest.param(base(route_models=["claude-*", 7]), ["route_models[1]", "7"],
                 id="route_models-non-string"),
    pytest.param(base(tiers=["low"]), ["tiers", "['low']", "a mapping"], id="tiers-list"),
    pytest.param(with_path("tiers.low", ""), ["tiers.low", "''", "non-empty model name"],
                 id="tiers.low-empty"),
    pytest.param(with_path("tiers.low", "   "), ["tiers.low", "'   '"], id="tiers.low-blank"),
    pytest.param(with_path("tiers.low", 42), ["tiers.low", "42"], id="tiers.low-number"),
    pytest.param(with_path("tiers.low", {"params": {"reasoning_effort": "low"}}),
                 ["tiers.low.model", "None"], id="tiers.low.model-missing"),
    pytest.param(with_path("tiers.low", {"model": "m", "temperature": 1}),
                 ["tiers.low.temperature: unknown key"], id="tiers.low-unknown-key"),
    pytest.param(with_path("tiers.extreme", "m"), ["tiers.extreme: unknown key"],
                 id="tiers-unknown-tier"),
    pytest.param(with_path("tiers.medium", {"model": "m", "params": {"temperature": 1}}),
                 ["tiers.medium.params", "'temperature'", "reasoning_effort"],
                 id="params-key-not-a-reasoning-key"),
    pytest.param(with_path("tiers.medium", {"model": "m", "params": "low"}),
                 ["tiers.medium.params", "'low'", "a mapping"], id="params-string"),
    pytest.param(base(detection=[1]), ["detection", "[1]"], id="detection-list"),
    pytest.param(with_path("detection.sensitivity", 1), ["detection.sensitivity: unknown key"],
                 id="detection-unknown-key"),
    pytest.param(with_path("detection.budget_thresholds.low_below", -1),
                 ["detection.budget_thresholds.low_below", "-1", "whole number"],
                 id="low_below-negative"),
    pytest.param(with_path("detection.budget_thresholds.low_below", "8000"),
                 ["detection.budget_thresholds.low_below", "'8000'"], id="low_below-string"),
    pytest.param(with_path("detection.budget_thresholds.low_below", True),
                 ["detection.budget_thresholds.low_below", "True"], id="low_below-bool"),
    pytest.param(with_path("detection.budget_thresholds.low_below", 8000.5),
                 ["detection.budget_thresholds.low_below", "8000.5"], id="low_below-float"),
    pytest.param(with_path("detection.budget_thresholds.medium_below", "lots"),
                 ["detection.budget_thresholds.medium_below", "'lots'"], id="medium_below-string"),
    pytest.param(with_path("detection.budget_thresholds.medium_below", 4000),
                 ["detection.budget_thresholds.medium_below", "4000", "low_below (8000)"],
                 id="medium_below-lower-than-low_below"),
    pytest.param(with_path("detection.budget_thresholds.high_below", 1),
                 ["detection.budget_thresholds.high_below: unknown key"],
                 id="thresholds-unknown-key"),
    pytest.param(with_path("detection.effort_map.xhigh", "extreme"),
                 ["detection.effort_map.xhigh", "'extreme'"], id="effort_map-bad-tier"),
    pytest.param(with_path("detection.effort_map", {5: "high"}),
                 ["detection.effort_map", "5", "effort words"], id="effort_map-non-string-word"),
    pytest.param(with_path("detection.effort_map", None),
                 ["detection.effort_map", "None", "a mapping"], id="effort_map-null"),
    pytest.param(with_path("detection.ultrathink", "no"),
                 ["detection.ultrathink", "'no'", "true or false"], id="ultrathink-string"),
    pytest.param(base(adapters=["*"]), ["adapters", "['*']"], id="adapters-list"),
    pytest.param(base(adapters={"cerebras-*": True}), ["adapters.cerebras-*", "True"],
                 id="adapter-not-a-mapping"),
    pytest.param(base(adapters={"*": {"cerebras": "yes"}}),
                 ["adapters.*.cerebras", "'yes'", "true or false"], id="adapter-cerebras-string"),
    pytest.param(base(adapters={"*": {"openrouter": 1}}),
                 ["adapters.*.openrouter", "1"], id="adapter-openrouter-int"),
    pytest.param(base(adapters={"*": {"groq": True}}), ["adapters.*.groq: unknown key"],
                 id="adapter-unknown-key"),
]


@pytest.mark.parametrize(("data", "expected"), BAD)
def test_parse_state_names_bad_key_and_value(data: Any, expected: list[str]) -> None:
    with pytest.raises(StateError) as info:
        parse_state(data)
    message = str(info.value)
    for text in expected:
        assert text in message, (text, message)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("tiers.low", "", id="tiers.low"),
        pytest.param("pin", "max", id="pin"),
        pytest.param("detection.budget_thresholds.low_below", -5, id="low_below"),
        pytest.param("detection.budget_thresholds.medium_below", 10, id="medium_below"),
    ],
)
def test_message_starts_with_key_path(key: str, value: Any) -> None:
    with pytest.raises(StateError, match="^" + key.replace(".", r"\.") + ": "):
        parse_state(with_path(key, value))


def test_state_error_is_a_value_error() -> None:
    assert issubclass(StateError, ValueError)


# --- accepted shapes -------------------------------------------------------------------------


def test_minimal_state_gets_defaults() -> None:
    assert parse_state({"version": 1}) == State()


def test_accepted_shorthands() -> None:
    s = parse_state({
        "version": 1,
        "route_models": "gpt-5",
        "tiers": {"low": "  cheap  ", "high": {"model": "big", "params": None}},
        "detection": {"budget_thresholds": None, "effort_map": {"HIGH": "medium"}},
        "adapters": None,
        "pin": None,
    })
    assert s.route_models == ("gpt-5",)
    assert s.tiers["low"] == TierTarget("cheap")
    assert s.tiers["high"] == TierTarget("big", {})
    assert s.tiers["none"] == TierTarget("none-reasoning")
    assert s.detection.effort_map == {**DEFAULT_EFFORT_MAP, "high": "medium"}
    assert (s.detection.low_below, s.detection.medium_below) == (8000, 16000)
    assert s.adapters == {}
    assert s.pin is None


def test_equal_thresholds_are_accepted() -> None:
    s = parse_state(with_path("detection.budget_thresholds",
                              {"low_below": 100, "medium_below": 100}))
    assert (s.detection.low_below, s.detection.medium_below) == (100, 100)


@pytest.mark.parametrize("key", sorted(REASONING_PARAM_KEYS))
def test_every_reasoning_param_key_is_accepted(key: str) -> None:
    s = parse_state(with_path("tiers.low", {"model": "m", "params": {key: {"x": 1}}}))
    assert s.tiers["low"] == TierTarget("m", {key: {"x": 1}})


# --- round trips -----------------------------------------------------------------------------

CUSTOM = State(
    routing=False,
    pin="medium",
    route_models=("claude-opus-*", "gpt-5"),
    tiers={
        "none": TierTarget("qwen-fast"),
        "low": TierTarget("cerebras-gpt-oss", {"reasoning_effort": "low"}),
        "medium": TierTarget("sonnet", {"thinking": {"type": "enabled", "budget_tokens": 4096},
                                        "output_config": {"effort": "medium"}}),
        "high": TierTarget("opus"),
    },
    detection=Detection(low_below=1000, medium_below=20000,
                        effort_map={"low": "none", "high": "medium", "turbo": "high"},
                        ultrathink=False),
    adapters={"cerebras-*": Adapter(cerebras=True), "*": Adapter(cerebras=True, openrouter=True)},
)


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(State(), id="default"),
        pytest.param(CUSTOM, id="customised"),
        pytest.param(replace(State(), pin="none"), id="pin-none"),
        pytest.param(state_from_env({"LITELLM_PROXY_CEREBRAS_PROVIDER": "1"}), id="from-env"),
    ],
)
def test_round_trip(state: State) -> None:
    data = state_to_dict(state)
    snapshot = copy.deepcopy(data)
    assert parse_state(data) == state
    assert data == snapshot  # parsing does not modify its input


def test_state_to_dict_canonical_shape() -> None:
    data = state_to_dict(CUSTOM)
    assert data["version"] == 1
    assert data["pin"] == "medium"
    assert data["route_models"] == ["claude-opus-*", "gpt-5"]
    assert data["tiers"]["none"] == "qwen-fast"
    assert data["tiers"]["low"] == {"model": "cerebras-gpt-oss",
                                    "params": {"reasoning_effort": "low"}}
    assert data["detection"] == {
        "budget_thresholds": {"low_below": 1000, "medium_below": 20000},
        "effort_map": {**DEFAULT_EFFORT_MAP, "low": "none", "high": "medium", "turbo": "high"},
        "ultrathink": False,
    }
    assert data["adapters"] == {"cerebras-*": {"cerebras": True, "openrouter": False},
                                "*": {"cerebras": True, "openrouter": True}}
    assert state_to_dict(State())["tiers"] == DEFAULT_TIER_MODELS
    assert state_to_dict(State())["detection"]["effort_map"] == DEFAULT_EFFORT_MAP


names = st.from_regex(r"[a-z0-9][a-z0-9*._/-]{0,15}", fullmatch=True)
words = st.from_regex(r"[a-z]{1,8}", fullmatch=True)
params = st.dictionaries(
    st.sampled_from(sorted(REASONING_PARAM_KEYS)),
    st.one_of(words, st.dictionaries(words, st.integers(0, 10**6) | words, max_size=2)),
    max_size=2,
)
states = st.builds(
    State,
    routing=st.booleans(),
    pin=st.none() | st.sampled_from(TIERS),
    route_models=st.lists(names, min_size=1, max_size=3).map(tuple),
    tiers=st.fixed_dictionaries({t: st.builds(TierTarget, names, params) for t in TIERS}),
    detection=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).flatmap(
        lambda t: st.builds(
            Detection,
            low_below=st.just(min(t)),
            medium_below=st.just(max(t)),
            effort_map=st.dictionaries(words, st.sampled_from(TIERS), max_size=5),
            ultrathink=st.booleans(),
        )
    ),
    adapters=st.dictionaries(names, st.builds(Adapter, st.booleans(), st.booleans()), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(state=states)
def test_round_trip_property(state: State) -> None:
    assert parse_state(state_to_dict(state)) == state


# --- environment defaults --------------------------------------------------------------------


def test_state_from_empty_env_is_the_default() -> None:
    s = state_from_env({})
    assert s.route_models == ("claude-*",)
    assert {t: s.tiers[t].model for t in TIERS} == DEFAULT_TIER_MODELS
    assert s.adapters == {"*": Adapter(cerebras=False, openrouter=False)}
    assert s.routing is True and s.pin is None
    assert s.detection == Detection()


def test_state_from_env_tier_models() -> None:
    s = state_from_env({
        "LITELLM_PROXY_NONE_REASONING_MODEL": "qwen-fast",
        "LITELLM_PROXY_LOW_REASONING_MODEL": " gpt-oss-low ",
        "LITELLM_PROXY_MEDIUM_REASONING_MODEL": "sonnet",
        "LITELLM_PROXY_HIGH_REASONING_MODEL": "opus",
    })
    assert {t: s.tiers[t] for t in TIERS} == {
        "none": TierTarget("qwen-fast"),
        "low": TierTarget("gpt-oss-low"),
        "medium": TierTarget("sonnet"),
        "high": TierTarget("opus"),
    }


def test_state_from_env_blank_tier_model_keeps_default() -> None:
    s = state_from_env({"LITELLM_PROXY_HIGH_REASONING_MODEL": "  ",
                        "LITELLM_PROXY_LOW_REASONING_MODEL": "cheap"})
    assert s.tiers["high"].model == "high-reasoning"
    assert s.tiers["low"].model == "cheap"


@pytest.mark.parametrize(
    ("cerebras", "openrouter", "expected"),
    [
        pytest.param("1", None, Adapter(cerebras=True), id="cerebras-1"),
        pytest.param("true", "0", Adapter(cerebras=True), id="cerebras-true-openrouter-0"),
        pytest.param(" YES ", "on", Adapter(cerebras=True, openrouter=True), id="yes-on"),
        pytest.param(None, "True", Adapter(openrouter=True), id="openrouter-only"),
        pytest.param("false", "no", Adapter(), id="both-false"),
        pytest.param("", "", Adapter(), id="both-empty"),
        pytest.param("2", "y", Adapter(), id="unrecognised-words-are-false"),
    ],
)
def test_state_from_env_provider_adapter(
    cerebras: str | None, openrouter: str | None, expected: Adapter
) -> None:
    env = {}
    if cerebras is not None:
        env["LITELLM_PROXY_CEREBRAS_PROVIDER"] = cerebras
    if openrouter is not None:
        env["LITELLM_PROXY_OPENROUTER_PROVIDER"] = openrouter
    s = state_from_env(env)
    assert s.adapters == {"*": expected}
    assert s.adapter_for("any-target-model") == expected


def test_state_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_PROXY_MEDIUM_REASONING_MODEL", "from-os-environ")
    monkeypatch.setenv("LITELLM_PROXY_REASONING_STRENGTH_ROUTE_MODEL", "gpt-5,o3")
    monkeypatch.setenv("LITELLM_PROXY_CEREBRAS_PROVIDER", "1")
    s = state_from_env()
    assert s.tiers["medium"].model == "from-os-environ"
    assert s.route_models == ("gpt-5", "o3")
    assert s.adapters == {"*": Adapter(cerebras=True)}


def test_state_from_env_parses_back() -> None:
    s = state_from_env({"LITELLM_PROXY_LOW_REASONING_MODEL": "cheap",
                        "LITELLM_PROXY_OPENROUTER_PROVIDER": "1"})
    assert parse_state(state_to_dict(s)) == s


# --- adapter lookup and helpers --------------------------------------------------------------


def test_adapter_for_exact_beats_glob_even_when_glob_comes_first() -> None:
    glob, exact = Adapter(cerebras=True, openrouter=True), Adapter(cerebras=True)
    s = State(adapters={"*": glob, "cerebras-qwen": exact})
    assert s.adapter_for("cerebras-qwen") is exact
    assert s.adapter_for("cerebras-qwen-2") is glob
    assert s.adapter_for("opus") is glob


def test_adapter_for_first_matching_glob_wins() -> None:
    a, b = Adapter(cerebras=True), Adapter(openrouter=True)
    s = State(adapters={"cerebras-*": a, "*": b})
    assert s.adapter_for("cerebras-qwen") is a
    assert s.adapter_for("opus") is b
    s = State(adapters={"*": b, "cerebras-*": a})
    assert s.adapter_for("cerebras-qwen") is b


def test_adapter_for_no_match_is_a_plain_adapter() -> None:
    s = State(adapters={"cerebras-*": Adapter(cerebras=True)})
    assert s.adapter_for("opus") == Adapter(cerebras=False, openrouter=False)
    assert State().adapter_for("anything") == Adapter()


def test_adapter_for_glob_is_case_sensitive() -> None:
    s = State(adapters={"cerebras-*": Adapter(cerebras=True)})
    assert s.adapter_for("Cerebras-qwen") == Adapter()


def test_with_tier_model_keeps_params_and_other_tiers() -> None:
    s = CUSTOM.with_tier_model("low", "other")
    assert s.tiers["low"] == TierTarget("other", {"reasoning_effort": "low"})
    assert s.tiers["high"] == CUSTOM.tiers["high"]
    assert CUSTOM.tiers["low"].model == "cerebras-gpt-oss"  # original untouched


def test_routes_globs() -> None:
    s = State(route_models=("claude-*", "gpt-5"))
    assert [s.routes(m) for m in ("claude-opus-4-8", "claude-sonnet-5", "gpt-5", "gpt-5-mini")] \
        == [True, True, True, False]


@pytest.mark.parametrize("written", ["off", "false", "null", "'off'"])
def test_pin_off_by_hand_means_no_pin(written: str) -> None:
    """`pin: off` (YAML reads it as false) is the CLI's own word for no pin: accepted as such."""
    assert parse_state_text(f"version: 1\npin: {written}\n").pin is None


def test_a_partial_effort_map_changes_only_its_words() -> None:
    effort_map = parse_state({"version": 1, "detection": {"effort_map": {"xhigh": "medium"}}}
                             ).detection.effort_map
    assert effort_map == {**DEFAULT_EFFORT_MAP, "xhigh": "medium"}


def test_a_reload_names_each_new_cap_not_an_empty_mapping() -> None:
    from callbacks.core.events import state_changes

    before = State()
    after = parse_state({**state_to_dict(before), "caps": {"subagent": "low"}})
    assert state_changes(before, after) == [{"key": "caps.subagent", "old": None, "new": "low"}]
