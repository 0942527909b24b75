"""The proxy's model groups as the callback sees them: what serves each group (its upstream
model, whether it is a native Anthropic or OpenAI Responses target) and its input limit, read from
LiteLLM's router in the running proxy (cached briefly; outside a proxy every group exists)."""

from __future__ import annotations

import sys
import time
from typing import Any

from callbacks.core.context import group_limit
from callbacks.core.history import Target
from callbacks.routing import _anthropic_native, _responses_native


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


