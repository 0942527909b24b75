"""The background writer the stores share: order, limits, failures, retries, forks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.local_stack import PROJECT_ROOT
from callbacks.stores.writer import BatchWriter, WriterThread

from .redis_server import poll


def test_items_are_written_in_order_and_flush_waits_for_them() -> None:
    written: list[int] = []
    writer = BatchWriter("test", written.extend, max_pending=10_000, batch=7)
    for i in range(1000):
        writer.put(i)
    assert writer.flush(5.0)
    assert written == list(range(1000)) and not writer.pending()


def test_a_busy_producer_is_written_once_a_window_not_chased_write_by_write() -> None:
    """Items put while a round writes wait for the next round: a thread serving requests that
    puts all the time gets one write a window, not one for what arrived during each write (each
    of which hands the GIL back and forth with it)."""
    window, seconds = 0.05, 0.5
    writes: list[int] = []

    def write(batch: list[int]) -> None:
        writes.append(len(batch))
        time.sleep(0.002)  # a system call: what the producer puts meanwhile waits

    writer = BatchWriter("test-busy", write, max_pending=1_000_000, batch=1_000_000,
                         thread=WriterThread("test-busy", window_s=window))
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        writer.put(n)
        n += 1
        if n % 50 == 0:
            time.sleep(0.0001)  # between requests
    assert writer.flush(5.0)
    assert sum(writes) == n
    # a round begins at most once a window (and one more for what flush() waits for)
    assert len(writes) <= seconds / window + 2, writes


def test_writers_sharing_a_thread_are_written_by_one_thread_started_by_the_first_item() -> None:
    shared = WriterThread("test-shared", window_s=0.02)
    names: list[str] = []
    events: list[int] = []
    memory: list[int] = []

    def into(out: list[int]) -> Callable[[list[int]], None]:
        def write(batch: list[int]) -> None:
            names.append(threading.current_thread().name)
            out.extend(batch)
        return write

    first = BatchWriter("a", into(events), max_pending=1_000, thread=shared)
    second = BatchWriter("b", into(memory), max_pending=1_000, thread=shared)
    assert "reasoning-panel-test-shared" not in {t.name for t in threading.enumerate()}
    for i in range(300):  # a burst, as a loaded proxy's records and memory entries come
        first.put(i)
        second.put_many([i, -i])
    assert first.flush(5.0) and second.flush(5.0)
    assert events == list(range(300))
    assert memory == [x for i in range(300) for x in (i, -i)]
    assert set(names) == {"reasoning-panel-test-shared"}
    assert len(names) < 20  # the burst went in a few rounds, not one write per item
    assert [t.name for t in threading.enumerate()].count("reasoning-panel-test-shared") == 1


def test_a_full_queue_drops_and_counts_new_items_without_blocking() -> None:
    gate = threading.Event()
    written: list[int] = []

    def slow(batch: list[int]) -> None:
        gate.wait(5.0)
        written.extend(batch)

    writer = BatchWriter("test", slow, max_pending=5, batch=1)
    accepted = [writer.put(i) for i in range(50)]
    assert not all(accepted) and writer.dropped == accepted.count(False)
    assert not writer.put_many([100, 101, 102, 103, 104, 105])  # all or none
    gate.set()
    assert writer.flush(5.0)
    assert written == [i for i, ok in enumerate(accepted) if ok]


class Away(Exception):
    """A remote store that does not answer."""


class Pauses:
    """Delays between retries, counted; each waits until the test lets it go."""

    def __init__(self) -> None:
        self.waits = 0
        self.resets = 0
        self.go = threading.Event()

    def wait(self) -> None:
        self.waits += 1
        self.go.wait(5.0)

    def reset(self) -> None:
        self.resets += 1


def test_a_batch_failing_with_a_retry_exception_is_written_again_until_it_goes_through() -> None:
    tries: list[list[int]] = []
    written: list[int] = []

    def write(batch: list[int]) -> None:
        tries.append(batch)
        if len(tries) <= 3:
            raise Away("not answering")
        written.extend(batch)

    pauses = Pauses()
    writer = BatchWriter("test", write, max_pending=1_000, batch=10, retry=(Away,), backoff=pauses)
    for i in range(100):
        writer.put(i)
    poll(lambda: pauses.waits == 1, timeout=5.0, what="the first failure")
    for i in range(100, 150):  # queued meanwhile, written after the kept batch
        writer.put(i)
    assert not writer.flush(0.05) and writer.pending() and written == []
    pauses.go.set()
    assert writer.flush(5.0)
    assert written == list(range(150)) and writer.dropped == 0  # each once, in order
    assert tries[1] is tries[0] and tries[2] is tries[0] and tries[3] is tries[0]  # the same list
    assert pauses.waits == 3 and pauses.resets >= 1
    assert len(tries) == 3 + len({id(batch) for batch in tries})  # every other batch tried once


@pytest.mark.parametrize("retry", [(), (Away,)], ids=["no retry", "another exception retried"])
def test_a_failing_write_drops_its_batch_and_the_writer_goes_on(
        retry: tuple[type[Exception], ...]) -> None:
    written: list[str] = []

    def write(batch: list[str]) -> None:
        if "bad" in batch:
            raise OSError("disk full")
        written.extend(batch)

    pauses = Pauses()
    writer = BatchWriter("test", write, max_pending=100, batch=1, retry=retry, backoff=pauses)
    writer.put("bad")
    assert writer.flush(5.0)
    writer.put("good")
    assert writer.flush(5.0)
    assert written == ["good"] and writer.dropped == 1 and pauses.waits == 0


def test_a_forked_process_writes_its_own_items_only() -> None:
    read_fd, write_fd = os.pipe()
    writer = BatchWriter("test", lambda batch: os.write(write_fd, repr(batch).encode() + b"\n"),
                         max_pending=100)
    writer.put("parent")
    assert writer.flush(5.0)
    pid = os.fork()
    if pid == 0:  # the child: a new thread, its own queue
        writer.put("child")
        os._exit(0 if writer.flush(5.0) else 1)
    _, status = os.waitpid(pid, 0)
    os.close(write_fd)
    with os.fdopen(read_fd) as lines:
        assert lines.read().splitlines() == ["['parent']", "['child']"]
    assert os.waitstatus_to_exitcode(status) == 0


def test_what_is_queued_when_the_process_exits_is_written(tmp_path: Path) -> None:
    out = tmp_path / "written"
    script = (
        "import sys\n"
        "from callbacks.stores.writer import BatchWriter, WriterThread\n"
        "out = open(sys.argv[1], 'a')\n"
        "slow = WriterThread('slow', window_s=30)  # nothing is written in the process's life\n"
        "writer = BatchWriter('test', lambda batch: out.write(''.join(batch)) and out.flush(),\n"
        "                     max_pending=100, thread=slow)\n"
        "for item in 'abc':\n"
        "    writer.put(item)\n")
    done = subprocess.run([sys.executable, "-c", script, str(out)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "abc"
