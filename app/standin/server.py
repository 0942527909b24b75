"""A local stand-in for an upstream provider, so the demo and the tests need no API keys.

Serves, on 127.0.0.1, three APIs, each JSON and SSE (``"stream": true``), under ``/v1/...`` and
without the prefix:

- Anthropic Messages, ``POST /v1/messages``;
- OpenAI chat completions, ``POST /v1/chat/completions``;
- OpenAI Responses, ``POST /v1/responses`` (LiteLLM sends ``/v1/messages`` for ``openai/...``
  deployments there).

Every reply names the upstream model that served it: its text starts ``[MODEL]``.

Reasoning, in each API's own shape (only when the request asks for it):

- messages, ``thinking.type`` enabled or adaptive: the reply starts with a ``thinking`` block whose
  text names the model and what it received (``thinking=adaptive effort=high``, a budget) and
  whose ``signature`` this model made (see Signatures). Streamed as ``thinking_delta``s, then one
  ``signature_delta``, as the real API does. ``redacted=1`` in the human text adds a
  ``redacted_thinking`` block after it.
- chat, ``reasoning_effort`` (not ``none``), ``reasoning: {effort}`` or ``thinking`` on: the message
  carries ``reasoning_content`` and OpenRouter's ``reasoning`` (the same text), streamed as deltas
  before the content. ``thinking_blocks`` in the history are recorded, never refused.
- responses, ``reasoning.effort`` (not ``none``): a ``reasoning`` item first; its ``summary`` holds
  the text only when ``reasoning.summary`` is set, and it carries ``encrypted_content`` (this
  model's, ``gAAAAA...``) only when ``include`` has ``reasoning.encrypted_content``, as OpenAI does.
  Streamed with the real event sequence: ``response.created``, ``response.in_progress``,
  ``response.output_item.added``, ``response.reasoning_summary_part.added``,
  ``response.reasoning_summary_text.delta``/``.done``, ``response.reasoning_summary_part.done``,
  ``response.output_item.done``, ``response.content_part.added``, ``response.output_text.delta``/
  ``.done``, ``response.content_part.done``, ``response.function_call_arguments.delta``/``.done``,
  ``response.completed``.

Tool calls (all three APIs). When the request has tools and its latest human text (a user message
with text and no tool results) contains ``steps=N``, the model answers each request with one call
of the first tool (its required inputs filled with ``"standin-step-K"``, ``K``, ``true``, ``[]`` or
``{}`` by type; a fresh ``toolu_...`` / ``call_...`` id) until N tool-result turns have followed that
human text, then with its final text. On Responses the call is Codex's shell when the request
declares it: ``exec_command`` with ``{"cmd": "echo standin-step-K"}``, else ``shell`` with
``{"command": ["echo", "standin-step-K"]}``, else the first ``function`` tool; the
``function_call`` item has an ``fc_...`` id and a ``call_...`` call id. A tool-result turn is a
user message with ``tool_result`` blocks (messages), a run of ``tool`` messages (chat), a run of
``function_call_output`` items (responses). Stop reasons: ``tool_use`` / ``tool_calls`` / a
``function_call`` item. With thinking on, a tool_use reply starts with its signed thinking block
too (its text says ``step K of N``).
Without ``steps=N`` (or without tools) the answer is text.

Signatures are deterministic: ``rules.sign(model, text)`` (an HMAC of the model and the
thinking text, base64, about 250 characters, starting ``E`` like a real one), so a block verifies
only on the model that made it and only with its text unchanged. ``redacted_data(model, seed)``
and ``encrypted_content(model, seed)`` are self-verifying per model.

Strict mode (``--strict``, ``start_standin(strict=True)`` or ``REASONING_PANEL_STANDIN_STRICT=1``;
lenient, the default, accepts any history) applies the Anthropic API's rules on ``/v1/messages``,
answering 400 ``invalid_request_error`` with the real texts, checked in this order:

1. fields: a ``thinking`` block without ``signature`` ->
   ``messages.I.content.J.thinking.signature: Field required``; ``null`` ->
   ``messages.I.content.J.thinking.signature.str: Input should be a valid string`` (the same for
   ``thinking.thinking`` and ``redacted_thinking.data``);
2. tool continuation (the last message is a user message with ``tool_result`` blocks): each result
   needs its ``tool_use`` in the message before (``unexpected `tool_use_id` found in `tool_result`
   blocks``); with thinking on, that assistant message must start with a thinking or
   redacted_thinking block: ``messages.N.content.0.type: Expected `thinking` or
   `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant`
   message must start with a thinking block ...``;
3. thinking off and that assistant message (or an assistant message last in ``messages``) holds a
   thinking block: ``messages.N.content.J: When thinking is disabled, an `assistant` message in the
   final position cannot contain `thinking`. ...``; other thinking blocks are ignored (stripped);
4. thinking on: every thinking block in the history must verify for THIS model:
   ``messages.I.content.J: Invalid `signature` in `thinking` block`` (another model's, ``""``,
   made up, ``litellm_encrypted_reasoning:...``); a redacted_thinking block's ``data`` likewise:
   ``messages.I.content.J: Invalid `data` in `redacted_thinking` block``.

On ``/v1/responses`` strict mode applies the Responses API's rules, with its texts (type
``invalid_request_error``), checked item by item over the conversation (a stored
``previous_response_id``'s items, then ``input``):

0. ``previous_response_id`` must name a response this model answered with ``store`` on (the
   API's default): else 400, param ``previous_response_id``, code ``previous_response_not_found``,
   ``Previous response with id 'resp_...' not found.``;
1. a ``reasoning`` item's ``encrypted_content`` must be this model's: else 400, code
   ``invalid_encrypted_content``, ``The encrypted content gAAA...XXXX could not be verified.
   Reason: Encrypted content could not be decrypted or parsed.`` (the blob's first and last four
   characters);
2. a reasoning item by id alone (no ``encrypted_content``): 404, param ``input``, ``Item with id
   'rs_...' not found. Items are not persisted when `store` is set to false. ...`` when ``store``
   is false; with ``store`` on, only a reasoning item the stand-in stored is found;
3. a reasoning item with an id must be followed by an output item (an assistant message or a
   ``*_call``): else 400, param ``input``, ``Item 'rs_...' of type 'reasoning' was provided
   without its required following item.``;
4. an output item this model made after a reasoning item (its ``fc_...`` / ``msg_...`` id)
   needs that reasoning item earlier in the input: else 400, param ``input``, ``Item 'fc_...' of
   type 'function_call' was provided without its required 'reasoning' item: 'rs_...'.``
   (another model's items are not checked: it cannot read them);
5. a ``function_call_output`` needs a call with its ``call_id`` earlier in the input: else 400,
   param ``input``, ``No tool call found for function call output with call_id call_....``.

Chat requests are never refused by these rules. Lenient mode ignores an unknown
``previous_response_id``.

Faults, per model, via ``POST /_standin/faults`` (``GET`` lists them, ``DELETE`` clears all):

- ``{"model": M, "kind": K, "count": N, "every": E, "retry_after": S, "delay_ms": MS,
  "status": CODE}``;
  ``kind`` is ``rate_limit`` (429 with a ``retry-after`` header, default 1 s; Anthropic
  ``rate_limit_error``, OpenAI code ``rate_limit_exceeded``), ``overloaded`` (Anthropic 529
  ``overloaded_error``; OpenAI APIs 503 ``The server is overloaded or not ready yet.``),
  ``server`` (500), ``stall`` (answers nothing for ``delay_ms``, default 60 000, then answers
  normally), or ``status`` (the given status, message ``stand-in M fails on purpose``).
  ``count``: only the next N requests to M, then the fault clears itself; without it, it stays.
  ``every``: only on every Nth request to M (now and then, as a busy provider does).
  ``status`` overrides a kind's code; ``delay_ms`` delays any kind. ``model: "*"``: every model
  without a fault of its own. ``"kind": null`` clears M's fault.
- The old form still works: ``{"model": M, "status": 500, "delay_ms": 0}`` (``status: null`` and
  no delay clears it).
- ``{"model": M, "max_input_tokens": L}`` (``null`` clears): a request of more input tokens gets
  the provider's context error, 400: Anthropic ``prompt is too long: N tokens > L maximum``; chat
  code ``context_length_exceeded``, ``This model's maximum context length is L tokens. However,
  your messages resulted in N tokens. Please reduce the length of the messages.``; Responses code
  ``context_length_exceeded``, ``Your input exceeds the context window of this model. ...``.
- A model whose name contains ``fail`` always answers 500.
- ``{"model": M, "rate_limit": {"requests": N, "tokens": T, "window_s": W}}`` (``null``: back
  to the default; any key left out keeps its default: 10,000,000 requests and 10,000,000,000
  tokens per 60 s, which no benchmark reaches): M's rate limit, counted in fixed windows from
  the first request of each. Every answer
  (errors too) reports where the model's limit stands, in each API's headers: on ``messages``
  Anthropic's ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` (reset an RFC 3339
  time), elsewhere OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset a
  duration such as ``59s`` or ``1m0s``). An answered request counts one request and its input
  plus output tokens (known before a stream starts, so streamed answers carry the figures after
  them too). When either is used up, requests get the ``rate_limit`` fault's 429 with a
  ``retry-after`` of the seconds to the window's reset (recorded as fault ``rate_limited``).
  Any 429 (a ``rate_limit`` fault too) says no request is left until its ``retry-after``.

Order: a fault (after its delay), then the rate limit, then the context limit, then the strict
rules. Errors come in each API's shape: Anthropic ``{"type": "error", "error": {"type",
"message"}, "request_id"}``, OpenAI ``{"error": {"message", "type", "param", "code"}}``.

Tokens are counted cheaply and deterministically (``rules.count_input_tokens``): the
characters of the JSON of system/instructions + messages/input + tools, divided by 4 (at least
1): 4,000 characters of text are about 1,000 tokens. Output tokens are the words of the reply.

What it received, for tests: ``GET /_standin/requests`` (``DELETE`` forgets), oldest first, each
``{"seq", "time", "path", "api", "model", "stream", "body", "strict", "reasoning", "history",
"status", "rejected", "error", "fault", "reply"}``: ``reasoning`` is what the request asked for in
words (``null``: none); ``history.thinking`` lists every replayed reasoning block ``{"at", "type",
"signature"}`` with ``signature`` one of ``own``, ``other:MODEL``, ``missing``, ``null``, ``empty``,
``litellm_encrypted``, ``unknown`` (Responses items also give their ``id``; ``encrypted_content``
is their signature); ``history.tool_loop`` (a tool continuation) gives the continued assistant
message (Responses: the run of output items before the trailing ``function_call_output``s), its
``tool_use_ids`` (call ids), which models ``made_by`` them, its ``first_block`` type (Responses:
the first item's, ``reasoning`` when the turn carried its reasoning item) and that block's
``first_block_signature``; ``status`` is the HTTP status (``null`` while pending), ``rejected``
true for any error status, ``error`` ``{"type", "message"}`` (OpenAI APIs add ``param``, ``code``),
``fault`` the fault kind that applied (a ``stall`` then answers 200); ``reply`` the answer's
``content`` types, its ``tool_use_id`` and its thinking ``signature`` (Responses: the reasoning
item's ``encrypted_content``).

Run it with ``reasoning-panel standin [--strict] [--port 8010]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.standin import rules

MAX_RECORDED: Final = 2000
MAX_REMEMBERED: Final = 10000  # tool_use ids kept to say which model made them
MAX_STORED: Final = 500  # Responses kept for ``previous_response_id`` (``store`` not false)
CHUNKS: Final = 4  # deltas per streamed text
STRICT_ENV: Final = "REASONING_PANEL_STANDIN_STRICT"
FAULT_KINDS: Final = ("rate_limit", "overloaded", "server", "stall", "status")
FAULT_KEYS: Final = ("kind", "status", "delay_ms", "count", "retry_after", "every")
STALL_MS: Final = 60_000

ANTHROPIC_RATE_LIMIT: Final = (
    "This request would exceed your organization's rate limit of 50 requests per minute "
    "(org: standin, model: {model}). For details, refer to: https://docs.claude.com/en/api/"
    "rate-limits. You can see the response headers for current usage. Please reduce the prompt "
    "length or the maximum tokens requested, or try again later.")
OPENAI_RATE_LIMIT: Final = (
    "Rate limit reached for {model} in organization org-standin on requests per min (RPM): "
    "Limit 50, Used 50, Requested 1. Please try again in {seconds}s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more.")
OPENAI_CONTEXT: Final = (
    "This model's maximum context length is {limit} tokens. However, your messages resulted in "
    "{tokens} tokens. Please reduce the length of the messages.")
RESPONSES_CONTEXT: Final = (
    "Your input exceeds the context window of this model. Please adjust your input and try again.")


@dataclass
class Failure:
    """An error answer, in API-neutral terms; ``error_response`` shapes it per API."""

    status: int
    kind: str  # the error type (Anthropic) or OpenAI's type
    message: str
    code: str | None = None  # OpenAI's code
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    """What the model answers one request: reasoning text, a tool call or text."""

    model: str
    reasoning: str | None  # the thinking / reasoning text, None when not asked for
    redacted: bool
    tool: tuple[str, dict[str, Any]] | None  # (name, input)
    text: str
    tool_id: str = ""

    @property
    def words(self) -> list[str]:
        return self.text.split(" ") if self.text else []

    @property
    def output_tokens(self) -> int:
        return max(1, len(self.words) + len((self.reasoning or "").split())
                   + (len(json.dumps(self.tool[1])) // 4 if self.tool else 0))


def plan(api: str, model: str, body: dict[str, Any]) -> Answer:
    """Decide the answer (see the tool-call convention in the module docstring)."""
    asked = rules.reasoning_asked(api, body)
    turn = rules.read_turn(api, body)
    call = rules.tool_call(api, body, turn.tool_rounds + 1) \
        if turn.steps > turn.tool_rounds else None
    calling = call is not None
    step = f" Step {turn.tool_rounds + 1} of {turn.steps}." if calling else ""
    reasoning = f"[{model}] Thinking it over ({asked}).{step}" if asked else None
    text = f"[{model}] Hello from the reasoning-panel stand-in provider."
    if turn.steps and not calling:
        text += f" Done after {turn.tool_rounds} tool results."
    prefix = {"messages": "toolu_01", "chat": "call_", "responses": "call_"}[api]
    return Answer(model, reasoning, turn.redact and api == "messages", call,
                  "" if call else text, prefix + uuid.uuid4().hex[:22] if call else "")


class StandIn:
    """State of one stand-in server: what it received and the faults it is told to play."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)
        self.faults: dict[str, dict[str, Any]] = {}
        self.limits: dict[str, int] = {}
        self.rate_limits: dict[str, dict[str, float]] = {}  # model -> its configured limits
        self.windows: dict[str, rules.RateWindow] = {}  # model -> its counted window
        self.models: dict[str, None] = {}  # every model asked for, in order
        self.tool_ids: dict[str, str] = {}  # tool_use id -> the model that made it
        # Responses: output items made (id -> model and its reasoning item), stored reasoning
        # items (id -> model) and stored responses (id -> model, the conversation's items)
        self.minted: dict[str, rules.Minted] = {}
        self.stored_reasoning: dict[str, str] = {}
        self.stored: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self.seq = 0

    def app(self) -> Starlette:
        routes = [
            Route("/", self.health, methods=["GET", "HEAD"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/_standin/requests", self.recorded, methods=["GET", "DELETE"]),
            Route("/_standin/faults", self.set_fault, methods=["GET", "POST", "DELETE"]),
        ]
        for prefix in ("/v1", ""):
            routes += [Route(f"{prefix}/messages", self.messages, methods=["POST"]),
                       Route(f"{prefix}/chat/completions", self.chat, methods=["POST"]),
                       Route(f"{prefix}/responses", self.responses, methods=["POST"])]
        return Starlette(routes=routes)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "reasoning-panel stand-in",
                             "strict": self.strict})

    async def recorded(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.requests.clear()
            return JSONResponse({"cleared": True})
        return JSONResponse(list(self.requests))

    # --- faults -----------------------------------------------------------------------------

    async def set_fault(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            self.limits.clear()
            self.rate_limits.clear()
            self.windows.clear()
        elif request.method == "POST":
            try:
                spec = await request.json()
                if not isinstance(spec, dict):
                    raise ValueError("the body must be a JSON object")
                self._apply_fault(spec)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"faults": self.faults, "limits": self.limits,
                             "rate_limits": self.rate_limits})

    def _apply_fault(self, spec: dict[str, Any]) -> None:
        model = str(spec.get("model", ""))
        if "rate_limit" in spec:
            self._set_rate_limit(model, spec["rate_limit"])
            if not any(key in spec for key in (*FAULT_KEYS, "max_input_tokens")):
                return
        if "max_input_tokens" in spec:
            limit = spec["max_input_tokens"]
            if limit is None:
                self.limits.pop(model, None)
            elif isinstance(limit, int) and limit > 0:
                self.limits[model] = limit
            else:
                raise ValueError("max_input_tokens must be a positive integer or null")
            if not any(key in spec for key in FAULT_KEYS):
                return
        kind = spec.get("kind") or ("status" if spec.get("status") else
                                    "stall" if spec.get("delay_ms") else None)
        if kind is None:
            self.faults.pop(model, None)
            return
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)} (or null to clear)")
        for key in ("count", "status", "delay_ms", "retry_after", "every"):
            value = spec.get(key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{key} must be a non-negative integer or null")
        if kind == "status" and not spec.get("status"):
            raise ValueError("kind 'status' needs a status")
        delay = spec.get("delay_ms")
        self.faults[model] = {"kind": kind, "status": spec.get("status"), "count": spec.get("count"),
                              "retry_after": spec.get("retry_after"),
                              "delay_ms": STALL_MS if kind == "stall" and delay is None else delay,
                              "every": spec.get("every") or None, "seen": 0}

    def _set_rate_limit(self, model: str, spec: Any) -> None:
        self.windows.pop(model, None)  # a new limit starts a fresh window
        if spec is None:
            self.rate_limits.pop(model, None)
            return
        if not isinstance(spec, dict) or set(spec) - {"requests", "tokens", "window_s"}:
            raise ValueError("rate_limit must be {requests, tokens, window_s} or null")
        limits = {**rules.DEFAULT_RATE_LIMIT, **spec}
        for key, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"rate_limit.{key} must be a positive number")
        self.rate_limits[model] = {k: float(v) if k == "window_s" else int(v)
                                   for k, v in limits.items()}

    def _window(self, model: str) -> rules.RateWindow:
        window = self.windows.get(model)
        if window is None:
            if len(self.windows) > 1000:
                self.windows.pop(next(iter(self.windows)))
            limits = self.rate_limits.get(model) or rules.DEFAULT_RATE_LIMIT
            window = self.windows[model] = rules.RateWindow(
                int(limits["requests"]), int(limits["tokens"]), float(limits["window_s"]))
        return window

    def _counted(self, api: str, model: str, tokens: int) -> dict[str, str]:
        """Count an answered request against its model's window; the headers to send."""
        now = time.time()
        window = self._window(model)
        window.take(now, tokens)
        return window.headers(api, now)

    def _take_fault(self, model: str) -> dict[str, Any] | None:
        key = model if model in self.faults else "*" if "*" in self.faults else None
        if key is None:
            return None
        fault = self.faults[key]
        fault["seen"] += 1
        if fault["every"] and fault["seen"] % fault["every"]:
            return None  # plays only on every Nth request
        if fault["count"] is not None:
            fault["count"] -= 1
            if fault["count"] <= 0:
                del self.faults[key]
        return fault

    # --- one request ------------------------------------------------------------------------

    async def _receive(self, request: Request, api: str
                       ) -> tuple[dict[str, Any], dict[str, Any], Failure | None]:
        """Parse and record a request; the failure to answer with, if any."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            record = self._record(request, api, {})
            return {}, record, Failure(400, "invalid_request_error", "body is not a JSON object")
        record = self._record(request, api, body)
        model = record["model"]
        fault = self._take_fault(model)
        if fault:
            record["fault"] = fault["kind"]
            if fault["delay_ms"]:
                await asyncio.sleep(fault["delay_ms"] / 1000)
            if fault["kind"] != "stall":
                return body, record, fault_failure(api, model, fault)
        if "fail" in model:
            record["fault"] = "status"
            return body, record, fault_failure(api, model, {"kind": "status", "status": 500})
        wait = self._window(model).exhausted(time.time())
        if wait is not None:  # its rate limit is used up until the window resets
            record["fault"] = "rate_limited"
            return body, record, fault_failure(api, model, {
                "kind": "rate_limit", "status": None, "retry_after": max(math.ceil(wait), 1)})
        limit = self.limits.get(model)
        tokens = rules.count_input_tokens(body)
        if limit is not None and tokens > limit:
            return body, record, context_failure(api, tokens, limit)
        if self.strict and api == "messages" and (message := rules.anthropic_error(body, model)):
            return body, record, Failure(400, "invalid_request_error", message)
        if api == "responses":
            return self._responses_input(body, record)
        return body, record, None

    def _responses_input(self, body: dict[str, Any], record: dict[str, Any]
                         ) -> tuple[dict[str, Any], dict[str, Any], Failure | None]:
        """The whole conversation of a Responses request (a stored ``previous_response_id``'s
        items, then ``input``) and, in strict mode, the API's refusal of it."""
        model, previous = record["model"], body.get("previous_response_id")
        items = rules.response_items(body)
        refusal: rules.Refusal | None = None
        if previous is not None:
            stored = self.stored.get(previous) if isinstance(previous, str) else None
            if stored is not None and stored[0] == model:
                items = [*stored[1], *items]
            elif self.strict:
                refusal = rules.previous_response_refusal(previous)
        whole = {**body, "input": items}
        if self.strict and refusal is None:
            refusal = rules.responses_error(items, model, body.get("store") is not False,
                                            self.minted, self.stored_reasoning)
        if refusal is None:
            return whole, record, None
        return whole, record, Failure(refusal.status, "invalid_request_error", refusal.message,
                                      code=refusal.code, param=refusal.param)

    def _record(self, request: Request, api: str, body: dict[str, Any]) -> dict[str, Any]:
        model = str(body.get("model", ""))
        self.models[model] = None
        if len(self.models) > 1000:
            self.models.pop(next(iter(self.models)))
        self.seq += 1
        record = {
            "seq": self.seq, "time": time.time(), "path": request.url.path, "api": api,
            "model": model, "stream": bool(body.get("stream")), "body": body,
            "strict": self.strict, "reasoning": rules.reasoning_asked(api, body),
            "history": rules.history_report(api, body, model, self.models, self.tool_ids),
            "status": None, "rejected": False, "error": None, "fault": None, "reply": None,
        }
        self.requests.append(record)
        return record

    def _fail(self, api: str, record: dict[str, Any], failure: Failure) -> Response:
        error: dict[str, Any] = {"type": failure.kind, "message": failure.message}
        if api != "messages":
            error.update(param=failure.param, code=failure.code)
        record.update(status=failure.status, rejected=True, error=error)
        if record["model"]:  # where its rate limit stands, as on every answer
            now = time.time()
            headers = self._window(record["model"]).headers(api, now)
            if failure.status == 429 and failure.headers.get("retry-after", "").isdigit():
                headers.update(rules.refused_headers(api, int(failure.headers["retry-after"]),
                                                     now))
            failure.headers = {**headers, **failure.headers}
        return error_response(api, failure)

    def _answered(self, record: dict[str, Any], answer: Answer, content: list[str],
                  signature: str | None) -> None:
        if answer.tool_id:
            bounded_put(self.tool_ids, answer.tool_id, answer.model, MAX_REMEMBERED)
        record.update(status=200, reply={"content": content, "tool_use_id": answer.tool_id or None,
                                         "signature": signature})

    def _remember(self, model: str, body: dict[str, Any], response: dict[str, Any]) -> None:
        """What a Responses answer made, to check it when it comes back: each output item's
        model and reasoning item; with ``store`` (the API's default), the reasoning items by id
        and the whole conversation for ``previous_response_id``."""
        stored = body.get("store") is not False
        reasoning: str | None = None
        for item in response["output"]:
            if item["type"] == "reasoning":
                reasoning = item["id"]
                if stored:
                    bounded_put(self.stored_reasoning, item["id"], model, MAX_REMEMBERED)
            else:
                bounded_put(self.minted, item["id"], rules.Minted(model, reasoning), MAX_REMEMBERED)
        if stored:
            conversation = [*body["input"], *response["output"]]
            bounded_put(self.stored, response["id"], (model, conversation), MAX_STORED)

    async def messages(self, request: Request) -> Response:
        body, record, failure = await self._receive(request, "messages")
        if failure:
            return self._fail("messages", record, failure)
        answer = plan("messages", record["model"], body)
        blocks = anthropic_blocks(answer)
        self._answered(record, answer, [b["type"] for b in blocks],
                       blocks[0].get("signature") if answer.reasoning else None)
        usage = {"input_tokens": rules.count_input_tokens(body),
                 "output_tokens": answer.output_tokens}
        headers = self._counted("messages", answer.model,
                                usage["input_tokens"] + usage["output_tokens"])
        message = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                   "model": answer.model, "content": blocks,
                   "stop_reason": "tool_use" if answer.tool else "end_turn",
                   "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            return JSONResponse(message, headers=headers)
        return StreamingResponse(as_async(anthropic_events(message)),
                                 media_type="text/event-stream", headers=headers)

    async def chat(self, request: Request) -> Response:
        body, record, failure = await self._receive(request, "chat")
        if failure:
            return self._fail("chat", record, failure)
        answer = plan("chat", record["model"], body)
        self._answered(record, answer, [k for k, on in (("reasoning_content", answer.reasoning),
                                                        ("tool_calls", answer.tool),
                                                        ("content", answer.text)) if on], None)
        prompt = rules.count_input_tokens(body)
        usage = {"prompt_tokens": prompt, "completion_tokens": answer.output_tokens,
                 "total_tokens": prompt + answer.output_tokens,
                 "completion_tokens_details": {
                     "reasoning_tokens": len((answer.reasoning or "").split())}}
        headers = self._counted("chat", answer.model, prompt + answer.output_tokens)
        return chat_response(answer, usage, bool(body.get("stream")), headers)

    async def responses(self, request: Request) -> Response:
        body, record, failure = await self._receive(request, "responses")
        if failure:
            return self._fail("responses", record, failure)
        answer = plan("responses", record["model"], body)
        response = responses_object(answer, body)
        items = response["output"]
        encrypted = next((i.get("encrypted_content") for i in items if i["type"] == "reasoning"),
                         None)
        self._answered(record, answer, [i["type"] for i in items], encrypted)
        self._remember(answer.model, body, response)
        headers = self._counted("responses", answer.model,
                                rules.count_input_tokens(body) + answer.output_tokens)
        if not body.get("stream"):
            return JSONResponse(response, headers=headers)
        return StreamingResponse(as_async(responses_events(response)),
                                 media_type="text/event-stream", headers=headers)


# --- errors -------------------------------------------------------------------------------------

def fault_failure(api: str, model: str, fault: dict[str, Any]) -> Failure:
    kind, status, anthropic = fault["kind"], fault["status"], api == "messages"
    if kind == "rate_limit":
        seconds = fault["retry_after"] if fault["retry_after"] is not None else 1
        headers = {"retry-after": str(seconds)}
        if anthropic:
            return Failure(status or 429, "rate_limit_error",
                           ANTHROPIC_RATE_LIMIT.format(model=model), headers=headers)
        return Failure(status or 429, "requests", OPENAI_RATE_LIMIT.format(
            model=model, seconds=seconds), code="rate_limit_exceeded", headers=headers)
    if kind == "overloaded":
        if anthropic:
            return Failure(status or 529, "overloaded_error", "Overloaded")
        return Failure(status or 503, "server_error", "The server is overloaded or not ready yet.")
    if kind == "server":
        if anthropic:
            return Failure(status or 500, "api_error", "Internal server error")
        return Failure(status or 500, "server_error", "The server had an error while processing "
                       "your request. Sorry about that!")
    return Failure(status or 500, "api_error" if anthropic else "server_error",
                   f"stand-in {model} fails on purpose")


def context_failure(api: str, tokens: int, limit: int) -> Failure:
    if api == "messages":
        return Failure(400, "invalid_request_error",
                       f"prompt is too long: {tokens} tokens > {limit} maximum")
    if api == "chat":
        return Failure(400, "invalid_request_error", OPENAI_CONTEXT.format(limit=limit, tokens=tokens),
                       code="context_length_exceeded", param="messages")
    return Failure(400, "invalid_request_error", RESPONSES_CONTEXT, code="context_length_exceeded",
                   param="input")


def error_response(api: str, failure: Failure) -> Response:
    request_id = f"req_{uuid.uuid4().hex[:24]}"
    if api == "messages":
        return JSONResponse({"type": "error", "error": {"type": failure.kind,
                                                        "message": failure.message},
                             "request_id": request_id},
                            status_code=failure.status,
                            headers={"request-id": request_id, **failure.headers})
    return JSONResponse({"error": {"message": failure.message, "type": failure.kind,
                                   "param": failure.param, "code": failure.code}},
                        status_code=failure.status,
                        headers={"x-request-id": request_id, **failure.headers})


# --- Anthropic shapes ---------------------------------------------------------------------------

def anthropic_blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        blocks.append({"type": "thinking", "thinking": answer.reasoning,
                       "signature": rules.sign(answer.model, answer.reasoning)})
        if answer.redacted:
            blocks.append({"type": "redacted_thinking",
                           "data": rules.redacted_data(answer.model, answer.reasoning)})
    if answer.tool:
        blocks.append({"type": "tool_use", "id": answer.tool_id, "name": answer.tool[0],
                       "input": answer.tool[1]})
    else:
        blocks.append({"type": "text", "text": answer.text})
    return blocks


def anthropic_events(message: dict[str, Any]) -> Iterator[str]:
    """The SSE events of a message, as the real API streams them."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
    yield sse("message_start", {"type": "message_start", "message": start})
    yield sse("ping", {"type": "ping"})
    for index, block in enumerate(message["content"]):
        def delta(payload: dict[str, Any], i: int = index) -> str:
            return sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": payload})
        empty = {"thinking": {"type": "thinking", "thinking": "", "signature": ""},
                 "text": {"type": "text", "text": ""},
                 "tool_use": {**block, "input": {}}}.get(block["type"], block)
        yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": empty})
        if block["type"] == "thinking":
            for piece in split(block["thinking"].split(" ")):
                yield delta({"type": "thinking_delta", "thinking": piece})
            yield delta({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "text":
            for piece in split(block["text"].split(" ")):
                yield delta({"type": "text_delta", "text": piece})
        elif block["type"] == "tool_use":
            yield delta({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield sse("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": message["stop_reason"],
                                          "stop_sequence": None},
                                "usage": {"output_tokens": usage["output_tokens"]}})
    yield sse("message_stop", {"type": "message_stop"})


# --- chat-completions shapes ---------------------------------------------------------------------

def chat_response(answer: Answer, usage: dict[str, Any], stream: bool,
                  headers: dict[str, str] | None = None) -> Response:
    chat_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    call: dict[str, Any] | None = {"id": answer.tool_id, "type": "function",
            "function": {"name": answer.tool[0], "arguments": json.dumps(answer.tool[1])}
            } if answer.tool else None
    finish = "tool_calls" if call else "stop"
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": None if call else answer.text}
        if answer.reasoning is not None:
            message.update(reasoning_content=answer.reasoning, reasoning=answer.reasoning)
        if call:
            message["tool_calls"] = [call]
        return JSONResponse({
            "id": chat_id, "object": "chat.completion", "created": created, "model": answer.model,
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": usage,
        }, headers=headers)

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return "data: " + json.dumps({
            "id": chat_id, "object": "chat.completion.chunk", "created": created,
            "model": answer.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }) + "\n\n"

    def events() -> Iterator[str]:
        deltas: list[dict[str, Any]] = []
        if answer.reasoning is not None:
            deltas += [{"reasoning_content": p, "reasoning": p}
                       for p in split(answer.reasoning.split(" "))]
        if call:
            deltas.append({"content": None, "tool_calls": [
                {"index": 0, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": ""}}]})
            deltas.append({"tool_calls": [
                {"index": 0, "function": {"arguments": call["function"]["arguments"]}}]})
        else:
            deltas += [{"content": p} for p in split(answer.words)]
        for i, delta in enumerate(deltas):
            yield chunk({"role": "assistant", **delta} if i == 0 else delta)
        yield chunk({}, finish, usage=usage)
        yield "data: [DONE]\n\n"

    return StreamingResponse(as_async(events()), media_type="text/event-stream", headers=headers)


# --- Responses shapes ---------------------------------------------------------------------------

def responses_object(answer: Answer, body: dict[str, Any]) -> dict[str, Any]:
    """The completed Responses API object for this answer."""
    asked = body.get("reasoning")
    reasoning: dict[str, Any] = asked if isinstance(asked, dict) else {}
    output: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        item: dict[str, Any] = {"id": f"rs_{uuid.uuid4().hex}", "type": "reasoning", "summary": []}
        if reasoning.get("summary"):
            item["summary"] = [{"type": "summary_text", "text": answer.reasoning}]
        include = body.get("include")
        if isinstance(include, list) and "reasoning.encrypted_content" in include:
            item["encrypted_content"] = rules.encrypted_content(answer.model, answer.reasoning)
        output.append(item)
    if answer.tool:
        output.append({"id": f"fc_{uuid.uuid4().hex}", "type": "function_call",
                       "status": "completed", "arguments": json.dumps(answer.tool[1]),
                       "call_id": answer.tool_id, "name": answer.tool[0]})
    else:
        output.append({"id": f"msg_{uuid.uuid4().hex}", "type": "message", "status": "completed",
                       "role": "assistant", "content": [{"type": "output_text", "text": answer.text,
                                                         "annotations": [], "logprobs": []}]})
    input_tokens = rules.count_input_tokens(body)
    reasoning_tokens = len((answer.reasoning or "").split())
    return {
        "id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
        "status": "completed", "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": answer.model, "output": output, "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True), "temperature": 1.0, "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": 1.0, "truncation": "disabled", "user": None, "metadata": {},
        "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": answer.output_tokens,
                  "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                  "total_tokens": input_tokens + answer.output_tokens},
    }


def responses_events(response: dict[str, Any]) -> Iterator[str]:
    """The SSE events of a response, in the order OpenAI sends them."""
    seq = 0

    def event(kind: str, **data: Any) -> str:
        nonlocal seq
        seq += 1
        return sse(kind, {"type": kind, "sequence_number": seq - 1, **data})

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=pending)
    yield event("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            yield event("response.output_item.added", output_index=index,
                        item={**{k: v for k, v in item.items() if k != "encrypted_content"},
                              "summary": []})
            for s, part in enumerate(item["summary"]):
                yield event("response.reasoning_summary_part.added", **where, summary_index=s,
                            part={"type": "summary_text", "text": ""})
                for piece in split(part["text"].split(" ")):
                    yield event("response.reasoning_summary_text.delta", **where,
                                summary_index=s, delta=piece)
                yield event("response.reasoning_summary_text.done", **where, summary_index=s,
                            text=part["text"])
                yield event("response.reasoning_summary_part.done", **where, summary_index=s,
                            part=part)
        elif item["type"] == "message":
            yield event("response.output_item.added", output_index=index,
                        item={**item, "status": "in_progress", "content": []})
            part = item["content"][0]
            yield event("response.content_part.added", **where, content_index=0,
                        part={**part, "text": ""})
            for piece in split(part["text"].split(" ")):
                yield event("response.output_text.delta", **where, content_index=0, delta=piece,
                            logprobs=[])
            yield event("response.output_text.done", **where, content_index=0, text=part["text"],
                        logprobs=[])
            yield event("response.content_part.done", **where, content_index=0, part=part)
        else:
            yield event("response.output_item.added", output_index=index,
                        item={**item, "status": "in_progress", "arguments": ""})
            yield event("response.function_call_arguments.delta", **where,
                        delta=item["arguments"])
            yield event("response.function_call_arguments.done", **where,
                        arguments=item["arguments"])
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=response)


# --- helpers ------------------------------------------------------------------------------------

def bounded_put(memory: dict[str, Any], key: str, value: Any, limit: int) -> None:
    """Remember ``key`` (newest last), forgetting the oldest beyond ``limit``."""
    memory.pop(key, None)
    memory[key] = value
    while len(memory) > limit:
        memory.pop(next(iter(memory)))

async def as_async(events: Iterator[str]) -> AsyncIterator[str]:
    for item in events:
        yield item


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def split(words: list[str]) -> list[str]:
    """Words grouped into a few streamed deltas that join back into the text."""
    size = max(1, -(-len(words) // CHUNKS))
    groups = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [g if i == 0 else " " + g for i, g in enumerate(groups)]


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--strict", action="store_true",
                        help=f"apply the Anthropic and Responses APIs' rules on history "
                             f"(also {STRICT_ENV}=1)")
    args = parser.parse_args(argv)
    standin = StandIn(strict=args.strict or strict_from_env())
    uvicorn.run(standin.app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
