"""Model prices from LiteLLM's bundled cost map, read as data (LiteLLM itself is not imported:
the panel starts in about a second), and from a proxy config's own per-deployment prices."""

from __future__ import annotations

import json
import mmap
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final

COST_MAP: Final = "model_prices_and_context_window_backup.json"
# The bundled map is pretty-printed: each model is a line `    "name": {` at this indent.
TOP_LEVEL: Final = b"\n    "

Price = tuple[float, float]
"""(USD per input token, USD per output token)."""


@cache
def _cost_map_path() -> Path | None:
    import importlib.util  # here: the status line imports this module and may price nothing

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / COST_MAP


@cache
def _cost_map() -> dict[str, Any]:
    path = _cost_map_path()
    try:
        data = json.loads(path.read_bytes()) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _entry(name: str) -> Any:
    """One model's entry. Reading and parsing the whole 3 MB map takes tens of milliseconds,
    too slow for the status line; in its usual layout (one model a line at this indent) one
    entry is found in the mapped file and parsed alone."""
    path = _cost_map_path()
    if _cost_map.cache_info().currsize or path is None:
        return _cost_map().get(name)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as text:
            if text[:len(TOP_LEVEL) + 2] != b"{" + TOP_LEVEL + b'"':
                return _cost_map().get(name)
            key = TOP_LEVEL + json.dumps(name, ensure_ascii=False).encode() + b": "
            at = text.find(key)
            if at < 0:
                return None
            end = text.find(TOP_LEVEL + b"}", at)
            return json.loads(text[at + len(key):end + len(TOP_LEVEL) + 1])
    except (OSError, ValueError):
        return _cost_map().get(name)


def _pair(cost_in: Any, cost_out: Any) -> Price | None:
    try:  # YAML reads 1e-07 (no dot) as a string; LiteLLM takes it as a number
        pair = float(cost_in), float(cost_out)
    except (TypeError, ValueError):
        return None
    return None if isinstance(cost_in, bool) or isinstance(cost_out, bool) else pair


@lru_cache(maxsize=1024)
def price(model: str) -> Price | None:
    """(USD per input token, USD per output token) of a model, or None when unknown."""
    entry = _entry(model) or _entry(model.split("/", 1)[-1])
    if not isinstance(entry, dict):
        return None
    return _pair(entry.get("input_cost_per_token"), entry.get("output_cost_per_token"))


def config_prices(config: Path) -> dict[str, Price | None]:
    """Price of each model group of a proxy config: the prices its deployment sets
    (``input_cost_per_token`` / ``output_cost_per_token``), else its model's in the cost map."""
    from callbacks.launcher import read_config  # YAML: only when a config is priced

    out: dict[str, Price | None] = {}
    for entry in read_config(config).get("model_list") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            continue
        params = entry.get("litellm_params")
        params = params if isinstance(params, dict) else {}
        own = _pair(params.get("input_cost_per_token"), params.get("output_cost_per_token"))
        model = params.get("model")
        out.setdefault(entry["model_name"], own or (price(model) if isinstance(model, str) else None))
    return out


def pricer(config: Path | None) -> Callable[[str], Price | None]:
    """Prices of model names: the proxy config's (when given), else LiteLLM's cost map."""
    own = config_prices(config) if config is not None else {}
    return lambda model: own.get(model) or price(model)
