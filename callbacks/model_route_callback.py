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

import logging
import time
from typing import Any, Final

from litellm.integrations.custom_logger import CustomLogger

from callbacks.core.adapters import adapter_patch, apply_patch, reasoning_patch
from callbacks.core.detect import detect_strength, latest_user_text, reasoning_fields
from callbacks.core.events import (
    outcome_record,
    redact,
    refused_record,
    reload_record,
    routed_record,
)
from callbacks.core.policy import Decision, decide
from callbacks.stores.base import LiveView, Store
from callbacks.stores.files import FileStore
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
PREVIEW_CHARS: Final = 120


def route_request(live: LiveView, data: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """Decide where ``data`` goes, rewrite it in place, and return the decision record."""
    state = live.current()
    model = data.get("model")
    fields = reasoning_fields(data)  # before the rewrite: what the client sent
    strength = detect_strength(data, state.detection)
    decision = decide(state, model, strength) if isinstance(model, str) else \
        Decision("not_routed", None, None)
    if decision.target is not None and decision.tier is not None:
        patch = reasoning_patch(data, decision.tier, state.tiers[decision.tier])
        patch.update(adapter_patch(data, state.adapter_for(decision.target)))
        patch["model"] = decision.target
        apply_patch(data, patch)
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
        **({"preview": redact(latest_user_text(data), PREVIEW_CHARS)}
           if state.event_log.preview else {}),
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

    def __init__(self, state_file: StateFile | None = None, events: bool = True,
                 store: Store | None = None) -> None:
        super().__init__()
        # the files in the state folder, or Redis in fleet mode ($REASONING_PANEL_REDIS_URL)
        self.store = store or (FileStore(state_file=state_file) if state_file else open_store())
        self.events = self.store.event_log() if events else None
        self.memory = self.store.memory()
        self.live = self.store.live(
            on_reload=lambda old, new: self._emit(reload_record(old, new)),
            on_problem=lambda message: self._emit(refused_record(message)),
        )

    def _emit(self, record: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.emit(record)

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        endpoint = ENDPOINTS.get(str(call_type))
        if endpoint is None:
            return data
        at = time.time()
        try:
            record = route_request(self.live, data, endpoint)
        except Exception as exc:  # never break a request: pass it through unchanged
            log.exception("reasoning-panel: routing failed; request passed through unchanged")
            record = {"endpoint": endpoint, "client_model": str(data.get("model")),
                      "reason": "error", "error": redact(repr(exc), 200)}
        try:
            _metadata(data, str(call_type))[METADATA_KEY] = record
            if self.events is not None and self.live.state is not None:
                self.events.max_bytes = self.live.state.event_log.max_bytes
                self.events.backups = self.live.state.event_log.backups
            self._emit(routed_record(data.get("litellm_call_id"), record, at))
        except Exception:  # pragma: no cover - never break a request over bookkeeping
            log.exception("reasoning-panel: could not record the decision")
        return data

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._outcome(kwargs, failed=False)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._outcome(kwargs, failed=True)

    def _outcome(self, kwargs: Any, failed: bool) -> None:
        try:
            self._emit(outcome_record(kwargs, failed))
        except Exception:  # pragma: no cover - logging must never fail a call
            log.exception("reasoning-panel: could not record a call's outcome")


proxy_handler_instance = ReasoningRouter()
