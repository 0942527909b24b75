"""The real opencode CLI (npm ``opencode-ai``), a chat-completions agent, through the real proxy
and the stand-in: one session whose ``--variant`` (its ``reasoning_effort``) changes between
turns, with tool loops, and a remap made in the middle of a loop by the loop's own shell command.
Every turn goes to its tier's model, the loop stays on the model that made its tool calls, and
the provider refuses nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from app.local_stack import cli_command

from .conftest import Proxy, StandIn
from .test_codex_cli import _records, hook
from .test_responses_proxy import codex_state

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(shutil.which("opencode") is None,
                                 reason="opencode is not installed (npm install -g opencode-ai)")]


def test_opencode_variants_route_and_a_loop_is_held(proxy2: Proxy, standin: StandIn,
                                                    tmp_path: Path) -> None:
    since = time.time()  # the shared proxy's log holds earlier tests' records too
    proxy2.state_file.write(codex_state())
    standin.clear()
    work = tmp_path / "work"
    work.mkdir()
    (work / "opencode.json").write_text(json.dumps({"provider": {"panel": {
        "npm": "@ai-sdk/openai-compatible", "name": "reasoning-panel",
        "options": {"baseURL": proxy2.url + "/v1", "apiKey": proxy2.key},
        "models": {"gpt-5.5": {"name": "gpt-5.5", "reasoning": True}}}}}))
    env = {**os.environ, "PWD": str(work), "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}

    def opencode(prompt: str, variant: str, more: bool = True) -> None:
        args = ["opencode", "run", "-m", "panel/gpt-5.5", "--variant", variant]
        done = subprocess.run([*args, *(["--continue"] if more else []), prompt], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (prompt, done.stdout[-2000:], done.stderr[-3000:])
        assert "Done after" in done.stdout, done.stdout[-2000:]

    opencode("read the parser steps=2", "high", more=False)
    opencode(f"now the lexer steps=3 {hook(work, 'remap.sh', proxy2.home, 'set', 'low', 'openai-coder')}",
             "low")
    opencode("and the tests steps=1", "low")
    # the high tier on an Anthropic model: opencode replays reasoning text but no signed thinking,
    # so a loop there goes on with thinking off (Anthropic's tool-loop rule), and says so
    subprocess.run([*cli_command(), "--home", str(proxy2.home), "set", "high", "high-reasoning"],
                   check=True, capture_output=True)
    opencode("now on claude steps=2", "high")

    everything = standin.requests()
    assert [(r["model"], r.get("error")) for r in everything if r["rejected"]] == []
    assert [r["model"] for r in everything if r["api"] == "messages" and r["body"].get("tools")] \
        == ["standin-high"] * 3
    received: list[dict[str, Any]] = [r for r in everything
                                      if r["api"] == "chat" and r["body"].get("tools")]
    assert [r["model"] for r in received] == ["standin-openai-deep"] * 3 + \
        ["standin-openai-fast"] * 4 + ["standin-openai-coder"] * 2
    events = [r for r in _records(proxy2.home, since) if r.get("endpoint") == "/v1/chat/completions"
              and r.get("target") != "high-reasoning"]
    on_claude = [r for r in _records(proxy2.home, since) if r.get("target") == "high-reasoning"
                 and r.get("tool_loop")]
    assert len(on_claude) == 2 and all(r.get("reasoning_lost") for r in on_claude)
    held = [(r["held"]["target"], r["held"]["instead_of"]) for r in events if r.get("reason") == "held"]
    assert held == [("openai-fast", "openai-coder")] * 3
    assert {r["signal"] for r in events} == {"reasoning_effort"}
