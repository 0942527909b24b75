"""``reasoning-panel doctor``: what a user runs when something looks wrong.

Checks the install (LiteLLM's version, the callback importable the way the config names it),
the config's settings (the same start-up checks the proxy runs, :mod:`callbacks.core.preflight`),
the state folder or Redis, the state, the proxy, and the coding clients. Each line is ok / warn /
fail with the fix; the exit code is 1 when any line fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Final

from callbacks.compat import litellm_version
from callbacks.core.preflight import (
    CALLBACK_PATH,
    CHAT_URL_ENV,
    CHAT_URL_FLAG,
    Check,
    Place,
    ProxySettings,
    Status,
    key_strength,
    preflight,
)
from callbacks.core.state import StateError
from callbacks.launcher import MASTER_KEY_FILE, read_config, read_proxy_info
from callbacks.startup import store_facts
from callbacks.stores.base import Store, StoreError

IMPORT_TIMEOUT_S: Final = 60.0
CLIENTS: Final = {"claude": "npm install -g @anthropic-ai/claude-code",
                  "codex": "npm install -g @openai/codex"}
TRUE: Final = ("1", "true", "yes", "on")


def _names(value: Any) -> list[str]:
    """A config's callback list (a string or a list of strings) as names."""
    items = value if isinstance(value, list) else [value] if value else []
    return [str(i) for i in items]


def callback_place(settings: Mapping[str, Any]) -> tuple[Place, str | None]:
    """Where ``litellm_settings`` names this callback, and the name it uses."""
    ours = [n for n in _names(settings.get("callbacks")) if "model_route_callback" in n]
    if ours:
        return "callbacks", ours[0]
    others = [n for key in ("success_callback", "failure_callback")
              for n in _names(settings.get(key)) if "model_route_callback" in n]
    return ("other_list", others[0]) if others else ("absent", None)


def _resolve(value: Any, env: Mapping[str, str]) -> str | None:
    """A config value, ``os.environ/NAME`` read from the environment."""
    if not isinstance(value, str):
        return None
    return env.get(value.removeprefix("os.environ/")) if value.startswith("os.environ/") else value


def config_settings(config: Mapping[str, Any], home: Path, env: Mapping[str, str]
                    ) -> ProxySettings:
    """The settings a proxy started on ``config`` (with this environment) would run with."""
    litellm_settings = config.get("litellm_settings") or {}
    general = config.get("general_settings") or {}
    place, _ = callback_place(litellm_settings)
    chat_url = litellm_settings.get(CHAT_URL_FLAG)
    drop = litellm_settings.get("drop_params")
    key = (env.get("LITELLM_MASTER_KEY") or _resolve(general.get("master_key"), env)
           or _saved_key(home))
    passes = general.get("pass_through_endpoints") or []
    return ProxySettings(
        litellm_version=litellm_version(), callback=place,
        chat_url_for_messages=bool(chat_url) if chat_url is not None
        else env.get(CHAT_URL_ENV, "").strip().lower() in TRUE,
        drop_params=bool(drop) if drop is not None
        else env.get("LITELLM_DROP_PARAMS", "").strip().lower() in TRUE,
        master_key=key_strength(key),
        pass_through=tuple(str(p.get("path")) for p in passes if isinstance(p, dict)))


def _saved_key(home: Path) -> str | None:
    try:
        return (home / MASTER_KEY_FILE).read_text().strip()
    except OSError:
        return None


def import_check(name: str, config: Path) -> Check:
    """Import the callback the way LiteLLM does (the config's folder first on the path), in a
    fresh interpreter, and check it is a LiteLLM callback."""
    module, _, attr = name.rpartition(".")
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); "
            "from litellm.integrations.custom_logger import CustomLogger; "
            "obj = getattr(importlib.import_module(sys.argv[2]), sys.argv[3]); "
            "assert isinstance(obj, CustomLogger), f'{type(obj).__name__} is not a CustomLogger'")
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(config.parent), module, attr],
                              capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, env=env,
                              cwd=config.parent)
    except subprocess.TimeoutExpired:
        return Check("callback_import", "fail", f"importing {name} took over "
                     f"{IMPORT_TIMEOUT_S:.0f}s", "run the import by hand to see where it hangs")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("callback_import", "fail", f"{name} does not import: {last}",
                     "pip install the reasoning-panel wheel into the proxy's environment, and "
                     f"name it {CALLBACK_PATH}")
    return Check("callback_import", "ok", f"{name} imports in {sys.executable}")


def folder_check(home: Path, redis: bool) -> Check | None:
    """The state folder is there and private (files mode; in fleet mode it only keeps the
    master key and the proxy's address)."""
    if redis:
        return None
    if not home.exists():
        return Check("state_folder_private", "warn", f"{home} does not exist yet (the proxy "
                     "creates it at its first start)", f"mkdir -p -m 700 {home}")
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        return Check("state_folder_private", "fail", f"{home} is open to other users (mode "
                     f"{mode:o}): they can read the event log and change the routing",
                     f"chmod 700 {home}")
    return Check("state_folder_private", "ok", f"{home} is private (mode {mode:o})")


def state_check(store: Store) -> tuple[Check, str | None]:
    """Whether the stored state is valid (a missing one is: the env defaults apply)."""
    try:
        stored = store.read()
    except StoreError as exc:
        return Check("state", "warn", f"state not read: {exc}"), None
    except StateError as exc:
        missing = (store.backend == "files" and not Path(store.where).exists()) or \
            "holds no state yet" in str(exc)
        if missing:
            return Check("state", "ok", "no state stored yet: the env defaults apply "
                         "(written at the proxy's first start)"), None
        return Check("state", "fail", f"{store.where} is invalid: {exc}"), str(exc)
    return Check("state", "ok", f"{store.where} is valid (routing "
                 f"{'on' if stored.state.routing else 'off'})"), None


def proxy_check(url: str | None, config: str | None) -> Check:
    from app.clients.proxy import proxy_answers

    if not url:
        return Check("proxy", "warn", "no proxy recorded for this state folder (a proxy started "
                     "by plain `litellm` is not recorded)", "reasoning-panel doctor --url "
                     "http://HOST:PORT, or start one: reasoning-panel proxy --config FILE")
    runs = f" with config {config}" if config else ""
    if proxy_answers(url, timeout=3.0):
        return Check("proxy", "ok", f"proxy up at {url}{runs}")
    return Check("proxy", "fail", f"no proxy answers at {url}",
                 f"reasoning-panel proxy --config {config or 'FILE'}")


def client_checks() -> list[Check]:
    out = []
    for name, install in CLIENTS.items():
        path = shutil.which(name)
        if path is None:
            out.append(Check(f"client {name}", "warn", f"{name} is not on PATH", install))
            continue
        try:
            done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
            version = (done.stdout.strip() or done.stderr.strip()).splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            version = "version unknown"
        out.append(Check(f"client {name}", "ok", f"{path}: {version}"))
    return out


def last_start(store: Store) -> dict[str, Any] | None:
    """The newest ``preflight`` record in the event log: what the last proxy worker that started
    on this state folder found (None when there is none)."""
    def preflight(record: dict[str, Any]) -> bool:
        return record.get("type") == "state" and record.get("event") == "preflight"

    try:
        records, _ = store.read_events(enough=lambda found: any(map(preflight, found)))
    except (StoreError, OSError):
        return None
    return next((r for r in reversed(records) if preflight(r)), None)


def last_start_check(record: dict[str, Any] | None) -> Check | None:
    """What the running proxy found at its start, from its own record (its real settings and
    environment, which the config file alone does not show)."""
    if record is None:
        return None
    bad = [c for c in record.get("checks") or [] if isinstance(c, dict) and c.get("status") != "ok"]
    status: Status = "fail" if any(c.get("status") == "fail" for c in bad) else \
        "warn" if bad else "ok"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("time") or 0)))
    where = f"the proxy worker started {when} (pid {record.get('pid')}" + (
        f", config {record['config']})" if record.get("config") else ")")
    if not bad:
        return Check("last_start", "ok", f"{where} found nothing unrouted")
    return Check("last_start", status, f"{where} found: " + "; ".join(
        f"{c.get('status')} {c.get('name')}" for c in bad),
        "fix what the lines above say, then restart the proxy")


def diagnose(home: Path, store: Store, config: Path | None, url: str | None,
             env: Mapping[str, str] | None = None) -> list[Check]:
    """Every check, in the order a user reads them."""
    env = os.environ if env is None else env
    info = read_proxy_info(home)
    started = last_start(store)
    recorded = info.get("config") or (started or {}).get("config")
    config = config or (Path(recorded) if recorded else None)
    url = url or info.get("url")
    redis = store.backend == "redis"
    state, state_problem = state_check(store)
    checks: list[Check] = []
    if config is None or not config.is_file():
        checks.append(Check("config", "fail" if config else "warn",
                            f"config {config} not found" if config else
                            "no proxy config given, and no proxy recorded for this state folder",
                            "reasoning-panel doctor --config FILE"))
        settings = ProxySettings(litellm_version=litellm_version())
    else:
        data = read_config(config)
        checks.append(Check("config", "ok", f"{config}"))
        settings = config_settings(data, home, env)
        _, name = callback_place(data.get("litellm_settings") or {})
        if name:
            checks.append(import_check(name, config))
    settings = replace(settings, **store_facts(store))
    found = preflight(settings)
    if settings.callback == "unknown":
        found = [c for c in found if c.name != "callback"]
    checks += found
    private = folder_check(home, redis)
    checks += [private] if private else []
    checks.append(state if state_problem is None else replace(
        state, fix="fix the state file (`reasoning-panel check FILE` says what is wrong)"))
    checks.append(proxy_check(url, str(config) if config else None))
    last = last_start_check(started)
    checks += [last] if last else []
    checks += client_checks()
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.message}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "fail")}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
    return "\n".join(lines)


def run_doctor(home: Path, store: Store, config: Path | None, url: str | None,
               as_json: bool) -> int:
    checks = diagnose(home, store, config, url)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print(render(checks))
    return 1 if failed else 0
