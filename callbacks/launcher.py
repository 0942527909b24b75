"""Starting a LiteLLM proxy with the callback: command line, environment, master key.

The proxy runs as LiteLLM's own CLI (``litellm --config ...``) in a process of its own; this
module only prepares it: the state folder, an offline-friendly environment, and a strong master
key (LiteLLM refuses to start without one).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from callbacks.stores.statefile import HOME_ENV, atomic_write, ensure_private_dir

MASTER_KEY_FILE: Final = "master_key"
PROXY_INFO_FILE: Final = "proxy.json"
STANDIN_URL_ENV: Final = "REASONING_PANEL_STANDIN_URL"
DEFAULT_STANDIN_URL: Final = "http://127.0.0.1:8010"
# Keys LiteLLM refuses as publicly known; a newcomer may still have them from old READMEs.
WEAK_KEYS: Final = frozenset({"", "0000", "sk-1234", "sk-0000"})


@dataclass(frozen=True)
class MasterKey:
    value: str
    source: str
    """``LITELLM_MASTER_KEY``, ``config`` or the path of the generated key file."""


def read_config(config: Path) -> dict[str, Any]:
    """The proxy config as a mapping ({} when it cannot be read)."""
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def config_models(config: Path) -> list[str]:
    """Model group names (``model_name``) a proxy config serves."""
    models = read_config(config).get("model_list") or []
    return [m["model_name"] for m in models if isinstance(m, dict) and "model_name" in m]


def master_key(home: Path, config: Path, env: dict[str, str] | None = None) -> MasterKey:
    """The proxy's master key: ``LITELLM_MASTER_KEY``, else the config's, else a generated one
    kept private (0600) in the state folder and reused on later starts."""
    env = dict(os.environ) if env is None else env
    if env.get("LITELLM_MASTER_KEY", "").strip() not in WEAK_KEYS:
        return MasterKey(env["LITELLM_MASTER_KEY"].strip(), "LITELLM_MASTER_KEY")
    configured = (read_config(config).get("general_settings") or {}).get("master_key")
    if isinstance(configured, str) and configured.strip() not in WEAK_KEYS:
        if configured.startswith("os.environ/"):
            value = env.get(configured.removeprefix("os.environ/"), "")
            if value.strip() not in WEAK_KEYS:
                return MasterKey(value.strip(), "config")
        else:
            return MasterKey(configured.strip(), "config")
    path = ensure_private_dir(home) / MASTER_KEY_FILE
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value not in WEAK_KEYS:
            return MasterKey(value, str(path))
    value = "sk-rp-" + secrets.token_urlsafe(32)
    atomic_write(path, value + "\n")
    return MasterKey(value, str(path))


def proxy_environment(home: Path, key: MasterKey, env: dict[str, str] | None = None
                      ) -> dict[str, str]:
    """Environment of the proxy process."""
    out = dict(os.environ) if env is None else dict(env)
    out[HOME_ENV] = str(home)
    out["LITELLM_MASTER_KEY"] = key.value
    out.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no remote cost-map fetch at start
    out.setdefault(STANDIN_URL_ENV, DEFAULT_STANDIN_URL)
    out.setdefault("LITELLM_LOG", "WARNING")
    # The callback module must import whatever the cwd: put the project on the path too.
    project = str(Path(__file__).resolve().parent.parent)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (project, out.get("PYTHONPATH")) if p)
    return out


def proxy_command(config: Path, host: str, port: int, num_workers: int = 1) -> list[str]:
    """The LiteLLM proxy command line: LiteLLM's own CLI (see :mod:`callbacks.litellm_proxy`)."""
    cmd = [sys.executable, "-m", "callbacks.litellm_proxy", "--config", str(config.resolve()),
           "--host", host, "--port", str(port)]
    if num_workers > 1:
        cmd += ["--num_workers", str(num_workers)]
    return cmd


def write_proxy_info(home: Path, config: Path, host: str, port: int) -> None:
    """Tell the CLI and the panel which proxy serves this state folder."""
    info = {"config": str(config.resolve()), "url": f"http://{host}:{port}", "pid": os.getpid()}
    atomic_write(ensure_private_dir(home) / PROXY_INFO_FILE, json.dumps(info) + "\n")


def saved_master_key(home: Path) -> str:
    """The master key `proxy` generated and keeps in this state folder ("" when there is none)."""
    try:
        return (home / MASTER_KEY_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def read_proxy_info(home: Path) -> dict[str, Any]:
    try:
        data = json.loads((home / PROXY_INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
