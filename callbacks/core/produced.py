"""What a call produced and what the provider received, read from LiteLLM's objects (pure).

:func:`produced_blocks` finds the thinking signatures and tool-call ids in a response, whatever
its shape (Anthropic message dict, LiteLLM ``ModelResponse``, a Responses API object, a list of
streamed chunks or raw SSE bytes): they feed the conversation memory.
:func:`provider_reasoning` summarises the reasoning fields of the request body LiteLLM reports it
sent to the provider, for the ``done`` record's audit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from callbacks.core.history import ENCRYPTED_PREFIX, THINKING_TYPES, _signature, thinking_count
from callbacks.core.responses_history import translated_signatures

MAX_DEPTH: Final = 12
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})  # never walked into
# token counts (never a signature or an id); tool calls (read where they are found)
_NOT_WALKED: Final = frozenset({"usage", "tool_calls"})
# the field of a typed node that names what a later request can refer back to
_ID_OF: Final = {"tool_use": "id", "server_tool_use": "id", "reasoning": "id",
                 "function_call": "call_id"}


def _plain(obj: Any) -> Any:
    """A pydantic / LiteLLM object as plain data (dicts and lists): a pydantic model's fields
    as they are, extra fields included (serialising a whole response costs more than reading
    it), else what its ``model_dump`` / ``dict`` / ``json`` gives."""
    if getattr(type(obj), "__pydantic_fields__", None) is not None:
        fields = getattr(obj, "__dict__", None)
        extra = getattr(obj, "__pydantic_extra__", None)
        if isinstance(fields, dict):
            return {**fields, **extra} if extra else fields
    for name in ("model_dump", "dict", "json"):
        method = getattr(obj, name, None)
        if callable(method) and not isinstance(obj, Mapping | list | str | bytes):
            try:
                value = method()
            except Exception:  # noqa: BLE001 - a shape we cannot read is skipped
                continue
            return json.loads(value) if isinstance(value, str) else value
    return obj


def _sse_events(data: bytes | str) -> list[Any]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    events = []
    for line in text.splitlines():
        if line.startswith("data:"):
            try:
                events.append(json.loads(line[5:].strip()))
            except ValueError:
                continue
    return events


def _message_blocks(content: list[Any]) -> tuple[list[str], list[str]] | None:
    """The signatures and tool ids of an Anthropic message's content, when every block is of
    a kind read here (text, thinking, redacted thinking, tool use); else None. A loaded proxy
    read a message this way in a fraction of what the walk below costs it."""
    signatures: list[str] = []
    tools: list[str] = []
    for block in content:
        kind = block.get("type") if type(block) is dict else None
        if kind == "text":
            continue
        if kind in THINKING_TYPES:
            found, into = _signature(block), signatures
        elif kind == "tool_use" or kind == "server_tool_use":
            found, into = block.get("id"), tools
        else:
            return None
        if type(found) is str and found:
            into.append(found)
    return list(dict.fromkeys(signatures)), list(dict.fromkeys(tools))


def produced_blocks(response: Any) -> tuple[list[str], list[str]]:
    """(signatures, tool-call ids) found anywhere in ``response``; never raises."""
    if type(response) is dict and type(content := response.get("content")) is list and \
            response.get("type") == "message":  # the Messages API's answer: read directly
        found = _message_blocks(content)
        if found is not None:
            return found
    signatures: list[str] = []
    tools: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if type(node) is list:  # before the checks for objects: a list has no model_dump
            for item in node:
                walk(item, depth + 1)
            return
        if type(node) is not dict:  # plain dicts (most nodes) skip the checks for other shapes
            if isinstance(node, bytes | bytearray) or (isinstance(node, str)
                                                       and "data:" in node[:200]):
                for event in _sse_events(bytes(node) if isinstance(node, bytearray) else node):
                    walk(event, depth + 1)
                return
            node = _plain(node)
            if isinstance(node, list | tuple):
                for item in node:
                    walk(item, depth + 1)
                return
            if not isinstance(node, Mapping):
                return
        get = node.get
        kind = get("type")
        if isinstance(signature := get("signature"), str) and signature:
            signatures.append(signature)
        if kind in THINKING_TYPES and isinstance(data := get("data"), str) and data:
            signatures.append(data)
        if kind == "reasoning" and isinstance(encrypted := get("encrypted_content"), str):
            signatures.append(ENCRYPTED_PREFIX + encrypted)
            signatures.extend(translated_signatures(encrypted))
        if get("object") == "response" and isinstance(get("id"), str) and node["id"]:
            tools.append(node["id"])  # a stored response a later previous_response_id names
        key = _ID_OF.get(kind) if isinstance(kind, str) else None  # typed: blocks, items
        if key is not None and isinstance(made := get(key), str) and made:
            tools.append(made)  # a tool call; a reasoning item replayed by id alone
        if isinstance(calls := get("tool_calls"), list):
            for call in calls:
                call = _plain(call)
                if isinstance(call, Mapping) and isinstance(call.get("id"), str) and call["id"]:
                    tools.append(call["id"])
        for key, value in node.items():
            if type(value) in _SCALARS or key in _NOT_WALKED:
                continue
            if isinstance(value, dict | list | tuple | Mapping) or hasattr(value, "model_dump"):
                walk(value, depth + 1)

    try:
        walk(response, 0)
    except Exception:  # noqa: BLE001 - what cannot be read is not remembered
        pass
    return list(dict.fromkeys(signatures)), list(dict.fromkeys(tools))


def provider_reasoning(sent: Any, blocks: int | None = None) -> dict[str, Any] | str:
    """The reasoning fields of the body sent to the provider, e.g. ``{"thinking.type":
    "adaptive", "output_config.effort": "high"}`` (``{}``: none at all), or ``"unknown"``.
    ``blocks``: the thinking blocks of its history, when the caller knows them (else counted)."""
    if isinstance(sent, str | bytes):
        try:
            sent = json.loads(sent)
        except ValueError:
            return "unknown"
    if not isinstance(sent, Mapping) or not sent:  # some paths report an empty body
        return "unknown"
    found: dict[str, Any] = {}
    thinking = sent.get("thinking")
    if isinstance(thinking, Mapping):
        for key in ("type", "budget_tokens"):
            if key in thinking:
                found[f"thinking.{key}"] = thinking[key]
    for key in ("reasoning_effort",):
        if sent.get(key) is not None:
            found[key] = sent[key]
    for outer in ("output_config", "reasoning"):
        value = sent.get(outer)
        if isinstance(value, Mapping) and value.get("effort") is not None:
            found[f"{outer}.effort"] = value["effort"]
    if blocks is None:
        blocks = _thinking_blocks(sent.get("messages") or sent.get("input"))
    if blocks:
        found["thinking_blocks"] = blocks
    return found


def _thinking_blocks(messages: Any) -> int:
    blocks = 0
    # dict, not Mapping: parsed JSON, and an ABC check costs 10x on a 200-message history
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        if message.get("role") != "assistant":  # thinking is the assistant's; a Responses
            blocks += message.get("type") == "reasoning"  # reasoning item has no role
            continue
        blocks += thinking_count(message)
    return blocks
