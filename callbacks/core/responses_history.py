"""A Responses API ``input`` made fit for the model that gets the call (pure).

Codex and every client of ``POST /v1/responses`` replay the whole conversation in ``input``: the
model's output items as they came (a ``reasoning`` item with its ``encrypted_content``, then a
``message`` or a ``function_call``), then the client's ``function_call_output`` items. The API
refuses another model's encrypted reasoning (``invalid_encrypted_content``), a reasoning item given
by id alone when ``store`` is false, a reasoning item without the output item that followed it, and
its own ``function_call`` without the reasoning item before it (shared/domain/responses-clients.md).

:func:`fit_input` keeps the reasoning items the target made (the conversation memory knows each
``encrypted_content``'s producer, as it knows each thinking signature), drops foreign ones whole and
clears the ids of the output items that followed a dropped one (so no id points at reasoning that is
no longer there). An input that needs no change is left as it is (the same list object: the
request is forwarded byte for byte). :func:`tool_loop` finds the call ids a continuation answers,
so the callback can hold it on the model that made them.

Items the memory has never seen were made outside this proxy: kept for a target that speaks the
Responses API natively (most likely its own: a conversation begun against the same model), dropped
for a target LiteLLM translates to (it could not verify them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from callbacks.core.history import ENCRYPTED_PREFIX, Fit, Made, Target


def is_responses(body: Mapping[str, Any]) -> bool:
    """A Responses API body: an ``input`` and no ``messages``."""
    return isinstance(body.get("input"), list | str) and "messages" not in body


def _kind(item: Mapping[str, Any]) -> str:
    return str(item.get("type") or "message")


def is_output_item(item: Any) -> bool:
    """An item a model produced (what follows a reasoning item): an assistant message or a tool
    call (``function_call``, ``custom_tool_call``, ``local_shell_call``, ...)."""
    if not isinstance(item, dict):
        return False
    kind = _kind(item)
    return kind.endswith("_call") or (kind == "message" and item.get("role") == "assistant")


def translated_signatures(content: str) -> list[str]:
    """The thinking signatures inside a reasoning item LiteLLM made from an Anthropic (or other
    chat) answer: its ``encrypted_content`` is then the JSON list of those thinking blocks."""
    if not content.startswith("[{"):
        return []
    try:
        blocks = json.loads(content)
    except ValueError:
        return []
    return [sig for b in blocks if isinstance(b, dict)
            for sig in (b.get("signature"), b.get("data")) if isinstance(sig, str) and sig] \
        if isinstance(blocks, list) else []


def reasoning_key(item: Mapping[str, Any]) -> str | None:
    """The memory's key of a reasoning item: its encrypted content (as produced_blocks stores
    it), or for one LiteLLM translated from thinking blocks, the first block's signature."""
    content = item.get("encrypted_content")
    if not isinstance(content, str) or not content:
        return None
    inner = translated_signatures(content)
    return inner[0] if inner else ENCRYPTED_PREFIX + content


Keys = dict[int, str | None]
"""The reasoning items' memory keys by ``id(item)``, for one request: a key is built from an
encrypted content of 600 bytes or more (about 0.5 us to build and hash), so :func:`fit_input`
reuses the ones :func:`reasoning_refs` built."""


def reasoning_refs(body: Mapping[str, Any], known: Keys | None = None
                   ) -> tuple[list[str], list[str]]:
    """What the memory is asked about the replayed reasoning items: the keys of those with
    encrypted content, and the ids of those given by id alone. ``known`` receives each reasoning
    item's key."""
    items = body.get("input")
    keys: list[str] = []
    ids: list[str] = []
    for item in items if isinstance(items, list) else ():
        if type(item) is dict and item.get("type") == "reasoning":
            key = reasoning_key(item)
            if known is not None:
                known[id(item)] = key
            if key is not None:
                keys.append(key)
            elif isinstance(item.get("id"), str):
                ids.append(item["id"])
    return keys, ids


def newest_reasoning(body: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The memory's key of the input's last reasoning item (or its id, given by id alone), as
    :func:`reasoning_refs` gives them: what the call before this one made."""
    items = body.get("input")
    for item in reversed(items) if isinstance(items, list) else ():
        if type(item) is dict and item.get("type") == "reasoning":
            key = reasoning_key(item)
            if key is not None:
                return [key], []
            return ([], [item["id"]]) if isinstance(item.get("id"), str) else ([], [])
    return [], []


def tool_loop(body: Mapping[str, Any]) -> list[str]:
    """The call ids a continuation answers (its trailing ``*_output`` items); [] otherwise."""
    items = body.get("input")
    if not isinstance(items, list):
        return []
    ids: list[str] = []
    for item in reversed(items):
        if not (isinstance(item, dict) and _kind(item).endswith("_output")):
            break
        if isinstance(item.get("call_id"), str):
            ids.append(item["call_id"])
    ids.reverse()
    return ids


def _verdict(item: Mapping[str, Any], target: Target, producers: Mapping[str, Made],
             strip_all: bool, store: bool, known: Keys | None) -> str | None:
    """Why a reasoning item cannot go to ``target``; None to keep it ("unknown" keeps, counted)."""
    if strip_all:
        return "reasoning off"
    key = known[id(item)] if known is not None and id(item) in known else reasoning_key(item)
    if key is None:
        if isinstance(item.get("id"), str) and item["id"]:
            if not store:
                return "not persisted"  # by id alone with store false: refused by the API
            producer = producers.get(item["id"])
            if producer is not None:
                return None if target.made(producer) else "other model"
        return "unknown" if target.responses else "unverifiable"
    producer = producers.get(key)
    if producer is not None:
        return None if target.made(producer) else "other model"
    return "unknown" if target.responses else "unverifiable"


def fit_input(body: Mapping[str, Any], target: Target, producers: Mapping[str, Made],
              strip_all: bool = False, known: Keys | None = None) -> Fit:
    """Keep the reasoning items ``target`` made; drop the others whole (``Fit.messages``: the new
    ``input``, None when nothing changed).

    ``producers`` maps memory keys (encrypted contents, reasoning item ids) to what made them.
    ``strip_all`` drops every reasoning item (none tier, or a continuation that cannot keep its
    reasoning). A kept reasoning item always keeps its following output item. ``known``: the
    keys :func:`reasoning_refs` found in this very body.
    """
    fit = Fit()
    items = body.get("input")
    if not isinstance(items, list):
        return fit
    store = body.get("store") is not False
    out: list[Any] = []
    changed = orphaned = False
    for i, item in enumerate(items):
        if type(item) is not dict:  # parsed JSON: an exact type check is the cheap one
            out.append(item)
            orphaned = False
            continue
        if item.get("type") == "reasoning":
            why = _verdict(item, target, producers, strip_all, store, known)
            if why in (None, "unknown") and item.get("id") and not is_output_item(
                    items[i + 1] if i + 1 < len(items) else None):
                why = "no following item"
            if why is None or why == "unknown":
                out.append(item)
                fit.kept += 1
                fit.kept_unknown += why == "unknown"
                orphaned = False
            else:
                fit.dropped[why] += 1
                changed = orphaned = True
            continue
        if orphaned:
            if not is_output_item(item):
                orphaned = False
            elif "id" in item:  # its reasoning is gone: no id may point at it
                item = {k: v for k, v in item.items() if k != "id"}
        out.append(item)
    if changed:
        fit.messages = out
    return fit


def last_turn(items: list[Any]) -> list[Any]:
    """The model's last turn in ``input``: the run of reasoning and output items that ends with
    the last output item (LiteLLM makes it the final assistant message of a translated call)."""
    end = next((i + 1 for i in range(len(items) - 1, -1, -1) if is_output_item(items[i])), 0)
    start = end
    while start and (is_output_item(items[start - 1]) or (
            isinstance(items[start - 1], dict) and items[start - 1].get("type") == "reasoning")):
        start -= 1
    return items[start:end]


def calls_without_signed_reasoning(items: list[Any]) -> bool:
    """Whether the model's last turn made tool calls but carries no reasoning item LiteLLM can
    replay as signed thinking (its ``encrypted_content`` holds the thinking blocks; a streamed
    answer's items come without it). Anthropic refuses such a history with thinking on, whatever
    follows it (tool results, or a user message such as Codex's compaction prompt)."""
    turn = last_turn(items)
    if not any(isinstance(item, dict) and _kind(item).endswith("_call") for item in turn):
        return False
    return not any(isinstance(item, dict) and item.get("type") == "reasoning"
                   and isinstance(item.get("encrypted_content"), str)
                   and translated_signatures(item["encrypted_content"]) for item in turn)
