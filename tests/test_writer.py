"""The background writer the event log and the memory share: order, limits, failures, forks."""

from __future__ import annotations

import os
import threading

from callbacks.stores.writer import BatchWriter


def test_items_are_written_in_order_and_flush_waits_for_them() -> None:
    written: list[int] = []
    writer = BatchWriter("test", written.extend, max_pending=10_000, batch=7)
    for i in range(1000):
        writer.put(i)
    assert writer.flush(5.0)
    assert written == list(range(1000)) and not writer.pending()


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


def test_a_failing_write_does_not_stop_the_writer() -> None:
    written: list[str] = []

    def write(batch: list[str]) -> None:
        if "bad" in batch:
            raise OSError("disk full")
        written.extend(batch)

    writer = BatchWriter("test", write, max_pending=100, batch=1)
    writer.put("bad")
    assert writer.flush(5.0)
    writer.put("good")
    assert writer.flush(5.0) and written == ["good"]


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
