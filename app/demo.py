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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.local_stack import DEMO_CONFIG, Service, free_port, start_proxy, start_standin
from callbacks.launcher import saved_master_key

DEMO_INFO_FILE = "demo.json"
ADAPTIVE = {"type": "adaptive"}
TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}]
PROMPTS = ["Fix the failing test in parser.py", "Why is this query slow?",
           "Rename the config loader and update callers", "Add a --json flag to the CLI",
           "Explain this stack trace", "Write a migration for the new column"]


def request_shapes() -> list[tuple[float, str, dict[str, Any]]]:
    """(weight, path, body) of the requests Claude Code and OpenAI clients send
    (shared/domain/claude-code-requests.md)."""
    def cc(model: str = "claude-opus-4-8", **extra: Any) -> dict[str, Any]:
        return {"model": model, "max_tokens": 32000, "tools": TOOLS, **extra}

    title_format = {"type": "json_schema", "schema": {"type": "object", "properties": {
        "title": {"type": "string"}}}}
    return [
        (6, "/v1/messages", cc(thinking=ADAPTIVE, output_config={"effort": "high"})),
        (3, "/v1/messages", cc(thinking=ADAPTIVE, output_config={"effort": "medium"})),
        (3, "/v1/messages", cc(thinking=ADAPTIVE, output_config={"effort": "low"})),
        (1, "/v1/messages", cc(thinking=ADAPTIVE, output_config={"effort": "xhigh"})),
        (1, "/v1/messages", cc(thinking=ADAPTIVE, output_config={"effort": "max"})),
        (1, "/v1/messages", cc(thinking=ADAPTIVE)),
        (1, "/v1/messages", cc("claude-sonnet-5", thinking=ADAPTIVE,
                               output_config={"effort": "high"})),
        (2, "/v1/messages", cc("claude-sonnet-4-5-20250929",
                               thinking={"type": "enabled", "budget_tokens": 31999})),
        (1, "/v1/messages", cc("claude-sonnet-4-5-20250929",
                               thinking={"type": "enabled", "budget_tokens": 8000})),
        (1, "/v1/messages", cc("claude-haiku-4-5-20251001",
                               thinking={"type": "enabled", "budget_tokens": 1024})),
        (1, "/v1/messages", cc(thinking={"type": "disabled"}, output_config={"effort": "high"})),
        (1, "/v1/messages", cc(output_config={"effort": "high"})),
        (2, "/v1/messages", {"model": "claude-opus-4-8", "max_tokens": 512, "tools": [],
                             "thinking": {"type": "disabled"},
                             "output_config": {"effort": "high", "format": title_format}}),
        (1, "/v1/chat/completions", {"model": "claude-sonnet-5", "reasoning_effort": "low"}),
        (1, "/v1/chat/completions", {"model": "gpt-5-mini", "reasoning_effort": "medium"}),
        (0.5, "/v1/chat/completions", {"model": "flaky"}),  # now and then, a failure
    ]


@dataclass
class Traffic:
    """Sends Claude-Code-shaped requests to the proxy at a human pace until stopped."""

    url: str
    key: str
    pace_s: tuple[float, float] = (0.4, 1.6)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    seed: int | None = None

    def run(self) -> None:
        rng = random.Random(self.seed)
        shapes = request_shapes()
        weights = [w for w, _, _ in shapes]
        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"x-api-key": self.key,
                                   "authorization": f"Bearer {self.key}"}) as client:
            while not self.stop.is_set():
                _, path, body = rng.choices(shapes, weights)[0]
                body = dict(body, messages=[{"role": "user", "content": rng.choice(PROMPTS)}])
                if path == "/v1/messages" and rng.random() < 0.8:
                    body["stream"] = True  # Claude Code streams its main requests
                with contextlib.suppress(httpx.HTTPError):
                    if body.get("stream"):
                        with client.stream("POST", path, json=body) as response:
                            for _ in response.iter_bytes():
                                pass
                    else:
                        client.post(path, json=body)
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
        say("starting the stand-in provider ...")
        standin = start_standin(log_path=home / "standin.log", strict=strict)
        services.append(standin)
        say("starting the LiteLLM proxy with the callback (about ten seconds) ...")
        proxy = start_proxy(home, DEMO_CONFIG, port=port, standin_url=standin.url,
                            log_path=home / "proxy.log")
        services.append(proxy)
        key = saved_master_key(home)
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
