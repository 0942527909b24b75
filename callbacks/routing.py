"""Routing orchestration: what the callback does to each request, readable and testable without
LiteLLM (the proxy's targets and limits are passed in as functions).

:func:`route_request` detects a request's strength, decides its tier and target (a held tool loop,
a Responses chain, the context guard, headroom), rewrites it for the tier and the target, and fits
its replayed history to the model that gets it (:func:`fit_to_target`; Messages and chat
histories in :mod:`callbacks.core.history`, Responses inputs in
:mod:`callbacks.core.responses_history`). It returns the decision record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from callbacks.compat import effort_refused
from callbacks.core import responses_history as responses
from callbacks.core.adapters import adapter_patch, apply_patch, reasoning_patch
from callbacks.core.context import Limits, estimate_tokens, guard
from callbacks.core.detect import detect_strength, latest_user_text, reasoning_fields
from callbacks.core.events import (
    redact,
)
from callbacks.core.fallbacks import (
    fallback_chain,
)
from callbacks.core.headroom import (
    Quota,
    headroom_route,
)
from callbacks.core.history import (
    Target,
    fit_history,
    history_reasoning,
    newest_signature,
    thinking_on,
    tool_loop,
)
from callbacks.core.policy import Decision, decide
from callbacks.core.sessions import is_subagent, who_sent
from callbacks.core.state import TIERS, State, Tier, TierTarget
from callbacks.stores.base import LiveView
from callbacks.stores.memory import ConversationMemory

PREVIEW_CHARS: Final = 120


Targets = Callable[[str], Target | None]
"""Model group -> what serves it (None when the proxy has no such group)."""
LOSS: Final = "tool continuation without its own thinking block: sent with thinking off"
LOSS_RESPONSES: Final = ("tool calls without their own signed reasoning item, to a target that "
                         "needs it: sent with reasoning off")


def loop_ids(data: Mapping[str, Any]) -> list[str]:
    """The tool-call ids a continuation answers, whatever the endpoint; [] for a new turn."""
    return responses.tool_loop(data) if responses.is_responses(data) else tool_loop(data)


def newest_made(data: Mapping[str, Any], tool_ids: list[str]) -> tuple[list[str], list[str]]:
    """What the request replays that the call before it made (signatures, tool or item ids):
    the last tool id a continuation answers, the response a Responses call chains to, else the
    newest thinking block or reasoning item of its history. The memory may still be writing
    it when another worker served that call."""
    if tool_ids:
        return [], tool_ids[-1:]
    if responses.is_responses(data):
        previous = previous_response(data)
        return ([], [previous]) if previous else responses.newest_reasoning(data)
    signature = newest_signature(data)
    return ([signature], []) if signature else ([], [])


def any_target(group: str) -> Target:
    """Without a proxy to ask (unit tests, bench): every group exists, an Anthropic target."""
    return Target(group)


def no_limits(group: str) -> int | None:
    """Without a proxy to ask: no model info, only the state file's limits."""
    return None


def _body_bytes(data: Mapping[str, Any]) -> int | None:
    """The raw request body's size (its content-length header), when the proxy reports it."""
    headers = (data.get("proxy_server_request") or {}).get("headers") or {}
    length = str(headers.get("content-length") or "")
    return int(length) if length.isdigit() else None


def _commit(data: dict[str, Any], work: dict[str, Any]) -> None:
    """Make ``data`` equal ``work`` (same dict object: LiteLLM holds a reference)."""
    for key in data.keys() - work.keys():
        del data[key]
    data.update(work)


def route_request(live: LiveView, data: dict[str, Any], endpoint: str,
                  memory: ConversationMemory | None = None,
                  targets: Targets = any_target, limits: Limits = no_limits,
                  quotas: Callable[[str], list[Quota]] | None = None,
                  tool_ids: list[str] | None = None) -> dict[str, Any]:
    """Decide where ``data`` goes, rewrite it in place, and return the decision record.

    A tool-loop continuation is held on the model group that made its ``tool_use`` (whatever
    the mapping, pin or routing says now); the history is then fitted to the target.
    ``tool_ids``: the continuation's :func:`loop_ids`, when the caller has them already.
    """
    state = live.current()
    model = data.get("model")
    fields = reasoning_fields(data)  # before the rewrite: what the client sent
    strength = detect_strength(data, state.detection)
    who = who_sent(data)
    decision = decide(state, model, strength, is_subagent(data, who)) \
        if isinstance(model, str) else Decision("not_routed", None, None)
    tool_ids = loop_ids(data) if tool_ids is None else tool_ids
    extra: dict[str, Any] = {"tool_loop": True} if tool_ids else {}
    if tool_ids and memory is not None and isinstance(model, str):
        decision = _hold(decision, model, tool_ids, memory, targets, extra, state, strength.tier)
    previous = previous_response(data)
    if previous and "held" not in extra and memory is not None and isinstance(model, str):
        # the history lives with the provider that stored that response: the whole
        # conversation stays on its model while the client chains responses by id
        decision = _hold(decision, model, [previous], memory, targets, extra, state,
                         strength.tier, what="previous_response")
    chain_tier = decision.tier
    if decision.target is not None and decision.tier is not None:
        context = guard(state, decision.tier, decision.target, lambda: estimate_tokens(data),
                        limits, _body_bytes(data))
        if context is not None:
            extra["context"] = context
            if context.get("to"):
                decision, chain_tier = replace(decision, target=context["to"]), context["tier"]
    chain = fallback_chain(state, chain_tier, decision.target) if decision.target else []
    if quotas is not None and chain_tier is not None and decision.target is not None:
        tier_target = state.tiers[chain_tier]  # headroom: its fallbacks first while it is low
        move = headroom_route(tier_target.model, tier_target.min_remaining, decision.target,
                              chain, quotas, time.time(), bool(tool_ids))
        if move is not None:
            extra["headroom"] = move.record
            decision, chain = replace(decision, target=move.target), move.chain

    work = dict(data)
    tier = decision.tier
    if decision.target is not None:
        if tier is not None and "began" not in extra.get("held", {}):  # a loop keeps its reasoning
            tier_target = state.tiers[tier] if tier in state.tiers else TierTarget(decision.target)
            apply_patch(work, reasoning_patch(work, tier, tier_target))
        patch = adapter_patch(work, state.adapter_for(decision.target))
        patch["model"] = decision.target
        if chain:  # LiteLLM's router walks it; no retries first: the chain is the retry
            patch.update(fallbacks=chain, num_retries=0)
            extra["fallbacks"] = chain
        apply_patch(work, patch)
    goes_to = decision.target or (model if isinstance(model, str) else "")
    if goes_to:
        target = targets(goes_to) or Target(goes_to)
        if strength.rule == "responses_default" and decision.target and tier != "none":
            made = default_effort(work, target)
            if made:
                extra["effort_set"] = made
        lowered = lower_effort(work, target)
        if lowered:
            extra["effort_lowered"] = lowered
        extra.update(fit_to_target(work, target, memory,
                                   strip_all=decision.target is not None and tier == "none",
                                   unheld_loop="hold" in extra, loop=bool(tool_ids)))
        extra["fitted_for"] = target.model
    _commit(data, work)
    return {
        "endpoint": endpoint,
        "client_model": model if isinstance(model, str) else repr(model),
        "signal": strength.signal,
        "value": strength.value,
        "rule": strength.rule,
        "strength": strength.tier,
        "fields": fields,
        "notes": list(strength.notes),
        "reason": decision.reason,
        "tier": decision.tier,
        "target": decision.target,
        "pin": state.pin,
        "routing": state.routing,
        **extra,
        **who,
        **({"capped": decision.capped} if decision.capped else {}),
        **({"preview": redact(latest_user_text(data), PREVIEW_CHARS)}
           if state.event_log.preview else {}),
    }


def previous_response(data: Mapping[str, Any]) -> str | None:
    """A Responses request's ``previous_response_id`` (server-side history), if any."""
    previous = data.get("previous_response_id")
    return previous if isinstance(previous, str) and previous and responses.is_responses(data) \
        else None


def _hold(decision: Decision, model: str, tool_ids: list[str], memory: ConversationMemory,
          targets: Targets, extra: dict[str, Any], state: State, strength: Tier,
          what: str = "tool_use") -> Decision:
    """Keep a tool continuation on the group that made its ``tool_use`` (``what``: or a
    Responses chain on the group that stored its ``previous_response``), or say why not."""
    known = memory.recall((), tool_ids).tools
    tool_id = next((t for t in reversed(tool_ids) if t in known), None)
    if tool_id is None:
        extra["hold"] = {"failed": f"its {what} was not made through this proxy (or is forgotten)",
                         what: tool_ids[-1]}
        return decision
    producer = known[tool_id]
    if targets(producer.group) is None:
        extra["hold"] = {"failed": f"{producer.group} is gone from the proxy", what: tool_id}
        return decision
    planned = decision.target or model
    if producer.group == planned:
        return decision  # goes there anyway: nothing is held
    # the tier the loop began in; for a loop begun passed through, the tier that now maps to
    # that model, else the request's own strength: a held request always belongs to a tier
    tier = next((t for t in TIERS if t == producer.tier), None) or next(
        (t for t in TIERS if state.tiers[t].model == producer.group), strength)
    extra["held"] = {"target": producer.group, "tier": tier, "instead_of": planned,
                     what: tool_id, **({"began": "passed through"} if producer.tier is None else {})}
    return Decision("held", tier, producer.group)


def fit_to_target(work: dict[str, Any], target: Target, memory: ConversationMemory | None,
                  strip_all: bool, unheld_loop: bool = False, loop: bool | None = None
                  ) -> dict[str, Any]:
    """Fit ``work``'s history to ``target`` in place; the record fields that say what happened.

    A tool continuation that could not be held (``unheld_loop``: its tool_use is unknown, or
    its model is gone), or that would reach an Anthropic target without its own thinking
    block, is sent with thinking off, the one request every provider accepts: a loss of
    reasoning, recorded. ``loop``: whether ``work`` is a tool continuation, when the caller
    knows.
    """
    if responses.is_responses(work):
        return _fit_responses(work, target, memory, strip_all, unheld_loop)
    signatures, texts, carriers = history_reasoning(work)
    if not carriers and loop is False and not unheld_loop:
        return {}  # a new turn whose history carries no reasoning: nothing to fit
    recall = memory.recall(signatures, texts) if (signatures or texts) and memory else None
    producers = recall.signatures if recall else {}
    tools = recall.tools if recall else {}
    fit = fit_history(work, target, producers, strip_all, tools, loop, carriers)
    out: dict[str, Any] = {}
    if fit.tool_loop_unsigned or (unheld_loop and thinking_on(work)):
        apply_patch(work, reasoning_patch(work, "none", TierTarget(target.group)))
        fit = fit_history(work, target, producers, strip_all=True, tools=tools)
        out["reasoning_lost"] = LOSS
    if fit.messages is not None:
        work["messages"] = fit.messages
    if signatures or texts or fit.dropped:
        out["history"] = fit.summary()
    return out


def default_effort(work: dict[str, Any], target: Target) -> dict[str, Any] | None:
    """A Responses call with no effort decides as medium, the OpenAI models' default; a target
    LiteLLM translates to (Anthropic, chat) would get no reasoning at all, so it is told."""
    reasoning = work.get("reasoning")
    if target.responses or (isinstance(reasoning, dict) and reasoning.get("effort")):
        return None
    work["reasoning"] = {**(reasoning if isinstance(reasoning, dict) else {}), "effort": "medium"}
    return {"to": "medium", "why": f"no effort sent; {target.model or target.group} has no default"}


def lower_effort(work: dict[str, Any], target: Target) -> dict[str, Any] | None:
    """An OpenAI-format effort above ``high`` (``xhigh``, ``max``) that LiteLLM would refuse for
    the Anthropic model it translates the call to: lowered to ``high`` (recorded, not silent)."""
    if not target.anthropic or not target.model:
        return None
    reasoning = work.get("reasoning")
    effort = work.get("reasoning_effort") or (reasoning.get("effort") if isinstance(
        reasoning, Mapping) else None)
    if effort not in ("xhigh", "max") or not effort_refused(target.model, effort):
        return None
    if work.get("reasoning_effort") == effort:
        work["reasoning_effort"] = "high"
    else:
        work["reasoning"] = {**reasoning, "effort": "high"}  # type: ignore[dict-item]
    return {"from": effort, "to": "high", "why": f"{target.model} does not take it"}


def _fit_responses(work: dict[str, Any], target: Target, memory: ConversationMemory | None,
                   strip_all: bool, unheld_loop: bool) -> dict[str, Any]:
    """:func:`fit_to_target` for a Responses ``input``.

    A continuation that reaches a translated Anthropic target without its own reasoning item
    (Anthropic refuses a tool loop whose thinking is missing; LiteLLM's stream carries no
    signature to replay) is sent with reasoning off: a loss, recorded.
    """
    items = work.get("input")
    if not isinstance(items, list):
        return {}
    known: responses.Keys = {}
    keys, ids = responses.reasoning_refs(work, known)
    producers: dict[str, Any] = {}
    if (keys or ids) and memory is not None:
        recall = memory.recall(keys, ids)
        producers = {**recall.signatures, **recall.tools}
    fit = responses.fit_input(work, target, producers, strip_all, known)
    out: dict[str, Any] = {}
    fitted = fit.messages if fit.messages is not None else items
    if not strip_all and thinking_on(work) and target.anthropic and not target.responses and (
            (unheld_loop and responses.tool_loop(work))
            or responses.calls_without_signed_reasoning(fitted)):
        apply_patch(work, reasoning_patch(work, "none", TierTarget(target.group)))
        fit = responses.fit_input(work, target, producers, strip_all=True, known=known)
        out["reasoning_lost"] = LOSS_RESPONSES
    if fit.messages is not None:
        work["input"] = fit.messages
    if keys or ids or fit.dropped:
        out["history"] = fit.summary()
    return out


def _anthropic_native(model: str) -> bool:
    """Whether a LiteLLM model string reaches Anthropic's own API (which verifies signatures)."""
    provider, _, rest = model.partition("/")
    return provider == "anthropic" or ("claude" in rest and provider in ("bedrock", "vertex_ai"))


def _responses_native(model: str) -> bool:
    """Whether a LiteLLM model string takes a Responses call as it is (OpenAI's own API)."""
    provider, slash, _ = model.partition("/")
    return provider in ("openai", "azure") if slash else model.startswith(("gpt-", "o1", "o3", "o4"))


def target_of(group: str, model: str) -> Target:
    return Target(group, model, anthropic=_anthropic_native(model),
                  responses=_responses_native(model))


