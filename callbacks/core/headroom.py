"""Headroom (pure): what a provider said is left of a deployment's rate limit, and whether a
tier's model is below the headroom its tier keeps, until when.

Providers report their rate limit on every response: OpenAI-shaped ones as
``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset a duration such as ``59s``,
``6m0s`` or ``120ms``), Anthropic as ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,
reset}`` (reset an RFC 3339 time). LiteLLM hands them to the callback in several places, some
prefixed ``llm_provider-``; :func:`quota_from_headers` reads any of these shapes.

A tier's ``min_remaining`` (``{tokens: 5%}``, ``{requests: 2}``, or both) is the share or count
that must stay left: while its model's latest figures are at or below it, and that window has
not reset, the tier's requests go to its fallback chain first (:func:`below`).
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

KINDS: Final = ("requests", "tokens")
PROVIDER_PREFIX: Final = "llm_provider-"
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
STALE_S: Final = 3600.0
"""Figures without a reset time count for this long at most."""


@dataclass(frozen=True)
class Remaining:
    """One limit of one deployment: how much is left, of how much, until when."""

    remaining: int
    limit: int | None
    reset: float | None
    """Unix time when the window resets (None: the provider did not say)."""

    def share(self) -> float | None:
        return self.remaining / self.limit if self.limit else None


@dataclass(frozen=True)
class Quota:
    """What a provider last reported about one deployment's rate limits."""

    deployment: str
    group: str
    at: float
    """When the response that reported it arrived (Unix seconds)."""
    requests: Remaining | None = None
    tokens: Remaining | None = None

    def of(self, kind: str) -> Remaining | None:
        return self.requests if kind == "requests" else self.tokens

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"deployment": self.deployment, "group": self.group,
                               "at": round(self.at, 3)}
        for kind in KINDS:
            figures = self.of(kind)
            if figures is not None:
                out[kind] = {"remaining": figures.remaining, "limit": figures.limit,
                             "reset": None if figures.reset is None else round(figures.reset, 3)}
        return out


def quota_from_json(data: Any) -> Quota | None:
    """A :class:`Quota` from :meth:`Quota.as_json` (None when it is not one)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("deployment"), str):
        return None
    figures: dict[str, Remaining] = {}
    for kind in KINDS:
        entry = data.get(kind)
        if isinstance(entry, Mapping) and isinstance(entry.get("remaining"), int):
            limit, reset = entry.get("limit"), entry.get("reset")
            figures[kind] = Remaining(entry["remaining"], limit if isinstance(limit, int) else None,
                                      float(reset) if isinstance(reset, int | float) else None)
    at = data.get("at")
    return Quota(data["deployment"], str(data.get("group") or ""),
                 float(at) if isinstance(at, int | float) else 0.0,
                 figures.get("requests"), figures.get("tokens"))


def duration_s(text: str) -> float | None:
    """Seconds of an OpenAI reset duration (``1m0s``, ``59s``, ``120ms``, ``1h2m3.5s``, ``7``)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


@functools.lru_cache(maxsize=64)
def _rfc3339(text: str) -> float | None:
    """Unix time of an RFC 3339 time (cached: a provider repeats its reset times)."""
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def reset_time(text: str, now: float) -> float | None:
    """A reset header as Unix time: an RFC 3339 time (Anthropic) or a duration from ``now``."""
    if "T" in text and "-" in text:
        return _rfc3339(text)
    seconds = duration_s(text)
    return None if seconds is None else now + seconds


def _int(value: Any) -> int | None:
    if type(value) is str and value.isdigit():  # what headers hold: no float to go through
        return int(value)
    try:
        number = int(float(str(value)))
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


_NAMES: Final = tuple((kind, (
    (f"anthropic-ratelimit-{kind}-remaining", f"anthropic-ratelimit-{kind}-limit",
     f"anthropic-ratelimit-{kind}-reset"),
    (f"x-ratelimit-remaining-{kind}", f"x-ratelimit-limit-{kind}", f"x-ratelimit-reset-{kind}")))
    for kind in KINDS)  # each kind's (remaining, limit, reset) headers: Anthropic's, OpenAI's
_READ: Final = tuple(name for _, names in _NAMES for triple in names for name in triple)


def quota_from_headers(headers: Mapping[str, Any], deployment: str, group: str,
                       now: float) -> Quota | None:
    """The rate-limit figures in a response's headers (None when it has none). Anthropic's
    headers win over OpenAI's when both are there (LiteLLM adds OpenAI-shaped copies of
    Anthropic's, without their reset)."""
    return _quota(rate_limit_headers((headers,)), deployment, group, now)


def rate_limit_headers(sources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The rate-limit headers of ``sources``, names in lower case without LiteLLM's
    ``llm_provider-`` prefix; a name the first sources have wins (a mapping handed over twice is
    read once)."""
    found: dict[str, Any] = {}
    seen: list[Mapping[str, Any]] = []
    for source in sources:
        if any(source is earlier for earlier in seen):
            continue
        seen.append(source)
        for name, value in source.items():
            key = str(name).lower()
            if "ratelimit" in key:
                found.setdefault(key.removeprefix(PROVIDER_PREFIX), value)
    return found


def _quota(found: Mapping[str, Any], deployment: str, group: str, now: float) -> Quota | None:
    """:func:`quota_from_headers` on headers :func:`rate_limit_headers` has read."""
    figures: dict[str, Remaining] = {}
    for kind, names in _NAMES:
        for left, limit, reset in names:
            remaining = _int(found.get(left))
            if remaining is None:
                continue
            at = found.get(reset)
            figures[kind] = Remaining(remaining, _int(found.get(limit)),
                                      reset_time(str(at), now) if at is not None else None)
            break
    if not figures:
        return None
    return Quota(deployment, group, now, figures.get("requests"), figures.get("tokens"))


# --- a tier's headroom ---------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """How much of one limit must stay left: a count, or a share of the limit."""

    value: float
    percent: bool

    def text(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"

    def reached(self, figures: Remaining) -> bool:
        """Whether ``figures`` are at or below this (a share needs the limit)."""
        if self.percent:
            share = figures.share()
            return share is not None and share * 100 <= self.value
        return figures.remaining <= self.value


def parse_threshold(key: str, value: Any) -> Threshold:
    """``5%`` (a share, 0 < N < 100) or a whole number ``>= 0``; ValueError naming ``key``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1])
        except ValueError:
            share = -1.0
        if 0 < share < 100:
            return Threshold(share, True)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Threshold(float(value), False)
    raise ValueError(f"{key}: {value!r} is not valid; expected a share such as '5%' or a whole "
                     "number >= 0")


def threshold_text(value: Threshold) -> str | int:
    """As written in the state file: ``"5%"`` or ``2``."""
    return value.text() if value.percent else int(value.value)


def below(quotas: Iterable[Quota], minimum: Mapping[str, Threshold], now: float
          ) -> dict[str, Any] | None:
    """The ``headroom`` figures when every deployment with fresh figures is at or below
    ``minimum`` (the router could still pick one that is not), before its reset; else None.

    Figures whose reset has passed say nothing any more (a new window began). A limit with
    nothing left counts whichever limits ``minimum`` names (a 429 leaves no headroom).
    """
    fresh: list[tuple[Quota, dict[str, dict[str, Any]], float]] = []
    for quota in quotas:
        hits: dict[str, dict[str, Any]] = {}
        latest = 0.0
        for kind in KINDS:
            figures, threshold = quota.of(kind), minimum.get(kind)
            if figures is None or not (figures.remaining == 0 or threshold and
                                       threshold.reached(figures)):
                continue
            until = figures.reset if figures.reset is not None else quota.at + STALE_S
            if now < until:
                hits[kind] = {"remaining": figures.remaining, "limit": figures.limit,
                              "min": threshold.text() if threshold else "0",
                              "reset": round(until, 3)}
                latest = max(latest, until)
        fresh.append((quota, hits, latest))
    if not fresh or not all(hits for _, hits, _ in fresh):
        return None
    quota, hits, until = min(fresh, key=lambda entry: entry[2])  # the first to come back
    return {"deployment": quota.deployment, **hits, "until": round(until, 3)}


def quota_summary(quota: Quota) -> dict[str, Any]:
    """The ``done.quota`` field: what the serving deployment reported, per limit."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        figures = quota.of(kind)
        if figures is not None:
            out[kind] = {"remaining": figures.remaining, "limit": figures.limit,
                         "reset": None if figures.reset is None else round(figures.reset, 3)}
    return out


@dataclass(frozen=True)
class Move:
    """Where headroom sends a request: ``target`` and the chain after it, and the record."""

    target: str
    chain: list[str]
    record: dict[str, Any]


def headroom_route(tier_model: str, minimum: Mapping[str, Threshold], target: str,
                   chain: list[str], quotas: Callable[[str], list[Quota]], now: float,
                   loop: bool) -> Move | None:
    """Where a request of a tier goes when the tier's model is below its headroom: the first
    model of its fallback chain that is not below it too, with the tier's model last in the
    chain (it still serves when they fail). None when nothing is to be said (no headroom set,
    the request does not go to the tier's model, the model has room).

    A tool-loop continuation (``loop``) is never moved, nor is a request when every fallback is
    below its headroom too: the record says so (``kept``) and where it would have gone.
    """
    if not minimum or target != tier_model:
        return None
    low = below(quotas(target), minimum, now)
    if low is None:
        return None
    record: dict[str, Any] = {"from": target, **low}
    if not chain:
        return Move(target, chain, {**record, "kept": "no fallback chain"})
    if loop:
        return Move(target, chain, {**record, "kept": "tool loop (its history belongs to "
                                                      "its model)"})
    for model in chain:
        if below(quotas(model), minimum, now) is None:
            rest = [m for m in chain if m != model] + [target]
            return Move(model, rest, {**record, "to": model})
    return Move(target, chain, {**record, "kept": "every fallback is below its headroom too"})


def _headers_in(holder: Any) -> Mapping[str, Any]:
    value = holder.get("additional_headers") if isinstance(holder, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def call_headers(kwargs: Mapping[str, Any], response_obj: Any) -> dict[str, Any]:
    """The provider's rate-limit response headers (:func:`rate_limit_headers`: a response has
    about 60 headers, a handful of them rate limits), as LiteLLM hands them to a success
    callback (checked on LiteLLM 1.108.5): ``kwargs["response_headers"]`` (raw; the only place
    on a streamed ``/v1/messages`` call), else the ``additional_headers`` of the response's
    hidden params or of the call metadata's ``hidden_params`` (prefixed ``llm_provider-``, the
    only place on a chat completion an Anthropic deployment served)."""
    raw = kwargs.get("response_headers")
    if isinstance(raw, Mapping):
        # the names read, looked up (httpx hands them over in lower case), else each one read
        found = {}
        for name in _READ:
            if name in raw:
                found[name] = raw[name]
        found = found or rate_limit_headers((raw,))
        if found:  # the others are copies of the same response's headers
            return found
    metadata = (kwargs.get("litellm_params") or {}).get("metadata")
    return rate_limit_headers((
        _headers_in(getattr(response_obj, "_hidden_params", None)),
        _headers_in(metadata.get("hidden_params") if isinstance(metadata, Mapping) else None)))


def quota_of_call(kwargs: Mapping[str, Any], response_obj: Any, now: float) -> Quota | None:
    """The serving deployment's rate-limit figures after a successful call, if reported."""
    slo = kwargs.get("standard_logging_object") or {}
    deployment, group = slo.get("model_id"), slo.get("model_group")
    if not isinstance(deployment, str) or not deployment or not isinstance(group, str):
        return None
    return _quota(call_headers(kwargs, response_obj), deployment, group, now)


def quota_of_failure(exc: BaseException, deployment: Any, group: Any, now: float,
                     wait: float | None) -> Quota | None:
    """A failed attempt's figures: the rate-limit headers of its error response when it has
    them; a 429 whose headers show nothing used up counts as no request left until its
    ``retry-after`` (``wait``): it was refused, whatever the figures say."""
    if not isinstance(deployment, str) or not deployment or not isinstance(group, str):
        return None
    quota = None
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(response, "headers", None)):
        items = getattr(headers, "items", None)
        if callable(items):
            quota = quota_from_headers(dict(items()), deployment, group, now)
            if quota is not None:
                break
    if getattr(exc, "status_code", None) != 429 or any(
            f is not None and f.remaining == 0 for f in (quota and (quota.requests, quota.tokens)
                                                         or ())):
        return quota
    if wait is None:
        return quota
    limit = quota.requests.limit if quota is not None and quota.requests else None
    return Quota(deployment, group, now, Remaining(0, limit, now + wait),
                 quota.tokens if quota is not None else None)
