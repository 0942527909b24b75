"""The real Codex CLI (npm ``@openai/codex``) through ``reasoning-panel codex``, the real proxy
with two workers and the strict stand-in: one conversation (``codex exec``, then ``exec resume
--last``) whose effort changes between turns, with tool loops of several steps and a remap and a
pin made in the middle of a loop (by the loop's own tool command). What the user sees: every
turn ends well on its tier's model, the provider refused nothing, and every continuation that
stayed on its model carried its own reasoning item."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from app.local_stack import cli_command

from .conftest import Proxy, StandIn
from .test_responses_proxy import codex_state

pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(shutil.which("codex") is None,
                                 reason="the Codex CLI is not installed (npm install -g @openai/codex)")]


def hook(folder: Path, name: str, home: Path, *change: str) -> str:
    """A tool command for the stand-in's ``run=``: on step 1 it changes the state with the CLI."""
    script = folder / name
    command = " ".join([*cli_command(), "--home", str(home), *change])
    script.write_text(f'#!/bin/sh\n[ "$1" = standin-step-1 ] && {command} >/dev/null\necho "$1"\n')
    script.chmod(0o755)
    return f"run=./{name}"


def test_codex_survives_effort_changes_remaps_and_pins(proxy2: Proxy, standin: StandIn,
                                                       tmp_path: Path) -> None:
    since = time.time()  # the shared proxy's log holds earlier tests' records too
    proxy2.state_file.write(codex_state())
    standin.clear()
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "CODEX_HOME": str(tmp_path / "codex-home"), "PWD": str(work)}
    (tmp_path / "codex-home").mkdir()

    def codex(prompt: str, effort: str | None, resume: bool = True) -> None:
        args = ["exec", "--skip-git-repo-check", "--sandbox", "danger-full-access"]
        args += ["-c", f"model_reasoning_effort={effort}"] if effort else []
        args += ["resume", "--last"] if resume else []
        done = subprocess.run([*cli_command(), "--home", str(proxy2.home), "codex", "--", *args,
                               prompt], cwd=work, env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, (prompt, done.stdout[-2000:], done.stderr[-3000:])

    expect: list[str] = []
    codex("read the parser steps=2", "high", resume=False)
    expect += ["standin-openai-deep"] * 3
    codex(f"now the lexer steps=3 {hook(work, 'remap.sh', proxy2.home, 'set', 'low', 'openai-coder')}",
          "low")
    expect += ["standin-openai-fast"] * 4  # the remap waits for the loop's end
    codex(f"and the tests steps=2 {hook(work, 'pin.sh', proxy2.home, 'pin', 'high')}", "low")
    expect += ["standin-openai-coder"] * 3  # the new mapping; the pin waits for the loop's end
    subprocess.run([*cli_command(), "--home", str(proxy2.home), "pin", "off"], check=True,
                   capture_output=True)
    codex("explain it steps=1", None)  # no effort set: the models' default, medium
    expect += ["standin-openai-reasoner"] * 2
    codex("rename a variable steps=1", "minimal")
    expect += ["standin-openai-coder"] * 2
    codex("last check steps=2", "high")
    expect += ["standin-openai-deep"] * 3

    # the high tier on an Anthropic model: LiteLLM translates Codex's calls (streamed, their
    # reasoning items carry no signed thinking back): the loop goes on, the loss is recorded
    subprocess.run([*cli_command(), "--home", str(proxy2.home), "set", "high", "high-reasoning"],
                   check=True, capture_output=True)
    codex("now on claude steps=2", "high")

    everything = standin.requests()
    assert [(r["model"], r.get("error")) for r in everything if r["rejected"]] == []
    assert [r["model"] for r in everything if r["api"] == "messages"] == ["standin-high"] * 3
    received: list[dict[str, Any]] = [r for r in everything if r["api"] == "responses"]
    assert [r["model"] for r in received] == expect
    for r in received:
        history = r.get("history") or {}
        assert all(item["signature"] == "own" for item in history.get("thinking", [])), r
        loop = history.get("tool_loop")
        if loop and (r["body"].get("reasoning") or {}).get("effort"):
            assert (loop["first_block"], loop["first_block_signature"]) == ("reasoning", "own"), r
    # the records: which requests were held, what history was dropped, who sent them
    events = [r for r in _records(proxy2.home, since) if r.get("endpoint") == "/v1/responses"]
    held = [(r["held"]["target"], r["held"]["instead_of"]) for r in events if r.get("reason") == "held"]
    assert held == [("openai-fast", "openai-coder")] * 3 + [("openai-coder", "openai-deep")] * 2
    assert {r["client"].split("/")[0] for r in events} == {"codex_exec"}
    assert len({r["session"] for r in events}) == 1 and events[0]["session"]
    on_claude = events[-3:]
    assert [r["target"] for r in on_claude] == ["high-reasoning"] * 3
    assert all(r.get("reasoning_lost") or (r.get("history") or {}).get("kept") for r in on_claude[1:])
    events = events[:-3]
    last = events[-3]["history"]
    assert last["kept"] > 0 and "other model" in last.get("why", {})


def _records(home: Path, since: float) -> list[dict[str, Any]]:
    """The ``routed`` records made since ``since`` (Unix seconds)."""
    from callbacks.stores.eventlog import EVENTS_NAME

    from .test_eventlog import all_records

    return [r for r in all_records(home / EVENTS_NAME)
            if r.get("type") == "routed" and r.get("time", 0) >= since]
