"""LiteLLM proxy callback: route each request to a model chosen by its reasoning strength.

Load it in a proxy config with::

    litellm_settings:
      callbacks: callbacks.model_route_callback.proxy_handler_instance

A thin adapter over the headless core: it reads the live state (``$REASONING_PANEL_HOME/
state.yaml``), detects the request's strength, decides, rewrites the request, and records the
decision in the request's metadata under ``reasoning_panel``, and appends ``routed``, ``done`` /
``failed`` and ``state`` records to ``$REASONING_PANEL_HOME/events.jsonl`` (see
:mod:`callbacks.core.events`); in fleet mode the state and the records are in Redis instead
(:mod:`callbacks.stores.store`). It never raises into the request path: an internal error passes the
request through unchanged and is logged.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from litellm.integrations.custom_logger import CustomLogger

from callbacks.compat import effort_refused
from callbacks.core import responses_history as responses
from callbacks.core.adapters import adapter_patch, apply_patch, reasoning_patch
from callbacks.core.context import Limits, estimate_tokens, group_limit, guard
from callbacks.core.detect import detect_strength, latest_user_text, reasoning_fields
from callbacks.core.events import (
    outcome_record,
    redact,
    refused_record,
    reload_record,
    routed_record,
)
from callbacks.core.fallbacks import (
    attempt_record,
    chain_failed_record,
    fallback_chain,
    fallback_record,
    retry_after,
)
from callbacks.core.headroom import (
    Quota,
    headroom_route,
    quota_of_call,
    quota_of_failure,
    quota_summary,
)
from callbacks.core.history import (
    Target,
    fit_history,
    reasoning_text_ids,
    signatures_in,
    thinking_on,
    tool_loop,
)
from callbacks.core.policy import Decision, decide
from callbacks.core.produced import produced_blocks, provider_reasoning
from callbacks.core.sessions import is_subagent, who_sent
from callbacks.core.state import TIERS, State, Tier, TierTarget
from callbacks.startup import start_preflight
from callbacks.stores.base import LiveView, Store
from callbacks.stores.files import FileStore
from callbacks.stores.memory import ConversationMemory, Producer
from callbacks.stores.statefile import StateFile
from callbacks.stores.store import open_store

log = logging.getLogger("reasoning_panel")

# LiteLLM call types this callback routes, and the endpoint each one serves.
ENDPOINTS: Final = {
    "anthropic_messages": "/v1/messages",
    "acompletion": "/v1/chat/completions",
    "completion": "/v1/chat/completions",
    "aresponses": "/v1/responses",
    "responses": "/v1/responses",
}
METADATA_KEY: Final = "reasoning_panel"
STARTED_KEY: Final = "reasoning_panel_at"  # when the hook saw the request (Unix seconds)
MAX_ATTEMPTS: Final = 20
PREVIEW_CHARS: Final = 120


Targets = Callable[[str], Target | None]
"""Model group -> what serves it (None when the proxy has no such group)."""
LOSS: Final = "tool continuation without its own thinking block: sent with thinking off"
LOSS_RESPONSES: Final = ("tool calls without their own signed reasoning item, to a target that "
                         "needs it: sent with reasoning off")


def loop_ids(data: Mapping[str, Any]) -> list[str]:
    """The tool-call ids a continuation answers, whatever the endpoint; [] for a new turn."""
    return responses.tool_loop(data) if responses.is_responses(data) else tool_loop(data)


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
    for key in [k for k in data if k not in work]:
        del data[key]
    data.update(work)


def route_request(live: LiveView, data: dict[str, Any], endpoint: str,
                  memory: ConversationMemory | None = None,
                  targets: Targets = any_target, limits: Limits = no_limits,
                  quotas: Callable[[str], list[Quota]] | None = None) -> dict[str, Any]:
    """Decide where ``data`` goes, rewrite it in place, and return the decision record.

    A tool-loop continuation is held on the model group that made its ``tool_use`` (whatever
    the mapping, pin or routing says now); the history is then fitted to the target.
    """
    state = live.current()
    model = data.get("model")
    fields = reasoning_fields(data)  # before the rewrite: what the client sent
    strength = detect_strength(data, state.detection)
    decision = decide(state, model, strength, is_subagent(data)) if isinstance(model, str) else \
        Decision("not_routed", None, None)
    tool_ids = loop_ids(data)
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
                                   unheld_loop="hold" in extra))
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
        **who_sent(data),
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
                  strip_all: bool, unheld_loop: bool = False) -> dict[str, Any]:
    """Fit ``work``'s history to ``target`` in place; the record fields that say what happened.

    A tool continuation that could not be held (``unheld_loop``: its tool_use is unknown, or
    its model is gone), or that would reach an Anthropic target without its own thinking
    block, is sent with thinking off, the one request every provider accepts: a loss of
    reasoning, recorded.
    """
    if responses.is_responses(work):
        return _fit_responses(work, target, memory, strip_all, unheld_loop)
    signatures, texts = signatures_in(work), reasoning_text_ids(work)
    recall = memory.recall(signatures, texts) if (signatures or texts) and memory else None
    producers = recall.signatures if recall else {}
    tools = recall.tools if recall else {}
    fit = fit_history(work, target, producers, strip_all, tools)
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
    if target.responses or (isinstance(reasoning, Mapping) and reasoning.get("effort")):
        return None
    work["reasoning"] = {**(reasoning if isinstance(reasoning, Mapping) else {}), "effort": "medium"}
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


def _reasoning_on(body: Mapping[str, Any]) -> bool:
    reasoning = body.get("reasoning")
    return isinstance(reasoning, Mapping) and reasoning.get("effort") not in (None, "none")


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
    keys, ids = responses.reasoning_refs(work)
    producers: dict[str, Any] = {}
    if (keys or ids) and memory is not None:
        recall = memory.recall(keys, ids)
        producers = {**recall.signatures, **recall.tools}
    fit = responses.fit_input(work, target, producers, strip_all)
    out: dict[str, Any] = {}
    fitted = fit.messages if fit.messages is not None else items
    if not strip_all and _reasoning_on(work) and target.anthropic and not target.responses and (
            (unheld_loop and responses.tool_loop(work))
            or responses.calls_without_signed_reasoning(fitted)):
        apply_patch(work, reasoning_patch(work, "none", TierTarget(target.group)))
        fit = responses.fit_input(work, target, producers, strip_all=True)
        out["reasoning_lost"] = LOSS_RESPONSES
    if fit.messages is not None:
        work["input"] = fit.messages
    if keys or ids or fit.dropped:
        out["history"] = fit.summary()
    return out


def _metadata(data: dict[str, Any], call_type: str) -> dict[str, Any]:
    for key in ("litellm_metadata", "metadata"):
        if isinstance(data.get(key), dict):
            return data[key]  # type: ignore[no-any-return]
    key = "litellm_metadata" if call_type == "anthropic_messages" else "metadata"
    data[key] = {}
    return data[key]  # type: ignore[no-any-return]


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


class ProxyTargets:
    """Model group -> :class:`Target`, from the proxy's router (cached briefly)."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Target | None]] = {}
        self._limits: dict[str, tuple[float, int | None]] = {}
        self._models: dict[str, tuple[float, str]] = {}

    @staticmethod
    def _router() -> Any:
        """The proxy's router; None outside a proxy (never imports the proxy server itself)."""
        server = sys.modules.get("litellm.proxy.proxy_server")
        return getattr(server, "llm_router", None)

    def __call__(self, group: str) -> Target | None:
        now = time.monotonic()
        hit = self._cache.get(group)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        router = self._router()
        if router is None:
            return Target(group)
        deployments = router.get_model_list(model_name=group) or []
        models = {str((d.get("litellm_params") or {}).get("model", "")) for d in deployments}
        target = Target(group, next(iter(models)) if len(models) == 1 else "",
                        anthropic=all(map(_anthropic_native, models)),
                        responses=all(map(_responses_native, models))) if models else None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[group] = (now, target)
        return target

    def input_limit(self, group: str) -> int | None:
        """The group's input limit from LiteLLM's model info (cached briefly)."""
        now = time.monotonic()
        hit = self._limits.get(group)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        router = self._router()
        limit = group_limit(router.get_model_list(model_name=group) or [] if router else [],
                            _model_map_limit)
        if len(self._limits) > 1000:
            self._limits.clear()
        self._limits[group] = (now, limit)
        return limit

    def deployment_model(self, deployment_id: Any) -> str:
        """The upstream model of one deployment (``litellm_params.model``), "" when unknown
        (cached briefly: the router builds a new object for every lookup)."""
        if not isinstance(deployment_id, str):
            return ""
        now = time.monotonic()
        hit = self._models.get(deployment_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        router = self._router()
        if router is None:
            return ""
        deployment = router.get_deployment(model_id=deployment_id)
        model = str(deployment.litellm_params.model) if deployment is not None else ""
        if len(self._models) > 1000:
            self._models.clear()
        self._models[deployment_id] = (now, model)
        return model


def _model_map_limit(model: str) -> int | None:
    """``max_input_tokens`` of a LiteLLM model string in LiteLLM's model map, if it knows it."""
    try:
        import litellm

        value = (litellm.get_model_info(model) or {}).get("max_input_tokens")
    except Exception:  # noqa: BLE001 - a model LiteLLM does not know
        return None
    return value if isinstance(value, int) else None


def _call_metadata(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request metadata inside LiteLLM's call kwargs (deployment hook and log events): the
    one holding the decision record (a client's own ``metadata``, e.g. Claude Code's
    ``user_id``, can sit beside it), else the first there is."""
    found = [holder[key] for holder in (kwargs, kwargs.get("litellm_params") or {})
             for key in ("litellm_metadata", "metadata")
             if isinstance(holder.get(key), dict) and holder[key]]
    return next((m for m in found if METADATA_KEY in m), found[0] if found else {})


# The reasoning fields of a body (what :func:`provider_reasoning` reads), kept per call from the
# deployment hook until the call's outcome: a few references, never a copy of the body.
SENT_KEYS: Final = ("thinking", "reasoning_effort", "output_config", "reasoning", "messages",
                    "input")
MAX_SENT: Final = 4096  # calls in flight whose final body is kept (the oldest go first)


def _sent_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in SENT_KEYS if key in body}


def _reported_body(kwargs: Mapping[str, Any]) -> Any:
    """The body LiteLLM's logging reports it sent, on the paths where it does (no deployment
    hook ran: a call LiteLLM made without one)."""
    return (kwargs.get("additional_args") or {}).get("complete_input_dict")


def _newest_thinking(messages: list[Any]) -> bool:
    """Whether any message holds a thinking block, looking from the newest one (a kept block
    is most often in the last assistant turns)."""
    for message in reversed(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
                isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking")
                for b in content):
            return True
    return False


def _hidden_retry(kwargs: Mapping[str, Any], routed: Mapping[str, Any]) -> bool:
    """Whether LiteLLM retried the call without thinking after the provider refused a block.

    On the native Messages path LiteLLM strips every thinking block and calls again once when
    the provider answers 400 about a signature; nothing flags it. The final body it reports
    then holds none of the blocks the hook sent.
    """
    fitted = [routed.get("history") or {}] + list(routed.get("refits") or [])
    sent_blocks = (fitted[-1].get("history", fitted[-1]) or {}).get("kept", 0)
    if not sent_blocks or routed.get("endpoint") != "/v1/messages" or \
            not _anthropic_native(str(routed.get("fitted_for") or "")):
        return False  # only the native Messages path retries that way
    final = kwargs.get("messages")
    return isinstance(final, list) and not _newest_thinking(final)


class ReasoningRouter(CustomLogger):
    """The proxy hook; one instance per proxy worker process."""

    TOOL_WAIT_S: Final = 0.3
    """How long a continuation waits for its tool_use to be remembered (another worker may
    still be writing the step before it); only unknown tool ids ever wait."""

    def __init__(self, state_file: StateFile | None = None, events: bool = True,
                 memory: ConversationMemory | None = None, store: Store | None = None) -> None:
        super().__init__()
        # the files in the state folder, or Redis in fleet mode ($REASONING_PANEL_REDIS_URL)
        self.store = store or (FileStore(state_file=state_file) if state_file else open_store())
        self.events = self.store.event_log() if events else None
        self.memory: ConversationMemory = memory if memory is not None else self.store.memory()
        self.targets = ProxyTargets()
        self.quotas = self.store.quotas()
        self._sent: dict[str, dict[str, Any]] = {}  # call id -> the final body's reasoning fields
        self.live = self.store.live(
            on_reload=lambda old, new: self._emit(reload_record(old, new)),
            on_problem=lambda message: self._emit(refused_record(message)),
        )

    def _emit(self, record: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.emit(record)

    async def _await_tool_producer(self, data: dict[str, Any]) -> None:
        previous = previous_response(data)
        tool_ids = loop_ids(data) or ([previous] if previous else [])
        if not tool_ids:
            return
        deadline = time.monotonic() + self.TOOL_WAIT_S
        while not self.memory.recall((), tool_ids[-1:]).tools and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        endpoint = ENDPOINTS.get(str(call_type))
        if endpoint is None:
            return data
        at = time.time()
        try:
            await self._await_tool_producer(data)
            record = route_request(self.live, data, endpoint, self.memory, self.targets,
                                   self.targets.input_limit, self.quotas.of_group)
        except Exception as exc:  # never break a request: pass it through unchanged
            log.exception("reasoning-panel: routing failed; request passed through unchanged")
            record = {"endpoint": endpoint, "client_model": str(data.get("model")),
                      "reason": "error", "error": redact(repr(exc), 200)}
        try:
            meta = _metadata(data, str(call_type))
            meta[METADATA_KEY] = record
            meta[STARTED_KEY] = at
            if self.events is not None and self.live.state is not None:
                self.events.max_bytes = self.live.state.event_log.max_bytes
                self.events.backups = self.live.state.event_log.backups
            self._emit(routed_record(data.get("litellm_call_id"), record, at))
        except Exception:  # pragma: no cover - never break a request over bookkeeping
            log.exception("reasoning-panel: could not record the decision")
        return data

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any
                                             ) -> dict[str, Any] | None:
        """Fit the history again when the deployment that really gets the call is another
        model than the one planned (a fallback, a group of several models)."""
        try:
            fitted = self._fit_deployment(kwargs)
        except Exception:  # never break a call
            log.exception("reasoning-panel: could not fit the history to the deployment")
            fitted = None
        try:
            self._keep_sent(fitted if fitted is not None else kwargs)
        except Exception:  # pragma: no cover - bookkeeping must never fail a call
            log.exception("reasoning-panel: could not keep what the deployment gets")
        return fitted

    def _keep_sent(self, body: Mapping[str, Any]) -> None:
        """Remember the reasoning fields of the body this deployment gets, for ``done.sent``
        (the last attempt's wins: the one that served the call)."""
        call_id = body.get("litellm_call_id")
        if not isinstance(call_id, str):
            return
        sent = self._sent
        sent.pop(call_id, None)
        if len(sent) >= MAX_SENT:
            del sent[next(iter(sent))]
        sent[call_id] = _sent_fields(body)

    def _take_sent(self, kwargs: Mapping[str, Any]) -> Any:
        call_id = kwargs.get("litellm_call_id")
        kept = self._sent.pop(call_id, None) if isinstance(call_id, str) else None
        return kept if kept is not None else _reported_body(kwargs)

    def _fit_deployment(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        metadata = _call_metadata(kwargs)
        record = metadata.get(METADATA_KEY)
        if not isinstance(record, dict) or not (isinstance(kwargs.get("messages"), list)
                                                or isinstance(kwargs.get("input"), list)):
            return None
        model = self.targets.deployment_model((metadata.get("model_info") or {}).get("id"))
        model = model or str(kwargs.get("model") or "")
        group = str(metadata.get("model_group") or record.get("target") or model)
        if not model or model == record.get("fitted_for"):
            return None
        work = dict(kwargs)
        none_tier = record.get("target") is not None and record.get("tier") == "none"
        extra = fit_to_target(work, target_of(group, model), self.memory,
                              strip_all=none_tier)
        record["fitted_for"] = model
        if extra.get("reasoning_lost") or (extra.get("history") or {}).get("dropped"):
            record.setdefault("refits", []).append({"group": group, "model": model, **extra})
        return work

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        quota = None
        try:  # what the provider said is left of its rate limit, for the tiers' headroom
            quota = quota_of_call(kwargs, response_obj, time.time())
            if quota is not None and self._keeps_headroom():
                self.quotas.record(quota)
        except Exception:  # pragma: no cover - bookkeeping must never fail a call
            log.exception("reasoning-panel: could not read the rate-limit headers")
        self._outcome(kwargs, failed=False, quota=quota)
        try:
            self._remember(kwargs, response_obj)
        except Exception:  # pragma: no cover - memory must never fail a call
            log.exception("reasoning-panel: could not remember what a call produced")

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        if (_call_metadata(kwargs).get(METADATA_KEY) or {}).get("fallbacks"):
            return  # LiteLLM reports the first failed attempt; the chain may still serve it
        self._outcome(kwargs, failed=True)

    async def async_post_call_failure_deployment_hook(
            self, request_data: Mapping[str, object], exception: Exception, call_type: Any,
            fallback_depth: int | None = None) -> None:
        """Each failed attempt of a request with a fallback chain, for its records; and what
        a refusal said of the deployment's rate limit, for the tiers' headroom."""
        try:
            metadata = _call_metadata(request_data)
            self._failed_quota(metadata, request_data.get("model"), exception)
            record = metadata.get(METADATA_KEY)
            if isinstance(record, dict) and record.get("fallbacks"):
                attempts = record.setdefault("attempts", [])
                if len(attempts) < MAX_ATTEMPTS:
                    attempts.append(attempt_record(
                        str(metadata.get("model_group") or request_data.get("model")),
                        (metadata.get("model_info") or {}).get("id"), exception))
        except Exception:  # pragma: no cover - bookkeeping must never fail a call
            log.exception("reasoning-panel: could not record a failed attempt")

    async def async_post_call_failure_hook(self, request_data: dict[str, Any],
                                           original_exception: Exception, user_api_key_dict: Any,
                                           traceback_str: str | None = None) -> Any:
        """The end of a request with a fallback chain that no group could serve: its one
        ``failed`` record, with the error the client got (LiteLLM answers with the first
        group's, its message saying how the fallbacks failed) and every attempt."""
        try:
            metadata = _call_metadata(request_data)
            record = metadata.get(METADATA_KEY)
            if not isinstance(record, dict) or not record.get("fallbacks"):
                return None
            self._emit(chain_failed_record(request_data.get("litellm_call_id"), record,
                                           original_exception, metadata.get(STARTED_KEY)))
        except Exception:  # pragma: no cover - logging must never fail a call
            log.exception("reasoning-panel: could not record a call's outcome")
        return None

    def _keeps_headroom(self) -> bool:
        state = self.live.state  # figures are recorded only while some tier keeps a headroom
        return state is not None and any(t.min_remaining for t in state.tiers.values())

    def _failed_quota(self, metadata: Mapping[str, Any], model: Any,
                      exception: Exception) -> None:
        if self._keeps_headroom():
            quota = quota_of_failure(exception, (metadata.get("model_info") or {}).get("id"),
                                     metadata.get("model_group") or model, time.time(),
                                     retry_after(exception))
            if quota is not None:
                self.quotas.record(quota)

    def _remember(self, kwargs: Any, response_obj: Any) -> None:
        signatures, tools = produced_blocks(response_obj)
        if not signatures and not tools:
            return
        slo = kwargs.get("standard_logging_object") or {}
        group = slo.get("model_group") or kwargs.get("model")
        if not group:
            return
        record = _call_metadata(kwargs).get(METADATA_KEY) or {}
        model = self.targets.deployment_model(slo.get("model_id")) or str(kwargs.get("model") or "")
        tier = record.get("tier") if record.get("target") else None
        self.memory.remember(Producer(str(group), model, tier), signatures, tools)

    def _outcome(self, kwargs: Any, failed: bool, quota: Quota | None = None) -> None:
        try:
            metadata = _call_metadata(kwargs)
            record = outcome_record(kwargs, failed, metadata.get(STARTED_KEY))
            if quota is not None:
                record["quota"] = quota_summary(quota)
            routed = metadata.get(METADATA_KEY) or {}
            if routed.get("refits"):
                record["refits"] = routed["refits"]
            fallback = None if failed or not routed.get("fallbacks") else fallback_record(
                routed.get("target"), record.get("model_group"), routed.get("attempts") or [])
            if fallback is not None:
                record.update(fallback=fallback, attempts=routed.get("attempts") or [])
            wait = retry_after(kwargs.get("exception")) if failed else None
            if wait is not None:  # the provider's cooldown, for the panel's tier health
                record["retry_after"] = wait
            sent = self._take_sent(kwargs)
            if not failed:
                if _hidden_retry(kwargs, routed):
                    record["hidden_retry"] = True
                    # LiteLLM dropped ``thinking`` and every thinking block before the retry
                    kept = sent if isinstance(sent, Mapping) else {}
                    sent = {k: v for k, v in kept.items() if k != "thinking"} | {
                        "messages": kwargs.get("messages")}
                record["sent"] = provider_reasoning(sent)
            self._emit(record)
        except Exception:  # pragma: no cover - logging must never fail a call
            log.exception("reasoning-panel: could not record a call's outcome")


proxy_handler_instance = ReasoningRouter()
start_preflight(proxy_handler_instance)  # in a proxy: once, what will not be routed and why
