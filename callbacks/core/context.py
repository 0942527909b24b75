"""The context guard (pure): a cheap estimate of a request's input tokens, and where a request
goes when it will not fit its tier's model.

The estimate never runs a tokenizer: it counts the characters of the parts a model reads
(system / instructions, messages / input, tools: keys and values, without signatures and other
opaque data), divides by a ratio calibrated against a real tokenizer on Claude-Code-shaped
bodies (``reasoning-panel bench`` prints its error), and adds a fixed cost per message and per
image or document. On a 200k-token body it costs about a millisecond, and it only runs when the
target has a known limit and the raw body is not clearly small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from callbacks.core.state import TIERS, State, Tier

PROMPT_KEYS: Final = ("system", "instructions", "messages", "input", "tools")
CHARS_PER_TOKEN: Final = 3.3
"""Characters (keys and values) per token, calibrated on Claude-Code-shaped bodies (code, prose,
tool schemas and calls): they measured 3.3 to 4.1 by tiktoken's ``o200k_base`` and 3.2 to 3.7
by the Claude tokenizer LiteLLM bundles, so the estimate errs on the high side (a request near
the limit is moved rather than refused)."""
MESSAGE_TOKENS: Final = 4
"""Role and separators of one message in a chat template."""
MEDIA_TOKENS: Final = 1_600
"""One image or document block (Anthropic: about 1,600 tokens for a 1,092 px square image)."""
_OPAQUE: Final = frozenset({"signature", "data", "encrypted_content", "cache_control"})
_MEDIA: Final = frozenset({"image", "document", "image_url", "input_image", "input_file", "file"})

Limits = Callable[[str], int | None]
"""Model group -> its input limit from LiteLLM's model info (None when unknown)."""


def prompt_size(body: Mapping[str, Any]) -> tuple[int, int, int]:
    """(characters, media blocks, messages) of the parts of ``body`` a model reads."""
    chars = media = 0
    stack: list[Any] = [body.get(key) for key in PROMPT_KEYS]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str:
            chars += len(value)
        elif kind is list:
            stack.extend(value)
        elif kind is dict:
            if value.get("type") in _MEDIA:
                media += 1
                continue
            for key, item in value.items():
                if key in _OPAQUE:
                    continue
                chars += len(key)
                if type(item) is str:
                    chars += len(item)
                elif item is not None:
                    stack.append(item)
        elif value is not None:
            chars += 2  # a number or a boolean
    messages = body.get("messages", body.get("input"))
    return chars, media, len(messages) if isinstance(messages, list) else 0


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """The input tokens of ``body``, estimated from its length (no tokenizer run)."""
    chars, media, messages = prompt_size(body)
    return math.ceil(chars / CHARS_PER_TOKEN) + media * MEDIA_TOKENS + messages * MESSAGE_TOKENS


def surely_fits(body_bytes: int | None, limit: int) -> bool:
    """Whether a raw request body of ``body_bytes`` bytes fits ``limit`` without estimating:
    the body holds every character the estimate counts, and JSON adds more."""
    return body_bytes is not None and body_bytes * 2 <= limit * CHARS_PER_TOKEN


def group_limit(deployments: Iterable[Mapping[str, Any]], model_map: Limits) -> int | None:
    """A model group's input limit: the smallest of its deployments', each one's own
    ``model_info.max_input_tokens`` first (LiteLLM shares model-map entries between deployments
    of one upstream model), else ``model_map`` of its ``litellm_params.model``."""
    found = []
    for deployment in deployments:
        value = (deployment.get("model_info") or {}).get("max_input_tokens")
        if not isinstance(value, int):
            value = model_map(str((deployment.get("litellm_params") or {}).get("model", "")))
        if isinstance(value, int) and value > 0:
            found.append(value)
    return min(found) if found else None


def tier_limit(state: State, tier: Tier, model: str, limits: Limits) -> int | None:
    """The input limit of ``model`` serving ``tier``: the tier's ``max_input_tokens`` when the
    model is the tier's own, else LiteLLM's model info."""
    target = state.tiers[tier]
    if target.model == model and target.max_input_tokens is not None:
        return target.max_input_tokens
    return limits(model)


def _fits(tokens: int, limit: int | None) -> bool:
    return limit is None or tokens <= limit  # no known limit: nothing says it will not fit


def guard(state: State, tier: Tier, target: str, estimate: Callable[[], int], limits: Limits,
          body_bytes: int | None = None) -> dict[str, Any] | None:
    """The ``context`` record when the request will not fit ``target`` (None when it fits or
    the target's limit is unknown): ``{estimate, limit, from, to, tier}`` when it moves to the
    nearest tier above whose model fits (or to ``long_context``), ``{estimate, limit, from,
    warning}`` when nothing fits and it goes on as asked. A model without a known limit is
    taken to fit."""
    limit = tier_limit(state, tier, target, limits)
    if limit is None or surely_fits(body_bytes, limit):
        return None
    tokens = estimate()
    if tokens <= limit:
        return None
    record: dict[str, Any] = {"estimate": tokens, "limit": limit, "from": target}
    for above in TIERS[TIERS.index(tier) + 1:]:
        model = state.tiers[above].model
        if model != target and _fits(tokens, tier_limit(state, above, model, limits)):
            return {**record, "to": model, "tier": above}
    long_context = state.long_context
    if long_context and long_context != target and _fits(tokens, limits(long_context)):
        return {**record, "to": long_context, "tier": None}
    return {**record, "warning": "fits no tier above and no long_context model: sent on as asked"}
