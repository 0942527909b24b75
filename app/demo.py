"""``reasoning-panel demo``: everything local with no API keys.

A stand-in provider, a real LiteLLM proxy on ``configs/demo.yaml`` with the callback, a traffic
generator sending Claude-Code-shaped requests at a human pace, and the dashboard. Quitting stops
every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from app.local_stack import DEMO_CONFIG, Service, free_port, start_proxy, start_standin
from callbacks.core.headroom import Threshold
from callbacks.core.state import State
from callbacks.launcher import saved_master_key
from callbacks.stores.statefile import StateFile

DEMO_INFO_FILE = "demo.json"
ADAPTIVE = {"type": "adaptive"}
TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}]
PROMPTS = ["Fix the failing test in parser.py", "Why is this query slow?",
           "Rename the config loader and update callers", "Add a --json flag to the CLI",
           "Explain this stack trace", "Write a migration for the new column"]


EFFORTS = ["high", "high", "medium", "medium", "low", "low", "xhigh", None]  # None: thinking off
BUILD_LOG = "\n".join(f"[{i:05d}] building module_{i % 97}.py ... ok ({i % 13} warnings)"
                      for i in range(900))


def demo_state(state: State) -> State:
    """The demo's mapping: the medium tier falls back to ``fast-coder`` when its model is
    rate-limited (the stand-in refuses every fourth call to it), and the low tier's model has a
    small window (a long paste is moved to the medium tier) and a rate limit (``LOW_LIMIT``) of
    which it keeps half in reserve: past that, its requests go to ``fast-coder`` until the
    window resets (headroom, ``⤳`` in the panel)."""
    tiers = dict(state.tiers)
    tiers["low"] = replace(tiers["low"], max_input_tokens=8000, fallbacks=("fast-coder",),
                           min_remaining={"requests": Threshold(50, True)})
    tiers["medium"] = replace(tiers["medium"], fallbacks=("fast-coder",))
    routes = state.route_models if "gpt-5.5*" in state.route_models else \
        (*state.route_models, "gpt-5.5*")  # the demo's Codex sessions
    return replace(state, tiers=tiers, route_models=routes)


FLAKY_FAULT = {"model": "standin-medium", "kind": "rate_limit", "every": 4, "retry_after": 2}
LOW_LIMIT = {"model": "standin-low", "rate_limit": {"requests": 6, "window_s": 20}}


def background_shapes() -> list[tuple[float, str, dict[str, Any]]]:
    """(weight, path, body) of the one-off requests between conversation turns: title requests,
    older models' budgets, OpenAI-format clients, now and then a failure
    (shared/domain/claude-code-requests.md)."""
    def cc(model: str = "claude-opus-4-8", **extra: Any) -> dict[str, Any]:
        return {"model": model, "max_tokens": 32000, "tools": TOOLS, **extra}

    title_format = {"type": "json_schema", "schema": {"type": "object", "properties": {
        "title": {"type": "string"}}}}
    return [
        (3, "/v1/messages", {"model": "claude-opus-4-8", "max_tokens": 512, "tools": [],
                             "thinking": {"type": "disabled"},
                             "output_config": {"effort": "high", "format": title_format}}),
        (2, "/v1/messages", cc("claude-sonnet-4-5-20250929",
                               thinking={"type": "enabled", "budget_tokens": 31999})),
        (1, "/v1/messages", cc("claude-haiku-4-5-20251001",
                               thinking={"type": "enabled", "budget_tokens": 1024})),
        (1, "/v1/messages", cc(thinking=ADAPTIVE)),
        (1, "/v1/chat/completions", {"model": "claude-sonnet-5", "reasoning_effort": "low"}),
        (1, "/v1/chat/completions", {"model": "gpt-5-mini", "reasoning_effort": "medium"}),
        (0.5, "/v1/chat/completions", {"model": "flaky"}),
        # a long build log pasted at low effort: too long for the low tier's model (the demo
        # state gives it an 8,000-token window), so the context guard moves it up a tier
        (0.5, "/v1/messages", cc(thinking=ADAPTIVE, output_config={"effort": "low"},
                                 system="Summarise the build log the user pastes.",
                                 messages=[{"role": "user", "content": BUILD_LOG}])),
    ]


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """An Anthropic message from its stream events (text, thinking + signature, tool_use)."""
    message: dict[str, Any] = {"content": [], "stop_reason": None}
    partial: dict[int, str] = {}
    for event in events:
        kind = event.get("type")
        if kind == "content_block_start":
            message["content"].append(dict(event.get("content_block") or {}))
        elif kind == "content_block_delta" and message["content"]:
            block, delta = message["content"][-1], event.get("delta") or {}
            for field_name, key in (("text", "text"), ("thinking", "thinking"),
                                    ("signature", "signature")):
                if delta.get("type") == f"{field_name}_delta":
                    block[key] = block.get(key, "") + delta.get(key, "")
            if delta.get("type") == "input_json_delta":
                index = len(message["content"]) - 1
                partial[index] = partial.get(index, "") + delta.get("partial_json", "")
        elif kind == "message_delta":
            message["stop_reason"] = (event.get("delta") or {}).get("stop_reason")
    for index, text in partial.items():
        with contextlib.suppress(ValueError):
            message["content"][index]["input"] = json.loads(text or "{}")
    return message


@dataclass
class Conversation:
    """One Claude Code session: a growing history, tool loops of several steps, and an effort
    that changes between human turns (so later turns replay other models' thinking blocks)."""

    rng: random.Random
    session: str = field(default_factory=lambda: str(uuid.uuid4()))
    messages: list[dict[str, Any]] = field(default_factory=list)
    effort: str | None = "high"
    turns: int = 0

    def next_body(self) -> dict[str, Any]:
        """The next request: a new human turn, or the continuation of a tool loop."""
        last = self.messages[-1] if self.messages else None
        if last is None or last["role"] == "assistant":  # the model has answered: a human turn
            self.effort = self.rng.choice(EFFORTS)
            self.turns += 1
            prompt = self.rng.choice(PROMPTS)
            self.messages.append({"role": "user", "content": f"{prompt} steps={self.rng.randint(0, 4)}"})
        body: dict[str, Any] = {"model": "claude-opus-4-8", "max_tokens": 32000, "tools": TOOLS,
                                "messages": self.messages, "stream": self.rng.random() < 0.8,
                                "metadata": {"user_id": json.dumps({"session_id": self.session})}}
        if self.effort is None:
            body["thinking"] = {"type": "disabled"}
        else:
            body["thinking"] = {"type": "adaptive", "display": "summarized"}
            body["output_config"] = {"effort": self.effort}
        return body

    def answered(self, message: dict[str, Any]) -> None:
        content = [block for block in message.get("content") or []
                   if block.get("type") in ("text", "thinking", "redacted_thinking", "tool_use")]
        if not content:  # a failed call: forget the unanswered turn, try a new one later
            while self.messages and self.messages[-1]["role"] == "user" and not isinstance(
                    self.messages[-1]["content"], list):
                self.messages.pop()
            return
        self.messages.append({"role": "assistant", "content": content})
        uses = [b for b in content if b.get("type") == "tool_use"]
        if message.get("stop_reason") == "tool_use" and uses:
            self.messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": b["id"], "content": "(file contents)"}
                for b in uses]})

    @property
    def done(self) -> bool:
        """A session ends after a few human turns (its history stays a readable size)."""
        return self.turns >= 6 and bool(self.messages) and self.messages[-1]["role"] == "assistant"


CODEX_TOOLS = [{"type": "function", "name": "exec_command", "strict": False, "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
CODEX_EFFORTS = ["high", "medium", "medium", "low", "minimal", "xhigh", None]  # None: Codex's default


@dataclass
class CodexConversation:
    """One Codex session over ``/v1/responses``: ``store: false``, every output item replayed
    (encrypted reasoning included), tool loops answered, the effort changing between turns."""

    rng: random.Random
    session: str = field(default_factory=lambda: str(uuid.uuid4()))
    items: list[dict[str, Any]] = field(default_factory=list)
    effort: str | None = "high"
    turns: int = 0
    path: str = "/v1/responses"

    def next_body(self) -> dict[str, Any]:
        if not self.items or self.items[-1].get("type") != "function_call_output":
            self.effort = self.rng.choice(CODEX_EFFORTS)
            self.turns += 1
            text = f"{self.rng.choice(PROMPTS)} steps={self.rng.randint(0, 3)}"
            self.items.append({"type": "message", "role": "user",
                               "content": [{"type": "input_text", "text": text}]})
        body: dict[str, Any] = {"model": "gpt-5.5", "input": self.items, "tools": CODEX_TOOLS,
                                "store": False, "include": ["reasoning.encrypted_content"],
                                "prompt_cache_key": self.session, "stream": False}
        if self.effort is not None:
            body["reasoning"] = {"effort": self.effort, "summary": "auto"}
        return body

    def answered(self, response: dict[str, Any]) -> None:
        output = [{k: v for k, v in item.items() if v is not None}
                  for item in response.get("output") or [] if isinstance(item, dict)]
        if not output:  # a failed call: forget an unanswered human turn, retry a loop later
            if self.items and self.items[-1].get("role") == "user":
                self.items.pop()
            return
        self.items += output
        self.items += [{"type": "function_call_output", "call_id": item["call_id"], "output": "ok"}
                       for item in output if item.get("type") == "function_call"]

    @property
    def done(self) -> bool:
        return self.turns >= 6 and bool(self.items) and \
            self.items[-1].get("type") != "function_call_output"


@dataclass
class Traffic:
    """Sends Claude-Code-shaped traffic to the proxy at a human pace until stopped: a few
    interleaved conversations (and a Codex one), and one-off requests between their turns."""

    url: str
    key: str
    pace_s: tuple[float, float] = (0.4, 1.6)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    seed: int | None = None
    sessions: int = 2

    def _post(self, client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the reply as a message ({} when it failed)."""
        with contextlib.suppress(httpx.HTTPError, ValueError):
            headers = {}
            session = ((body.get("metadata") or {}).get("user_id") or "")
            if session:
                headers["x-claude-code-session-id"] = json.loads(session)["session_id"]
            if body.get("prompt_cache_key"):  # Codex's headers
                headers.update({"session-id": body["prompt_cache_key"], "originator": "codex_exec",
                                "user-agent": "codex_exec/0.171.0 (reasoning-panel demo)"})
            if body.get("stream"):
                with client.stream("POST", path, json=body, headers=headers) as response:
                    lines = [line[5:].strip() for line in response.iter_lines()
                             if line.startswith("data:")]
                    return assemble([json.loads(line) for line in lines if line.startswith("{")]) \
                        if response.status_code == 200 else {}
            response = client.post(path, json=body, headers=headers)
            return response.json() if response.status_code == 200 else {}
        return {}

    def run(self) -> None:
        rng = random.Random(self.seed)
        shapes = background_shapes()
        weights = [w for w, _, _ in shapes]
        def new_talk(i: int) -> Conversation | CodexConversation:
            return CodexConversation(rng) if i == 0 else Conversation(rng)

        talks = [new_talk(i) for i in range(self.sessions + 1)]
        with httpx.Client(base_url=self.url, timeout=60,
                          headers={"x-api-key": self.key,
                                   "authorization": f"Bearer {self.key}"}) as client:
            while not self.stop.is_set():
                if rng.random() < 0.25:
                    _, path, body = rng.choices(shapes, weights)[0]
                    body = {"messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                            **body}
                    self._post(client, path, body)
                else:
                    i = rng.randrange(len(talks))
                    talk = talks[i]
                    path = talk.path if isinstance(talk, CodexConversation) else "/v1/messages"
                    talk.answered(self._post(client, path, talk.next_body()))
                    if talk.done:
                        talks[i] = new_talk(i)
                self.sent += 1
                self.stop.wait(rng.uniform(*self.pace_s))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="demo-traffic", daemon=True)
        thread.start()
        return thread


@dataclass
class DemoStack:
    """The stand-in, the proxy and the traffic generator of a demo."""

    home: Path
    standin: Service
    proxy: Service
    traffic: Traffic

    @property
    def key(self) -> str:
        return saved_master_key(self.home)

    @property
    def services(self) -> list[Service]:
        return [self.proxy, self.standin]


@contextlib.contextmanager
def demo_stack(home: Path, port: int | None = None, traffic: bool = True,
               pace_s: tuple[float, float] = (0.4, 1.6),
               progress: Any = None, strict: bool = True) -> Iterator[DemoStack]:
    """Start everything; stop all of it on the way out, whatever happens."""
    say = progress or (lambda message: None)
    services: list[Service] = []
    generator: Traffic | None = None
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)  # a --home that does not exist yet
        say("starting the stand-in provider ...")
        standin = start_standin(log_path=home / "standin.log", strict=strict)
        services.append(standin)
        say("starting the LiteLLM proxy with the callback (about ten seconds) ...")
        proxy = start_proxy(home, DEMO_CONFIG, port=port, standin_url=standin.url,
                            log_path=home / "proxy.log")
        services.append(proxy)
        key = saved_master_key(home)
        StateFile.in_home(home).update(demo_state)
        httpx.post(f"{standin.url}/_standin/faults", json=FLAKY_FAULT, timeout=10)
        httpx.post(f"{standin.url}/_standin/faults", json=LOW_LIMIT, timeout=10)
        # who to stop, for anyone checking that nothing is left running
        (home / DEMO_INFO_FILE).write_text(json.dumps(
            {"pid": os.getpid(), "standin": standin.proc.pid, "proxy": proxy.proc.pid,
             "proxy_url": proxy.url}) + "\n")
        generator = Traffic(proxy.url, key, pace_s=pace_s)
        if traffic:
            generator.start()
        yield DemoStack(home, standin, proxy, generator)
    finally:
        if generator is not None:
            generator.stop.set()
        for service in reversed(services):
            service.stop()


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def run_demo(home: Path | None, port: int = 4000, strict: bool = True) -> int:
    from app.panel.app import ReasoningPanel

    def progress(message: str) -> None:
        print(f"reasoning-panel demo: {message}", file=sys.stderr, flush=True)

    def stop_starting(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds the stack below: what started is stopped

    starting = {sig: signal.signal(sig, stop_starting) for sig in (signal.SIGTERM, signal.SIGHUP)}
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: [signal.signal(s, h) for s, h in starting.items()])
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="reasoning-panel-demo-")))
        demo = stack.enter_context(demo_stack(home, _port(port), progress=progress,
                                              strict=strict))
        app = ReasoningPanel(home, proxy_url=demo.proxy.url, config=DEMO_CONFIG)
        app.startup_hint = (f"Demo traffic is flowing. Point Claude Code here: "
                            f"ANTHROPIC_BASE_URL={demo.proxy.url} "
                            f"ANTHROPIC_AUTH_TOKEN={demo.key} claude")
        # a closed terminal (SIGHUP) or a kill (SIGTERM) quits like `q`: children are stopped
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: app.exit())
        app.run()
        progress("stopped the proxy, the stand-in and the traffic generator")
    return 0
