"""Start-up checks in a proxy process: say once, clearly, what will not be routed and why.

The callback module is imported while LiteLLM loads the proxy config, before the rest of
``litellm_settings`` and ``general_settings`` are applied. So the checks run in a short-lived
thread that waits for the proxy's router (created once the whole config is loaded), gathers the
settings (:mod:`callbacks.compat`), judges them (:mod:`callbacks.core.preflight`), logs one line
and writes one ``state`` record with ``event: preflight`` to the event log. Outside a proxy
(unit tests, benchmarks, the CLI) nothing happens.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from callbacks.compat import proxy_config_path, proxy_router, proxy_server, proxy_settings
from callbacks.core.preflight import Check, ProxySettings, preflight, preflight_record, summary
from callbacks.core.state import StateError
from callbacks.stores.base import Store, StoreError

log = logging.getLogger("reasoning_panel")

WAIT_FOR_CONFIG_S: Final = 120.0
_started: set[int] = set()  # the pids that have run the checks (once per process)
_lock = threading.Lock()


def store_facts(store: Store) -> dict[str, Any]:
    """``store``, ``store_where`` and ``store_problem`` for :class:`ProxySettings`: whether
    the state folder can be written, or Redis answers."""
    backend = str(getattr(store, "backend", "files"))
    facts: dict[str, Any] = {"store": "redis" if backend == "redis" else "files",
                             "store_where": store.where, "store_problem": None}
    if backend == "redis":
        try:
            store.read()
        except StoreError as exc:
            facts["store_problem"] = str(exc)
        except StateError:
            pass  # reachable, with no or an invalid state: the state check says so
        return facts
    home = Path(str(getattr(store, "home", Path(store.where).parent)))
    facts["store_where"] = str(home)
    existing = next((p for p in (home, *home.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        facts["store_problem"] = "not writable by this user" if existing == home else \
            f"cannot be created ({existing} is not writable by this user)"
    return facts


def gather(router: Any) -> ProxySettings:
    """The settings of this proxy process and the state of its store."""
    settings = replace(proxy_settings(router), **store_facts(router.store))
    router.live.current()  # loads the state (an invalid one sets the problem)
    problem = router.live.problem
    return replace(settings, state_problem=problem) if problem else settings


def run_checks(router: Any) -> list[Check]:
    """Check, log one line and write one ``preflight`` record (now, in this thread)."""
    checks = preflight(gather(router))
    line = summary(checks)
    if any(c.status != "ok" for c in checks):
        log.warning("%s", line)
    else:
        log.info("%s", line)
    if router.events is not None:
        router.events.emit(preflight_record(checks, config=proxy_config_path()))
    return checks


def start_preflight(router: Any) -> None:
    """In a proxy process, once: run the checks when the proxy's config is loaded."""
    if proxy_server() is None:
        return
    with _lock:
        if os.getpid() in _started:
            return
        _started.add(os.getpid())
    threading.Thread(target=_when_loaded, args=(router,), name="reasoning-panel-preflight",
                     daemon=True).start()


def _when_loaded(router: Any) -> None:
    deadline = time.monotonic() + WAIT_FOR_CONFIG_S
    while proxy_router() is None:
        if time.monotonic() > deadline:
            return  # no config ever loaded (not a proxy that serves): nothing to say
        time.sleep(0.05)
    try:
        run_checks(router)
    except Exception:  # never break the proxy over its checks
        log.exception("reasoning-panel: the start-up checks failed")
