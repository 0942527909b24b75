"""One background writer shape for the stores: queue on the request path, write in batches.

The request path appends to a deque; only the first item of a round wakes the writer's thread
(:class:`WriterThread`, one per process), which then waits ``window_s`` for what else comes and
hands it all, in batches, to each due writer's ``write``. An idle thread never wakes and a busy
one wakes once a window: each wake-up of a Python thread costs the thread serving requests the
GIL and, on a virtual machine, a cross-CPU interrupt. The local files' writers share one thread
(:data:`LOCAL`); a writer whose items another process needs at once (the memory of a proxy with
several workers) takes a short window on a thread of its own, and one whose items no other
process reads while this one runs (the memory of a proxy with one worker) a long one
(:data:`KEEP_S`). A new process (a forked proxy worker) starts its own thread and queues: what
the parent had queued is the parent's to write. Past ``max_pending`` queued items, new ones are
dropped and counted in ``dropped``, never blocking the caller. When the interpreter exits
normally, what is queued is written first; ``reasoning-panel proxy`` turns SIGTERM into a normal
exit for that (:mod:`callbacks.litellm_proxy`).

A write that raises one of the ``retry`` exceptions (a remote store away) keeps its batch: after
a pause from ``backoff`` (``window_s`` without one) the very same list is written again, until it
goes through; meanwhile ``flush`` waits and new items queue up to ``max_pending``. Any other
exception drops the batch (counted in ``dropped``, logged) and the writer goes on.
"""

from __future__ import annotations

import _thread
import atexit
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Generic, Protocol, TypeVar

log = logging.getLogger("reasoning_panel")

T = TypeVar("T")
WINDOW_S: Final = 0.05  # how long the first item of a round waits for others before the write


class Delays(Protocol):
    """Pauses between retries, e.g. :class:`callbacks.stores.base.Backoff`."""

    def wait(self) -> None: ...

    def reset(self) -> None: ...


class WriterThread:
    """The thread that writes the batches of the writers sharing it (one thread per process):
    woken by the first item of a round, it waits ``window_s`` for more and writes them all."""

    def __init__(self, name: str, window_s: float = WINDOW_S) -> None:
        self.name = name
        self.window_s = window_s
        self._due: collections.deque[BatchWriter[Any]] = collections.deque()
        self._wake = _locked()  # released by the first item of a round
        self._armed = False  # the thread is awake or woken for the writers due
        self._pid = 0
        self._served: dict[int, BatchWriter[Any]] = {}  # this process's writers, by id
        self._hurry = _locked()  # released when the process exits: write without a window
        self._hurrying = False

    def schedule(self, writer: BatchWriter[Any]) -> None:
        """Have ``writer``'s queue written in the current round."""
        if self._pid != os.getpid():  # a new process (a forked worker) starts its own thread
            self._pid, self._due = os.getpid(), collections.deque()
            self._wake, self._hurry = _locked(), _locked()
            self._armed, self._served, self._hurrying = False, {}, False
            threading.Thread(target=self._run, args=(self._due, self._wake, self._hurry),
                             name=f"reasoning-panel-{self.name}", daemon=True).start()
            atexit.register(self._flush_at_exit, self._pid)
        self._served.setdefault(id(writer), writer)
        self._due.append(writer)
        if not self._armed:
            self._armed = True
            with contextlib.suppress(RuntimeError):  # two threads at once: released already
                self._wake.release()  # once a round: the thread takes it back before the next

    def _run(self, due: collections.deque[BatchWriter[Any]], wake: _thread.LockType,
             hurry: _thread.LockType) -> None:
        # Plain locks, not ``threading.Event``: each wait of an Event is Python code that
        # allocates a lock. A round of ten records took this thread 130 us alone and 300 to
        # 500 us beside a thread running Python (each blocking call hands the GIL over, and
        # taking it back from a busy thread costs switches) with Events; 110 and 240 us now.
        while True:
            wake.acquire()
            if not self._hurrying and hurry.acquire(timeout=self.window_s):  # the exit hurries
                hurry.release()  # what the window brings goes in the same writes
            self._armed = False  # before taking: a writer due after this wakes the next round
            for _ in range(len(due)):  # only the writers due now: one that more items make due
                due.popleft().drain()  # meanwhile is written after the next window, not chased

    def _flush_at_exit(self, pid: int, timeout: float = 2.0) -> None:
        """Write what is queued before the process ends (the thread is a daemon)."""
        if pid != os.getpid():  # registered by the process this one was forked from
            return
        self._hurrying = True  # no more windows
        with contextlib.suppress(RuntimeError):
            self._hurry.release()
        deadline = time.monotonic() + timeout
        for writer in list(self._served.values()):
            writer.flush(max(0.0, deadline - time.monotonic()))


def _locked() -> _thread.LockType:
    """A lock taken already: a waiter blocks on it until another thread releases it."""
    lock = _thread.allocate_lock()
    lock.acquire()
    return lock


KEEP_S: Final = 1.0
"""The window of a writer whose items only this process needs while it runs (the conversation
memory of a proxy with one worker answers from its own cache): one write a second, not one a
round of the event log (each SQLite commit costs the thread serving requests its GIL)."""

PROMPT_S: Final = 0.002
"""The window of a writer whose items other processes need at once (the conversation memory of
a proxy with several workers: the worker serving a conversation's next turn must know who made
its reasoning)."""

LOCAL: Final = WriterThread("local")
"""The thread of the writers to this machine's files that no other process waits for: the event
log (the memory of a proxy with one worker has a thread of its own, with :data:`KEEP_S`)."""


class BatchWriter(Generic[T]):
    """Items put from any thread, written in order, in batches, by a :class:`WriterThread`."""

    def __init__(self, name: str, write: Callable[[list[T]], None], max_pending: int,
                 batch: int = 1_000, thread: WriterThread | None = None,
                 retry: tuple[type[Exception], ...] = (), backoff: Delays | None = None) -> None:
        self.name = name
        self.max_pending = max_pending
        self.batch = batch
        self.thread = thread or WriterThread(name)
        self.dropped = 0
        """Items not written: the queue was full, or their batch failed."""
        self._write = write
        self._retry = retry
        self._backoff = backoff
        self._queue: collections.deque[T] = collections.deque()
        self._due = False  # scheduled on the thread for the items queued
        self._pid = 0
        self._busy = False

    def put(self, item: T) -> bool:
        """Queue one item; False (and counted in ``dropped``) when the queue is full."""
        if self._pid != os.getpid():
            self._start()
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            return False
        self._queue.append(item)
        if not self._due:
            self._schedule()
        return True

    def put_many(self, items: Iterable[T]) -> bool:
        """Queue several items together, or none of them (all counted as dropped)."""
        items = list(items)
        if self._pid != os.getpid():
            self._start()
        if len(self._queue) + len(items) > self.max_pending:
            self.dropped += len(items)
            return False
        self._queue.extend(items)
        if not self._due:
            self._schedule()
        return True

    def _schedule(self) -> None:
        self._due = True
        self.thread.schedule(self)

    def pending(self) -> bool:
        """Whether anything queued is not written yet."""
        return bool(self._queue) or self._busy

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue or self._busy:
            if self._pid != os.getpid():
                self._start()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue = collections.deque()
        self._due = self._busy = False

    def drain(self) -> None:
        """Write everything queued (on the writer thread)."""
        self._due = False  # before taking: an item put after this schedules the next round
        queue = self._queue
        left = len(queue)  # what was queued by now: what comes during the writes waits for the
        while left:        # next round, or each write would hand the GIL back and forth for it
            self._busy = True  # before taking: flush() sees the queue or the batch in hand
            batch = [queue.popleft() for _ in range(min(left, self.batch))]
            left -= len(batch)
            try:
                self._write_until_done(batch)
            except Exception:  # noqa: BLE001 - the writer must never die
                self.dropped += len(batch)
                log.exception("reasoning-panel: the %s writer failed a batch", self.name)
            finally:
                self._busy = False

    def _write_until_done(self, batch: list[T]) -> None:
        while True:
            try:
                self._write(batch)
                break
            except self._retry:  # the same list again: ``write`` may know it by identity
                if self._backoff is None:
                    time.sleep(self.thread.window_s)
                else:
                    self._backoff.wait()
        if self._backoff is not None:
            self._backoff.reset()
