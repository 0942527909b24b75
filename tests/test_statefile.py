"""The state file on disk: atomic private writes, creation, locked updates, the live view."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import callbacks.stores.statefile as statefile
from callbacks.core.state import Detection, State, StateError, TierTarget
from callbacks.stores.statefile import (
    HEADER,
    HOME_ENV,
    STATE_NAME,
    LiveState,
    StateFile,
    atomic_write,
    default_home,
    parse_state_text,
    render_state,
)

CUSTOM = replace(State(), pin="low", route_models=("gpt-5",)).with_tier_model("high", "opus")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def sf(tmp_path: Path) -> StateFile:
    return StateFile(tmp_path / "home" / STATE_NAME)


def tier_text(model: str) -> str:
    """A valid state text whose low tier goes to ``model``."""
    return render_state(State().with_tier_model("low", model))


# --- rendering and parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(State(), id="default"),
        pytest.param(CUSTOM, id="custom"),
        pytest.param(replace(State(), pin="none"), id="pin-none"),
        pytest.param(
            replace(
                State(),
                route_models=("null", "true", "yes", "on", "1", "*", "&a", "- x", "a: b", "#c"),
                tiers={"none": TierTarget("no"), "low": TierTarget("off"),
                       "medium": TierTarget("1e3"), "high": TierTarget("~")},
                detection=Detection(effort_map={"yes": "high", "null": "low", "on": "none"}),
            ),
            id="yaml-lookalike-names",
        ),
    ],
)
def test_render_parse_round_trip(state: State) -> None:
    text = render_state(state)
    assert text.startswith(HEADER)
    assert parse_state_text(text) == state


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("routing: [", "not valid YAML", id="bad-yaml"),
        pytest.param("", "the state file is empty", id="empty"),
        pytest.param("# only a comment\n", "the state file is empty", id="comment-only"),
        pytest.param("version: 1\npin: extreme\n", "pin: 'extreme'", id="bad-value"),
        pytest.param("- version\n", "state: ['version']", id="list"),
    ],
)
def test_parse_state_text_errors(text: str, message: str) -> None:
    with pytest.raises(StateError) as info:
        parse_state_text(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "panel"))
    assert default_home() == tmp_path / "panel"
    assert StateFile.in_home().path == tmp_path / "panel" / STATE_NAME
    monkeypatch.delenv(HOME_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "reasoning-panel"
    assert StateFile.in_home(tmp_path).path == tmp_path / STATE_NAME


# --- writing ---------------------------------------------------------------------------------


def test_write_creates_private_file_and_folder(sf: StateFile) -> None:
    sf.write(CUSTOM)
    assert mode(sf.path) == 0o600
    assert mode(sf.path.parent) == 0o700
    assert sf.path.read_text(encoding="utf-8") == render_state(CUSTOM)
    assert sf.read() == CUSTOM
    assert leftovers(sf.path.parent) == []


def test_write_makes_a_loose_file_private(sf: StateFile) -> None:
    sf.path.parent.mkdir(parents=True)
    sf.path.write_text("old")
    sf.path.chmod(0o644)
    old_inode = sf.path.stat().st_ino
    sf.write(CUSTOM)
    assert mode(sf.path) == 0o600
    assert sf.read() == CUSTOM
    assert sf.path.stat().st_ino != old_inode  # replaced by rename, not rewritten in place


def test_write_is_private_even_with_a_permissive_umask(sf: StateFile) -> None:
    old = os.umask(0)
    try:
        sf.write(CUSTOM)
    finally:
        os.umask(old)
    assert mode(sf.path) == 0o600
    assert mode(sf.path.parent) == 0o700


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_leaves_old_file_and_no_temp(
    sf: StateFile, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    sf.write(State())
    before = sf.path.read_bytes()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(statefile.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        sf.write(CUSTOM)
    monkeypatch.undo()
    assert sf.path.read_bytes() == before
    assert leftovers(sf.path.parent) == []
    assert sf.read() == State()


def test_reader_never_sees_a_torn_file(sf: StateFile) -> None:
    """While one thread rewrites the file, another only ever reads a whole, valid state."""
    small, big = State(), replace(State(), route_models=tuple(f"m{i}-*" for i in range(400)))
    sf.write(small)
    stop = threading.Event()
    seen: set[int] = set()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(len(sf.read().route_models))
            except StateError as exc:  # pragma: no cover - a torn read
                errors.append(str(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            sf.write(big if i % 2 else small)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert seen <= {1, 400}
    assert leftovers(sf.path.parent) == []


def test_atomic_write_custom_mode(tmp_path: Path) -> None:
    target = tmp_path / "key"
    atomic_write(target, "secret", mode=0o400)
    assert target.read_text() == "secret"
    assert mode(target) == 0o400


# --- ensure ----------------------------------------------------------------------------------


def test_ensure_creates_from_env(sf: StateFile) -> None:
    env = {"LITELLM_PROXY_HIGH_REASONING_MODEL": "opus",
           "LITELLM_PROXY_REASONING_STRENGTH_ROUTE_MODEL": "claude-opus-*",
           "LITELLM_PROXY_CEREBRAS_PROVIDER": "1"}
    state = sf.ensure(env)
    assert state.tiers["high"].model == "opus"
    assert state.route_models == ("claude-opus-*",)
    assert state.adapters["*"].cerebras is True
    text = sf.path.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    assert "opus" in text
    assert sf.read() == state
    assert mode(sf.path) == 0o600
    assert mode(sf.path.parent) == 0o700
    assert leftovers(sf.path.parent) == []


def test_ensure_never_overwrites(sf: StateFile) -> None:
    sf.write(CUSTOM)
    before = sf.path.read_bytes()
    state = sf.ensure({"LITELLM_PROXY_HIGH_REASONING_MODEL": "other"})
    assert state == CUSTOM
    assert sf.path.read_bytes() == before


def test_ensure_never_overwrites_an_invalid_file(sf: StateFile) -> None:
    sf.path.parent.mkdir(parents=True)
    sf.path.write_text("version: 1\npin: extreme\n")
    with pytest.raises(StateError, match="pin: 'extreme'"):
        sf.ensure({})
    assert sf.path.read_text() == "version: 1\npin: extreme\n"


def test_ensure_loses_a_creation_race_gracefully(
    sf: StateFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the file between the existence check and the link."""
    real_link = os.link

    def racing_link(src: str, dst: Any) -> None:
        Path(dst).write_text(render_state(CUSTOM))
        real_link(src, dst)

    monkeypatch.setattr(statefile.os, "link", racing_link)
    state = sf.ensure({"LITELLM_PROXY_HIGH_REASONING_MODEL": "mine"})
    assert state == CUSTOM
    assert sf.path.read_text() == render_state(CUSTOM)
    assert leftovers(sf.path.parent) == []


def test_read_missing_file(sf: StateFile) -> None:
    with pytest.raises(StateError, match="does not exist"):
        sf.read()


def test_read_non_utf8_file(sf: StateFile) -> None:
    sf.path.parent.mkdir(parents=True)
    sf.path.write_bytes(b"version: 1\npin: \xff\xfe\n")
    with pytest.raises(StateError, match="cannot be read"):
        sf.read()


# --- update ----------------------------------------------------------------------------------


def test_update_changes_and_returns(sf: StateFile) -> None:
    new = sf.update(lambda s: replace(s, pin="medium"))
    assert new.pin == "medium"
    assert sf.read() == new
    assert sf.path.with_suffix(".lock").exists()
    assert mode(sf.path) == 0o600


def test_update_refuses_an_invalid_result(sf: StateFile) -> None:
    sf.write(CUSTOM)
    before = sf.path.read_bytes()
    with pytest.raises(StateError, match="pin: 'extreme'"):
        sf.update(lambda s: replace(s, pin="extreme"))  # type: ignore[arg-type]
    assert sf.path.read_bytes() == before


def test_update_refuses_to_edit_an_invalid_file(sf: StateFile) -> None:
    sf.path.parent.mkdir(parents=True)
    sf.path.write_text("version: 1\nrouting: maybe\n")
    with pytest.raises(StateError, match="routing: 'maybe'"):
        sf.update(lambda s: replace(s, pin="low"))
    assert sf.path.read_text() == "version: 1\nrouting: maybe\n"


def test_update_waits_for_the_lock(sf: StateFile) -> None:
    sf.write(State())
    fd = os.open(sf.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    done = threading.Event()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        thread = threading.Thread(
            target=lambda: (sf.update(lambda s: replace(s, pin="high")), done.set())
        )
        thread.start()
        time.sleep(0.3)
        assert not done.is_set()
        assert sf.read().pin is None
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    thread.join(10)
    assert done.is_set()
    assert sf.read().pin == "high"


def test_concurrent_updates_are_not_lost(sf: StateFile) -> None:
    sf.write(replace(State(), detection=Detection(low_below=0, medium_below=10**9)))

    def bump(s: State) -> State:
        time.sleep(0.005)  # widen the read-modify-write window
        return replace(s, detection=replace(s.detection, low_below=s.detection.low_below + 1))

    def worker() -> None:
        for _ in range(5):
            sf.update(bump)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sf.read().detection.low_below == 30


# --- LiveState -------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.reloads: list[tuple[State, State]] = []

    def live(self, sf: StateFile, check_s: float = 0.0) -> LiveState:
        """A live view that looks at the file on every call (as a proxy does once
        ``CHECK_S`` has passed): edits by hand are seen at once."""
        return LiveState(sf, on_reload=lambda old, new: self.reloads.append((old, new)),
                         on_problem=self.problems.append, check_s=check_s)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def test_live_first_use_creates_the_file(
    sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELLM_PROXY_LOW_REASONING_MODEL", "cheap")
    live = rec.live(sf)
    state = live.current()
    assert state.tiers["low"].model == "cheap"
    assert sf.read() == state
    assert live.problem is None
    assert rec.problems == []


def test_live_picks_up_a_valid_change(sf: StateFile, rec: Recorder) -> None:
    sf.write(State())
    live = rec.live(sf)
    assert live.current() == State()
    sf.write(CUSTOM)
    assert live.current() == CUSTOM
    assert live.state == CUSTOM
    assert rec.reloads == [(State(), CUSTOM)]
    assert live.problem is None


def test_live_picks_up_an_in_place_edit(sf: StateFile, rec: Recorder) -> None:
    """An editor that rewrites the file in place (same inode) is seen too."""
    sf.write(State())
    live = rec.live(sf)
    live.current()
    with open(sf.path, "w", encoding="utf-8") as f:
        f.write(render_state(CUSTOM))
    assert live.current() == CUSTOM


def corrupt_bad_yaml(path: Path) -> str:
    path.write_text("version: 1\nrouting: [\n")
    return "not valid YAML"


def corrupt_bad_value(path: Path) -> str:
    path.write_text(render_state(State()).replace("low: low-reasoning", "low: ''"))
    return "tiers.low: '' is not valid"


def corrupt_bad_threshold(path: Path) -> str:
    path.write_text(render_state(State()).replace("low_below: 8000", "low_below: lots"))
    return "detection.budget_thresholds.low_below: 'lots' is not valid"


def corrupt_delete(path: Path) -> str:
    path.unlink()
    return "does not exist"


def corrupt_directory(path: Path) -> str:
    path.unlink()
    path.mkdir()
    return "cannot be read"


def corrupt_non_utf8(path: Path) -> str:
    path.write_bytes(b"version: 1\npin: \xff\xfe\n")
    return "is not UTF-8 text"


def corrupt_empty(path: Path) -> str:
    path.write_text("")
    return "the state file is empty"


CORRUPTIONS = [
    pytest.param(corrupt_bad_yaml, id="bad-yaml"),
    pytest.param(corrupt_bad_value, id="bad-value"),
    pytest.param(corrupt_bad_threshold, id="bad-threshold"),
    pytest.param(corrupt_delete, id="deleted"),
    pytest.param(corrupt_directory, id="directory"),
    pytest.param(corrupt_non_utf8, id="non-utf8"),
    pytest.param(corrupt_empty, id="empty"),
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_live_keeps_last_good_state_and_reports_once(
    sf: StateFile, rec: Recorder, corrupt: Any
) -> None:
    sf.write(CUSTOM)
    live = rec.live(sf)
    assert live.current() == CUSTOM
    expected = corrupt(sf.path)
    for _ in range(5):
        assert live.current() == CUSTOM
    assert live.problem is not None and expected in live.problem
    assert len(rec.problems) == 1 and expected in rec.problems[0]
    assert rec.reloads == []

    # a later valid write is picked up and the problem clears
    if sf.path.is_dir():
        sf.path.rmdir()
    sf.write(State())
    assert live.current() == State()
    assert live.problem is None
    assert rec.reloads == [(CUSTOM, State())]
    assert len(rec.problems) == 1


def test_live_reports_each_new_problem(sf: StateFile, rec: Recorder) -> None:
    sf.write(State())
    live = rec.live(sf)
    live.current()
    corrupt_bad_yaml(sf.path)
    live.current()
    live.current()
    corrupt_bad_value(sf.path)
    live.current()
    live.current()
    assert len(rec.problems) == 2
    assert "not valid YAML" in rec.problems[0]
    assert "tiers.low: ''" in rec.problems[1]
    assert live.current() == State()


def test_live_touch_of_a_bad_file_keeps_the_problem(sf: StateFile, rec: Recorder) -> None:
    sf.write(State())
    live = rec.live(sf)
    live.current()
    corrupt_bad_value(sf.path)
    live.current()
    os.utime(sf.path, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    assert live.current() == State()
    assert live.problem is not None and "tiers.low" in live.problem
    assert len(rec.problems) == 1


def test_live_restoring_the_good_bytes_clears_the_problem(sf: StateFile, rec: Recorder) -> None:
    sf.write(CUSTOM)
    good = sf.path.read_bytes()
    live = rec.live(sf)
    live.current()
    sf.path.unlink()
    live.current()
    assert live.problem is not None and "does not exist" in live.problem
    sf.path.write_bytes(good)
    assert live.current() == CUSTOM
    assert live.problem is None
    assert rec.reloads == []


@pytest.mark.parametrize("interruption", [corrupt_delete, corrupt_directory],
                         ids=["deleted", "directory"])
def test_live_bad_file_restored_after_interruption_reports_the_bad_value(
    sf: StateFile, rec: Recorder, interruption: Any
) -> None:
    sf.write(State())
    live = rec.live(sf)
    live.current()
    corrupt_bad_value(sf.path)
    live.current()
    interruption(sf.path)
    live.current()
    if sf.path.is_dir():
        sf.path.rmdir()
    corrupt_bad_value(sf.path)  # the same bad bytes are back
    assert live.current() == State()
    assert live.problem is not None
    assert "tiers.low: ''" in live.problem, live.problem


def test_live_invalid_file_at_start_falls_back_to_env(
    sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELLM_PROXY_HIGH_REASONING_MODEL", "env-high")
    sf.path.parent.mkdir(parents=True)
    corrupt_bad_yaml(sf.path)
    live = rec.live(sf)
    state = live.current()
    assert state.tiers["high"].model == "env-high"
    assert live.problem is not None and "not valid YAML" in live.problem
    assert len(rec.problems) == 1
    assert sf.path.read_text() == "version: 1\nrouting: [\n"  # not overwritten
    sf.write(CUSTOM)
    assert live.current() == CUSTOM
    assert live.problem is None


def counting_parser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = statefile.parse_state_text

    def wrapper(text: str) -> State:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(statefile, "parse_state_text", wrapper)
    return calls


def test_live_does_not_reparse_unchanged_file(
    sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_parser(monkeypatch)
    sf.write(CUSTOM)
    live = rec.live(sf)
    for _ in range(50):  # the file is "racy" (just written): bytes compared, never re-parsed
        assert live.current() == CUSTOM
    assert len(calls) == 1
    os.utime(sf.path, ns=(time.time_ns(), time.time_ns() + 7_000_000))  # touched, not changed
    assert live.current() == CUSTOM
    assert len(calls) == 1
    sf.write(CUSTOM)  # rewritten with identical bytes
    assert live.current() == CUSTOM
    assert len(calls) == 1
    assert rec.reloads == []


def test_live_does_not_reparse_an_unchanged_bad_file(
    sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_parser(monkeypatch)
    sf.write(State())
    live = rec.live(sf)
    live.current()
    corrupt_bad_value(sf.path)
    for _ in range(20):
        live.current()
    assert len(calls) == 2
    assert len(rec.problems) == 1


def test_live_old_unchanged_file_costs_one_stat(
    sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the file is older than the racy window, current() does not even read it."""
    sf.write(CUSTOM)
    live = rec.live(sf)
    live.current()
    real_ns = time.time_ns
    monkeypatch.setattr(statefile, "time", SimpleNamespace(time_ns=lambda: real_ns() + 10**10,
                                                           monotonic=time.monotonic))
    reads: list[Path] = []
    real_read = Path.read_bytes

    def counting_read(self: Path) -> bytes:
        reads.append(self)
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    for _ in range(10):
        assert live.current() == CUSTOM
    assert reads == []


def test_live_two_quick_writes_are_both_seen(sf: StateFile, rec: Recorder) -> None:
    sf.write(State())
    live = rec.live(sf)
    live.current()
    for i in range(30):
        model = "model-a" if i % 2 else "model-b"  # same size, written back to back
        if i % 3 == 0:  # in place, like an editor
            sf.path.write_text(tier_text(model))
        else:  # atomic rename, like the CLI and the panel
            sf.write(State().with_tier_model("low", model))
        assert live.current().tiers["low"].model == model, i


def test_live_racy_rule_catches_a_change_with_identical_signature(
    sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writes within the file-time granularity (and a reused inode) look the same to
    ``stat``; a recently changed file is compared by content."""
    frozen = time.time_ns()
    monkeypatch.setattr(statefile, "_signature", lambda st: (1, frozen, 100, frozen))
    calls = counting_parser(monkeypatch)
    sf.write(State())
    live = rec.live(sf)
    assert live.current() == State()
    sf.write(CUSTOM)
    assert live.current() == CUSTOM
    assert live.current() == CUSTOM
    assert len(calls) == 2


def test_live_state_property_and_problem_start_empty(sf: StateFile, rec: Recorder) -> None:
    live = rec.live(sf)
    assert live.state is None
    assert live.problem is None
    sf.write(CUSTOM)
    assert live.current() == CUSTOM
    assert live.state == CUSTOM


def test_a_save_never_read_before_a_broken_edit_is_not_lost(tmp_path: Path) -> None:
    """A remap saved by a command, then the file broken by hand before any request came: the
    remap is the last good state, not the older mapping this process had read."""
    file = StateFile.in_home(tmp_path)
    file.write(State())
    live = LiveState(file, check_s=0.0)
    assert live.current().tiers["high"].model == "high-reasoning"
    file.update(lambda s: s.with_tier_model("high", "fast-coder"))  # never read by `live`
    text = file.path.read_text().replace("pin: null", "pin: ultra")
    file.path.write_text(text)
    assert live.current().tiers["high"].model == "fast-coder"
    assert live.problem is not None and "pin" in live.problem
    # a valid hand edit read later is newer than the last save: a later break keeps it
    file.path.write_text(text.replace("pin: ultra", "pin: low"))
    assert live.current().pin == "low"
    file.path.write_text(text.replace("pin: ultra", "pin: [broken"))
    assert live.current().pin == "low"


class Clock:
    """``statefile``'s monotonic clock, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(statefile, "time", SimpleNamespace(time_ns=time.time_ns,
                                                               monotonic=lambda: self.now))


def counting_stats(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths ``statefile`` stats from now on."""
    paths: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        paths.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(statefile.os, "stat", counting_stat)
    return paths


def test_live_sees_a_commands_write_at_the_next_call_with_no_system_call_before(
        sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between writes, current() reads the stamp from memory: no stat; a command's write
    changes the stamp, and the very next call has the new state."""
    clock = Clock(monkeypatch)
    sf.write(State())
    live = rec.live(sf, check_s=statefile.CHECK_S)
    assert live.current() == State()
    stats = counting_stats(monkeypatch)
    for _ in range(100):
        assert live.current() == State()
    assert stats == []
    sf.write(CUSTOM)
    assert live.current() == CUSTOM
    assert str(sf.path) in stats
    clock.now += statefile.CHECK_S / 2
    assert live.current() == CUSTOM


def test_live_sees_a_hand_edit_once_a_look_is_due(
        sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit by hand changes no stamp: it applies at the first call ``CHECK_S`` after the
    last look at the file; a broken one is refused then, the last good state kept."""
    clock = Clock(monkeypatch)
    sf.write(State())
    live = rec.live(sf, check_s=statefile.CHECK_S)
    assert live.current() == State()
    sf.path.write_text(render_state(CUSTOM))
    clock.now += statefile.CHECK_S * 0.9
    assert live.current() == State()
    clock.now += statefile.CHECK_S * 0.1
    assert live.current() == CUSTOM
    sf.path.write_text("version: 1\npin: extreme\n")
    clock.now += statefile.CHECK_S
    assert live.current() == CUSTOM
    assert len(rec.problems) == 1 and "extreme" in rec.problems[0]


def test_live_follows_a_stamp_deleted_or_replaced(
        sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stamp deleted (the folder cleaned by hand) is looked for again at the next look: a
    write meanwhile applies within ``CHECK_S``, the writes after it at once again."""
    clock = Clock(monkeypatch)
    sf.write(State())
    live = rec.live(sf, check_s=statefile.CHECK_S)
    assert live.current() == State()
    statefile.stamp_path(sf.path).unlink()
    sf.write(CUSTOM)  # a new stamp file: the one mapped is gone
    assert live.current() == State()
    clock.now += statefile.CHECK_S
    assert live.current() == CUSTOM
    sf.write(State())
    assert live.current() == State()


def test_live_without_a_stamp_looks_at_the_file_every_time(
        sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the stamp cannot be mapped, nothing is missed: every call looks at the file."""
    Clock(monkeypatch)
    sf.write(State())
    monkeypatch.setattr(statefile.mmap, "mmap", lambda *a, **k: (_ for _ in ()).throw(
        OSError("no mapping here")))
    live = rec.live(sf, check_s=statefile.CHECK_S)
    assert live.current() == State()
    sf.path.write_text(render_state(CUSTOM))  # by hand, no stamp
    assert live.current() == CUSTOM


def test_live_puts_back_a_stamp_cut_short(
        sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stamp truncated by hand is given its size back at the next look (reading the mapped
    bytes of a file cut short would kill the proxy); writes then apply at once again."""
    clock = Clock(monkeypatch)
    sf.write(State())
    live = rec.live(sf, check_s=statefile.CHECK_S)
    assert live.current() == State()
    stamp = statefile.stamp_path(sf.path)
    stamp.write_bytes(b"")  # truncated in place: the same file, no bytes
    clock.now += statefile.CHECK_S
    assert live.current() == State()  # reading the mapped bytes first would kill this process
    assert stamp.stat().st_size == statefile.STAMP_BYTES
    sf.write(CUSTOM)
    assert live.current() == CUSTOM


def test_live_sees_a_state_file_a_command_creates_again_at_once(
        sf: StateFile, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file deleted under a running proxy, then created again from the defaults by a
    command (``ensure``): the next call has it, as after any command's write."""
    Clock(monkeypatch)
    monkeypatch.setenv("LITELLM_PROXY_LOW_REASONING_MODEL", "cheap")
    sf.write(CUSTOM)
    live = rec.live(sf, check_s=statefile.CHECK_S)
    assert live.current() == CUSTOM
    sf.path.unlink()
    sf.ensure()
    assert live.current().tiers["low"].model == "cheap"
