"""What a proxy's settings leave unrouted, and why (pure).

The callback runs these checks once per proxy process at start-up (:mod:`callbacks.startup`)
and ``reasoning-panel doctor`` runs them on a config file (:mod:`app.doctor`): both gather the
settings their own way into :class:`ProxySettings`, and the verdicts come from here alone.
Each check is ``ok``, ``warn`` (routing works, with a risk or a gap) or ``fail`` (something
will not be routed, or not recorded), with the fix.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from callbacks.core.events import SCHEMA

Status = Literal["ok", "warn", "fail"]
Place = Literal["callbacks", "other_list", "absent", "unknown"]

CALLBACK_PATH: Final = "callbacks.model_route_callback.proxy_handler_instance"
# The LiteLLM versions this callback is tested with (pyproject.toml says the same; a test checks).
FLOOR: Final = (1, 100, 0)
NEXT_MAJOR: Final = 2
# Releases pulled from the registry for being compromised (a credential stealer, March 2026).
COMPROMISED: Final = frozenset({"1.82.7", "1.82.8"})
SUPPORTED: Final = (f">={'.'.join(map(str, FLOOR))},"
                    + ",".join(f"!={v}" for v in sorted(COMPROMISED)) + f",<{NEXT_MAJOR}")
# Routed endpoints and LiteLLM's call type for each (the hook sees the call type).
ENDPOINTS: Final = ("/v1/messages", "/v1/chat/completions", "/v1/responses")
CHAT_URL_FLAG: Final = "use_chat_completions_url_for_anthropic_messages"
CHAT_URL_ENV: Final = "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES"
WEAK_KEYS: Final = frozenset({"", "0000", "sk-1234", "sk-0000"})


@dataclass(frozen=True)
class Check:
    """One verdict: ``name`` (stable, for ``--json``), ``status``, what it means, the fix."""

    name: str
    status: Status
    message: str
    fix: str = ""


@dataclass(frozen=True)
class ProxySettings:
    """The settings the callback depends on, as a proxy runs them (or a config would)."""

    litellm_version: str | None = None
    callback: Place = "unknown"
    """Where the config names the callback: ``callbacks`` (its pre-call hook runs),
    ``other_list`` (only ``success_callback`` / ``failure_callback``: logging, no routing),
    ``absent``, or ``unknown`` (not checked)."""
    chat_url_for_messages: bool = False
    drop_params: bool = False
    master_key: Literal["set", "weak", "missing", "unknown"] = "unknown"
    store: Literal["files", "redis"] = "files"
    store_where: str = ""
    store_problem: str | None = None
    """Why state changes or records would be lost (folder not writable, Redis unreachable)."""
    state_problem: str | None = None
    """Why the stored state is not in force (invalid: the last good state / defaults route)."""
    pass_through: tuple[str, ...] = field(default_factory=tuple)
    """Pass-through routes the config adds (``general_settings.pass_through_endpoints``)."""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``1.108.5`` or ``1.77.2.post1`` -> (1, 108, 5); None when it is no such version."""
    match = re.match(r"^\s*(\d+)\.(\d+)\.(\d+)", text or "")
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def version_check(version: str | None) -> Check:
    """Whether a LiteLLM version is in the supported range."""
    if not version:
        return Check("litellm_version", "fail", "LiteLLM is not installed in this environment",
                     f"pip install 'litellm[proxy]{SUPPORTED}'")
    parsed = parse_version(version)
    if version in COMPROMISED:
        return Check("litellm_version", "fail",
                     f"LiteLLM {version} is a compromised release (pulled from PyPI: it steals "
                     "credentials)", f"pip install 'litellm[proxy]{SUPPORTED}' now, and rotate "
                     "the keys that machine held")
    if parsed is None or parsed < FLOOR or parsed[0] >= NEXT_MAJOR:
        return Check("litellm_version", "warn",
                     f"LiteLLM {version} is outside the tested range {SUPPORTED}",
                     f"pip install 'litellm[proxy]{SUPPORTED}'")
    return Check("litellm_version", "ok", f"LiteLLM {version} (tested range {SUPPORTED})")


def key_strength(value: str | None) -> Literal["set", "weak", "missing"]:
    """Whether a master key is set, and not one of the publicly known ones."""
    if value is None or not value.strip():
        return "missing"
    return "weak" if value.strip() in WEAK_KEYS else "set"


def preflight(settings: ProxySettings) -> list[Check]:
    """Every check on ``settings``, in a stable order."""
    checks = [version_check(settings.litellm_version)] if settings.litellm_version else []
    checks.append(_callback(settings))
    checks += _endpoints(settings)
    checks.append(Check("drop_params", "ok", "drop_params is on: a tier's reasoning parameters "
                        "that its model does not take are dropped") if settings.drop_params else
                  Check("drop_params", "warn",
                        "drop_params is off: a reasoning parameter a tier sets (reasoning_effort, "
                        "thinking) that the tier's model does not take is refused by the provider",
                        "litellm_settings: drop_params: true"))
    checks.append(_master_key(settings))
    checks.append(_store(settings))
    if settings.state_problem:
        checks.append(Check("state", "fail", f"the state is not in force: {settings.state_problem}"
                            "; requests are routed with the last good state (else the env defaults)",
                            "fix the state file (`reasoning-panel check FILE` says what is wrong)"))
    return checks


def _callback(settings: ProxySettings) -> Check:
    if settings.callback == "callbacks":
        return Check("callback", "ok", f"the config loads {CALLBACK_PATH} under "
                     "litellm_settings.callbacks: its pre-call hook routes")
    if settings.callback == "other_list":
        return Check("callback", "fail", "the callback is named only under success_callback / "
                     "failure_callback: it logs, but its pre-call hook never runs, so nothing "
                     "is routed", f"litellm_settings: callbacks: {CALLBACK_PATH}")
    if settings.callback == "absent":
        return Check("callback", "fail", "the config does not load the callback: nothing is "
                     "routed", f"litellm_settings: callbacks: {CALLBACK_PATH}")
    return Check("callback", "warn", "could not tell whether the config loads the callback",
                 f"litellm_settings: callbacks: {CALLBACK_PATH}")


def _endpoints(settings: ProxySettings) -> list[Check]:
    messages = (Check("endpoint /v1/messages", "warn",
                      f"{CHAT_URL_FLAG} is on: with it, /v1/messages requests are reported to "
                      "skip the pre-call hook (LiteLLM issues #27518, #30469) and go to the "
                      "model they name, unrouted",
                      f"remove litellm_settings.{CHAT_URL_FLAG} (and ${CHAT_URL_ENV})")
                if settings.chat_url_for_messages else
                Check("endpoint /v1/messages", "ok", "routed (pre-call hook on /v1/messages)"))
    checks = [messages] + [Check(f"endpoint {e}", "ok", f"routed (pre-call hook on {e})")
                           for e in ENDPOINTS[1:]]
    unrouted = ", ".join(settings.pass_through) or "/anthropic/*, /openai/*"
    checks.append(Check("pass-through", "warn" if settings.pass_through else "ok",
                        f"pass-through routes ({unrouted}) forward requests as they are: never "
                        "routed", "point clients at /v1/messages, /v1/chat/completions or "
                        "/v1/responses" if settings.pass_through else ""))
    return checks


def _master_key(settings: ProxySettings) -> Check:
    if settings.master_key == "set":
        return Check("master_key", "ok", "a master key is set")
    if settings.master_key == "weak":
        return Check("master_key", "warn", "the master key is a publicly known one (sk-1234)",
                     "set LITELLM_MASTER_KEY to a long random key (`reasoning-panel proxy` makes one)")
    if settings.master_key == "missing":
        return Check("master_key", "warn", "no master key: anyone who reaches the proxy spends "
                     "your providers' keys", "set LITELLM_MASTER_KEY or general_settings.master_key "
                     "(`reasoning-panel proxy` makes one in the state folder)")
    return Check("master_key", "warn", "could not tell whether a master key is set")


def _store(settings: ProxySettings) -> Check:
    name = "redis" if settings.store == "redis" else "state_folder"
    if settings.store_problem:
        fix = ("start Redis, or fix REASONING_PANEL_REDIS_URL" if settings.store == "redis" else
               f"mkdir -p -m 700 {settings.store_where} (writable by the proxy's user), "
               "or set REASONING_PANEL_HOME")
        return Check(name, "fail", f"{settings.store_where}: {settings.store_problem}; state "
                     "edits do not reach the proxy and records are lost", fix)
    return Check(name, "ok", f"{settings.store_where}" + (" reachable" if name == "redis" else ""))


def unrouted(checks: Iterable[Check]) -> list[Check]:
    """The checks that are not ok."""
    return [c for c in checks if c.status != "ok"]


def summary(checks: Iterable[Check]) -> str:
    """One log line: what is routed, and what will not be, and why."""
    problems = unrouted(checks)
    if not problems:
        return ("reasoning-panel: preflight ok: routing " + ", ".join(ENDPOINTS))
    return "reasoning-panel: preflight: " + "; ".join(
        f"{c.status.upper()} {c.name}: {c.message}" + (f" (fix: {c.fix})" if c.fix else "")
        for c in problems)


def preflight_record(checks: Iterable[Check], at: float | None = None, config: str | None = None
                     ) -> dict[str, Any]:
    """The ``state`` record with ``event: preflight`` a proxy process writes once at start-up
    (``config``: the config file the proxy runs, when it says)."""
    listed = list(checks)
    return {"v": SCHEMA, "type": "state", "time": round(at or time.time(), 6),
            "event": "preflight", "ok": not any(c.status == "fail" for c in listed),
            "checks": [asdict(c) for c in listed], "config": config, "pid": os.getpid()}
