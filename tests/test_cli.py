"""Headless state commands: show, set, pin, routing, check."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from app.cli import main
from callbacks.stores.statefile import StateFile

DEMO = str(Path(__file__).resolve().parent.parent / "configs" / "demo.yaml")


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def test_show_creates_the_state_from_env_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_PROXY_HIGH_REASONING_MODEL", "o3-high")
    monkeypatch.setenv("LITELLM_PROXY_REASONING_STRENGTH_ROUTE_MODEL", "claude-sonnet-4-20250514")
    assert run(tmp_path / "home", "show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"]["tiers"]["high"] == "o3-high"
    assert shown["state"]["route_models"] == ["claude-sonnet-4-20250514"]
    path = tmp_path / "home" / "state.yaml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_set_pin_routing_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "set", "low", "fast-coder", "--config", DEMO) == 0
    assert run(tmp_path, "pin", "high") == 0
    assert run(tmp_path, "routing", "off") == 0
    state = StateFile.in_home(tmp_path).read()
    assert state.tiers["low"].model == "fast-coder"
    assert state.pin == "high" and state.routing is False
    capsys.readouterr()
    assert run(tmp_path, "show") == 0
    out = capsys.readouterr().out
    assert "routing: off" in out and "pin:     high" in out and "low     fast-coder" in out
    assert run(tmp_path, "pin", "off") == 0
    assert StateFile.in_home(tmp_path).read().pin is None


def test_unknown_tier_is_an_error_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "set", "extreme", "fast-coder")
    assert exc.value.code == 2
    assert "invalid choice: 'extreme'" in capsys.readouterr().err
    assert not (tmp_path / "state.yaml").exists()


def test_model_missing_from_config_warns_but_sets(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "set", "high", "no-such-model", "--config", DEMO) == 0
    err = capsys.readouterr().err
    assert "warning: 'no-such-model' is not a model in" in err
    assert StateFile.in_home(tmp_path).read().tiers["high"].model == "no-such-model"


def test_edits_refuse_an_invalid_file_and_keep_it(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("version: 1\nrouting: maybe\n")
    assert run(tmp_path, "pin", "low") == 1
    assert "routing: 'maybe' is not valid" in capsys.readouterr().err
    assert path.read_text() == "version: 1\nrouting: maybe\n"
    assert run(tmp_path, "show") == 1


def test_check_validates_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntiers: {low: 42}\n")
    assert run(tmp_path, "check", str(bad)) == 1
    assert "tiers.low: 42 is not valid" in capsys.readouterr().err


def test_a_refused_value_is_not_blamed_on_the_file(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "set", "medium", "") == 1
    err = capsys.readouterr().err
    assert "not changed: tiers.medium: '' is not valid" in err and "is invalid" not in err
    (tmp_path / "state.yaml").write_text("version: 1\npin: [\n")
    assert run(tmp_path, "pin", "high") == 1
    assert "state.yaml is invalid, not changed: not valid YAML" in capsys.readouterr().err


def test_set_with_an_unreadable_config_says_the_name_is_unchecked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "set", "low", "anything", "--config", str(tmp_path / "nope.yaml")) == 0
    assert "cannot read" in capsys.readouterr().err
    assert StateFile.in_home(tmp_path).read().tiers["low"].model == "anything"


def test_tail_without_a_log_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "tail") == 0
    assert f"no events yet at {tmp_path / 'events.jsonl'}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "tail", "-n", "-5")
    assert exc.value.code == 2
    assert "not a whole number" in capsys.readouterr().err


def test_proxy_warns_about_a_state_folder_open_to_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing --home folder is the user's: the proxy says how to make it private."""
    tmp_path.chmod(0o755)
    execs: list[list[str]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append(argv))  # the OS boundary
    run(tmp_path, "proxy", "--config", DEMO)
    err = capsys.readouterr().err
    assert f"{tmp_path} is open to other users (mode 755)" in err and f"chmod 700 {tmp_path}" in err
    assert execs and execs[0][1:3] == ["-m", "callbacks.litellm_proxy"]  # LiteLLM's own CLI
