"""Everything that differs between the LiteLLM versions this callback supports, in one place.

The supported range is :data:`callbacks.core.preflight.SUPPORTED` (pyproject.toml states the
same). Within it the hook API the callback uses (``CustomLogger.async_pre_call_hook``,
``async_pre_call_deployment_hook``, the success / failure hooks, ``Router.get_model_list`` /
``get_deployment``) is the same (``async_post_call_failure_deployment_hook``, which the
fallback records need, arrived in 1.100: the floor); what is read here defensively is the
proxy's module state, whose names are not an API: read with defaults, so that a LiteLLM that
renamed one gives "unknown" in the preflight, never an error in the proxy.
"""

from __future__ import annotations

import functools
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from callbacks.core.preflight import (
    CALLBACK_PATH,
    Place,
    ProxySettings,
    key_strength,
    parse_version,
)

PROXY_SERVER: Final = "litellm.proxy.proxy_server"
NEWEST_TESTED: Final = "1.108.7"
"""The newest ``litellm[proxy]`` that installs from the registry here (1.108.8 to 1.110.2 need
``litellm-enterprise`` / ``litellm-proxy-extras`` / ``litellm-proxy`` releases it lacks): CI
runs the proxy tests on it and on the floor, and the install test installs next to it."""
# What clients see differently across the supported range (the callback does the same in all):
FALLBACK_NOTE_SINCE: Final = (1, 104, 0)
"""From LiteLLM 1.104 the error a client gets when a whole fallback chain failed (the first
model's) ends with how the others failed: ``Fallback to fast-coder, low-reasoning also failed:
...``; before, the first model's error alone."""
# What the callback does differently across the supported range:
EFFORT_KEPT_SINCE: Final = (1, 101, 0)
"""From LiteLLM 1.101 a deployment's ``model_info: {supports_reasoning: true}`` keeps a chat
call's ``reasoning_effort`` for a model LiteLLM's model map does not know (a tier's
``reasoning_effort: low`` on ``openai/<a new model>``); before, ``drop_params`` dropped it."""


@functools.cache
def litellm_version() -> str | None:
    """The installed LiteLLM's version (None when it is not installed); looked up once, as
    reading the package metadata takes milliseconds and the deployment hook asks on every call."""
    try:
        return metadata.version("litellm")
    except metadata.PackageNotFoundError:
        return None


def error_names_failed_fallbacks(version: str | None = None) -> bool:
    """Whether this LiteLLM's error for a failed fallback chain says how the fallbacks failed."""
    parsed = parse_version(version or litellm_version() or "")
    return parsed is not None and parsed >= FALLBACK_NOTE_SINCE


def keep_reasoning_effort(body: dict[str, Any], version: str | None = None
                          ) -> dict[str, Any] | None:
    """The body a deployment gets, with ``reasoning_effort`` in ``allowed_openai_params`` where
    this LiteLLM would drop it (before :data:`EFFORT_KEPT_SINCE`, for a deployment whose
    ``model_info`` says it supports reasoning); None when nothing changes."""
    if not body.get("reasoning_effort"):
        return None
    parsed = parse_version(version or litellm_version() or "")
    if parsed is None or parsed >= EFFORT_KEPT_SINCE:
        return None
    metadata = next((m for m in (body.get("metadata"), body.get("litellm_metadata"))
                     if isinstance(m, dict) and isinstance(m.get("model_info"), dict)), {})
    allowed = list(body.get("allowed_openai_params") or [])
    if not metadata.get("model_info", {}).get("supports_reasoning") or \
            "reasoning_effort" in allowed:
        return None
    return {**body, "allowed_openai_params": [*allowed, "reasoning_effort"]}


def proxy_server() -> Any:
    """LiteLLM's proxy server module when this process is a proxy, else None (never imports it)."""
    return sys.modules.get(PROXY_SERVER)


def proxy_router() -> Any:
    """The proxy's router once its config is loaded, else None."""
    return getattr(proxy_server(), "llm_router", None)


def proxy_config_path() -> str | None:
    """The config file this proxy process runs (None when it does not say)."""
    path = getattr(proxy_server(), "user_config_file_path", None)
    return str(Path(path).resolve()) if isinstance(path, str) and path else None


def _named(entry: Any, instance: object) -> bool:
    return entry is instance or entry == CALLBACK_PATH


def proxy_settings(instance: object) -> ProxySettings:
    """The settings of the proxy this process runs, as :mod:`callbacks.core.preflight` reads
    them (``litellm_settings`` become attributes of the ``litellm`` module; ``general_settings``
    and the master key live in the proxy server module)."""
    import litellm

    callbacks = list(getattr(litellm, "callbacks", None) or [])
    others = [*(getattr(litellm, "success_callback", None) or []),
              *(getattr(litellm, "failure_callback", None) or [])]
    callback: Place = ("callbacks" if any(_named(c, instance) for c in callbacks) else
                "other_list" if any(_named(c, instance) for c in others) else "absent")
    server = proxy_server()
    general = getattr(server, "general_settings", None) or {}
    passes = general.get("pass_through_endpoints") or [] if isinstance(general, dict) else []
    return ProxySettings(
        litellm_version=litellm_version(),
        callback=callback,
        chat_url_for_messages=bool(getattr(litellm, "use_chat_completions_url_for_anthropic_messages",
                                           False)),
        drop_params=bool(getattr(litellm, "drop_params", False)),
        master_key=key_strength(getattr(server, "master_key", None)) if server else "unknown",
        pass_through=tuple(str(p.get("path")) for p in passes if isinstance(p, dict)),
    )


def effort_refused(model: str, effort: str) -> bool:
    """Whether LiteLLM refuses ``effort`` (``xhigh``, ``max``) for the Anthropic ``model``
    (``anthropic/...``) before calling it, when it translates a chat or Responses call there
    (``AnthropicConfig.validate_effort_for_model``; False where this LiteLLM has no such check)."""
    try:
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig

        # public from LiteLLM 1.106 on; ``_validate_effort_for_model`` before (same signature)
        check = getattr(AnthropicConfig, "validate_effort_for_model", None) or \
            getattr(AnthropicConfig, "_validate_effort_for_model", None)
        provider, _, name = model.partition("/")
        return check is not None and check(name or model, effort, provider or "anthropic") is not None
    except Exception:  # noqa: BLE001 - a LiteLLM without the check refuses nothing here
        return False
