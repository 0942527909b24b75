"""``reasoning-panel claude`` with a fake ``claude`` on PATH that records what it was given:
the environment and arguments, the exit code handed back, and nothing left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from app.local_stack import DEMO_CONFIG, cli_command
from callbacks.launcher import read_proxy_info

from .conftest import Proxy, StandIn

pytestmark = pytest.mark.timeout(240)

FAKE_CLAUDE = """#!{python}
import json, os, sys, urllib.request
seen = {{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in
        ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")}}}}
try:  # is the proxy it was given up, and does the key open it?
    request = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/models",
        headers={{"Authorization": "Bearer " + os.environ["ANTHROPIC_AUTH_TOKEN"]}})
    with urllib.request.urlopen(request, timeout=10) as response:
        seen["models_status"] = response.status
except Exception as exc:
    seen["models_status"] = repr(exc)
with open(os.environ["FAKE_CLAUDE_OUT"], "w") as f:
    json.dump(seen, f)
sys.exit(int(os.environ.get("FAKE_CLAUDE_EXIT", "0")))
"""


@pytest.fixture
def fake_claude(tmp_path: Path) -> Path:
    """A folder holding a fake ``claude``; put it first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "claude"
    script.write_text(FAKE_CLAUDE.format(python=sys.executable))
    script.chmod(0o755)
    return folder


def run_claude(home: Path, fake: Path, out: Path, *args: str, exit_code: int = 0,
               env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                        dict[str, Any]]:
    full_env = {**os.environ, **(env or {}), "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
                "FAKE_CLAUDE_OUT": str(out), "FAKE_CLAUDE_EXIT": str(exit_code)}
    done = subprocess.run([*cli_command(), "--home", str(home), "claude", *args], env=full_env,
                          capture_output=True, text=True, timeout=200)
    seen = json.loads(out.read_text()) if out.exists() else {}
    return done, seen


def test_uses_the_running_proxy(proxy: Proxy, fake_claude: Path, tmp_path: Path) -> None:
    done, seen = run_claude(proxy.home, fake_claude, tmp_path / "seen.json", "--", "-p", "hello",
                            exit_code=3, env={"ANTHROPIC_API_KEY": "sk-ant-real-key"})
    assert done.returncode == 3, done.stderr
    assert seen["env"] == {"ANTHROPIC_BASE_URL": proxy.url, "ANTHROPIC_AUTH_TOKEN": proxy.key,
                           "ANTHROPIC_API_KEY": None}
    assert seen["models_status"] == 200
    assert seen["argv"][0] == "--settings" and seen["argv"][2:] == ["-p", "hello"]
    status_line = json.loads(seen["argv"][1])["statusLine"]
    assert status_line["type"] == "command"
    assert status_line["command"].endswith(f"--home {proxy.home} statusline")
    assert "starting a proxy" not in done.stderr
    # the status line command it passes runs as Claude Code would run it
    shown = subprocess.run(status_line["command"], shell=True, text=True, capture_output=True,
                           input=json.dumps({"session_id": "a-new-session"}), timeout=60)
    assert shown.stdout == "reasoning-panel: no requests from this session yet\n"
    assert proxy.service.proc.poll() is None  # the running proxy was not stopped


def test_no_statusline_and_claudes_own_arguments(proxy: Proxy, fake_claude: Path,
                                                 tmp_path: Path) -> None:
    done, seen = run_claude(proxy.home, fake_claude, tmp_path / "seen.json", "--no-statusline",
                            "--", "--model", "sonnet")
    assert done.returncode == 0
    assert seen["argv"] == ["--model", "sonnet"]


def test_starts_a_proxy_and_stops_it(standin: StandIn, fake_claude: Path,
                                     tmp_path: Path) -> None:
    home = tmp_path / "home"
    done, seen = run_claude(home, fake_claude, tmp_path / "seen.json", "--config",
                            str(DEMO_CONFIG), exit_code=7,
                            env={"REASONING_PANEL_STANDIN_URL": standin.url})
    assert done.returncode == 7, done.stderr
    assert "starting a proxy" in done.stderr
    assert seen["models_status"] == 200  # claude ran while the proxy served
    url = seen["env"]["ANTHROPIC_BASE_URL"]
    info = read_proxy_info(home)
    assert info["url"] == url
    with pytest.raises(ProcessLookupError):  # the proxy it started is gone
        os.kill(int(info["pid"]), 0)
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(url + "/health/liveliness", timeout=2)


def test_without_a_proxy_or_a_config_it_says_what_to_do(fake_claude: Path, tmp_path: Path) -> None:
    done, seen = run_claude(tmp_path / "home", fake_claude, tmp_path / "seen.json")
    assert done.returncode == 2 and seen == {}
    assert "give --config FILE" in done.stderr


def test_without_claude_on_path(tmp_path: Path) -> None:
    bare = tmp_path / "empty-bin"  # the CLI script itself is run by its absolute path
    bare.mkdir()
    done = subprocess.run([*cli_command(), "--home", str(tmp_path), "claude"],
                          env={**os.environ, "PATH": str(bare)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 127 and "`claude` is not on PATH" in done.stderr
