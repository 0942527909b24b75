"""The Claude Code companion commands, headless: cap, preset, statusline (and --install), report."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.clients.statusline import render
from app.local_stack import cli_command
from callbacks.core.state import Preset, TierTarget
from callbacks.stores.eventlog import EVENTS_NAME
from callbacks.stores.statefile import StateFile

from .sessions_log import S1, S2, T0, sessions_log, write_sessions_log

DEMO = str(Path(__file__).resolve().parent.parent / "configs" / "demo.yaml")


def run(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


# --- caps and presets on the command line -----------------------------------------------------


def test_cap_sets_shows_and_lifts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "cap", "subagent", "low") == 0
    assert run(tmp_path, "cap", "claude-haiku-*", "none") == 0
    assert StateFile.in_home(tmp_path).read().caps == {"subagent": "low", "claude-haiku-*": "none"}
    capsys.readouterr()
    assert run(tmp_path, "cap") == 0
    assert capsys.readouterr().out == "caps: subagent <= low, claude-haiku-* <= none\n"
    assert run(tmp_path, "show") == 0
    assert "caps:    subagent <= low, claude-haiku-* <= none" in capsys.readouterr().out
    assert run(tmp_path, "cap", "subagent", "off") == 0
    assert StateFile.in_home(tmp_path).read().caps == {"claude-haiku-*": "none"}


def test_cap_needs_a_tier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "cap", "subagent") == 2
    assert "give a tier" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(tmp_path, "cap", "subagent", "extreme")


def test_preset_save_list_use_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "set", "medium", "fast-coder") == 0
    assert run(tmp_path, "cap", "subagent", "none") == 0
    assert run(tmp_path, "preset", "save", "cheap") == 0
    assert run(tmp_path, "set", "medium", "medium-reasoning") == 0
    assert run(tmp_path, "cap", "subagent", "off") == 0
    assert run(tmp_path, "pin", "high") == 0
    capsys.readouterr()
    assert run(tmp_path, "preset", "list") == 0
    listed = capsys.readouterr().out
    assert listed.startswith("cheap: none -> none-reasoning, low -> low-reasoning, "
                             "medium -> fast-coder, high -> high-reasoning; pin off; "
                             "caps subagent <= none")
    assert run(tmp_path, "preset", "use", "cheap") == 0
    state = StateFile.in_home(tmp_path).read()
    assert state.tiers["medium"].model == "fast-coder"
    assert state.pin is None and state.caps == {"subagent": "none"}
    assert run(tmp_path, "preset", "list", "--json") == 0
    capsys.readouterr()
    assert run(tmp_path, "preset", "delete", "cheap") == 0
    assert StateFile.in_home(tmp_path).read().presets == {}


def test_preset_errors_say_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "preset", "use") == 2
    assert "give the preset's name" in capsys.readouterr().err
    assert run(tmp_path, "preset", "save", "mine") == 0
    assert run(tmp_path, "preset", "use", "fast") == 1
    assert "not changed: presets: no preset 'fast' (known: mine)" in capsys.readouterr().err
    assert run(tmp_path, "preset", "delete", "fast") == 1
    assert "no preset 'fast'" in capsys.readouterr().err


def test_a_hand_written_partial_preset_changes_only_what_it_names(tmp_path: Path) -> None:
    StateFile.in_home(tmp_path).update(lambda s: s)
    (tmp_path / "state.yaml").write_text(
        "version: 1\npin: low\ncaps: {subagent: low}\n"
        "presets: {focus: {tiers: {high: fast-coder}, pin: high}}\n")
    assert run(tmp_path, "preset", "use", "focus") == 0
    state = StateFile.in_home(tmp_path).read()
    assert state.tiers["high"] == TierTarget("fast-coder")
    assert state.tiers["low"] == TierTarget("low-reasoning")
    assert state.pin == "high" and state.caps == {}
    assert state.presets == {"focus": Preset({"high": TierTarget("fast-coder")}, "high")}


# --- statusline -------------------------------------------------------------------------------


def payload(session: str) -> str:
    """What Claude Code writes on the status line command's stdin (2.1.x)."""
    return json.dumps({
        "session_id": session, "transcript_path": f"/home/u/.claude/projects/p/{session}.jsonl",
        "cwd": "/home/u/p", "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
        "workspace": {"current_dir": "/home/u/p", "project_dir": "/home/u/p", "added_dirs": []},
        "version": "2.1.328", "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 0.42, "total_duration_ms": 180000,
                 "total_api_duration_ms": 2300, "total_lines_added": 156,
                 "total_lines_removed": 23},
        "context_window": {"total_input_tokens": 15234, "total_output_tokens": 4521,
                           "context_window_size": 200000, "used_percentage": 8},
        "exceeds_200k_tokens": False})


def statusline(home: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    """The command as Claude Code runs it: a new process, the JSON on stdin."""
    return subprocess.run([*cli_command(), "--home", str(home), "statusline"], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_statusline_prints_the_sessions_line(tmp_path: Path) -> None:
    write_sessions_log(tmp_path)
    done = statusline(tmp_path, payload(S1))
    assert done.returncode == 0, done.stderr
    # latest request of session 1 failed; its cost: 3 finished calls, 82% under the asked model
    assert done.stdout == "low → low-reasoning · effort=low · error 500 · " \
                          "session $0.0062, saved 82% (4 req)\n"
    done = statusline(tmp_path, payload(S2))
    assert done.stdout == "high → high-reasoning · effort=high · … · " \
                          "session $0.0001, saved 98% (2 req)\n"
    # the same through the full command line (what `python -m app.cli` runs)
    slow = subprocess.run([sys.executable, "-m", "app.cli", "--home", str(tmp_path), "statusline"],
                          input=payload(S2), capture_output=True, text=True, timeout=60)
    assert slow.stdout == done.stdout


def test_statusline_loads_none_of_what_only_the_cli_or_the_proxy_needs(tmp_path: Path) -> None:
    """Claude Code runs it after every answer: no YAML, argparse, launcher, LiteLLM, or orjson
    (the event log's encoder: a reader never encodes)."""
    write_sessions_log(tmp_path)
    heavy = ("yaml", "argparse", "callbacks.launcher", "litellm", "orjson", "textual")
    code = ("import sys; from app.entry import main; sys.argv[1:] = ['--home', sys.argv[1], "
            "'statusline']; main(); print(sorted(m for m in %r if m in sys.modules))" % (heavy,))
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], input=payload(S1),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line, loaded = done.stdout.splitlines()
    assert line.startswith("low → low-reasoning") and loaded == "[]"


def test_statusline_shows_held_fallback_cap_and_subagent_marks(tmp_path: Path) -> None:
    records = sessions_log()
    (tmp_path / EVENTS_NAME).write_text("".join(json.dumps(r) + "\n" for r in records[:6]))
    assert render(payload(S1), tmp_path) == "medium → medium-reasoning · effort=medium · held · " \
        "fallback → fast-coder · session $0.0062, saved 82% (3 req)"
    (tmp_path / EVENTS_NAME).write_text("".join(json.dumps(r) + "\n" for r in records[:4]))
    assert render(payload(S1), tmp_path) == "low → low-reasoning · effort=high · subagent · " \
        "capped by subagent · session $0.0057, saved 62% (2 req)"


def test_statusline_says_when_the_session_has_no_requests(tmp_path: Path) -> None:
    write_sessions_log(tmp_path)
    assert statusline(tmp_path, payload("unknown-session")).stdout == \
        "reasoning-panel: no requests from this session yet\n"
    assert statusline(tmp_path / "no-such-home", payload(S1)).stdout == \
        "reasoning-panel: no requests from this session yet\n"


@pytest.mark.parametrize("stdin", ["garbage", "{\"session_id\": 5}", "[1, 2]", "{", "\x00\xff"],
                         ids=["text", "bad-session", "array", "torn", "binary"])
def test_statusline_prints_a_placeholder_on_garbage(tmp_path: Path, stdin: str) -> None:
    write_sessions_log(tmp_path)
    done = statusline(tmp_path, stdin)
    assert (done.returncode, done.stdout, done.stderr) == (0, "reasoning-panel: -\n", "")


def test_statusline_survives_a_broken_log(tmp_path: Path) -> None:
    (tmp_path / EVENTS_NAME).mkdir(parents=True)  # a folder where the log should be
    done = statusline(tmp_path, payload(S1))
    assert done.returncode == 0 and done.stdout.startswith("reasoning-panel:")
    (tmp_path / EVENTS_NAME).rmdir()
    (tmp_path / EVENTS_NAME).write_bytes(b"\xff\xfe{not json\n{\"type\": \"routed\"}\n")
    done = statusline(tmp_path, payload(S1))
    assert done.returncode == 0 and done.stdout.startswith("reasoning-panel:")


def test_statusline_without_a_payload_shows_the_latest_request(tmp_path: Path) -> None:
    write_sessions_log(tmp_path)
    assert statusline(tmp_path, "").stdout.startswith("high → high-reasoning · effort=high · … ·")


# --- statusline --install ------------------------------------------------------------------


@pytest.fixture
def claude_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(path))
    return path


def test_install_merges_keeps_a_backup_and_is_idempotent(
        tmp_path: Path, claude_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claude_dir.mkdir()
    settings = claude_dir / "settings.json"
    original = {"model": "opus", "env": {"FOO": "1"},
                "statusLine": {"type": "command", "command": "~/.claude/old.sh"}}
    settings.write_text(json.dumps(original, indent=2))
    settings.chmod(0o644)
    home = tmp_path / "home"
    assert run(home, "statusline", "--install") == 0
    out = capsys.readouterr().out
    written = json.loads(settings.read_text())
    command = written["statusLine"]["command"]
    assert command.endswith(f"--home {home} statusline")
    assert {k: v for k, v in written.items() if k != "statusLine"} == \
        {"model": "opus", "env": {"FOO": "1"}}
    assert written["statusLine"] == {"type": "command", "command": command, "padding": 0}
    backups = list(claude_dir.glob("settings.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == original
    assert "replaced the statusLine that was there" in out and "~/.claude/old.sh" in out
    assert stat.S_IMODE(os.stat(settings).st_mode) == 0o644
    # the installed command works as Claude Code runs it
    write_sessions_log(home)
    done = subprocess.run(command, shell=True, input=payload(S1), capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.startswith("low → low-reasoning")
    # again: nothing changes, no new backup
    before = settings.read_text()
    assert run(home, "statusline", "--install") == 0
    assert "already installed" in capsys.readouterr().out
    assert settings.read_text() == before
    assert len(list(claude_dir.glob("settings.json.*.bak"))) == 1


def test_install_creates_the_settings_file(tmp_path: Path, claude_dir: Path) -> None:
    assert run(tmp_path, "statusline", "--install") == 0
    assert set(json.loads((claude_dir / "settings.json").read_text())) == {"statusLine"}
    assert not list(claude_dir.glob("*.bak"))


def test_install_dry_run_prints_and_writes_nothing(
        tmp_path: Path, claude_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claude_dir.mkdir()
    (claude_dir / "settings.json").write_text('{"theme": "dark"}')
    assert run(tmp_path, "statusline", "--install", "--dry-run") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["theme"] == "dark" and shown["statusLine"]["type"] == "command"
    assert (claude_dir / "settings.json").read_text() == '{"theme": "dark"}'
    assert not list(claude_dir.glob("*.bak"))


def test_install_refuses_a_settings_file_it_cannot_read(
        tmp_path: Path, claude_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claude_dir.mkdir()
    (claude_dir / "settings.json").write_text('{"theme": "dark",}')  # a trailing comma
    assert run(tmp_path, "statusline", "--install") == 1
    assert "cannot read" in capsys.readouterr().err
    assert (claude_dir / "settings.json").read_text() == '{"theme": "dark",}'


def test_install_honours_the_default_claude_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert run(tmp_path / "home", "statusline", "--install") == 0
    assert (tmp_path / "user" / ".claude" / "settings.json").exists()


# --- report ---------------------------------------------------------------------------------


def test_report_by_day_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sessions_log(tmp_path)
    assert run(tmp_path, "report", "--json", "--with", "high=fast-coder", "--config", DEMO) == 0
    report = json.loads(capsys.readouterr().out)
    assert [g["key"] for g in report["groups"]] == ["2027-01-15", "2027-01-16"]
    day1 = report["groups"][0]
    assert {k: day1[k] for k in ("requests", "turns", "subagent_requests", "errors", "in_flight",
                                  "holds", "fallbacks", "capped", "cost_unknown",
                                  "asked_unknown", "whatif_unknown")} == {
        "requests": 5, "turns": 4, "subagent_requests": 1, "errors": 1, "in_flight": 0,
        "holds": 1, "fallbacks": 1, "capped": 1, "cost_unknown": 1, "asked_unknown": 0,
        "whatif_unknown": 1}
    assert day1["tiers"]["high"] == {"requests": 1, "input_tokens": 1000, "output_tokens": 200,
                                     "cost": 0.0054, "cost_unknown": 0}
    assert day1["tiers"]["low"]["requests"] == 2 and day1["tiers"]["pass"]["requests"] == 1
    assert day1["cost"] == pytest.approx(0.00621)
    # claude-opus-4-8 at LiteLLM's price: 1200 + 600 + 2400 tokens -> $0.035
    assert day1["asked_cost"] == pytest.approx(0.035)
    assert day1["saved"] == pytest.approx(0.035 - 0.00621)
    # high -> fast-coder at the demo config's own price: 1000 * 1.5e-7 + 200 * 6e-7
    assert day1["whatif_cost"] == pytest.approx(0.00027 + 0.00027 + 0.00054)
    assert report["total"]["requests"] == 7 and report["with"] == {"high": "fast-coder"}


def test_report_by_session_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sessions_log(tmp_path)
    assert run(tmp_path, "report", "--by", "session", "--with", "high=fast-coder",
               "--config", DEMO) == 0
    out = capsys.readouterr().out
    first, second = out.index(S1), out.index(S2)
    assert first < second < out.index("(no session)") < out.index("\ntotal ")
    assert f"{S1}  (from 2027-01-15 08:00, claude-cli/2.1.328)  4 requests (3 turns, 1 by " \
           "subagents) · errors 1 · held 1 · fallbacks 1 · capped 1" in out
    assert "  high           1         1.0k / 200     $0.0054" in out
    assert "cost $0.0062 · routed $0.0062, on the models asked for $0.0350 (routing saved 82%)" \
           " · what-if $0.0011 (-83%)" in out
    assert "what-if: high -> fast-coder" in out


def test_report_refuses_a_bad_remap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "report", "--with", "extreme=fast-coder") == 2
    assert "expected TIER=MODEL" in capsys.readouterr().err


def test_report_warns_about_a_model_without_a_price(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_sessions_log(tmp_path)
    assert run(tmp_path, "report", "--with", "low=no-such-model") == 0
    assert "no price known for no-such-model" in capsys.readouterr().out


def test_report_reads_rotated_files_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = sessions_log()
    (tmp_path / (EVENTS_NAME + ".1")).write_text("".join(json.dumps(r) + "\n" for r in records[:6]))
    (tmp_path / EVENTS_NAME).write_text("".join(json.dumps(r) + "\n" for r in records[6:]))
    assert run(tmp_path, "report", "--json") == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 7


def test_report_on_an_empty_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "report") == 0
    assert "no requests in the event log yet" in capsys.readouterr().out


def test_fixed_log_days() -> None:
    assert T0 == 1_800_000_000.0  # the dates above are UTC (tests run with TZ=UTC)


@pytest.mark.timeout(300)
def test_bench_statusline_reports_its_figures() -> None:
    """Figures are printed, not asserted (a shared, noisy machine): the run completes and
    the line it timed is a real one."""
    done = subprocess.run([*cli_command(), "bench", "--statusline", "--quick", "--json"],
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["runs"] == 10 and figures["log_records"] == 100_000
    assert 0 < figures["statusline_ms_p50"] <= figures["statusline_ms_p95"]
    assert figures["line"].startswith("high → high-reasoning · effort=xhigh · session $")


def test_the_status_line_reads_only_its_sessions_lines(tmp_path: Path) -> None:
    """The tail is filtered on raw lines before parsing: the session's records and the
    outcomes of its calls, from the rotated file too when the current one has none."""
    from app.clients.statusline import session_records

    records = sessions_log()
    (tmp_path / (EVENTS_NAME + ".1")).write_text("".join(json.dumps(r) + "\n" for r in records[:8]))
    (tmp_path / EVENTS_NAME).write_text("".join(json.dumps(r) + "\n" for r in records[8:]))
    assert [r["call_id"] for r in session_records(tmp_path, S2)] == ["s2-a", "s2-a", "s2-b"]
    assert [(r["call_id"], r["type"]) for r in session_records(tmp_path, S1)] == [
        ("s1-a", "routed"), ("s1-a", "done"), ("s1-b", "routed"), ("s1-b", "done"),
        ("s1-c", "routed"), ("s1-c", "done"), ("s1-d", "routed"), ("s1-d", "failed")]


def test_a_tool_loops_next_steps_are_not_turns() -> None:
    """One human prompt and its tool loop's three steps: one turn, four requests."""
    from app.panel.model import Request
    from app.usage import Usage

    usage = Usage()
    for i in range(4):
        routed = {"type": "routed", "call_id": f"c{i}", "time": 1_800_000_000 + i, "tier": "high",
                  "target": "high-reasoning", "strength": "high", **({"tool_loop": True} if i else {})}
        usage.add(Request(f"c{i}", routed, None), lambda model: None)
    assert (usage.requests, usage.turns) == (4, 1)
