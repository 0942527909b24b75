"""A local stand-in for an upstream provider, so the demo and the tests need no API keys.

Serves, on 127.0.0.1, the Anthropic Messages API (``POST /v1/messages``, JSON and SSE) and the
OpenAI chat-completions API (``POST /v1/chat/completions``, JSON and SSE). Every reply names the
upstream model that served it. It remembers what it received, for tests to inspect:

- ``GET /_standin/requests``: the last requests (path, model, body, stream flag), oldest first;
- ``DELETE /_standin/requests``: forget them;
- ``POST /_standin/faults``: ``{"model": NAME, "status": 500, "delay_ms": 0}`` makes that model
  answer with an error status and/or slowly (``status: null`` clears it).

A model whose name contains ``fail`` always answers 500.

Run it with ``python -m app.standin --port 8010``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MAX_RECORDED: Final = 2000
CHUNKS: Final = 4  # text deltas per streamed reply


class StandIn:
    """State of one stand-in server: what it received and the faults it is told to play."""

    def __init__(self) -> None:
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)
        self.faults: dict[str, dict[str, Any]] = {}

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/", self.health, methods=["GET", "HEAD"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/messages", self.messages, methods=["POST"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/chat/completions", self.chat, methods=["POST"]),
            Route("/_standin/requests", self.recorded, methods=["GET", "DELETE"]),
            Route("/_standin/faults", self.set_fault, methods=["POST"]),
        ])

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "reasoning-panel stand-in"})

    async def recorded(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.requests.clear()
            return JSONResponse({"cleared": True})
        return JSONResponse(list(self.requests))

    async def set_fault(self, request: Request) -> Response:
        fault = await request.json()
        model = str(fault.get("model", ""))
        if fault.get("status") is None and not fault.get("delay_ms"):
            self.faults.pop(model, None)
        else:
            self.faults[model] = {"status": fault.get("status"), "delay_ms": fault.get("delay_ms")}
        return JSONResponse({"faults": self.faults})

    async def _receive(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        """Parse and record a request; an error response when a fault applies."""
        try:
            body = await request.json()
        except ValueError:
            return {}, JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
        model = str(body.get("model", ""))
        self.requests.append({
            "path": request.url.path,
            "model": model,
            "stream": bool(body.get("stream")),
            "body": body,
            "time": time.time(),
        })
        fault = self.faults.get(model, {})
        if fault.get("delay_ms"):
            await asyncio.sleep(fault["delay_ms"] / 1000)
        status = fault.get("status") or (500 if "fail" in model else None)
        if status:
            return body, JSONResponse(
                {"type": "error",
                 "error": {"type": "api_error", "message": f"stand-in {model} fails on purpose"}},
                status_code=int(status),
            )
        return body, None

    async def messages(self, request: Request) -> Response:
        body, error = await self._receive(request)
        if error:
            return error
        model = str(body.get("model"))
        words = reply_words(model, body)
        usage = {"input_tokens": count_input_tokens(body), "output_tokens": len(words)}
        msg_id = f"msg_{uuid.uuid4().hex[:24]}"
        if not body.get("stream"):
            return JSONResponse({
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": " ".join(words)}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": usage,
            })

        async def events() -> AsyncIterator[str]:
            start: dict[str, Any] = {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                     "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
            yield sse("message_start", {"type": "message_start", "message": start})
            yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "text", "text": ""}})
            for piece in split(words):
                yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": piece}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            yield sse("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                        "usage": {"output_tokens": usage["output_tokens"]}})
            yield sse("message_stop", {"type": "message_stop"})

        return StreamingResponse(events(), media_type="text/event-stream")

    async def chat(self, request: Request) -> Response:
        body, error = await self._receive(request)
        if error:
            return error
        model = str(body.get("model"))
        words = reply_words(model, body)
        prompt = count_input_tokens(body)
        usage = {"prompt_tokens": prompt, "completion_tokens": len(words),
                 "total_tokens": prompt + len(words)}
        chat_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not body.get("stream"):
            return JSONResponse({
                "id": chat_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(words)}}],
                "usage": usage,
            })

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
            return "data: " + json.dumps({
                "id": chat_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }) + "\n\n"

        async def events() -> AsyncIterator[str]:
            for i, piece in enumerate(split(words)):
                yield chunk({"role": "assistant", "content": piece} if i == 0 else
                            {"content": piece}, None)
            yield chunk({}, "stop", usage=usage)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def reply_words(model: str, body: dict[str, Any]) -> list[str]:
    """The reply text, as words: it names the model that served it."""
    return f"[{model}] Hello from the reasoning-panel stand-in provider.".split(" ")


def split(words: list[str]) -> list[str]:
    """Words grouped into a few streamed deltas that join back into the reply text."""
    size = max(1, -(-len(words) // CHUNKS))
    groups = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [g if i == 0 else " " + g for i, g in enumerate(groups)]


def count_input_tokens(body: dict[str, Any]) -> int:
    """A deterministic stand-in for tokenisation: about four characters a token."""
    text = json.dumps([body.get("system"), body.get("messages")], default=str)
    return max(1, len(text) // 4)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    args = parser.parse_args(argv)
    uvicorn.run(StandIn().app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
