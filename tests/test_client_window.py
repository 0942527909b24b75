"""Window sync: ``reasoning-panel claude`` tells Claude Code the smallest input window a session
can reach (each tier's model and its fallbacks, ``long_context``), with a fake ``claude`` on
PATH that records its environment and arguments; and the pure computation behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from app.clients.window import (
    CLIENT_WINDOW_ENV,
    WINDOWS_FILE,
    client_window,
    codex_window_args,
    group_windows,
    reachable_models,
)
from app.local_stack import cli_command
from callbacks.core.state import TIERS, State, Tier, TierTarget

from .conftest import Proxy, reset_state

pytestmark = pytest.mark.timeout(240)

WINDOW_VARS = ("CLAUDE_CODE_AUTO_COMPACT_WINDOW", "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
               CLIENT_WINDOW_ENV)
FAKE_CLAUDE = """#!{python}
import json, os, sys
with open(os.environ["FAKE_CLAUDE_OUT"], "w") as f:
    json.dump({{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in {names!r}}}}}, f)
"""


@pytest.fixture
def fake_claude(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "claude"
    script.write_text(FAKE_CLAUDE.format(python=sys.executable, names=WINDOW_VARS))
    script.chmod(0o755)
    return folder


@pytest.fixture
def home(proxy: Proxy) -> Iterator[Proxy]:
    yield proxy
    reset_state(proxy)


def launch(proxy: Proxy, fake: Path, out: Path, *args: str
           ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
           "FAKE_CLAUDE_OUT": str(out)}
    for name in WINDOW_VARS:  # the test's own environment must not leak a window in
        env.pop(name, None)
    done = subprocess.run([*cli_command(), "--home", str(proxy.home), "claude", *args],
                          env=env, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    return done, json.loads(out.read_text())


def tiers(**targets: TierTarget) -> dict[Tier, TierTarget]:
    base = {t: TierTarget(f"{t}-reasoning") for t in TIERS}
    return {**base, **cast(dict[Tier, TierTarget], targets)}


# demo.yaml: fast-coder 32768 and long-context 1,000,000 in model_info; the stand-in's tier
# models have no window LiteLLM knows.
MAPPINGS = [
    pytest.param(State(tiers=tiers(low=TierTarget("low-reasoning", max_input_tokens=131_072),
                                   high=TierTarget("high-reasoning", max_input_tokens=200_000))),
                 131_072, "low-reasoning", id="tier limits"),
    pytest.param(State(tiers=tiers(medium=TierTarget("medium-reasoning",
                                                     fallbacks=("fast-coder",),
                                                     max_input_tokens=131_072))),
                 32_768, "fast-coder", id="a fallback's model info"),
    pytest.param(State(tiers=tiers(high=TierTarget("high-reasoning",
                                                   max_input_tokens=200_000)),
                       long_context="long-context"),
                 200_000, "high-reasoning", id="long_context larger"),
    pytest.param(State(tiers=tiers(high=TierTarget("high-reasoning",
                                                   max_input_tokens=200_000)),
                       long_context="fast-coder"),
                 32_768, "fast-coder", id="long_context smaller"),
]


@pytest.mark.parametrize(("state", "window", "smallest"), MAPPINGS)
def test_the_window_is_the_smallest_reachable(home: Proxy, fake_claude: Path, tmp_path: Path,
                                              state: State, window: int, smallest: str) -> None:
    home.state_file.write(state)
    done, seen = launch(home, fake_claude, tmp_path / "seen.json", "--", "-p", "hi")
    compact = int(window * 0.9) // 1000 * 1000
    assert seen["env"] == {"CLAUDE_CODE_AUTO_COMPACT_WINDOW": str(compact),
                           "CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(window),
                           CLIENT_WINDOW_ENV: str(window)}
    assert seen["argv"][-2:] == ["-p", "hi"]  # Claude Code's own arguments untouched
    assert f"the smallest a session can reach ({smallest})" in done.stderr
    assert f"CLAUDE_CODE_AUTO_COMPACT_WINDOW={compact}" in done.stderr
    # the tier models the stand-in serves have no window anywhere: skipped, and said so
    assert "unknown window, skipped: none-reasoning" in done.stderr
    saved = json.loads((home.home / WINDOWS_FILE).read_text())
    assert saved["fast-coder"] == 32_768 and saved["long-context"] == 1_000_000


def test_unknown_windows_set_nothing(home: Proxy, fake_claude: Path, tmp_path: Path) -> None:
    done, seen = launch(home, fake_claude, tmp_path / "seen.json")
    assert seen["env"] == dict.fromkeys(WINDOW_VARS)
    assert "no reachable model has a known input window" in done.stderr


def test_no_window_sets_nothing(home: Proxy, fake_claude: Path, tmp_path: Path) -> None:
    home.state_file.write(cast(State, MAPPINGS[1].values[0]))
    done, seen = launch(home, fake_claude, tmp_path / "seen.json", "--no-window")
    assert seen["env"] == dict.fromkeys(WINDOW_VARS)
    assert "window" not in done.stderr


# --- the computation alone -------------------------------------------------------------------


def test_reachable_models_each_once_in_tier_order() -> None:
    state = State(tiers=tiers(low=TierTarget("a", fallbacks=("b", "c")),
                              high=TierTarget("b", fallbacks=("a",))), long_context="d")
    assert reachable_models(state) == ["none-reasoning", "a", "b", "c", "medium-reasoning", "d"]


def test_a_tier_limit_wins_over_model_info_for_its_own_model() -> None:
    state = State(tiers=tiers(low=TierTarget("a", max_input_tokens=65_536)))
    found = client_window(state, {"a": 131_072, "medium-reasoning": 100_000}.get)
    assert (found.window, found.model) == (65_536, "a")
    assert found.unknown == ("none-reasoning", "high-reasoning")
    assert codex_window_args(found) == ["-c", "model_context_window=65536",
                                        "-c", "model_auto_compact_token_limit=58000"]


def test_group_windows_takes_a_groups_smallest_deployment() -> None:
    info = {"data": [
        {"model_name": "g", "litellm_params": {"model": "x/a"}, "model_info": {"max_input_tokens": 8000}},
        {"model_name": "g", "litellm_params": {"model": "x/b"}, "model_info": {"max_input_tokens": 4000}},
        {"model_name": "h", "litellm_params": {"model": "x/c"}, "model_info": {"max_input_tokens": None}},
    ]}
    assert group_windows(info) == {"g": 4000}


def statusline(home: Path, given: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != CLIENT_WINDOW_ENV}
    if given is not None:
        env[CLIENT_WINDOW_ENV] = given
    done = subprocess.run([*cli_command(), "--home", str(home), "statusline"], env=env,
                          input=json.dumps({"session_id": "s1"}), capture_output=True,
                          text=True, timeout=60)
    return done.stdout


def test_the_status_line_warns_when_the_window_shrank_since_launch(tmp_path: Path) -> None:
    from callbacks.stores.statefile import StateFile

    home = tmp_path / "home"
    StateFile.in_home(home).write(State(tiers=tiers(
        medium=TierTarget("medium-reasoning", fallbacks=("fast-coder",)))))
    (home / WINDOWS_FILE).write_text(json.dumps({"fast-coder": 32_768}))
    plain = "reasoning-panel: no requests from this session yet\n"
    assert statusline(home, None) == plain  # not started by the launcher: no check
    assert statusline(home, "32768") == plain  # what it was given: nothing to say
    assert statusline(home, "200000") == (
        "⚠ window now 32,768 (fast-coder) < 200,000 given at launch: restart via "
        "reasoning-panel claude · " + plain)
    assert statusline(home, "200000").startswith("⚠ window now 32,768")  # from its cache
    StateFile.in_home(home).write(State(long_context="fast-coder", tiers=tiers(
        low=TierTarget("low-reasoning", max_input_tokens=32_000))))  # an edit: checked anew
    assert statusline(home, "200000").startswith("⚠ window now 32,000 (low-reasoning)")
    StateFile.in_home(home).write(State())
    assert statusline(home, "200000") == plain


# --- the same for Codex: -c model_context_window=N -c model_auto_compact_token_limit=M ----------

FAKE_CODEX = """#!{python}
import json, os, sys
with open(os.environ["FAKE_CLAUDE_OUT"], "w") as f:
    json.dump({{"argv": sys.argv[1:], "window": os.environ.get({name!r})}}, f)
"""


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    folder = tmp_path / "codex-bin"
    folder.mkdir()
    script = folder / "codex"
    script.write_text(FAKE_CODEX.format(python=sys.executable, name=CLIENT_WINDOW_ENV))
    script.chmod(0o755)
    return folder


def codex_launch(proxy: Proxy, fake: Path, out: Path, *args: str
                 ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != CLIENT_WINDOW_ENV}
    env.update(PATH=f"{fake}{os.pathsep}{os.environ['PATH']}", FAKE_CLAUDE_OUT=str(out),
               HOME=str(out.parent / "user-home"))
    done = subprocess.run([*cli_command(), "--home", str(proxy.home), "codex", *args],
                          env=env, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    return done, json.loads(out.read_text())


def overrides(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-c" and argv[i + 1].startswith(
        ("model_context_window=", "model_auto_compact_token_limit="))]


@pytest.mark.parametrize(("state", "window", "smallest"), MAPPINGS)
def test_codex_gets_the_smallest_reachable_window(home: Proxy, fake_codex: Path, tmp_path: Path,
                                                  state: State, window: int,
                                                  smallest: str) -> None:
    home.state_file.write(state)
    done, seen = codex_launch(home, fake_codex, tmp_path / "seen.json", "--", "exec", "hi")
    compact = int(window * 0.9) // 1000 * 1000
    assert overrides(seen["argv"]) == [f"model_context_window={window}",
                                       f"model_auto_compact_token_limit={compact}"]
    assert seen["window"] == str(window)
    assert seen["argv"][0] == "exec" and seen["argv"][-1] == "hi"
    assert f"the smallest a session can reach ({smallest})" in done.stderr


def test_codex_no_window_and_unknown_windows_set_nothing(home: Proxy, fake_codex: Path,
                                                         tmp_path: Path) -> None:
    done, seen = codex_launch(home, fake_codex, tmp_path / "seen.json")  # no known window
    assert overrides(seen["argv"]) == [] and seen["window"] is None
    assert "no reachable model has a known input window" in done.stderr
    home.state_file.write(cast(State, MAPPINGS[0].values[0]))
    done, seen = codex_launch(home, fake_codex, tmp_path / "seen.json", "--no-window")
    assert overrides(seen["argv"]) == [] and seen["window"] is None


def test_a_window_too_small_to_work_in_is_left_to_the_context_guard() -> None:
    from app.clients.window import MIN_WINDOW, client_window, describe

    state = State(tiers=tiers(low=TierTarget("low-reasoning", max_input_tokens=8000),
                              high=TierTarget("high-reasoning", max_input_tokens=200_000)))
    found = client_window(state, {}.get)
    assert (found.window, found.model, found.too_small) == (200_000, "high-reasoning",
                                                            ("low-reasoning",))
    assert f"below {MIN_WINDOW:,} tokens, left to the context guard: low-reasoning" in describe(found)
