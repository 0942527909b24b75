"""The event log in-process: writing, rotation, several writers, write errors, following, tail."""

from __future__ import annotations

import errno
import io
import json
import logging
import multiprocessing
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from app.tail import Merger, last_requests, run_tail
from callbacks.stores import eventlog
from callbacks.stores.base import EventSink
from callbacks.stores.eventlog import EventLog, follow, parse_lines, read_tail, rotated
from callbacks.stores.files import FileStore


def _log_files(path: Path) -> list[tuple[Path, int]]:
    """The rotated files (oldest first) and the live one, each with its inode."""
    files = sorted((f for f in path.parent.glob(path.name + ".*") if f.suffix[1:].isdigit()),
                   key=lambda p: -int(p.suffix[1:]))
    out = []
    for f in [*files, path]:
        try:
            out.append((f, f.stat().st_ino))
        except FileNotFoundError:  # rotated away since the glob
            continue
    return out


def all_records(path: Path) -> list[dict[str, Any]]:
    """Every record in the log and its rotated files, oldest first.

    A writer may rotate while this reads (files renamed one up): the read is then done again,
    so the records come from one consistent set of files, none missed or counted twice."""
    while True:
        files = _log_files(path)
        out: list[dict[str, Any]] = []
        try:
            for f, _ in files:
                out += parse_lines(f.read_bytes())
        except FileNotFoundError:
            continue
        if _log_files(path) == files:
            return out


def test_records_are_written_privately(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "home" / "events.jsonl")
    for i in range(3):
        log.emit({"type": "routed", "call_id": str(i)})
    assert log.flush()
    path = tmp_path / "home" / "events.jsonl"
    assert [r["call_id"] for r in parse_lines(path.read_bytes())] == ["0", "1", "2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def emit_changed_bad_and_good(sink: EventSink, caplog: pytest.LogCaptureFixture,
                              good: dict[str, Any]) -> None:
    """Emit a record then change it, a record that cannot be encoded, then ``good``."""
    record: dict[str, Any] = {"type": "routed", "call_id": "a", "notes": []}
    sink.emit(record)
    record["notes"].append("changed after it was emitted")
    looped: dict[str, Any] = {"type": "routed", "call_id": "loop"}
    looped["self"] = looped  # cannot be encoded
    with caplog.at_level(logging.ERROR, logger="reasoning_panel"):
        sink.emit(looped)  # never raises into the request
    sink.emit(good)


def test_a_record_is_written_as_it_was_emitted_and_a_bad_one_is_dropped_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    emit_changed_bad_and_good(log, caplog, {"type": "routed", "call_id": "b", "big": 2**70,
                                            "text": "é"})
    assert log.flush()
    written = parse_lines((tmp_path / "events.jsonl").read_bytes())
    assert written == [{"type": "routed", "call_id": "a", "notes": []},
                       {"type": "routed", "call_id": "b", "big": 2**70, "text": "é"}]
    assert log.dropped == 1
    assert "routed record cannot be written" in caplog.text


def test_rotation_keeps_whole_lines_and_the_configured_backups(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=2048, backups=2)
    for i in range(400):
        log.emit({"type": "routed", "call_id": f"c{i}", "pad": "x" * 40})
        if i % 50 == 0:
            log.flush()
    assert log.flush()
    assert rotated(path, 1).exists() and rotated(path, 2).exists()
    assert not rotated(path, 3).exists()
    for f in (path, rotated(path, 1), rotated(path, 2)):
        data = f.read_bytes()
        assert len(data) <= 2048 + 100 * 1000  # a batch may overshoot, never split
        assert data.endswith(b"\n")
        assert len(parse_lines(data)) == data.count(b"\n")  # no torn line
    kept = [int(r["call_id"][1:]) for r in all_records(path)]
    assert kept == sorted(kept) and kept[-1] == 399  # newest kept, in order, no duplicates


def _writer(path: str, worker: int, n: int) -> None:
    log = EventLog(Path(path), max_bytes=4096, backups=10_000)
    for i in range(n):
        log.emit({"type": "routed", "call_id": f"w{worker}-{i}", "pad": "y" * 30})
        if i % 50 == 0:  # many small batches: the two writers interleave and rotate often
            log.flush(30)
    log.flush(30)


def test_two_processes_rotating_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 3000)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = [r["call_id"] for r in all_records(path)]
    assert len(ids) == 6000
    assert set(ids) == {f"w{w}-{i}" for w in range(2) for i in range(3000)}
    assert len(list(tmp_path.glob("events.jsonl.*"))) > 20  # it did rotate, many times


def test_a_write_error_is_reported_once_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    real_write = os.write
    full = threading.Event()
    full.set()

    def disk_full(fd: int, data: Any) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(eventlog.os, "write", disk_full)
    with caplog.at_level(logging.WARNING, logger="reasoning_panel"):
        for i in range(5):
            log.emit({"type": "routed", "call_id": f"lost{i}"})
            log.flush()
        assert caplog.text.count("cannot write the event log") == 1
        assert "No space left on device" in caplog.text
        full.clear()  # space is back: writing resumes
        log.emit({"type": "routed", "call_id": "kept"})
        assert log.flush()
    assert [r["call_id"] for r in parse_lines(path.read_bytes())] == ["kept"]
    assert "writable again" in caplog.text


def test_follow_sees_every_record_once_across_rotations(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=2048, backups=1)
    log.emit({"type": "routed", "call_id": "before"})
    log.flush()
    stop = threading.Event()
    seen: list[str] = []
    started = threading.Event()

    def reader() -> None:
        for batch in follow(path, poll=0.005, stop=stop):
            started.set()
            seen.extend(r["call_id"] for r in batch)

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(5)
    for i in range(300):
        log.emit({"type": "routed", "call_id": f"n{i}", "pad": "z" * 40})
        if i % 10 == 0:
            log.flush()
            threading.Event().wait(0.01)
    log.flush()
    deadline = threading.Event()
    for _ in range(200):
        if len(seen) >= 300:
            break
        deadline.wait(0.02)
    stop.set()
    thread.join(5)
    assert seen == [f"n{i}" for i in range(300)]  # not "before": following starts at the end


ROUTED = {"type": "routed", "endpoint": "/v1/messages", "client_model": "claude-opus-4-8",
          "signal": "output_config.effort", "value": "medium", "strength": "medium",
          "target": "medium-reasoning", "reason": "routed"}


def sample_log(path: Path) -> None:
    records = []
    for i in range(30):
        records.append({**ROUTED, "call_id": f"id{i}", "time": 1_800_000_000 + i})
        records.append({"type": "done", "call_id": f"id{i}", "time": 1_800_000_000.5 + i,
                        "model_group": "medium-reasoning", "latency_ms": 250.0 + i,
                        "ttft_ms": None, "input_tokens": 1200, "output_tokens": 80 + i})
    records.insert(10, {"type": "state", "event": "reload", "time": 1_800_000_004,
                        "changes": [{"key": "pin", "old": None, "new": "high"}]})
    records.append({**ROUTED, "call_id": "fail", "time": 1_800_000_100,
                    "client_model": "claude-sonnet-5"})
    records.append({"type": "failed", "call_id": "fail", "time": 1_800_000_101,
                    "status_code": 500, "error_class": "InternalServerError",
                    "message": "upstream broke"})
    records.append({**ROUTED, "call_id": "flying", "time": 1_800_000_102, "reason": "pinned",
                    "pin": "high", "target": "high-reasoning"})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_tail_prints_the_last_requests_merged(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sample_log(path)
    out = io.StringIO()
    assert run_tail(FileStore(tmp_path), 5, follow_log=False, as_json=False, out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert "output_config.effort=medium" in lines[0] and "medium -> medium-reasoning" in lines[0]
    assert "ok" in lines[0] and "277ms" in lines[0] and "1.2k/107 tok" in lines[0]
    assert "claude-sonnet-5" in lines[3] and "error 500" in lines[3] and "upstream broke" in lines[3]
    assert "in flight" in lines[4] and "medium -> high-reasoning (pinned high)" in lines[4]


def test_tail_json_prints_raw_records(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sample_log(path)
    out = io.StringIO()
    run_tail(FileStore(tmp_path), 2, follow_log=False, as_json=True, out=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["type"], r["call_id"]) for r in records] == [
        ("routed", "fail"), ("failed", "fail"), ("routed", "flying")]


def test_last_requests_keeps_state_records_in_the_window(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sample_log(path)
    records, _ = read_tail(path)
    window = last_requests(records, 28)
    assert {r["type"] for r in window} == {"routed", "done", "failed", "state"}
    lines = Merger(colour=False).feed(window)
    assert any(line.endswith("state reloaded: pin: None -> high") for line in lines)


def test_emit_never_waits_for_a_stuck_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """A write stuck on a slow disk holds the writer thread, never the caller (the proxy's
    event loop): every emit returns while the disk is stuck, and nothing is lost after."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    stuck, entered = threading.Event(), threading.Event()
    real_write = os.write

    def slow_write(fd: int, data: Any) -> int:
        entered.set()
        stuck.wait(30)
        return real_write(fd, data)

    monkeypatch.setattr(eventlog.os, "write", slow_write)
    log.emit({"type": "routed", "call_id": "first"})
    assert entered.wait(5)  # the writer is now inside a write that does not return
    for i in range(500):
        log.emit({"type": "routed", "call_id": f"during{i}"})
    assert not stuck.is_set()  # all 500 emits returned while the disk was stuck
    stuck.set()
    assert log.flush(10)
    ids = [r["call_id"] for r in parse_lines(path.read_bytes())]
    assert ids == ["first"] + [f"during{i}" for i in range(500)]


def test_tail_says_what_the_provider_got_and_marks_holds_and_losses(tmp_path: Path) -> None:
    from app.tail import format_request

    routed = {**ROUTED, "call_id": "c", "time": 1_800_000_000, "reason": "held", "target": "high-reasoning",
              "held": {"target": "high-reasoning", "instead_of": "low-reasoning", "tool_use": "t"}}
    done = {"type": "done", "call_id": "c", "latency_ms": 12.0, "input_tokens": 9, "output_tokens": 3,
            "sent": {"thinking.type": "adaptive", "output_config.effort": "medium"}}
    line = format_request(routed, done)
    assert "-> high-reasoning (held: tool loop; else low-reasoning)" in line
    assert "sent: thinking=adaptive effort=medium" in line and "⚠" not in line
    line = format_request({**routed, "held": None, "reason": "routed"},
                          {**done, "hidden_retry": True, "sent": {}})
    assert "sent: no reasoning" in line
    assert "⚠ LiteLLM retried it without thinking after the provider refused a block" in line


def test_last_requests_keeps_the_decision_of_an_overlapping_request() -> None:
    """Two requests in flight at once: the window of the last one still holds the decision of
    the other (no line without its decision)."""
    records = [{**ROUTED, "call_id": "a", "time": 1}, {**ROUTED, "call_id": "b", "time": 2},
               {"type": "done", "call_id": "a", "time": 3}, {"type": "done", "call_id": "b", "time": 4}]
    assert [(r["type"], r["call_id"]) for r in last_requests(records, 1)] == [
        ("routed", "b"), ("done", "b")]
    window = last_requests(records[:1] + records[2:3] + records[1:2] + records[3:], 2)
    assert sorted((r["call_id"], r["type"]) for r in window) == [
        ("a", "done"), ("a", "routed"), ("b", "done"), ("b", "routed")]
