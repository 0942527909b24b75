"""The routing state: a typed, validated model of ``state.yaml`` (pure, no I/O).

The state file is the live source of truth for the callback and the panel. This module turns a
parsed YAML mapping into a frozen :class:`State` (or a :class:`StateError` that names the bad key
and value), turns a :class:`State` back into the canonical mapping that is written to disk, and
builds the first state from the original callback's environment variables.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from callbacks.core.headroom import KINDS, Threshold, parse_threshold, threshold_text

Tier = Literal["none", "low", "medium", "high"]
TIERS: Final[tuple[Tier, ...]] = ("none", "low", "medium", "high")
SCHEMA_VERSION: Final = 1

DEFAULT_ROUTE_MODELS: Final = ("claude-*",)
DEFAULT_TIER_MODELS: Final[dict[Tier, str]] = {
    "none": "none-reasoning",
    "low": "low-reasoning",
    "medium": "medium-reasoning",
    "high": "high-reasoning",
}
# Effort words of Anthropic (output_config.effort) and OpenAI (reasoning_effort) -> tier.
DEFAULT_EFFORT_MAP: Final[dict[str, Tier]] = {
    "none": "none",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
# The original callback's thinking-budget thresholds: < 8000 low, < 16000 medium, else high.
DEFAULT_LOW_BELOW: Final = 8000
DEFAULT_MEDIUM_BELOW: Final = 16000
# The cap key for requests of subagents; any other cap key is a client-model name or glob.
SUBAGENT: Final = "subagent"
# Keys of per-tier params that carry reasoning; anything else is refused as a likely typo.
REASONING_PARAM_KEYS: Final = frozenset({"reasoning_effort", "thinking", "output_config", "reasoning"})


class StateError(ValueError):
    """The state file's content is not a valid state; the message names the key and value."""


@dataclass(frozen=True)
class TierTarget:
    """Where one tier sends its requests."""

    model: str
    """Model group name in the proxy's config (``model_name``) that serves this tier."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Reasoning parameters that replace the client's (e.g. ``{reasoning_effort: low}``)."""
    fallbacks: tuple[str, ...] = ()
    """Model groups tried in order when ``model`` fails (429, 5xx/529, timeout, connection)."""
    max_input_tokens: int | None = None
    """Input limit of ``model``; None: LiteLLM's model info for it (if it knows one)."""
    min_remaining: Mapping[str, Threshold] = field(default_factory=dict)
    """Headroom: ``requests`` / ``tokens`` that must stay left of ``model``'s rate limit (a
    count, or a share such as ``5%``); while the provider reports less, until its reset, the
    tier's requests go to ``fallbacks`` first. Empty: no headroom."""


@dataclass(frozen=True)
class Adapter:
    """Provider quirks applied to requests sent to a target model."""

    cerebras: bool = False
    """Move JSON-schema keywords Cerebras rejects (format, minItems, minLength) into descriptions."""
    openrouter: bool = False
    """The Cerebras model is reached through OpenRouter (keeps streaming and rich content)."""


NO_ADAPTER: Final = Adapter()  # a target without quirks (frozen: one for all)


@dataclass(frozen=True)
class Detection:
    """Settings of the strength detector."""

    low_below: int = DEFAULT_LOW_BELOW
    """A thinking budget below this is ``low``."""
    medium_below: int = DEFAULT_MEDIUM_BELOW
    """A thinking budget below this (and not below ``low_below``) is ``medium``; above, ``high``."""
    effort_map: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_EFFORT_MAP))
    """Effort word -> tier, for ``output_config.effort``, ``reasoning_effort``, ``reasoning.effort``."""
    ultrathink: bool = True
    """The word "ultrathink" in the latest user turn makes the request ``high``."""

    def __post_init__(self) -> None:
        # A map that names a few words changes those; the other standard words keep their tier
        # (a partial map must not leave "low" or "high" unknown and falling through).
        object.__setattr__(self, "effort_map", {**DEFAULT_EFFORT_MAP, **self.effort_map})


@dataclass(frozen=True)
class EventLogSettings:
    """The event log (``events.jsonl``) beside the state file."""

    preview: bool = False
    """Opt in to a short preview of the latest user turn in ``routed`` records."""
    max_bytes: int = 32 * 1024 * 1024
    """Size at which the log is rotated."""
    backups: int = 1
    """Rotated files kept (``events.jsonl.1`` ...)."""


@dataclass(frozen=True)
class Preset:
    """A named mapping that ``reasoning-panel preset use`` applies in one change."""

    tiers: Mapping[Tier, TierTarget] = field(default_factory=dict)
    """The tiers it sets; tiers it does not name keep their current model."""
    pin: Tier | None = None
    """The pin it sets (None: no pin)."""
    caps: Mapping[str, Tier] = field(default_factory=dict)
    """The caps it sets (replacing the current caps)."""


@dataclass(frozen=True)
class State:
    """Everything the callback needs to route a request."""

    routing: bool = True
    """Routing on; when off every request passes through unchanged."""
    pin: Tier | None = None
    """Send every routed request to this tier whatever its strength."""
    route_models: tuple[str, ...] = DEFAULT_ROUTE_MODELS
    """Client model names (or globs) that are routed; others pass through."""
    tiers: Mapping[Tier, TierTarget] = field(
        default_factory=lambda: {t: TierTarget(m) for t, m in DEFAULT_TIER_MODELS.items()}
    )
    detection: Detection = field(default_factory=Detection)
    adapters: Mapping[str, Adapter] = field(default_factory=dict)
    """Target model name (or glob, ``*`` for every model) -> provider adapter."""
    event_log: EventLogSettings = field(default_factory=EventLogSettings)
    caps: Mapping[str, Tier] = field(default_factory=dict)
    """Highest tier for a kind of request: ``subagent``, or a client-model name or glob."""
    presets: Mapping[str, Preset] = field(default_factory=dict)
    """Named mappings (tiers, pin, caps) to switch to in one change."""
    long_context: str | None = None
    """Model group for a request that fits no tier's model (the context guard's last resort)."""
    version: int = SCHEMA_VERSION

    def routes(self, model: str) -> bool:
        """Whether requests for the client model ``model`` are routed."""
        return _matches_any(model, tuple(self.route_models))

    def adapter_for(self, model: str) -> Adapter:
        """The adapter of a target model: its exact entry, else the first matching glob."""
        if model in self.adapters:
            return self.adapters[model]
        for pattern, adapter in self.adapters.items():
            if fnmatch.fnmatchcase(model, pattern):
                return adapter
        return NO_ADAPTER

    def cap_for(self, client_model: str, subagent: bool) -> tuple[str, Tier] | None:
        """The lowest cap that applies to a request, as (cap key, tier), or None."""
        if not self.caps:
            return None
        found = [(key, tier) for key, tier in self.caps.items()
                 if (key == SUBAGENT and subagent)
                 or (key != SUBAGENT and fnmatch.fnmatchcase(client_model, key))]
        return min(found, key=lambda cap: TIERS.index(cap[1]), default=None)

    def as_preset(self) -> Preset:
        """The current tiers, pin and caps, as a preset."""
        return Preset(tiers=dict(self.tiers), pin=self.pin, caps=dict(self.caps))

    def with_preset(self, name: str) -> State:
        """A copy with the preset ``name`` applied; :class:`StateError` if there is none."""
        preset = self.presets.get(name)
        if preset is None:
            known = ", ".join(sorted(self.presets)) or "none saved"
            raise StateError(f"presets: no preset {name!r} (known: {known})")
        return replace(self, tiers={**self.tiers, **preset.tiers}, pin=preset.pin,
                       caps=dict(preset.caps))

    def with_tier_model(self, tier: Tier, model: str) -> State:
        """A copy with ``tier`` sent to ``model`` (its params kept; ``model`` leaves the tier's
        fallback chain if it was in it)."""
        tiers = dict(self.tiers)
        old = tiers[tier]
        tiers[tier] = replace(old, model=model, fallbacks=tuple(m for m in old.fallbacks if m != model))
        return replace(self, tiers=tiers)

    def with_tier_headroom(self, tier: Tier, minimum: Mapping[str, Threshold]) -> State:
        """A copy with ``tier``'s headroom replaced (``{}`` clears it)."""
        tiers = dict(self.tiers)
        tiers[tier] = replace(tiers[tier], min_remaining=dict(minimum))
        return replace(self, tiers=tiers)

    def with_tier_fallbacks(self, tier: Tier, fallbacks: tuple[str, ...]) -> State:
        """A copy with ``tier``'s fallback chain replaced (``()`` clears it)."""
        tiers = dict(self.tiers)
        tiers[tier] = replace(tiers[tier], fallbacks=tuple(fallbacks))
        return replace(self, tiers=tiers)


@functools.lru_cache(maxsize=1024)
def _matches_any(model: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``model`` matches one of the globs (asked once per client model and pattern set:
    every request asks)."""
    return any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def state_from_env(env: Mapping[str, str] | None = None) -> State:
    """The first state, from the original callback's environment variables."""
    env = os.environ if env is None else env
    route = env.get("LITELLM_PROXY_REASONING_STRENGTH_ROUTE_MODEL", "").strip()
    route_models = tuple(p.strip() for p in route.split(",") if p.strip()) or DEFAULT_ROUTE_MODELS
    tiers = {
        t: TierTarget(env.get(f"LITELLM_PROXY_{t.upper()}_REASONING_MODEL", "").strip() or m)
        for t, m in DEFAULT_TIER_MODELS.items()
    }
    adapter = Adapter(
        cerebras=_truthy(env.get("LITELLM_PROXY_CEREBRAS_PROVIDER")),
        openrouter=_truthy(env.get("LITELLM_PROXY_OPENROUTER_PROVIDER")),
    )
    return State(route_models=route_models, tiers=tiers, adapters={"*": adapter})


# --- parsing -------------------------------------------------------------------------------


def _fail(key: str, value: Any, expected: str) -> StateError:
    return StateError(f"{key}: {value!r} is not valid; expected {expected}")


def _check_keys(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise StateError(f"{name}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(key, value, "a mapping")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, value, "true or false")
    return value


def _tier(key: str, value: Any) -> Tier:
    if value not in TIERS:
        raise _fail(key, value, "one of " + ", ".join(TIERS))
    return value  # type: ignore[no-any-return]


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, value, "a non-empty model name")
    return value.strip()


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(key, value, "a whole number >= 0")
    return value


def _fallbacks(key: str, value: Any, model: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _fail(key, value, "a list of model names")
    chain = tuple(_name(f"{key}[{i}]", m) for i, m in enumerate(value))
    for i, name in enumerate(chain):
        if name == model:
            raise _fail(f"{key}[{i}]", name, "another model than the tier's own")
        if name in chain[:i]:
            raise _fail(f"{key}[{i}]", name, "each model once")
    return chain


def _limit(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(key, value, "a whole number of tokens >= 1 (or null: LiteLLM's model info)")
    return value


def parse_min_remaining(key: str, value: Any) -> dict[str, Threshold]:
    """A tier's ``min_remaining``: ``{requests: N, tokens: "P%"}`` (either or both)."""
    data = _mapping(key, value or {})
    _check_keys(key, data, set(KINDS))
    try:
        return {kind: parse_threshold(f"{key}.{kind}", data[kind]) for kind in KINDS
                if kind in data and data[kind] is not None}
    except ValueError as exc:
        raise StateError(str(exc)) from None


def _tier_target(key: str, value: Any) -> TierTarget:
    if isinstance(value, str):
        return TierTarget(_name(key, value))
    data = _mapping(key, value)
    _check_keys(key, data, {"model", "params", "fallbacks", "max_input_tokens", "min_remaining"})
    params = dict(_mapping(f"{key}.params", data.get("params") or {}))
    for name in params:
        if name not in REASONING_PARAM_KEYS:
            raise _fail(f"{key}.params", name, "one of " + ", ".join(sorted(REASONING_PARAM_KEYS)))
    model = _name(f"{key}.model", data.get("model"))
    return TierTarget(model, params, _fallbacks(f"{key}.fallbacks", data.get("fallbacks"), model),
                      _limit(f"{key}.max_input_tokens", data.get("max_input_tokens")),
                      parse_min_remaining(f"{key}.min_remaining", data.get("min_remaining")))


def _caps(key: str, value: Any) -> dict[str, Tier]:
    caps: dict[str, Tier] = {}
    for name, tier in _mapping(key, value or {}).items():
        if not isinstance(name, str) or not name.strip():
            raise _fail(key, name, f"'{SUBAGENT}' or a client-model name or glob as keys")
        caps[name.strip()] = _tier(f"{key}.{name}", tier)
    return caps


def _pin(key: str, value: Any) -> Tier | None:
    if value is None or value is False or value == "off":  # YAML reads `off` as false
        return None
    return _tier(key, value)


def _presets(value: Any) -> dict[str, Preset]:
    presets: dict[str, Preset] = {}
    for name, entry in _mapping("presets", value or {}).items():
        if not isinstance(name, str) or not name.strip():
            raise _fail("presets", name, "preset names as keys")
        key = f"presets.{name}"
        entry = _mapping(key, entry)
        _check_keys(key, entry, {"tiers", "pin", "caps"})
        tiers_data = _mapping(f"{key}.tiers", entry.get("tiers") or {})
        _check_keys(f"{key}.tiers", tiers_data, set(TIERS))
        presets[name.strip()] = Preset(
            tiers={t: _tier_target(f"{key}.tiers.{t}", tiers_data[t])
                   for t in TIERS if t in tiers_data},
            pin=_pin(f"{key}.pin", entry.get("pin")),
            caps=_caps(f"{key}.caps", entry.get("caps")),
        )
    return presets


def parse_state(data: Any) -> State:
    """Validate a parsed state file; raise :class:`StateError` naming the bad key and value."""
    if data is None:
        raise StateError("the state file is empty")
    data = _mapping("state", data)
    _check_keys("", data, {"version", "routing", "pin", "route_models", "tiers", "detection",
                           "adapters", "event_log", "caps", "presets", "long_context"})
    version = data.get("version")
    if version != SCHEMA_VERSION:
        raise _fail("version", version, str(SCHEMA_VERSION))
    base = State()

    route_models = data.get("route_models", list(base.route_models))
    if isinstance(route_models, str):
        route_models = [route_models]
    if not isinstance(route_models, list):
        raise _fail("route_models", route_models, "a list of model names or globs")
    routes = tuple(_name(f"route_models[{i}]", m) for i, m in enumerate(route_models))

    tiers_data = _mapping("tiers", data.get("tiers", {}))
    _check_keys("tiers", tiers_data, set(TIERS))
    tiers = dict(base.tiers)
    for tier in TIERS:
        if tier in tiers_data:
            tiers[tier] = _tier_target(f"tiers.{tier}", tiers_data[tier])

    det = _mapping("detection", data.get("detection") or {})
    _check_keys("detection", det, {"budget_thresholds", "effort_map", "ultrathink"})
    thresholds = _mapping("detection.budget_thresholds", det.get("budget_thresholds") or {})
    _check_keys("detection.budget_thresholds", thresholds, {"low_below", "medium_below"})
    low_below = _count("detection.budget_thresholds.low_below",
                       thresholds.get("low_below", DEFAULT_LOW_BELOW))
    medium_below = _count("detection.budget_thresholds.medium_below",
                          thresholds.get("medium_below", DEFAULT_MEDIUM_BELOW))
    if medium_below < low_below:
        raise _fail("detection.budget_thresholds.medium_below", medium_below,
                    f"a number >= low_below ({low_below})")
    effort_data = _mapping("detection.effort_map", det.get("effort_map", {}))
    effort_map: dict[str, Tier] = {}
    for word, tier in effort_data.items():
        if not isinstance(word, str) or not word:
            raise _fail("detection.effort_map", word, "effort words as keys")
        effort_map[word.lower()] = _tier(f"detection.effort_map.{word}", tier)
    detection = Detection(
        low_below=low_below,
        medium_below=medium_below,
        effort_map=effort_map,
        ultrathink=_bool("detection.ultrathink", det.get("ultrathink", True)),
    )

    adapters: dict[str, Adapter] = {}
    for model, value in _mapping("adapters", data.get("adapters") or {}).items():
        key = f"adapters.{model}"
        entry = _mapping(key, value)
        _check_keys(key, entry, {"cerebras", "openrouter"})
        adapters[_name("adapters", model)] = Adapter(
            cerebras=_bool(f"{key}.cerebras", entry.get("cerebras", False)),
            openrouter=_bool(f"{key}.openrouter", entry.get("openrouter", False)),
        )

    events = _mapping("event_log", data.get("event_log") or {})
    _check_keys("event_log", events, {"preview", "max_bytes", "backups"})
    max_bytes = _count("event_log.max_bytes", events.get("max_bytes", EventLogSettings.max_bytes))
    if max_bytes < 1024:
        raise _fail("event_log.max_bytes", max_bytes, "at least 1024")
    event_log = EventLogSettings(
        preview=_bool("event_log.preview", events.get("preview", False)),
        max_bytes=max_bytes,
        backups=_count("event_log.backups", events.get("backups", EventLogSettings.backups)),
    )

    pin = data.get("pin")
    if pin is False or pin == "off":  # `pin: off` is YAML's false, and the CLI's word for no pin
        pin = None
    return State(
        routing=_bool("routing", data.get("routing", True)),
        pin=None if pin is None else _tier("pin", pin),
        route_models=routes,
        tiers=tiers,
        detection=detection,
        adapters=adapters,
        event_log=event_log,
        caps=_caps("caps", data.get("caps")),
        presets=_presets(data.get("presets")),
        long_context=None if data.get("long_context") is None else
        _name("long_context", data["long_context"]),
    )


def _tiers_dict(tiers: Mapping[Tier, TierTarget]) -> dict[str, Any]:
    return {tier: _tier_dict(target) for tier, target in tiers.items()}


def state_to_dict(state: State) -> dict[str, Any]:
    """The canonical mapping written to ``state.yaml`` (parses back to an equal state)."""
    det = state.detection
    return {
        "version": state.version,
        "routing": state.routing,
        "pin": state.pin,
        "route_models": list(state.route_models),
        "tiers": _tiers_dict(state.tiers),
        "detection": {
            "budget_thresholds": {"low_below": det.low_below, "medium_below": det.medium_below},
            "effort_map": dict(det.effort_map),
            "ultrathink": det.ultrathink,
        },
        "adapters": {
            model: {"cerebras": a.cerebras, "openrouter": a.openrouter}
            for model, a in state.adapters.items()
        },
        "event_log": {
            "preview": state.event_log.preview,
            "max_bytes": state.event_log.max_bytes,
            "backups": state.event_log.backups,
        },
        "caps": dict(state.caps),
        "presets": {
            name: {"tiers": _tiers_dict(p.tiers), "pin": p.pin, "caps": dict(p.caps)}
            for name, p in state.presets.items()
        },
        "long_context": state.long_context,
    }


def _tier_dict(target: TierTarget) -> str | dict[str, Any]:
    """A tier as written: the plain model name unless it carries more."""
    if not (target.params or target.fallbacks or target.max_input_tokens is not None
            or target.min_remaining):
        return target.model
    out: dict[str, Any] = {"model": target.model}
    if target.params:
        out["params"] = dict(target.params)
    if target.fallbacks:
        out["fallbacks"] = list(target.fallbacks)
    if target.max_input_tokens is not None:
        out["max_input_tokens"] = target.max_input_tokens
    if target.min_remaining:
        out["min_remaining"] = {k: threshold_text(v) for k, v in target.min_remaining.items()}
    return out


def describe_caps(caps: Mapping[str, str]) -> str:
    """Caps in one line, e.g. ``subagent <= low`` (``none`` without any)."""
    return ", ".join(f"{kind} <= {tier}" for kind, tier in caps.items()) or "none"


def describe_preset(preset: Preset) -> str:
    """A preset in one line: the tiers it sets, its pin and its caps."""
    tiers = ", ".join(f"{tier} -> {target.model}" for tier, target in preset.tiers.items())
    return (f"{tiers or 'tiers unchanged'}; pin {preset.pin or 'off'}; "
            f"caps {describe_caps(preset.caps)}")
