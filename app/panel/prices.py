"""Model prices from LiteLLM's bundled cost map, read as data (LiteLLM itself is not imported:
the panel starts in about a second)."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any, Final

COST_MAP: Final = "model_prices_and_context_window_backup.json"


@cache
def _cost_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    try:
        data = json.loads((Path(spec.submodule_search_locations[0]) / COST_MAP).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def price(model: str) -> tuple[float, float] | None:
    """(USD per input token, USD per output token) of a model, or None when unknown."""
    entry = _cost_map().get(model) or _cost_map().get(model.split("/", 1)[-1])
    if not isinstance(entry, dict):
        return None
    cost_in, cost_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if not isinstance(cost_in, int | float) or not isinstance(cost_out, int | float):
        return None
    return float(cost_in), float(cost_out)
