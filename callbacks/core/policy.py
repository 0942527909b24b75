"""Policy: state + detected strength -> where a request goes, and why (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from callbacks.core.detect import Strength
from callbacks.core.state import State, Tier

Reason = Literal["routed", "pinned", "routing_off", "not_routed", "same_model", "held", "error"]

REASON_TEXT: Final[dict[str, str]] = {
    "routed": "routed by strength",
    "pinned": "pinned to a tier",
    "routing_off": "routing is off",
    "not_routed": "client model is not routed",
    "same_model": "target equals the requested model",
    "held": "tool loop held on the model that made its tool_use",
    "error": "internal error; passed through",
}


@dataclass(frozen=True)
class Decision:
    """What the callback does with one request."""

    reason: Reason
    tier: Tier | None
    """The tier the request belongs to (the pinned one when pinned); None when not routed."""
    target: str | None
    """Model group to send the request to; None means pass through unchanged."""

    @property
    def routes(self) -> bool:
        return self.target is not None


def decide(state: State, client_model: str, strength: Strength | None) -> Decision:
    """Route a request for ``client_model`` of the given strength, or say why it passes through."""
    if not state.routing:
        return Decision("routing_off", None, None)
    if not state.routes(client_model) or strength is None:
        return Decision("not_routed", None, None)
    tier = state.pin or strength.tier
    target = state.tiers[tier].model
    if target == client_model:
        return Decision("same_model", tier, None)
    return Decision("pinned" if state.pin else "routed", tier, target)
