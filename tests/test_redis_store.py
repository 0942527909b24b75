"""The Redis backend in-process, against a real ``redis-server``: versioned state with
compare-and-set, the workers' local copy and heartbeats, the event stream, the shared memory,
and what happens when Redis is killed, paused or restarted empty."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callbacks.core.state import State, StateError, state_from_env
from callbacks.stores import redis_events
from callbacks.stores.base import Conflict, StoreDown, StoreError, Versioned
from callbacks.stores.memory import Producer
from callbacks.stores.redis_state import SNAPSHOT_NAME, FleetLive, encode_value
from callbacks.stores.redis_store import RedisStore
from callbacks.stores.statefile import StateFile
from callbacks.stores.store import open_store

from .redis_server import RedisServer, poll
from .test_eventlog import emit_changed_bad_and_good

pytestmark = pytest.mark.timeout(120)
_fleets = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the tests that do not break it (each test has a fleet of its own)."""
    redis_server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, to kill, pause and restart."""
    redis_server = RedisServer(tmp_path / "redis").start()
    yield redis_server
    redis_server.stop()


def store(server: RedisServer, home: Path, fleet: str | None = None) -> RedisStore:
    fleet = fleet or f"t{next(_fleets)}"
    opened = open_store(home, server.url, env={"REASONING_PANEL_FLEET": fleet})
    assert isinstance(opened, RedisStore)
    return opened


# --- state: seeding, compare-and-set, validation ---------------------------------------------


def test_an_empty_redis_is_seeded_from_the_env_defaults_and_says_so(server: RedisServer,
                                                                   tmp_path: Path) -> None:
    fleet = store(server, tmp_path)
    first = fleet.ensure()
    assert first.note == "seeded Redis from the env defaults"
    assert first.state == state_from_env() and first.version == 1
    again = fleet.ensure()
    assert again.note == "" and again.version == 1


def test_an_empty_redis_is_seeded_from_the_local_state_file(server: RedisServer,
                                                            tmp_path: Path) -> None:
    StateFile.in_home(tmp_path).write(State().with_tier_model("low", "from-the-file"))
    seeded = store(server, tmp_path).ensure()
    assert seeded.note == f"seeded Redis from {tmp_path / 'state.yaml'}"
    assert seeded.state.tiers["low"].model == "from-the-file"


def test_a_change_is_validated_before_it_is_stored(server: RedisServer, tmp_path: Path) -> None:
    fleet = store(server, tmp_path)
    fleet.ensure()
    with pytest.raises(StateError, match="tiers.medium"):
        fleet.update(lambda s: s.with_tier_model("medium", ""))
    assert fleet.read().version == 1 and fleet.read().state == state_from_env()


def test_two_writers_from_one_version_one_wins_the_other_is_told(server: RedisServer,
                                                                tmp_path: Path) -> None:
    panel_a, panel_b = store(server, tmp_path, "race"), store(server, tmp_path, "race")
    seen = panel_a.ensure().version
    assert panel_b.read().version == seen
    panel_a.update(lambda s: s.with_tier_model("low", "a-model"), expect=seen)
    with pytest.raises(Conflict) as told:
        panel_b.update(lambda s: replace(s, pin="high"), expect=seen)
    assert (told.value.expected, told.value.found) == (1, 2)
    assert "v1 -> now v2" in str(told.value)
    stored = panel_b.read()
    assert stored.state.tiers["low"].model == "a-model" and stored.state.pin is None


def test_racing_writers_lose_nothing(server: RedisServer, tmp_path: Path) -> None:
    """Eight threads write at once: each write either lands on top of the others or is told,
    and the stored state holds exactly the writes that landed."""
    fleet = store(server, tmp_path)
    fleet.ensure()
    landed: list[str] = []
    told: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        own = store(server, tmp_path, fleet.keys.fleet)
        for i in range(15):
            name = f"w{n}-{i}"
            try:
                own.update(lambda s, name=name: replace(s, route_models=(*s.route_models, name)))
                with lock:
                    landed.append(name)
            except Conflict:
                with lock:
                    told.append(name)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = fleet.read()
    assert sorted(final.state.route_models[1:]) == sorted(landed)
    assert final.version == 1 + len(landed)
    assert len(landed) + len(told) == 120 and landed


def test_an_invalid_value_in_redis_is_refused_and_never_replaced(server: RedisServer,
                                                                 tmp_path: Path) -> None:
    fleet = store(server, tmp_path)
    fleet.ensure()
    server.client().set(fleet.keys.state, '{"version": 7, "state": {"version": 1, "tiers": {"low": 3}}}')
    with pytest.raises(StateError, match="v7: tiers.low: 3"):
        fleet.read()
    with pytest.raises(StateError):
        fleet.ensure()
    with pytest.raises(StateError):
        fleet.update(lambda s: replace(s, pin="low"))


def test_a_bad_url_or_password_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="bad Redis URL 'redis//nowhere'"):
        open_store(tmp_path, "redis//nowhere")
    locked = RedisServer(tmp_path / "locked", password="right").start()
    try:
        wrong = open_store(tmp_path, f"redis://:wrong@127.0.0.1:{locked.port}/0")
        with pytest.raises(StoreError, match="refused the credentials") as refused:
            wrong.ensure()
        assert "wrong" not in str(refused.value)  # the password is never shown
        assert not isinstance(refused.value, StoreDown)
        right = open_store(tmp_path, "redis://127.0.0.1:%d/0" % locked.port,
                           env={"REDIS_PASSWORD": "right"})  # LiteLLM's variable
        assert right.ensure().version == 1
    finally:
        locked.stop()
    with pytest.raises(StoreDown, match="cannot reach Redis"):
        open_store(tmp_path, f"redis://127.0.0.1:{locked.port}/0").ensure()


# --- a worker's live copy ---------------------------------------------------------------------


_workers: list[FleetLive] = []


@pytest.fixture(autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    while _workers:
        _workers.pop().close()


def live(fleet: RedisStore, reloads: list[tuple[State, State]] | None = None,
         problems: list[str] | None = None) -> FleetLive:
    view = fleet.live(on_reload=lambda a, b: (reloads if reloads is not None else []).append((a, b)),
                      on_problem=lambda p: (problems if problems is not None else []).append(p))
    assert isinstance(view, FleetLive)
    _workers.append(view)
    return view


def test_a_worker_applies_a_change_and_acknowledges_it(server: RedisServer,
                                                       tmp_path: Path) -> None:
    fleet = store(server, tmp_path)
    fleet.ensure()
    reloads: list[tuple[State, State]] = []
    worker = live(fleet, reloads)
    poll(lambda: worker.version == 1, what="the worker syncing")
    poll(lambda: len(fleet.status().instances) == 1, what="its heartbeat")
    written = fleet.update(lambda s: s.with_tier_model("high", "fast-coder"))
    status = fleet.wait_applied(written.version, timeout=5)
    assert status.summary() == "v2 applied by 1/1"
    assert worker.current().tiers["high"].model == "fast-coder"
    assert reloads[-1][1].tiers["high"].model == "fast-coder"
    instance = status.instances[0]
    assert (instance.applied_version, instance.workers) == (2, 1)
    assert (tmp_path / SNAPSHOT_NAME).exists()


def test_a_worker_that_starts_while_redis_is_down_uses_its_snapshot(tmp_path: Path,
                                                                   own_server: RedisServer) -> None:
    fleet = store(own_server, tmp_path)
    fleet.ensure()
    fleet.update(lambda s: replace(s, pin="low"))
    first = live(fleet)
    # a worker keeps its snapshot before it says it applied a version (its heartbeat)
    poll(lambda: first.version == 2 and [i.applied_version for i in fleet.status().instances]
         == [2], what="the first worker applying v2")
    own_server.kill()
    later = live(store(own_server, tmp_path, fleet.keys.fleet))  # same folder: the snapshot
    assert later.current().pin == "low" and later.version == 2
    poll(lambda: later.problem is not None and "cannot reach Redis" in later.problem,
         what="the worker noticing Redis is down")
    elsewhere = live(store(own_server, tmp_path / "elsewhere", fleet.keys.fleet))  # no snapshot
    assert elsewhere.current() == state_from_env() and elsewhere.version is None


def test_after_redis_restarts_empty_the_workers_put_the_state_back(
        tmp_path: Path, own_server: RedisServer) -> None:
    fleet = store(own_server, tmp_path)
    fleet.ensure()
    fleet.update(lambda s: s.with_tier_model("low", "kept"))
    worker = live(fleet)
    poll(lambda: worker.version == 2, what="the worker syncing")
    own_server.kill()
    own_server.start()  # empty: no persistence
    poll(lambda: own_server.client().exists(fleet.keys.state), what="the state put back")
    back = fleet.read()
    assert back.version == 2 and back.state.tiers["low"].model == "kept"
    fleet.update(lambda s: s.with_tier_model("low", "after"))
    poll(lambda: worker.current().tiers["low"].model == "after", what="a later change applied")


def test_a_seed_made_after_redis_lost_the_state_gives_way_to_the_workers(
        tmp_path: Path, own_server: RedisServer) -> None:
    """A CLI elsewhere (no snapshot) seeds the env defaults into a Redis restarted empty; the
    workers, which run a newer version, put theirs back over it."""
    fleet = store(own_server, tmp_path / "proxy")
    fleet.ensure()
    fleet.update(lambda s: replace(s, pin="low"))
    worker = live(fleet)
    poll(lambda: worker.version == 2, what="the worker syncing")
    own_server.kill()
    own_server.start()
    elsewhere = store(own_server, tmp_path / "laptop", fleet.keys.fleet)
    elsewhere.ensure()
    poll(lambda: elsewhere.read().version == 2, what="the workers' version back")
    assert elsewhere.read().state.pin == "low" and worker.current().pin == "low"


def test_ensure_takes_a_state_written_between_its_look_and_its_seed(
        server: RedisServer, tmp_path: Path) -> None:
    """A worker puts its state back into an empty Redis just after a CLI looked: the CLI takes
    that state (it used to say Redis held no state)."""
    worker = store(server, tmp_path / "proxy")
    cli = store(server, tmp_path / "laptop", worker.keys.fleet)
    look = cli.read

    def look_then_the_worker_writes() -> Versioned:
        try:
            return look()
        finally:
            if not server.client().exists(worker.keys.state):
                worker.ensure()
                worker.update(lambda s: replace(s, pin="low"))

    cli.read = look_then_the_worker_writes  # type: ignore[method-assign]
    got = cli.ensure()
    assert got.version == 2 and got.state.pin == "low"


def test_an_invalid_value_is_refused_by_workers_and_the_last_good_stays(
        server: RedisServer, tmp_path: Path) -> None:
    fleet = store(server, tmp_path)
    fleet.ensure()
    problems: list[str] = []
    worker = live(fleet, problems=problems)
    poll(lambda: worker.version == 1, what="the worker syncing")
    bad = '{"version": 9, "state": {"version": 1, "pin": "sideways"}}'
    server.client().set(fleet.keys.state, bad)
    server.client().publish(fleet.keys.changed, bad)
    poll(lambda: problems, what="the refusal reported")
    assert "pin" in problems[0] and "sideways" in problems[0]
    assert worker.current() == state_from_env() and worker.version == 1
    assert fleet.status().summary().startswith("v9 applied by 0/1; behind:")


def test_a_missed_notice_is_caught_by_the_safety_poll(server: RedisServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from callbacks.stores import redis_state

    monkeypatch.setattr(redis_state, "POLL_S", 0.2)
    fleet = store(server, tmp_path)
    fleet.ensure()
    worker = live(fleet)
    poll(lambda: worker.version == 1, what="the worker syncing")
    server.client().set(fleet.keys.state, encode_value(replace(State(), pin="high"), 2, "test"))
    poll(lambda: worker.current().pin == "high", what="the unannounced change applied")


# --- the event stream ----------------------------------------------------------------------------


def test_a_record_is_sent_as_it_was_emitted_and_a_bad_one_is_dropped_and_said(
        server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fleet = store(server, tmp_path)
    sink = fleet.event_log()
    emit_changed_bad_and_good(sink, caplog, {"type": "routed", "call_id": "b", "text": "é"})
    assert sink.flush()
    records, _ = fleet.read_events()
    assert [(r["call_id"], r.get("notes"), r.get("text")) for r in records] == [
        ("a", [], None), ("b", None, "é")]
    assert sink.dropped == 1
    assert "routed record cannot be sent to the event stream" in caplog.text


def test_records_reach_readers_in_order_and_a_reader_resumes_after_a_disconnect(
        server: RedisServer, tmp_path: Path) -> None:
    fleet = store(server, tmp_path)
    sink = fleet.event_log()
    for i in range(300):
        sink.emit({"type": "routed", "call_id": f"c{i}"})
    assert sink.flush()
    records, cursor = fleet.read_events()
    assert [r["call_id"] for r in records] == [f"c{i}" for i in range(300)]
    assert {r["instance"] for r in records} == {f"{socket.gethostname()}:{os.getpid()}"}
    got: list[str] = []
    stop = threading.Event()

    def follow() -> None:
        for batch in fleet.follow_events(cursor, stop):
            got.extend(r["call_id"] for r in batch if r["type"] == "routed")

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        for i in range(300, 900):
            sink.emit({"type": "routed", "call_id": f"c{i}"})
            if i % 150 == 0:  # cut every client connection, the reader's included
                server.client().client_kill_filter(_type="normal", skipme=True)
        assert sink.flush()
        poll(lambda: len(got) >= 600, what="the reader catching up")
    finally:
        stop.set()
        reader.join(5)
    assert got == [f"c{i}" for i in range(300, 900)]  # no gap, no duplicate


def test_records_survive_a_paused_redis_without_duplicates(own_server: RedisServer,
                                                           tmp_path: Path) -> None:
    """SIGSTOP outlasting the client timeout: the batch in flight is retried, and the retry is
    not added a second time when the paused Redis resumes and runs the first attempt too."""
    fleet = store(own_server, tmp_path)
    sink = fleet.event_log()
    assert isinstance(sink, redis_events.RedisEventLog)
    sink.emit({"type": "routed", "call_id": "before"})
    assert sink.flush()
    own_server.pause()
    try:
        for i in range(200):
            sink.emit({"type": "routed", "call_id": f"p{i}"})
        poll(lambda: sink.down is not None, what="the sender noticing")
    finally:
        own_server.resume()
    assert sink.flush(30)
    records, _ = fleet.read_events()
    ids = [r["call_id"] for r in records if r["type"] == "routed"]
    assert ids == ["before", *(f"p{i}" for i in range(200))]
    poll(lambda: any(r["type"] == "fleet" for r in fleet.read_events()[0]),
         what="the recovery record")
    recovered = [r for r in fleet.read_events()[0] if r["type"] == "fleet"][0]
    assert recovered["event"] == "recovered" and recovered["dropped"] == 0


def test_overflow_while_redis_is_down_is_counted_and_reported(
        own_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_events, "MAX_PENDING", 50)
    fleet = store(own_server, tmp_path)
    sink = fleet.event_log()
    assert isinstance(sink, redis_events.RedisEventLog)
    own_server.kill()
    for i in range(120):
        sink.emit({"type": "routed", "call_id": f"d{i}"})
    poll(lambda: sink.down is not None, what="the sender noticing")
    assert sink.dropped > 0
    own_server.start()
    assert sink.flush(30)
    records, _ = fleet.read_events()
    recovered = [r for r in records if r["type"] == "fleet"]
    assert len(recovered) == 1 and recovered[0]["dropped"] == sink.dropped > 0
    kept = [r["call_id"] for r in records if r["type"] == "routed"]
    assert len(kept) + sink.dropped == 120 and kept == sorted(kept, key=lambda c: int(c[1:]))


# --- conversation memory -------------------------------------------------------------------------


def test_a_tool_id_remembered_on_one_instance_is_recalled_on_another(
        server: RedisServer, tmp_path: Path) -> None:
    fleet_name = f"m{next(_fleets)}"
    here = store(server, tmp_path / "a", fleet_name).memory()
    there = store(server, tmp_path / "b", fleet_name).memory()
    producer = Producer("high-reasoning", "anthropic/claude-opus", "high")
    here.remember(producer, ["sig-" + "x" * 200], ["toolu_01"])
    assert here.flush()
    assert here.recall([], ["toolu_01"]).tools == {"toolu_01": producer}  # local at once

    def found() -> Any:
        return there.recall(["sig-" + "x" * 200], ["toolu_01"])

    poll(lambda: found().tools, what="the other instance learning it")
    assert found().tools["toolu_01"] == producer
    assert found().signatures == {"sig-" + "x" * 200: producer}
    raw = server.client().xrange(f"rp:{{{fleet_name}}}:memory")
    assert all("sig-" not in str(fields) for _, fields in raw)  # hashes only, never the text


def test_the_status_line_and_the_report_read_the_fleets_stream(
        server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.clients.statusline import session_records

    fleet = store(server, tmp_path)
    sink = fleet.event_log()
    for n, session in enumerate(["s1", "s2", "s1"]):
        sink.emit({"v": 1, "type": "routed", "call_id": f"c{n}", "session": session,
                   "time": 1_800_000_000 + n})
        sink.emit({"v": 1, "type": "done", "call_id": f"c{n}", "time": 1_800_000_000 + n})
    assert sink.flush()
    assert [r["call_id"] for r in fleet.all_events()] == ["c0", "c0", "c1", "c1", "c2", "c2"]
    monkeypatch.setenv("REASONING_PANEL_REDIS_URL", server.url)
    monkeypatch.setenv("REASONING_PANEL_FLEET", fleet.keys.fleet)
    records = session_records(tmp_path / "elsewhere", "s2")
    assert ("routed", "c1") in [(r["type"], r["call_id"]) for r in records]


# --- the command line --------------------------------------------------------------------------


def test_a_proxy_started_while_redis_is_down_starts_and_says_how_it_routes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main
    from app.local_stack import free_port

    monkeypatch.setenv("REASONING_PANEL_REDIS_URL", "")  # main() sets it from --redis: undone after
    execs: list[dict[str, str]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: execs.append(env))  # the OS boundary
    url = f"redis://127.0.0.1:{free_port()}/0"
    demo = str(Path(__file__).resolve().parent.parent / "configs" / "demo.yaml")
    main(["--home", str(tmp_path), "proxy", "--config", demo, "--redis", url,
          "--num-workers", "3"])
    err = capsys.readouterr().err
    assert "warning: cannot reach Redis" in err and "routes with its last snapshot" in err
    assert execs and execs[0]["REASONING_PANEL_REDIS_URL"] == url
    assert execs[0]["REASONING_PANEL_WORKERS"] == "3"


def test_files_versions_are_content_hashes_and_if_version_guards_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    def run(*args: str) -> int:
        return main(["--home", str(tmp_path), *args])

    assert run("show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["instances"] == [] and len(shown["version"]) == 12
    assert run("pin", "high", "--if-version", shown["version"]) == 0
    assert run("pin", "low", "--if-version", shown["version"]) == 3
    assert "not changed: the state changed since it was read" in capsys.readouterr().err
    assert StateFile.in_home(tmp_path).read().pin == "high"
