"""The stand-in provider's rules, as pure functions: signatures, the Anthropic API's and the
Responses API's checks on replayed history (with the APIs' own error texts), the tool-call
convention, token counting.

``app/standin/server.py`` serves them; its docstring describes the behaviour. Tests may import
``sign``, ``redacted_data`` and ``encrypted_content`` to build history a model accepts.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

SECRET: Final = b"reasoning-panel stand-in: not a real key"
THINKING_TYPES: Final = ("thinking", "redacted_thinking")
LITELLM_ENCRYPTED: Final = "litellm_encrypted_reasoning:"
MAX_STEPS: Final = 50

EXPECTED_THINKING: Final = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please "
    "consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
THINKING_WHEN_DISABLED: Final = (
    "messages.{i}.content.{j}: When thinking is disabled, an `assistant` message in the final "
    "position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request."
)
INVALID_SIGNATURE: Final = "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
INVALID_DATA: Final = "messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
FIELD_REQUIRED: Final = "messages.{i}.content.{j}.{type}.{field}: Field required"
NOT_A_STRING: Final = "messages.{i}.content.{j}.{type}.{field}.str: Input should be a valid string"
# The Responses API's texts (HTTP status, param and code in ``responses_error``).
NOT_VERIFIED: Final = ("The encrypted content {short} could not be verified. Reason: Encrypted "
                       "content could not be decrypted or parsed.")
NOT_PERSISTED: Final = (
    "Item with id '{id}' not found. Items are not persisted when `store` is set to false. Try "
    "again with `store` set to true, or remove this item from your input.")
ITEM_NOT_FOUND: Final = "Item with id '{id}' not found."
WITHOUT_FOLLOWING: Final = (
    "Item '{id}' of type 'reasoning' was provided without its required following item.")
WITHOUT_REASONING: Final = (
    "Item '{id}' of type '{type}' was provided without its required 'reasoning' item: "
    "'{reasoning}'.")
NO_TOOL_CALL: Final = "No tool call found for function call output with call_id {call_id}."
PREVIOUS_NOT_FOUND: Final = "Previous response with id '{id}' not found."
ORPHAN_TOOL_RESULT: Final = (
    "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. "
    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)


# --- signatures -----------------------------------------------------------------------------------

def _mac(kind: str, model: str, text: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        message = f"{kind}\0{model}\0{counter}\0{text}".encode()
        out += hmac.new(SECRET, message, hashlib.sha256).digest()
        counter += 1
    return out[:size]


def _envelope(payload: bytes) -> bytes:
    """Protobuf-like framing (field 2, length-delimited), as real signatures have: 'E...'."""
    length = len(payload)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            return b"\x12" + bytes(varint) + payload


@functools.lru_cache(maxsize=1 << 16)  # a conversation replays the same blocks on every request
def sign(model: str, thinking: str) -> str:
    """The signature ``model`` gives a thinking block with this text (deterministic)."""
    return base64.b64encode(_envelope(_mac("thinking", model, thinking, 180))).decode()


def _sealed(kind: str, model: str, seed: str) -> bytes:
    nonce = hashlib.sha256(f"{model}\0{seed}".encode()).digest()[:16]
    return _envelope(nonce + _mac(kind, model, nonce.hex(), 160))


def _unsealed_nonce(raw: bytes) -> str | None:
    return raw[-176:-160].hex() if len(raw) > 176 else None


def redacted_data(model: str, seed: str = "") -> str:
    """The ``data`` of a ``redacted_thinking`` block ``model`` made (self-verifying)."""
    return base64.b64encode(_sealed("redacted", model, seed)).decode()


def encrypted_content(model: str, seed: str = "") -> str:
    """A Responses reasoning item's ``encrypted_content`` (Fernet-looking, self-verifying)."""
    return "gAAAAA" + base64.urlsafe_b64encode(_sealed("reasoning", model, seed)).decode()


def _opens(kind: str, model: str, raw: bytes) -> bool:
    nonce = _unsealed_nonce(raw)
    return nonce is not None and hmac.compare_digest(
        raw, _envelope(bytes.fromhex(nonce) + _mac(kind, model, nonce, 160)))


def _b64(text: str, urlsafe: bool = False) -> bytes | None:
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(text.encode())
        return base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None


def verifies(model: str, block: dict[str, Any]) -> bool:
    """Whether a thinking / redacted_thinking block (Anthropic) was made by ``model``."""
    if block.get("type") == "thinking":
        signature, text = block.get("signature"), block.get("thinking")
        return (isinstance(signature, str) and isinstance(text, str)
                and hmac.compare_digest(signature, sign(model, text)))
    data = block.get("data")
    raw = _b64(data) if isinstance(data, str) else None
    return raw is not None and _opens("redacted", model, raw)


def encrypted_by(model: str, content: object) -> bool:
    """Whether a Responses ``encrypted_content`` was made by ``model``."""
    if not isinstance(content, str) or not content.startswith("gAAAAA"):
        return False
    raw = _b64(content[6:], urlsafe=True)
    return raw is not None and _opens("reasoning", model, raw)


def provenance(block: dict[str, Any], model: str, known: Iterable[str]) -> str:
    """Who made a replayed block, as seen by ``model``: ``own``, ``other:<model>`` (another model
    of this stand-in), ``missing``, ``null``, ``empty``, ``litellm_encrypted`` or ``unknown``."""
    if block.get("type") == "reasoning":  # a Responses input item
        field = "encrypted_content"
    else:
        field = "data" if block.get("type") == "redacted_thinking" else "signature"
    value = block.get(field)

    def made_by(m: str) -> bool:
        return encrypted_by(m, value) if field == "encrypted_content" else verifies(m, block)

    if field not in block:
        return "missing"
    if value is None:
        return "null"
    if not isinstance(value, str):
        return "unknown"
    if value == "":
        return "empty"
    if value.startswith(LITELLM_ENCRYPTED):
        return "litellm_encrypted"
    if made_by(model):
        return "own"
    for other in known:
        if other != model and made_by(other):
            return f"other:{other}"
    return "unknown"


# --- reading requests ---------------------------------------------------------------------------

def thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _blocks(content: object) -> list[dict[str, Any]]:
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _indexed(content: object) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(content, list):
        return []
    return [(j, b) for j, b in enumerate(content) if isinstance(b, dict)]


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text")) for b in _blocks(content)
                    if b.get("type") in ("text", "input_text") and isinstance(b.get("text"), str))


def reasoning_asked(api: str, body: dict[str, Any]) -> str | None:
    """What the request asked for in reasoning, in words (``None``: no reasoning)."""
    parts: list[str] = []
    if api == "messages":
        if not thinking_on(body):
            return None
        thinking = body["thinking"]
        parts.append(f"thinking={thinking['type']}")
        if "budget_tokens" in thinking:
            parts.append(f"budget_tokens={thinking['budget_tokens']}")
        config = body.get("output_config")
        if isinstance(config, dict) and "effort" in config:
            parts.append(f"effort={config['effort']}")
        return " ".join(parts)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and (reasoning.get("effort") not in (None, "none")
                                        or reasoning.get("enabled") is True):
        parts.append("reasoning=" + json.dumps(reasoning, sort_keys=True, default=str))
    if api == "chat":
        effort = body.get("reasoning_effort")
        if effort is not None and effort != "none" and effort != "":
            parts.append(f"reasoning_effort={effort}")
        if thinking_on(body):
            parts.append(f"thinking={body['thinking']['type']}")
    return " ".join(parts) or None


@dataclass(frozen=True)
class Turn:
    """Where a request stands in its conversation."""

    human: str  # the latest human text
    tool_rounds: int  # tool-result turns since that human text
    steps: int  # the ``steps=N`` asked for in it (0: none)
    redact: bool  # ``redacted=1`` in it


def _turn(human: str, rounds: int) -> Turn:
    found = re.search(r"\bsteps=(\d+)\b", human)
    steps = min(int(found.group(1)), MAX_STEPS) if found else 0
    return Turn(human, rounds, steps, bool(re.search(r"\bredacted=1\b", human)))


def read_turn(api: str, body: dict[str, Any]) -> Turn:
    """The latest human text and the tool-result turns that followed it.

    A human turn is a user message with text and no tool results; a tool-result turn is a user
    message with ``tool_result`` blocks (messages), a run of ``tool`` messages (chat) or of
    ``function_call_output`` items (responses)."""
    if api == "responses":
        items = body.get("input")
        if isinstance(items, str):
            return _turn(items, 0)
        entries = [(it.get("type") == "function_call_output",
                    _text_of(it.get("content")) if it.get("role") == "user" else "")
                   for it in (items if isinstance(items, list) else []) if isinstance(it, dict)]
    elif api == "chat":
        entries = [(m.get("role") == "tool", _text_of(m.get("content")) if m.get("role") == "user"
                    else "") for m in _messages(body)]
    else:
        entries = []
        for m in _messages(body):
            tool = m.get("role") == "user" and any(
                b.get("type") == "tool_result" for b in _blocks(m.get("content")))
            text = _text_of(m.get("content")) if m.get("role") == "user" and not tool else ""
            entries.append((tool, text))
    human, rounds, previous_tool = "", 0, False
    for tool, text in entries:
        if text:
            human, rounds = text, 0
        elif tool and not previous_tool:
            rounds += 1
        previous_tool = tool
    return _turn(human, rounds)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def first_tool(api: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first tool of the request: (name, JSON schema of its input)."""
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if api == "responses" and tool.get("type", "function") != "function":
            continue  # custom (freeform), namespace, web_search ... tools take no JSON input
        spec = tool.get("function") if api == "chat" else tool
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            continue
        schema = spec.get("input_schema" if api == "messages" else "parameters")
        return spec["name"], schema if isinstance(schema, dict) else {}
    return None


def tool_call(api: str, body: dict[str, Any], step: int) -> tuple[str, dict[str, Any]] | None:
    """The tool call for step ``step`` of a tool loop: Codex's shell tools first (on Responses,
    and as LiteLLM translates them to the other APIs): ``exec_command`` with
    ``{"cmd": "echo standin-step-K"}``, else ``shell`` with ``{"command": ["echo",
    "standin-step-K"]}``; else the first tool, its required inputs filled by ``small_input``.
    ``run=PROGRAM`` in the human text runs ``PROGRAM standin-step-K`` instead of ``echo`` (a
    test's hook that acts between the steps of a real client's tool loop)."""
    tools = body.get("tools")
    if api == "responses":
        names = {t.get("name") for t in tools if isinstance(t, dict)
                 and t.get("type", "function") == "function"} if isinstance(tools, list) else set()
    else:  # Codex's tools as LiteLLM translates them (a Responses call to another provider)
        names = {(t.get("function") or {}).get("name") if api == "chat" else t.get("name")
                 for t in tools if isinstance(t, dict)} if isinstance(tools, list) else set()
    if names & {"exec_command", "shell"}:
        found = re.search(r"\brun=([^\s\"'`]+)", read_turn(api, body).human)
        program = found.group(1) if found else "echo"
        if "exec_command" in names:
            return "exec_command", {"cmd": f"{program} standin-step-{step}"}
        if "shell" in names:
            return "shell", {"command": [program, f"standin-step-{step}"]}
    found = re.search(r"\brun=([^\s\"'`]+)", read_turn(api, body).human)
    if found and api == "chat":  # opencode's shell tool: ``bash`` with a ``command``
        for tool in body.get("tools") or []:
            spec = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(spec, dict) and spec.get("name") == "bash":
                schema = spec.get("parameters")
                return "bash", {**small_input(schema if isinstance(schema, dict) else {}, step),
                                "command": f"{found.group(1)} standin-step-{step}"}
    tool = first_tool(api, body)
    return (tool[0], small_input(tool[1], step)) if tool else None


def small_input(schema: dict[str, Any], step: int) -> dict[str, Any]:
    """A tool input with each required property filled by the simplest value of its type."""
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    out: dict[str, Any] = {}
    for name in required if isinstance(required, list) else []:
        if not isinstance(name, str):
            continue
        spec = properties.get(name)
        kind = spec.get("type") if isinstance(spec, dict) else None
        out[name] = {"integer": step, "number": step, "boolean": True, "array": [],
                     "object": {}}.get(kind if isinstance(kind, str) else "", f"standin-step-{step}")
    return out


def count_input_tokens(body: dict[str, Any]) -> int:
    """Deterministic stand-in for a tokenizer: the characters of the JSON of the prompt
    (system / instructions, messages / input, tools) divided by four, at least 1."""
    prompt = [body.get("system"), body.get("instructions"), body.get("messages"),
              body.get("input"), body.get("tools")]
    return max(1, len(json.dumps(prompt, default=str)) // 4)


# --- the Anthropic API's rules on replayed history ------------------------------------------------

def _schema_error(messages: list[Any]) -> str | None:
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        for j, block in _indexed(m.get("content")):
            kind = block.get("type")
            fields = ("thinking", "signature") if kind == "thinking" else (
                ("data",) if kind == "redacted_thinking" else ())
            for field in fields:
                if field not in block:
                    return FIELD_REQUIRED.format(i=i, j=j, type=kind, field=field)
                if not isinstance(block[field], str):
                    return NOT_A_STRING.format(i=i, j=j, type=kind, field=field)
    return None


def _turns(messages: list[Any]) -> list[int]:
    """Indexes of the conversation's turns: system-role messages (Claude Code's per-turn effort
    and notices, beta per-turn-control) sit between turns and are not part of a tool loop."""
    return [i for i, m in enumerate(messages) if not (isinstance(m, dict) and m.get("role") == "system")]


def tool_loop_at(messages: list[Any]) -> int | None:
    """The index of the assistant message a tool continuation continues (the last turn is
    the user's ``tool_result``s), else ``None``."""
    turns = _turns(messages)
    if len(turns) < 2 or not isinstance(messages[turns[-1]], dict):
        return None
    last = messages[turns[-1]]
    if last.get("role") != "user" or not any(
            b.get("type") == "tool_result" for b in _blocks(last.get("content"))):
        return None
    return turns[-2]


def _orphan_error(messages: list[Any], at: int) -> str | None:
    previous = messages[at]
    used = {b.get("id") for b in _blocks(previous.get("content")) if b.get("type") == "tool_use"} \
        if isinstance(previous, dict) and previous.get("role") == "assistant" else set()
    last = _turns(messages)[-1]
    for j, block in _indexed(messages[last].get("content")):
        if block.get("type") == "tool_result" and block.get("tool_use_id") not in used:
            return ORPHAN_TOOL_RESULT.format(i=last, j=j, id=block.get("tool_use_id"))
    return None


def _first_thinking(content: object) -> int | None:
    return next((j for j, b in _indexed(content) if b.get("type") in THINKING_TYPES), None)


def anthropic_error(body: dict[str, Any], model: str) -> str | None:
    """The 400 ``invalid_request_error`` message the Anthropic API gives this request's history,
    or ``None`` when it accepts it. Checked in this order: the blocks' fields (schema), the
    tool continuation, an assistant message in the final position, then the signatures."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    on = thinking_on(body)
    if error := _schema_error(messages):
        return error
    finals = []
    if (at := tool_loop_at(messages)) is not None:
        if error := _orphan_error(messages, at):
            return error
        content = messages[at].get("content")
        blocks = content if isinstance(content, list) else [{"type": "text"}]
        first = blocks[0].get("type") if blocks and isinstance(blocks[0], dict) else "text"
        if on and first not in THINKING_TYPES:
            return EXPECTED_THINKING.format(i=at, found=first)
        finals.append(at)
    if isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        finals.append(len(messages) - 1)
    for i in finals if not on else []:
        if (j := _first_thinking(messages[i].get("content"))) is not None:
            return THINKING_WHEN_DISABLED.format(i=i, j=j)
    if not on:
        return None  # the API strips earlier thinking when thinking is off
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        for j, block in _indexed(m.get("content")):
            if block.get("type") in THINKING_TYPES and not verifies(model, block):
                template = INVALID_SIGNATURE if block["type"] == "thinking" else INVALID_DATA
                return template.format(i=i, j=j)
    return None


# --- the Responses API's rules on replayed input --------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    """An error the Responses API answers, with its HTTP status, ``param`` and ``code``."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Minted:
    """An output item this stand-in made on ``/v1/responses``: by which model, and the id of
    the reasoning item that came before it in the same response (``None``: none)."""

    model: str
    reasoning: str | None


def abbreviated(blob: str) -> str:
    """An encrypted blob as the API's messages show it: its first and last four characters."""
    return f"{blob[:4]}...{blob[-4:]}"


def response_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``input`` of a Responses request as a list of items (a string is one user message)."""
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    return [it for it in items if isinstance(it, dict)] if isinstance(items, list) else []


def _kind(item: dict[str, Any]) -> str:
    return str(item.get("type") or "message")


def is_output_item(item: dict[str, Any]) -> bool:
    """An item a model produced (what may follow a reasoning item): an assistant message or a
    tool call (``function_call``, ``custom_tool_call``, ``local_shell_call``, ...)."""
    kind = _kind(item)
    return kind.endswith("_call") or (kind == "message" and item.get("role") == "assistant")


def _reasoning_refusal(items: list[dict[str, Any]], i: int, model: str, store: bool,
                       stored: Mapping[str, str]) -> Refusal | None:
    item, rs_id = items[i], items[i].get("id")
    content = item.get("encrypted_content")
    if content is not None:
        if not encrypted_by(model, content):
            return Refusal(400, NOT_VERIFIED.format(short=abbreviated(str(content))),
                           code="invalid_encrypted_content")
    elif isinstance(rs_id, str) and rs_id:  # by id alone: only a stored item can be found
        if not store:
            return Refusal(404, NOT_PERSISTED.format(id=rs_id), param="input")
        if rs_id not in stored:
            return Refusal(404, ITEM_NOT_FOUND.format(id=rs_id), param="input")
    if isinstance(rs_id, str) and rs_id and not (i + 1 < len(items)
                                                 and is_output_item(items[i + 1])):
        return Refusal(400, WITHOUT_FOLLOWING.format(id=rs_id), param="input")
    return None


def responses_error(items: list[dict[str, Any]], model: str, store: bool,
                    minted: Mapping[str, Minted], stored: Mapping[str, str]) -> Refusal | None:
    """The error the Responses API answers this input with, or ``None`` when it accepts it.

    Checked item by item, in order: a ``reasoning`` item's ``encrypted_content`` must be this
    model's (``invalid_encrypted_content``); one given by id alone must be stored (404, never when
    ``store`` is false); a reasoning item with an id needs an output item right after it; an
    output item this model made after a reasoning item needs that reasoning item earlier in the
    input; a ``function_call_output`` needs its call earlier in the input.
    ``minted``: output item id -> who made it; ``stored``: stored reasoning item id -> model."""
    reasoning_ids: set[str] = set()
    call_ids: set[str] = set()
    for i, item in enumerate(items):
        kind, item_id = _kind(item), item.get("id")
        if kind == "reasoning":
            if refusal := _reasoning_refusal(items, i, model, store, stored):
                return refusal
            if isinstance(item_id, str):
                reasoning_ids.add(item_id)
            continue
        made = minted.get(item_id) if isinstance(item_id, str) else None
        if made and made.model == model and made.reasoning and made.reasoning not in reasoning_ids:
            return Refusal(400, WITHOUT_REASONING.format(id=item_id, type=kind,
                                                         reasoning=made.reasoning), param="input")
        if kind.endswith("_call") and isinstance(item.get("call_id"), str):
            call_ids.add(item["call_id"])
        if kind == "function_call_output" and item.get("call_id") not in call_ids:
            return Refusal(400, NO_TOOL_CALL.format(call_id=item.get("call_id")), param="input")
    return None


def previous_response_refusal(response_id: object) -> Refusal:
    """``previous_response_id`` names no response this model stored."""
    return Refusal(400, PREVIOUS_NOT_FOUND.format(id=response_id), param="previous_response_id",
                   code="previous_response_not_found")


# --- what arrived, for tests ----------------------------------------------------------------------

def history_report(api: str, body: dict[str, Any], model: str, known: Iterable[str],
                   tool_ids: dict[str, str]) -> dict[str, Any]:
    """Every replayed reasoning block with who made it, and, for a tool continuation, which
    model made the ``tool_use`` it continues and what its assistant message starts with."""
    known = list(known)
    thinking: list[dict[str, Any]] = []
    loop: dict[str, Any] | None = None
    if api == "responses":
        items = body.get("input")
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and item.get("type") == "reasoning":
                thinking.append({"at": f"input.{i}", "type": "reasoning", "id": item.get("id"),
                                 "signature": provenance(item, model, known)})
        return {"thinking": thinking,
                "tool_loop": responses_tool_loop(items, model, known, tool_ids)}
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        where, blocks = (("thinking_blocks", m.get("thinking_blocks")) if api == "chat"
                         else ("content", m.get("content")))
        for j, block in _indexed(blocks):
            if block.get("type") in THINKING_TYPES:
                thinking.append({"at": f"messages.{i}.{where}.{j}", "type": block["type"],
                                 "signature": provenance(block, model, known)})
    if api == "messages" and (at := tool_loop_at(messages)) is not None \
            and isinstance(messages[at], dict):
        blocks = _blocks(messages[at].get("content"))
        uses = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        first = blocks[0] if blocks else {}
        loop = {"at": f"messages.{at}", "tool_use_ids": uses,
                "made_by": sorted({tool_ids.get(str(u), "unknown") for u in uses}),
                "first_block": first.get("type"),
                "first_block_signature": provenance(first, model, known)
                if first.get("type") in THINKING_TYPES else None}
    return {"thinking": thinking, "tool_loop": loop}


def responses_tool_loop(items: object, model: str, known: list[str], tool_ids: dict[str, str]
                        ) -> dict[str, Any] | None:
    """For a Responses tool continuation (``input`` ends with ``function_call_output`` items),
    the turn it continues: the run of output items (reasoning, calls, messages) before those
    results, with the keys a Messages tool loop has (``first_block``: that turn's first item)."""
    entries = items if isinstance(items, list) else []
    end = len(entries)
    while end and isinstance(entries[end - 1], dict) and _kind(entries[end - 1]).endswith("_output"):
        end -= 1
    if end == len(entries):
        return None
    start = end
    while start and isinstance(entries[start - 1], dict) and (
            _kind(entries[start - 1]) == "reasoning" or is_output_item(entries[start - 1])):
        start -= 1
    turn = [it for it in entries[start:end] if isinstance(it, dict)]
    calls = [str(it.get("call_id")) for it in turn if _kind(it).endswith("_call")]
    first = turn[0] if turn else {}
    return {"at": f"input.{start}", "tool_use_ids": calls,
            "made_by": sorted({tool_ids.get(c, "unknown") for c in calls}),
            "first_block": _kind(first) if turn else None,
            "first_block_signature": provenance(first, model, known)
            if first.get("type") == "reasoning" else None}


# --- rate limits ---------------------------------------------------------------------------------

DEFAULT_RATE_LIMIT: Final = {"requests": 10_000_000, "tokens": 10_000_000_000,
                             "window_s": 60.0}
"""Every model's limits until told otherwise: never reached by the demo or the tests, but
reported, so the headers count down as a real provider's do."""


def duration_text(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``1h2m3s``, ``120ms`` (rounded up: a client
    that waits as long as it says finds the window reset)."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 0)}ms"
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rfc3339(at: float) -> str:
    import datetime

    """``at`` as Anthropic's reset time, in whole seconds rounded up."""
    return datetime.datetime.fromtimestamp(math.ceil(at), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RateWindow:
    """One model's rate limit: ``requests`` and ``tokens`` per ``window_s`` seconds, counted
    from the first request of each window (a fixed window: simple, and what the headers say)."""

    requests: int
    tokens: int
    window_s: float
    started: float = 0.0
    used_requests: int = 0
    used_tokens: int = 0

    def _roll(self, now: float) -> None:
        if now >= self.started + self.window_s:
            self.started, self.used_requests, self.used_tokens = now, 0, 0

    def exhausted(self, now: float) -> float | None:
        """Seconds until the window resets when no request is left (else None)."""
        self._roll(now)
        if self.used_requests >= self.requests or self.used_tokens >= self.tokens:
            return max(self.started + self.window_s - now, 0.0)
        return None

    def take(self, now: float, tokens: int) -> None:
        """Count one request of ``tokens`` (input and output) in the current window."""
        self._roll(now)
        self.used_requests += 1
        self.used_tokens += tokens

    def headers(self, api: str, now: float) -> dict[str, str]:
        """The rate-limit headers of a response: Anthropic's on ``messages``, else OpenAI's."""
        self._roll(now)
        left_requests = max(self.requests - self.used_requests, 0)
        left_tokens = max(self.tokens - self.used_tokens, 0)
        reset = self.started + self.window_s
        if api == "messages":
            at = rfc3339(reset)
            return {"anthropic-ratelimit-requests-limit": str(self.requests),
                    "anthropic-ratelimit-requests-remaining": str(left_requests),
                    "anthropic-ratelimit-requests-reset": at,
                    "anthropic-ratelimit-tokens-limit": str(self.tokens),
                    "anthropic-ratelimit-tokens-remaining": str(left_tokens),
                    "anthropic-ratelimit-tokens-reset": at}
        wait = duration_text(max(reset - now, 0.0))
        return {"x-ratelimit-limit-requests": str(self.requests),
                "x-ratelimit-remaining-requests": str(left_requests),
                "x-ratelimit-reset-requests": wait,
                "x-ratelimit-limit-tokens": str(self.tokens),
                "x-ratelimit-remaining-tokens": str(left_tokens),
                "x-ratelimit-reset-tokens": wait}


def refused_headers(api: str, seconds: float, now: float) -> dict[str, str]:
    """What a 429 says of the requests limit: none left until ``seconds`` from ``now``."""
    if api == "messages":
        return {"anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": rfc3339(now + seconds)}
    return {"x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": duration_text(seconds)}
