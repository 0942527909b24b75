"""Policy: state + detected strength -> where a request goes, and why (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from callbacks.core.detect import Strength
from callbacks.core.state import TIERS, State, Tier

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
    capped: str | None = None
    """The cap (``subagent`` or a client-model glob) that lowered the tier, if one did."""

    @property
    def routes(self) -> bool:
        return self.target is not None


def decide(state: State, client_model: str, strength: Strength | None,
           subagent: bool = False) -> Decision:
    """Route a request for ``client_model`` of the given strength, or say why it passes through.

    A cap that applies to the request (its client model, or ``subagent`` for a subagent's
    request) is the highest tier it may go to, pinned or not: a pin above the cap is lowered
    to the cap, a pin below it stays.
    """
    if not state.routing:
        return Decision("routing_off", None, None)
    if not state.routes(client_model) or strength is None:
        return Decision("not_routed", None, None)
    tier = state.pin or strength.tier
    cap = state.cap_for(client_model, subagent)
    capped = None
    if cap is not None and TIERS.index(tier) > TIERS.index(cap[1]):
        capped, tier = cap
    target = state.tiers[tier].model
    if target == client_model:
        return Decision("same_model", tier, None, capped)
    return Decision("pinned" if state.pin else "routed", tier, target, capped)
