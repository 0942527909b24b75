"""Strength detection: request body -> the signal that decides -> strength (pure, never raises).

Precedence (first match wins):

1. ``thinking.type == "disabled"`` -> none
2. the word "ultrathink" in the latest user turn -> high (keyword rule, on by default)
3. OpenAI ``reasoning_effort`` (chat) or ``reasoning.effort`` (Responses) -> effort map
4. ``output_config.effort`` when ``thinking`` is present -> effort map; with none at the top
   level, the last message-level ``messages[i].output_config.effort`` (Claude Code 2.1.328's
   per-turn effort), recorded as that signal
5. ``thinking.type == "enabled"`` with ``budget_tokens`` -> budget thresholds
6. ``thinking.type == "adaptive"`` with no effort -> high (the API's default effort)
7. a Responses API body (``input``) with no usable ``reasoning.effort`` -> as effort medium (the
   models' default effort; Codex sends no effort when its user set none)
8. nothing else -> none

Malformed values (strings for numbers, unknown effort words, ``thinking: null``, lists where
mappings belong) fall through to the next rule; each skip is recorded in ``Strength.notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from callbacks.core.state import Detection, Tier

ULTRATHINK: Final = "ultrathink"


@dataclass(frozen=True)
class Strength:
    """The detector's verdict on one request."""

    tier: Tier
    signal: str
    """Name of the field or rule that decided, e.g. ``output_config.effort``."""
    value: str
    """Its value as seen, e.g. ``medium`` or ``8000``."""
    rule: str
    """Which precedence rule decided: disabled, keyword, reasoning_effort, effort, budget,
    adaptive, responses_default or default."""
    notes: tuple[str, ...] = ()
    """Fields that were present but ignored, and why."""

    @property
    def label(self) -> str:
        """Short human form of the deciding signal, e.g. ``output_config.effort=medium``."""
        return f"{self.signal}={self.value}" if self.value else self.signal


def latest_user_text(body: Mapping[str, Any], notes: list[str] | None = None) -> str:
    """Text of the latest user message (Anthropic, OpenAI chat or Responses shape)."""
    messages = body.get("messages")
    if messages is None:
        messages = body.get("input")  # the Responses API
        if isinstance(messages, str):
            return messages
    if not isinstance(messages, list):
        if messages is not None and notes is not None:
            notes.append(f"messages={_short(messages)} ignored: not a list")
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(
                str(block.get("text", ""))
                for block in content
                if isinstance(block, dict) and isinstance(block.get("text"), str)
            )
        return ""
    return ""


def reasoning_fields(body: Mapping[str, Any]) -> list[str]:
    """The reasoning-related fields a request carries, as ``name=value`` (for explanations)."""
    if not isinstance(body, dict):
        return []
    found = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        found.append(f"thinking.type={thinking.get('type')}")
        if "budget_tokens" in thinking:
            found.append(f"thinking.budget_tokens={thinking.get('budget_tokens')}")
    elif "thinking" in body:
        found.append(f"thinking={_short(thinking)}")
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and "effort" in output_config:
        found.append(f"output_config.effort={output_config.get('effort')}")
    where, value = message_effort(body)
    if value is not None:
        found.append(f"{where}={value}")
    if "reasoning_effort" in body:
        found.append(f"reasoning_effort={body.get('reasoning_effort')}")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and "effort" in reasoning:
        found.append(f"reasoning.effort={reasoning.get('effort')}")
    return found


def message_effort(body: Mapping[str, Any]) -> tuple[str, Any]:
    """The last message-level ``output_config.effort`` and where it is, e.g.
    ``("messages[7].output_config.effort", "high")``; ``("", None)`` when there is none."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for i in range(len(messages) - 1, -1, -1):
            message = messages[i]
            if type(message) is dict and "output_config" in message:  # the common case, fast
                config = message["output_config"]
                if isinstance(config, dict) and config.get("effort") is not None:
                    return f"messages[{i}].output_config.effort", config["effort"]
    return "", None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def detect_strength(body: Mapping[str, Any], settings: Detection) -> Strength:
    """Decide the reasoning strength of a request body (any endpoint's shape)."""
    notes: list[str] = []
    if not isinstance(body, dict):
        return Strength("none", "default", "", "default", (f"body={_short(body)} is not a mapping",))
    effort_map = settings.effort_map

    def effort(signal: str, raw: Any, rule: str) -> Strength | None:
        if isinstance(raw, str) and raw.strip().lower() in effort_map:
            return Strength(effort_map[raw.strip().lower()], signal, raw, rule, tuple(notes))
        notes.append(f"{signal}={raw!r} ignored: not a known effort word")
        return None

    thinking = body.get("thinking", None)
    has_thinking = "thinking" in body
    if has_thinking and not isinstance(thinking, dict):
        notes.append(f"thinking={thinking!r} ignored: not a mapping")
        thinking = None
    kind = thinking.get("type") if thinking is not None else None
    if thinking is not None and kind not in ("enabled", "disabled", "adaptive"):
        notes.append(f"thinking.type={kind!r} ignored: not enabled, disabled or adaptive")

    # 1. thinking explicitly off
    if kind == "disabled":
        return Strength("none", "thinking.type", "disabled", "disabled", tuple(notes))

    # 2. keyword
    if settings.ultrathink and ULTRATHINK in latest_user_text(body, notes).lower():
        return Strength("high", "keyword", ULTRATHINK, "keyword", tuple(notes))

    # 3. OpenAI effort (chat completions, then Responses API)
    if body.get("reasoning_effort") is not None:
        found = effort("reasoning_effort", body["reasoning_effort"], "reasoning_effort")
        if found:
            return found
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        found = effort("reasoning.effort", reasoning["effort"], "reasoning_effort")
        if found:
            return found
    elif reasoning is not None and not isinstance(reasoning, dict):
        notes.append(f"reasoning={reasoning!r} ignored: not a mapping")
    # a Responses body with no effort: the model's default effort
    if isinstance(body.get("input"), list | str) and "messages" not in body:
        return Strength(effort_map.get("medium", "medium"), "reasoning.effort", "absent",
                        "responses_default", tuple(notes))

    # 4. Anthropic effort (top level, else the last message-level one), only with thinking on
    output_config = body.get("output_config")
    raw_effort = output_config.get("effort") if isinstance(output_config, dict) else None
    signal = "output_config.effort"
    if output_config is not None and not isinstance(output_config, dict):
        notes.append(f"output_config={output_config!r} ignored: not a mapping")
    if raw_effort is None:
        signal, raw_effort = message_effort(body)
    if raw_effort is not None:
        if kind in ("enabled", "adaptive"):
            found = effort(signal, raw_effort, "effort")
            if found:
                return found
        else:
            notes.append(f"{signal}={raw_effort!r} ignored: thinking is off")

    # 5. thinking budget
    if kind == "enabled":
        budget = thinking.get("budget_tokens") if thinking is not None else None
        if isinstance(budget, float) and budget.is_integer():  # 9000.0 is a whole number too
            budget = int(budget)
        if isinstance(budget, int) and not isinstance(budget, bool):
            if budget < settings.low_below:
                tier: Tier = "low"
            elif budget < settings.medium_below:
                tier = "medium"
            else:
                tier = "high"
            return Strength(tier, "thinking.budget_tokens", str(budget), "budget", tuple(notes))
        notes.append(f"thinking.budget_tokens={budget!r} ignored: not a whole number")

    # 6. adaptive thinking without an effort: the API's default effort is high
    if kind == "adaptive":
        return Strength("high", "thinking.type", "adaptive", "adaptive", tuple(notes))

    # 7. nothing asks for reasoning
    return Strength("none", "default", "", "default", tuple(notes))
