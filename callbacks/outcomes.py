"""What each call did, for the records and the memory: the ``done`` / ``failed`` records, the
body each deployment really gets (``done.sent``), a history refitted for a fallback, what a call
produced (the conversation memory) and the rate-limit figures providers report (headroom).

:class:`CallBook` holds it for one proxy worker; the callback's LiteLLM hooks hand it their
arguments. Nothing here may fail a call: the hooks catch and log.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from callbacks.core.events import (
    outcome_record,
)
from callbacks.core.fallbacks import (
    attempt_record,
    chain_failed_record,
    fallback_record,
    retry_after,
)
from callbacks.core.headroom import (
    Quota,
    quota_of_call,
    quota_of_failure,
    quota_summary,
)
from callbacks.core.produced import produced_blocks, provider_reasoning
from callbacks.proxy_targets import ProxyTargets
from callbacks.routing import _anthropic_native, fit_to_target, target_of
from callbacks.stores.base import LiveView
from callbacks.stores.memory import ConversationMemory, Producer
from callbacks.stores.quotas import QuotaBook

log = logging.getLogger("reasoning_panel")

METADATA_KEY: Final = "reasoning_panel"
STARTED_KEY: Final = "reasoning_panel_at"  # when the hook saw the request (Unix seconds)
MAX_ATTEMPTS: Final = 20
_producer: Final = functools.lru_cache(maxsize=1024)(Producer)
"""A :class:`Producer` (frozen: one shared for each group, model and tier; made anew each call, it
cost a loaded proxy 16 us with the caches cold)."""
QUOTA_EVERY_S: Final = 1.0
"""How often a ``done`` record carries its deployment's rate-limit figures while no tier keeps
a headroom (the panel only shows them then); with one, every record does."""


class CallRecord(dict[str, Any]):
    """A request's decision record as it rides in LiteLLM's request metadata.

    LiteLLM deep-copies the metadata for every attempt of a call (``safe_deep_copy``, key by
    key): the record alone, a few dozen small objects, cost a loaded proxy about 0.3 ms a
    request. Its copy is shallow instead: after the pre-call hook, the hooks only set top-level
    fields and append to ``refits`` and ``attempts``, whose lists are copied, so an attempt
    still never sees what another attempt's copy added, as with a deep copy.
    """

    __slots__ = ("fitted",)

    def __init__(self, record: Mapping[str, Any], fitted: tuple[list[Any], int] | None = None
                 ) -> None:
        super().__init__(record)
        self.fitted = fitted
        """The history the pre-call hook left in the request and the thinking blocks it holds
        (not an item: never logged): a deployment that gets this very list gets that count."""

    @classmethod
    def of_request(cls, record: Mapping[str, Any], data: Mapping[str, Any]) -> CallRecord:
        """The record of a request the pre-call hook routed, with the chat or Messages history
        routing fitted in ``data`` and the thinking blocks that history holds."""
        messages = data.get("messages")
        if "fitted_for" not in record or not isinstance(messages, list):
            return cls(record)
        return cls(record, (messages, (record.get("history") or {}).get("kept", 0)))

    def __copy__(self) -> CallRecord:
        return CallRecord(self, self.fitted)

    def __deepcopy__(self, memo: dict[int, Any]) -> CallRecord:
        copied = CallRecord(self, self.fitted)
        for key in ("refits", "attempts"):
            if isinstance(copied.get(key), list):
                copied[key] = list(copied[key])
        return copied


def call_metadata(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The request metadata inside LiteLLM's call kwargs (deployment hook and log events): the
    one holding the decision record (a client's own ``metadata``, e.g. Claude Code's
    ``user_id``, can sit beside it), else the first there is."""
    first: dict[str, Any] = {}
    for holder in (kwargs, kwargs.get("litellm_params") or {}):
        for key in ("litellm_metadata", "metadata"):
            found = holder.get(key)
            if isinstance(found, dict) and found:
                if METADATA_KEY in found:
                    return found
                first = first or found
    return first


# The reasoning fields of a body (what :func:`provider_reasoning` reads), kept per call from the
# deployment hook until the call's outcome: a few references, never a copy of the body.
SENT_KEYS: Final = ("thinking", "reasoning_effort", "output_config", "reasoning", "messages",
                    "input")
MAX_SENT: Final = 4096  # calls in flight whose final body is kept (the oldest go first)


def _sent_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    fields = {}
    for key in SENT_KEYS:
        if key in body:
            fields[key] = body[key]
    return fields


def _reported_body(kwargs: Mapping[str, Any]) -> Any:
    """The body LiteLLM's logging reports it sent, on the paths where it does (no deployment
    hook ran: a call LiteLLM made without one)."""
    return (kwargs.get("additional_args") or {}).get("complete_input_dict")


def _newest_thinking(messages: list[Any]) -> bool:
    """Whether any message holds a thinking block, looking from the newest one (a kept block
    is most often in the last assistant turns)."""
    for message in reversed(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
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


class CallBook:
    """One worker's bookkeeping of calls (see the module docstring)."""

    def __init__(self, memory: ConversationMemory, targets: ProxyTargets, quotas: QuotaBook,
                 emit: Callable[[dict[str, Any]], None], live: LiveView) -> None:
        self.memory, self.targets, self.quotas, self.emit, self.live = \
            memory, targets, quotas, emit, live
        # call id -> the final body's reasoning fields, and its thinking blocks when known
        self._sent: dict[str, tuple[dict[str, Any], int | None]] = {}
        self._quota_at: dict[str, float] = {}  # deployment -> when a record last carried its quota

    def keep_sent(self, body: Mapping[str, Any], record: Any = None) -> None:
        """Remember the reasoning fields of the body this deployment gets, for ``done.sent``
        (the last attempt's wins: the one that served the call). ``record``: the call's
        :class:`CallRecord`: when the body holds the very history the pre-call hook left
        (LiteLLM hands the list on as it is), its thinking blocks are the hook's count, not
        counted again (a long conversation's history, walked once less)."""
        call_id = body.get("litellm_call_id")
        if not isinstance(call_id, str):
            return
        sent = self._sent
        sent.pop(call_id, None)
        if len(sent) >= MAX_SENT:
            del sent[next(iter(sent))]
        fields = _sent_fields(body)
        fitted = record.fitted if isinstance(record, CallRecord) else None
        blocks = fitted[1] if fitted is not None and fields.get("messages") is fitted[0] else None
        sent[call_id] = fields, blocks

    def take_sent(self, kwargs: Mapping[str, Any]) -> tuple[Any, int | None]:
        """What :meth:`keep_sent` kept (else the body LiteLLM reports), and its thinking
        blocks when they are known without counting."""
        call_id = kwargs.get("litellm_call_id")
        kept = self._sent.pop(call_id, None) if isinstance(call_id, str) else None
        return kept if kept is not None else (_reported_body(kwargs), None)

    def fit_deployment(self, kwargs: dict[str, Any], metadata: Mapping[str, Any]
                       ) -> dict[str, Any] | None:
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

    def call_quota(self, kwargs: Mapping[str, Any], response_obj: Any, now: float
                   ) -> Quota | None:
        """A successful call's rate-limit figures, for its ``done`` record: every call's, and
        recorded, while a tier keeps a headroom (the next routing needs them); else once a
        :data:`QUOTA_EVERY_S` for each deployment (reading them is a tenth of a call's
        bookkeeping), None in between."""
        if self.keeps_headroom():
            quota = quota_of_call(kwargs, response_obj, now)
            if quota is not None:
                self.quotas.record(quota)
            return quota
        deployment = (kwargs.get("standard_logging_object") or {}).get("model_id")
        if not isinstance(deployment, str) or \
                now - self._quota_at.get(deployment, 0.0) < QUOTA_EVERY_S:
            return None
        if len(self._quota_at) >= 1000:
            self._quota_at.clear()
        self._quota_at[deployment] = now
        return quota_of_call(kwargs, response_obj, now)

    def keeps_headroom(self) -> bool:
        state = self.live.state  # figures are recorded only while some tier keeps a headroom
        if state is not None:
            for tier in state.tiers.values():
                if tier.min_remaining:
                    return True
        return False

    def failed_quota(self, metadata: Mapping[str, Any], model: Any,
                      exception: Exception) -> None:
        if self.keeps_headroom():
            quota = quota_of_failure(exception, (metadata.get("model_info") or {}).get("id"),
                                     metadata.get("model_group") or model, time.time(),
                                     retry_after(exception))
            if quota is not None:
                self.quotas.record(quota)

    def remember(self, kwargs: Any, response_obj: Any,
                 metadata: Mapping[str, Any] | None = None) -> None:
        """Remember what the call produced (``metadata``: its :func:`call_metadata`, when the
        caller has it)."""
        signatures, tools = produced_blocks(response_obj)
        if not signatures and not tools:
            return
        slo = kwargs.get("standard_logging_object") or {}
        group = slo.get("model_group") or kwargs.get("model")
        if not group:
            return
        record = (call_metadata(kwargs) if metadata is None else metadata).get(METADATA_KEY) or {}
        model = self.targets.deployment_model(slo.get("model_id")) or str(kwargs.get("model") or "")
        tier = record.get("tier") if record.get("target") else None
        self.memory.remember(_producer(str(group), model, tier), signatures, tools)

    def outcome(self, kwargs: Any, failed: bool, quota: Quota | None = None,
                metadata: Mapping[str, Any] | None = None) -> None:
        try:
            metadata = call_metadata(kwargs) if metadata is None else metadata
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
            sent, blocks = self.take_sent(kwargs)
            if not failed:
                if _hidden_retry(kwargs, routed):
                    record["hidden_retry"] = True
                    # LiteLLM dropped ``thinking`` and every thinking block before the retry
                    kept = sent if isinstance(sent, dict) else {}
                    sent, blocks = {k: v for k, v in kept.items() if k != "thinking"} | {
                        "messages": kwargs.get("messages")}, None
                record["sent"] = provider_reasoning(sent, blocks)
            self.emit(record)
        except Exception:  # pragma: no cover - logging must never fail a call
            log.exception("reasoning-panel: could not record a call's outcome")

    def attempt_failed(self, request_data: Mapping[str, Any], exception: Exception) -> None:
        """A failed attempt: its rate-limit figures, and for a request with a fallback chain,
        the attempt in its record."""
        metadata = call_metadata(request_data)
        self.failed_quota(metadata, request_data.get("model"), exception)
        record = metadata.get(METADATA_KEY)
        if isinstance(record, dict) and record.get("fallbacks"):
            attempts = record.setdefault("attempts", [])
            if len(attempts) < MAX_ATTEMPTS:
                attempts.append(attempt_record(
                    str(metadata.get("model_group") or request_data.get("model")),
                    (metadata.get("model_info") or {}).get("id"), exception))

    def chain_failed(self, request_data: Mapping[str, Any], exception: Exception) -> None:
        """The one ``failed`` record of a request whose whole fallback chain failed."""
        metadata = call_metadata(request_data)
        record = metadata.get(METADATA_KEY)
        if isinstance(record, dict) and record.get("fallbacks"):
            self.emit(chain_failed_record(request_data.get("litellm_call_id"), record, exception,
                                          metadata.get(STARTED_KEY)))
