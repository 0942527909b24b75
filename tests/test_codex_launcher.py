"""``reasoning-panel codex`` with a fake ``codex`` on PATH that does what Codex does with the
``-c`` overrides it is given: reads its provider's ``base_url`` and the env var named by
``env_key``, and sends a Responses call there. Asserted: the call reached the proxy and was
routed, the model got routed, the exit code came back, and ``~/.codex`` was never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.clients.codex import codex_command, codex_model
from app.local_stack import cli_command
from callbacks.core.state import State

from .conftest import Proxy, StandIn, reset_state

pytestmark = pytest.mark.timeout(240)

FAKE_CODEX = """#!{python}
import json, os, re, sys, urllib.request
args = sys.argv[1:]
overrides = [args[i + 1] for i, a in enumerate(args) if a == "-c"]
seen = {{"argv": args, "overrides": overrides, "home": os.environ.get("CODEX_HOME")}}
provider = next(o.split("=", 1)[1] for o in overrides if o.startswith("model_provider="))
table = next(o.split("=", 1)[1] for o in overrides if o.startswith("model_providers." + provider + "="))
url = re.search(r'base_url="([^"]+)"', table).group(1)
key = os.environ[re.search(r'env_key="([^"]+)"', table).group(1)]
model = next((o.split("=", 1)[1].strip('"') for o in overrides if o.startswith("model=")), None)
if "-m" in args:
    model = args[args.index("-m") + 1]
body = {{"model": model, "input": [{{"role": "user", "content": "hi"}}], "store": False,
         "reasoning": {{"effort": "high"}}, "stream": False}}
request = urllib.request.Request(url + "/responses", data=json.dumps(body).encode(),
    headers={{"Authorization": "Bearer " + key, "Content-Type": "application/json"}})
with urllib.request.urlopen(request, timeout=60) as response:
    seen["group"] = response.headers["x-litellm-model-group"]
    seen["text"] = json.load(response)["output"][-1]["content"][0]["text"]
with open(os.environ["FAKE_CODEX_OUT"], "w") as f:
    json.dump(seen, f)
sys.exit(int(os.environ.get("FAKE_CODEX_EXIT", "0")))
"""


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "codex"
    script.write_text(FAKE_CODEX.format(python=sys.executable))
    script.chmod(0o755)
    return folder


def run_codex(home: Path, fake: Path, out: Path, *args: str, exit_code: int = 0,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                       dict[str, Any]]:
    full_env = {**os.environ, **(env or {}), "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
                "FAKE_CODEX_OUT": str(out), "FAKE_CODEX_EXIT": str(exit_code),
                "HOME": str(out.parent / "user-home")}
    done = subprocess.run([*cli_command(), "--home", str(home), "codex", *args], env=full_env,
                          capture_output=True, text=True, timeout=200)
    seen = json.loads(out.read_text()) if out.exists() else {}
    return done, seen


def test_codex_runs_through_the_proxy_and_its_model_is_routed(
        proxy: Proxy, standin: StandIn, fake_codex: Path, tmp_path: Path) -> None:
    assert "gpt-5.5" not in proxy.state_file.read().route_models
    done, seen = run_codex(proxy.home, fake_codex, tmp_path / "seen.json", "--", "exec", "hi",
                           exit_code=3)
    assert done.returncode == 3, done.stderr
    assert "gpt-5.5 was not routed: added it to route_models" in done.stderr
    assert "gpt-5.5" in proxy.state_file.read().route_models
    # the effort-high call from "Codex" went to the high tier, through the proxy's key
    assert seen["group"] == "high-reasoning" and seen["text"].startswith("[standin-high]")
    assert seen["argv"][0] == "exec" and seen["argv"][-1] == "hi"
    assert not (tmp_path / "user-home" / ".codex").exists()
    # a second run: already routed, nothing said about it
    done, _ = run_codex(proxy.home, fake_codex, tmp_path / "seen.json")
    assert done.returncode == 0 and "was not routed" not in done.stderr
    reset_state(proxy)


def test_a_model_given_to_codex_is_the_one_routed(proxy: Proxy, fake_codex: Path,
                                                  tmp_path: Path) -> None:
    proxy.state_file.write(State())
    done, seen = run_codex(proxy.home, fake_codex, tmp_path / "seen.json", "--no-window", "--",
                           "-m", "gpt-5.5-codex")
    assert done.returncode == 0, done.stderr
    assert "gpt-5.5-codex" in proxy.state_file.read().route_models
    assert not any(o.startswith("model=") for o in seen["overrides"])  # Codex's own -m stays
    assert not any(o.startswith("model_context_window") for o in seen["overrides"])
    assert seen["group"] == "high-reasoning"
    reset_state(proxy)


def test_codex_command_puts_the_overrides_after_a_subcommand() -> None:
    command = codex_command("/bin/codex", "http://127.0.0.1:4000", ["exec", "resume", "--last"],
                            ["-c", "model_context_window=1000"])
    assert command[:2] == ["/bin/codex", "exec"] and command[-2:] == ["resume", "--last"]
    assert "model_provider=reasoning_panel" in command and 'model="gpt-5.5"' in command
    assert codex_model(["-c", 'model="o3"']) == "o3" and codex_model(["--model=o4"]) == "o4"


def test_without_codex_on_path(tmp_path: Path) -> None:
    bare = tmp_path / "empty-bin"
    bare.mkdir()
    done = subprocess.run([*cli_command(), "--home", str(tmp_path), "codex"],
                          env={**os.environ, "PATH": str(bare)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 127 and "`codex` is not on PATH" in done.stderr
