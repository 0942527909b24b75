"""Replayed history made fit for the model that gets the call (pure).

A coding client resends the whole conversation on every request; when turns go to different
models, the history holds thinking blocks (with signatures) and ``tool_use`` blocks another model
produced. A provider verifies the signatures of the blocks it receives and rejects another model's
(see shared/domain/thinking-blocks.md). Given what the conversation memory knows about each
block's producer, :func:`fit_history` keeps the blocks this target made and drops the ones it cannot
verify. :func:`tool_loop` finds the ``tool_use`` ids a continuation answers, so the callback can
hold it on the model that made them.

Blocks the memory has never seen were made outside this proxy (every call through it is
remembered). A well-formed signature sent on to a native Anthropic target is kept: it is most
likely that target's own (a conversation begun against the same model), and dropping it would
lose its reasoning. (A tool continuation whose ``tool_use`` the memory never saw is different:
the callback cannot hold it, so it sends it with thinking off and records the loss.) Unsigned
blocks (``null``, ``""``) and LiteLLM's ``litellm_encrypted_reasoning:`` wrappers are kept only
for the target that made them.

Shapes handled: Anthropic Messages (``thinking`` / ``redacted_thinking`` content blocks) and
OpenAI chat (``thinking_blocks`` on assistant messages, LiteLLM's form of the same blocks).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

ENCRYPTED_PREFIX: Final = "litellm_encrypted_reasoning:"
THINKING_TYPES: Final = ("thinking", "redacted_thinking")
# Chat-format reasoning text on assistant messages (DeepSeek, OpenRouter, LiteLLM): unsigned, so
# judged by the producer of the message's tool calls.
REASONING_FIELDS: Final = ("reasoning_content", "reasoning", "reasoning_details")
_REASONING_KEYS: Final = frozenset(REASONING_FIELDS)  # `not isdisjoint(message)`: any of them
_WELL_FORMED: Final = re.compile(r"^[A-Za-z0-9+/=_\-]{16,}$")


class Made(Protocol):
    """A producer as the memory knows it (see ``callbacks.stores.memory.Producer``)."""

    @property
    def group(self) -> str: ...
    @property
    def model(self) -> str: ...


@dataclass(frozen=True)
class Target:
    """The model a request is about to be sent to."""

    group: str
    """Model group name."""
    model: str = ""
    """Upstream model of the deployment (``litellm_params.model``); "" when not known."""
    anthropic: bool = True
    """A native Anthropic target: it verifies signatures and enforces the tool-loop rule."""
    responses: bool = True
    """A native Responses API target (OpenAI, Azure): it takes ``input`` items as they are and
    verifies encrypted reasoning; other targets get a Responses call translated by LiteLLM."""

    def made(self, producer: Made) -> bool:
        """Whether ``producer`` is this target (same upstream model when both are known)."""
        if self.model and producer.model:
            return self.model == producer.model
        return self.group == producer.group


@dataclass
class Fit:
    """What fitting the history did."""

    messages: list[Any] | None = None
    """The new message list; None when nothing changed."""
    kept: int = 0
    """The thinking blocks the fitted history holds (:func:`thinking_count` of its turns)."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Dropped thinking blocks by reason."""
    kept_unknown: int = 0
    """Blocks the memory did not know, kept (well-formed, native Anthropic target)."""
    tool_loop_unsigned: bool = False
    """A continuation whose last assistant turn would reach the provider without its thinking block."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kept": self.kept, "dropped": sum(self.dropped.values())}
        if self.dropped:
            out["why"] = dict(self.dropped)
        if self.kept_unknown:
            out["kept_unknown"] = self.kept_unknown
        return out


def _is_block(block: Any) -> bool:
    # dict, not Mapping: request bodies are parsed JSON, and an ABC check costs 10x on hot paths
    return isinstance(block, dict) and block.get("type") in THINKING_TYPES


def _signature(block: Mapping[str, Any]) -> Any:
    return block.get("data") if block.get("type") == "redacted_thinking" else block.get("signature")


def _assistant_blocks(message: dict[str, Any]) -> tuple[list[Any], str] | None:
    """The thinking-bearing list of an assistant message and its key, if any (the callers
    pass assistant turns only: no other turn carries reasoning)."""
    content = message.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") in THINKING_TYPES:
                return content, "content"
    blocks = message.get("thinking_blocks")
    if isinstance(blocks, list):
        return blocks, "thinking_blocks"
    return None


class Reasoning(NamedTuple):
    """What a history's assistant turns carry (:func:`history_reasoning`)."""

    signatures: list[str]
    """The signatures of their thinking blocks (for the memory)."""
    text_ids: list[str]
    """The tool-call ids of the chat turns that carry reasoning text (for the memory)."""
    carriers: list[int]
    """The positions of the turns that carry reasoning (a thinking block, signed or not, or
    reasoning text): the only ones fitting may change."""


def history_reasoning(body: Mapping[str, Any]) -> Reasoning:
    """One pass over a history's assistant turns: what they carry. (The hot path of a long
    conversation: :func:`_assistant_blocks`, :func:`_is_block` and :func:`_signature` are
    inlined, each block looked at once.)"""
    found = Reasoning([], [], [])
    messages = body.get("messages")
    if not isinstance(messages, list):
        return found
    signatures, carriers = found.signatures, found.carriers
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        carries = not _REASONING_KEYS.isdisjoint(message)
        if carries:
            found.text_ids.extend(_tool_ids(message))
        held = False  # a thinking block in its content, else in its ``thinking_blocks``
        for key in ("content", "thinking_blocks"):
            blocks = message.get(key)
            if not isinstance(blocks, list):
                continue
            for block in blocks:
                if isinstance(block, dict) and block.get("type") in THINKING_TYPES:
                    held = True
                    signature = block.get("data") if block["type"] == "redacted_thinking" \
                        else block.get("signature")
                    if isinstance(signature, str) and signature:
                        signatures.append(signature)
            if held:
                break
        if held or carries:
            carriers.append(i)
    return found


def thinking_count(message: dict[str, Any]) -> int:
    """The thinking blocks an assistant turn holds (in its content and its ``thinking_blocks``)."""
    return _thinking_in(message.get("content")) + _thinking_in(message.get("thinking_blocks"))


def _thinking_in(blocks: Any) -> int:
    count = 0
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict) and block.get("type") in THINKING_TYPES:
                count += 1
    return count


def signatures_in(body: Mapping[str, Any]) -> list[str]:
    """Every signature string of the history's thinking blocks (for the memory)."""
    return history_reasoning(body)[0]


def newest_signature(body: Mapping[str, Any]) -> str | None:
    """The signature of the last signed thinking block of the history's last assistant turn:
    what the call before this one made, and the memory may still be writing (another worker
    served it)."""
    messages = body.get("messages")
    message = _last_assistant(messages) if isinstance(messages, list) else None
    if not isinstance(message, dict):
        return None
    for key in ("content", "thinking_blocks"):
        blocks = message.get(key)
        for block in reversed(blocks) if isinstance(blocks, list) else ():
            if _is_block(block) and isinstance(signature := _signature(block), str) and signature:
                return signature
    return None


def tool_loop(body: Mapping[str, Any]) -> list[str]:
    """The ``tool_use`` ids a continuation answers; [] when the request starts a new turn.

    A continuation is a request whose last message is the user's ``tool_result`` blocks
    (Anthropic) or a ``tool`` message (OpenAI chat); the ids are those of the last assistant
    message's ``tool_use`` blocks / ``tool_calls``. System-role messages after it (Claude
    Code's per-turn effort and notices) do not end a loop.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return []
    last = next((m for m in reversed(messages)
                 if not (isinstance(m, dict) and m.get("role") == "system")), None)
    if not isinstance(last, dict):
        return []
    content = last.get("content")
    answers = last.get("role") == "tool" or (
        last.get("role") == "user" and isinstance(content, list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content))
    if not answers:
        return []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            return _tool_ids(message)
    return []


def _tool_ids(message: Mapping[str, Any]) -> list[str]:
    ids: list[str] = []
    content = message.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_use" and \
                isinstance(block.get("id"), str):
            ids.append(block["id"])
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            ids.append(call["id"])
    return ids


def thinking_on(body: Mapping[str, Any]) -> bool:
    """Whether a request asks for thinking: ``thinking.type`` enabled or adaptive, or an OpenAI
    effort (``reasoning_effort``, ``reasoning.effort``) other than none, which LiteLLM turns
    into thinking for an Anthropic target."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return True
    reasoning = body.get("reasoning")
    effort = body.get("reasoning_effort") or (
        reasoning.get("effort") if isinstance(reasoning, dict) else None)
    return effort not in (None, "none") and thinking is None


def _verdict(block: Mapping[str, Any], target: Target, producers: Mapping[str, Made],
             strip_all: bool) -> str | None:
    """Why ``block`` cannot go to ``target``; None to keep it ("unknown" keeps, counted apart)."""
    if strip_all:
        return "thinking off"
    signature = _signature(block)
    if not isinstance(signature, str) or not signature:
        return "unsigned"
    producer = producers.get(signature)
    if producer is not None:
        return None if target.made(producer) else "other model"
    if signature.startswith(ENCRYPTED_PREFIX):
        return "not from this target"
    if target.anthropic and _WELL_FORMED.match(signature):
        return "unknown"  # kept: see the module docstring
    return "unverifiable"


def _reasoning_text_verdict(message: Mapping[str, Any], target: Target,
                            tools: Mapping[str, Made], strip_all: bool) -> str | None:
    """Why a chat message's reasoning text cannot go to ``target`` (None: keep it)."""
    if strip_all:
        return "thinking off"
    made = [tools[i] for i in _tool_ids(message) if i in tools]
    return "other model" if made and not any(target.made(p) for p in made) else None


_GONE: Final = object()  # an assistant turn fitting left empty


def fit_history(body: Mapping[str, Any], target: Target, producers: Mapping[str, Made],
                strip_all: bool = False, tools: Mapping[str, Made] | None = None,
                loop: bool | None = None, carriers: list[int] | None = None) -> Fit:
    """Keep the thinking blocks ``target`` can verify; drop the others.

    ``body`` is the request as it will be sent; ``producers`` maps signatures to what made them
    (the memory's recall). ``strip_all`` drops every block: the router sends the request without
    thinking (none tier, or a continuation that cannot keep it). An assistant message left with
    nothing is removed. A chat message's reasoning text (``reasoning_content`` ...) is dropped
    when ``tools`` (tool-call id -> producer) says another model made its tool calls, or with
    ``strip_all``. ``loop``: whether the request is a tool continuation, and ``carriers``: its
    :func:`history_reasoning`, when the caller knows them.
    """
    fit = Fit()
    messages = body.get("messages")
    if not isinstance(messages, list):
        return fit
    out: list[Any] | None = None  # a copy of the list once a turn changes
    for i in history_reasoning(body).carriers if carriers is None else carriers:
        message = messages[i]
        fitted = _fit_turn(message, target, producers, strip_all, tools or {}, fit)
        if fitted is not message:
            if out is None:
                out = list(messages)
            out[i] = fitted
    if out is not None:
        fit.messages = [m for m in out if m is not _GONE]
    if thinking_on(body) and target.anthropic and (  # cheapest test first
            tool_loop(body) if loop is None else loop):
        fit.tool_loop_unsigned = not _starts_with_thinking(
            _last_assistant(messages if fit.messages is None else fit.messages))
    return fit


def _fit_turn(message: dict[str, Any], target: Target, producers: Mapping[str, Made],
              strip_all: bool, tools: Mapping[str, Made], fit: Fit) -> Any:
    """One assistant turn fitted to ``target`` (counted in ``fit``: ``kept``, the
    :func:`thinking_count` of what is sent): the same object when nothing changes,
    :data:`_GONE` when nothing is left to send."""
    if not _REASONING_KEYS.isdisjoint(message):
        why = _reasoning_text_verdict(message, target, tools, strip_all)
        if why is not None:
            message = {k: v for k, v in message.items() if k not in REASONING_FIELDS}
            fit.dropped[why] += 1
    held = _assistant_blocks(message)
    if held is None:
        return message
    blocks, key = held
    kept_blocks = []
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in THINKING_TYPES:  # _is_block
            kept_blocks.append(block)
            continue
        why = _verdict(block, target, producers, strip_all)
        if why is None or why == "unknown":
            kept_blocks.append(block)
            fit.kept += 1
            fit.kept_unknown += why == "unknown"
        else:
            fit.dropped[why] += 1
    if key == "content":
        if not kept_blocks:
            return _GONE  # an assistant turn that was only thinking: nothing left to send
        fit.kept += _thinking_in(message.get("thinking_blocks"))  # sent as they are
    if len(kept_blocks) == len(blocks):
        return message
    new = {k: v for k, v in message.items() if k != key or kept_blocks}
    if kept_blocks:
        new[key] = kept_blocks
    return new


def _last_assistant(messages: list[Any]) -> Any:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            return message
    return None


def _starts_with_thinking(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    if isinstance(content, list) and content:
        return _is_block(content[0])
    blocks = message.get("thinking_blocks")
    return isinstance(blocks, list) and any(map(_is_block, blocks))
