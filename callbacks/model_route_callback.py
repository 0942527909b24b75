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

This module is the adapter to LiteLLM's hook API only: what routing does is in
:mod:`callbacks.routing`, what each call did in :mod:`callbacks.outcomes`, the proxy's model
groups in :mod:`callbacks.proxy_targets`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from litellm.integrations.custom_logger import CustomLogger

from callbacks.compat import keep_reasoning_effort
from callbacks.core.events import redact, refused_record, reload_record, routed_record
from callbacks.core.headroom import Quota
from callbacks.outcomes import METADATA_KEY, STARTED_KEY, CallBook, CallRecord, call_metadata
from callbacks.proxy_targets import ProxyTargets
from callbacks.routing import loop_ids, newest_made, route_request
from callbacks.startup import start_preflight
from callbacks.stores.base import Store
from callbacks.stores.files import FileStore
from callbacks.stores.memory import ConversationMemory
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


def _metadata(data: dict[str, Any], call_type: str) -> dict[str, Any]:
    for key in ("litellm_metadata", "metadata"):
        if isinstance(data.get(key), dict):
            return data[key]  # type: ignore[no-any-return]
    key = "litellm_metadata" if call_type == "anthropic_messages" else "metadata"
    data[key] = {}
    return data[key]  # type: ignore[no-any-return]


class ReasoningRouter(CustomLogger):
    """The proxy hook; one instance per proxy worker process."""

    TOOL_WAIT_S: Final = 0.3
    """How long a request waits for what the call before it made to be remembered (another
    worker may still be writing it); only what the memory does not know ever waits."""

    def __init__(self, state_file: StateFile | None = None, events: bool = True,
                 memory: ConversationMemory | None = None, store: Store | None = None) -> None:
        super().__init__()
        # the files in the state folder, or Redis in fleet mode ($REASONING_PANEL_REDIS_URL)
        self.store = store or (FileStore(state_file=state_file) if state_file else open_store())
        self.events = self.store.event_log() if events else None
        self.memory: ConversationMemory = memory if memory is not None else self.store.memory()
        self.targets = ProxyTargets()
        self.quotas = self.store.quotas()
        self.live = self.store.live(
            on_reload=lambda old, new: self._emit(reload_record(old, new)),
            on_problem=lambda message: self._emit(refused_record(message)),
        )
        self.book = CallBook(self.memory, self.targets, self.quotas, self._emit, self.live)

    def _emit(self, record: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.emit(record)

    async def _await_producer(self, signatures: list[str], tools: list[str]) -> None:
        """Wait (at most ``TOOL_WAIT_S``) until the memory knows who made the newest thing the
        request replays (:func:`callbacks.routing.newest_made`)."""
        deadline = time.monotonic() + self.TOOL_WAIT_S
        while time.monotonic() < deadline:
            known = self.memory.recall(signatures, tools)
            if known.signatures or known.tools:
                return
            await asyncio.sleep(0.01)

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        endpoint = ENDPOINTS.get(str(call_type))
        if endpoint is None:
            return data
        at = time.time()
        try:
            tool_ids = loop_ids(data)
            signatures, made = newest_made(data, tool_ids)
            if signatures or made:  # a first turn has nothing to wait for
                await self._await_producer(signatures, made)
            record = route_request(self.live, data, endpoint, self.memory, self.targets,
                                   self.targets.input_limit, self.quotas.of_group, tool_ids)
        except Exception as exc:  # never break a request: pass it through unchanged
            log.exception("reasoning-panel: routing failed; request passed through unchanged")
            record = {"endpoint": endpoint, "client_model": str(data.get("model")),
                      "reason": "error", "error": redact(repr(exc), 200)}
        try:
            meta = _metadata(data, str(call_type))
            meta[METADATA_KEY] = CallRecord.of_request(record, data)
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
        metadata: Mapping[str, Any] = {}
        try:
            metadata = call_metadata(kwargs)
            fitted = self.book.fit_deployment(kwargs, metadata)
            fitted = keep_reasoning_effort(fitted if fitted is not None else kwargs) or fitted
        except Exception:  # never break a call
            log.exception("reasoning-panel: could not fit the body to the deployment")
            fitted = None
        try:
            self.book.keep_sent(fitted if fitted is not None else kwargs,
                                metadata.get(METADATA_KEY))
        except Exception:  # pragma: no cover - bookkeeping must never fail a call
            log.exception("reasoning-panel: could not keep what the deployment gets")
        return fitted

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        quota: Quota | None = None
        metadata: dict[str, Any] | None = None
        try:  # what the provider said is left of its rate limit, for the tiers' headroom
            metadata = call_metadata(kwargs)
            quota = self.book.call_quota(kwargs, response_obj, time.time())
        except Exception:  # pragma: no cover - bookkeeping must never fail a call
            log.exception("reasoning-panel: could not read the rate-limit headers")
        self.book.outcome(kwargs, failed=False, quota=quota, metadata=metadata)
        try:
            self.book.remember(kwargs, response_obj, metadata)
        except Exception:  # pragma: no cover - memory must never fail a call
            log.exception("reasoning-panel: could not remember what a call produced")

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        if (call_metadata(kwargs).get(METADATA_KEY) or {}).get("fallbacks"):
            return  # LiteLLM reports the first failed attempt; the chain may still serve it
        self.book.outcome(kwargs, failed=True)

    async def async_post_call_failure_deployment_hook(
            self, request_data: Mapping[str, object], exception: Exception, call_type: Any,
            fallback_depth: int | None = None) -> None:
        """Each failed attempt of a request with a fallback chain, for its records; and what
        a refusal said of the deployment's rate limit, for the tiers' headroom."""
        try:
            self.book.attempt_failed(request_data, exception)
        except Exception:  # pragma: no cover - bookkeeping must never fail a call
            log.exception("reasoning-panel: could not record a failed attempt")

    async def async_post_call_failure_hook(self, request_data: dict[str, Any],
                                           original_exception: Exception, user_api_key_dict: Any,
                                           traceback_str: str | None = None) -> Any:
        """The end of a request with a fallback chain that no group could serve: its one
        ``failed`` record, with the error the client got (LiteLLM answers with the first
        group's, its message saying how the fallbacks failed) and every attempt."""
        try:
            self.book.chain_failed(request_data, original_exception)
        except Exception:  # pragma: no cover - logging must never fail a call
            log.exception("reasoning-panel: could not record a call's outcome")
        return None


proxy_handler_instance = ReasoningRouter()
start_preflight(proxy_handler_instance)  # in a proxy: once, what will not be routed and why
