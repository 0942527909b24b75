"""Request rewrites for the chosen tier and target (pure).

Each function reads a request body and returns a *patch*: top-level keys to set, with
:data:`DELETE` for keys to remove. Nothing is mutated until the callback applies the whole patch,
so an error half-way leaves the request exactly as the client sent it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Final

from callbacks.core.state import Adapter, TierTarget

DELETE: Final = object()
INCLUDE_ENCRYPTED: Final = "reasoning.encrypted_content"
Patch = dict[str, Any]

# JSON-schema keywords Cerebras refuses in tool parameters; moved into the description text.
CEREBRAS_UNSUPPORTED: Final = ("format", "minItems", "minLength")
_SCHEMA_MAPS: Final = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_LISTS: Final = ("anyOf", "oneOf", "allOf", "prefixItems")


def apply_patch(body: dict[str, Any], patch: Patch) -> None:
    """Apply a patch to ``body`` in place."""
    for key, value in patch.items():
        if value is DELETE:
            body.pop(key, None)
        else:
            body[key] = value


def _thinking_on(thinking: Any) -> bool:
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def reasoning_patch(body: Mapping[str, Any], tier: str, target: TierTarget) -> Patch:
    """Make the request's reasoning fields match its tier.

    The none tier carries no reasoning: no effort (at any depth: message-level efforts too),
    ``thinking`` only as disabled, no context edit that clears thinking. A tier with ``params``
    gets those in place of the client's reasoning fields, message-level efforts included. Any
    other tier keeps what the client sent.
    """
    if tier != "none" and not target.params:
        return {}
    patch: Patch = {}
    if "reasoning_effort" in body:
        patch["reasoning_effort"] = DELETE
    if "reasoning" in body:
        patch["reasoning"] = DELETE
    include = body.get("include")  # Responses: no encrypted reasoning asked of the none tier
    if tier == "none" and isinstance(include, list) and INCLUDE_ENCRYPTED in include:
        patch["include"] = [entry for entry in include if entry != INCLUDE_ENCRYPTED] or DELETE
    if "thinking" in body and body.get("thinking") != {"type": "disabled"}:
        patch["thinking"] = {"type": "disabled"} if tier == "none" else DELETE
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and "effort" in output_config:
        rest = {k: v for k, v in output_config.items() if k != "effort"}
        patch["output_config"] = rest or DELETE

    for key, value in copy.deepcopy(dict(target.params)).items():  # never share the state's
        current = patch.get(key, body.get(key))
        if key == "output_config" and isinstance(current, dict) and isinstance(value, dict):
            value = {**current, **value}
        client = body.get(key)
        if key == "thinking" and _thinking_on(value) and isinstance(client, dict):
            # the client's extra keys (e.g. ``display``) survive a replaced thinking mode
            value = {**{k: v for k, v in client.items() if k not in ("type", "budget_tokens")},
                     **value}
        patch[key] = value

    messages = _message_efforts(body.get("messages"), patch.get("output_config", body.get("output_config")))
    if messages is not None:
        patch["messages"] = messages
    thinking = patch.get("thinking", body.get("thinking"))
    edits_patch = _drop_clear_thinking(body.get("context_management"))
    if not _thinking_on(thinking) and edits_patch is not None:
        patch["context_management"] = edits_patch
    return patch


def _message_efforts(messages: Any, output_config: Any) -> list[Any] | None:
    """Message-level ``output_config.effort`` (Claude Code's per-turn effort) made to agree with
    the top level: the same value, or removed when the top level has none. None: no change."""
    if not isinstance(messages, list):
        return None
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    out, changed = [], False
    for message in messages:
        config = message.get("output_config") if isinstance(message, dict) else None
        if isinstance(config, dict) and "effort" in config and config["effort"] != effort:
            rest = {k: v for k, v in config.items() if k != "effort"}
            if effort is not None:
                rest["effort"] = effort
            message = {k: v for k, v in message.items() if k != "output_config"}
            if rest:
                message["output_config"] = rest
            changed = True
        out.append(message)
    return out if changed else None


def _drop_clear_thinking(context_management: Any) -> Any:
    """``context_management`` without thinking-clearing edits; None when nothing to change."""
    if not isinstance(context_management, dict):
        return None
    edits = context_management.get("edits")
    if not isinstance(edits, list):
        return None
    kept = [
        e for e in edits
        if not (isinstance(e, dict) and str(e.get("type", "")).startswith("clear_thinking"))
    ]
    if len(kept) == len(edits):
        return None
    rest = {k: v for k, v in context_management.items() if k != "edits"}
    if kept:
        rest["edits"] = kept
    return rest or DELETE


# --- provider adapters -----------------------------------------------------------------------


def clean_schema(schema: Any) -> Any:
    """A copy of a JSON schema with Cerebras-unsupported keywords moved into descriptions."""
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    moved: list[str] = []
    for key, value in schema.items():
        if key in CEREBRAS_UNSUPPORTED and not isinstance(value, dict):
            moved.append(f"{key}: {value}")
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS or key in ("items", "additionalProperties", "not"):
            out[key] = clean_schema(value)
        else:
            out[key] = value
    if moved:
        description = out.get("description")
        note = "(" + "; ".join(moved) + ")"
        out["description"] = f"{description} {note}" if isinstance(description, str) and \
            description else note
    return out


def _clean_tool(tool: Any) -> Any:
    if not isinstance(tool, dict):
        return tool
    if isinstance(tool.get("input_schema"), Mapping):  # Anthropic
        return {**tool, "input_schema": clean_schema(tool["input_schema"])}
    function = tool.get("function")
    if isinstance(function, dict) and isinstance(function.get("parameters"), Mapping):  # OpenAI
        return {**tool, "function": {**function, "parameters": clean_schema(function["parameters"])}}
    if isinstance(tool.get("parameters"), Mapping):  # OpenAI Responses API
        return {**tool, "parameters": clean_schema(tool["parameters"])}
    return tool


def _block_text(block: Any) -> str:
    """One content block as plain text; tool blocks are described, not dropped."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return str(block)
    kind = block.get("type")
    if kind == "text" or (kind is None and "text" in block):
        return str(block.get("text", ""))
    if kind == "tool_use":
        args = json.dumps(block.get("input", {}), ensure_ascii=False, default=str)
        return f"[tool_use {block.get('name', '?')} id={block.get('id', '?')}] {args}"
    if kind == "tool_result":
        content = block.get("content", "")
        text = content if isinstance(content, str) else _content_text(content)
        error = " error" if block.get("is_error") else ""
        return f"[tool_result{error} id={block.get('tool_use_id', '?')}] {text}"
    if kind in ("thinking", "redacted_thinking"):
        return ""
    return f"[{kind} omitted]"


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(t for t in (_block_text(b) for b in content) if t)
    return _block_text(content)


def _plain_messages(messages: list[Any]) -> list[Any]:
    out = []
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            message = {**message, "content": _content_text(message["content"])}
        out.append(message)
    return out


def adapter_patch(body: Mapping[str, Any], adapter: Adapter) -> Patch:
    """Provider quirks of the target: Cerebras tool schemas, and for Cerebras reached directly
    (not through OpenRouter) non-streaming calls and plain-text content."""
    if not adapter.cerebras:
        return {}
    patch: Patch = {}
    if isinstance(body.get("tools"), list):
        patch["tools"] = [_clean_tool(tool) for tool in body["tools"]]
    if not adapter.openrouter:
        # As the original callback did: Cerebras' own endpoint is called without streaming. The
        # proxy then answers the client with one JSON body (LiteLLM 1.108 has no fake-stream
        # path for this route); Claude Code retries a broken stream without ``stream``.
        if body.get("stream"):
            patch["stream"] = False
        if "stream_options" in body:
            patch["stream_options"] = DELETE
        if isinstance(body.get("messages"), list):
            patch["messages"] = _plain_messages(body["messages"])
        if isinstance(body.get("system"), list):
            patch["system"] = _content_text(body["system"])
    return patch
