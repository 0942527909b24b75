"""One background writer shape for the stores: queue on the request path, write in batches.

The request path appends to a deque; only the first item of a round wakes the writer thread
(one per process), which then waits ``window_s`` for what else comes and hands it all, in
batches, to ``write``. An idle writer never wakes, and a busy one wakes once a window: every
wake-up of a Python thread takes the GIL from the thread serving requests, so a thread that
polled every few milliseconds cost a loaded proxy more than the writing itself. A new process
(a forked proxy worker) starts its own thread and queue: what the parent had queued is the
parent's to write. Past ``max_pending`` queued items, new ones are dropped and counted in
``dropped``, never blocking the caller.

A write that raises one of the ``retry`` exceptions (a remote store away) keeps its batch: after
a pause from ``backoff`` (``window_s`` without one) the very same list is written again, until it
goes through; meanwhile ``flush`` waits and new items queue up to ``max_pending``. Any other
exception drops the batch (counted in ``dropped``, logged) and the writer goes on.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final, Generic, Protocol, TypeVar

log = logging.getLogger("reasoning_panel")

T = TypeVar("T")
WINDOW_S: Final = 0.025  # how long the first item of a round waits for others before the write


class Delays(Protocol):
    """Pauses between retries, e.g. :class:`callbacks.stores.base.Backoff`."""

    def wait(self) -> None: ...

    def reset(self) -> None: ...


class BatchWriter(Generic[T]):
    """Items put from any thread, written in order by one thread per process."""

    def __init__(self, name: str, write: Callable[[list[T]], None], max_pending: int,
                 batch: int = 1_000, window_s: float = WINDOW_S,
                 retry: tuple[type[Exception], ...] = (), backoff: Delays | None = None) -> None:
        self.name = name
        self.max_pending = max_pending
        self.batch = batch
        self.window_s = window_s
        self.dropped = 0
        """Items not written: the queue was full, or their batch failed."""
        self._write = write
        self._retry = retry
        self._backoff = backoff
        self._queue: collections.deque[T] = collections.deque()
        self._wake = threading.Event()
        self._armed = False  # the writer is awake or woken for the items queued
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
        if not self._armed:
            self._arm()
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
        if not self._armed:
            self._arm()
        return True

    def _arm(self) -> None:
        self._armed = True
        self._wake.set()

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
        self._wake = threading.Event()
        self._armed = self._busy = False
        threading.Thread(target=self._run, args=(self._queue, self._wake),
                         name=f"reasoning-panel-{self.name}", daemon=True).start()

    def _run(self, queue: collections.deque[T], wake: threading.Event) -> None:
        while True:
            wake.wait()
            time.sleep(self.window_s)  # what the window brings goes in the same write
            wake.clear()
            self._armed = False  # before taking: an item put after this wakes the next round
            while queue:
                self._busy = True  # before taking: flush() sees the queue or the batch in hand
                batch: list[T] = []
                while queue and len(batch) < self.batch:
                    batch.append(queue.popleft())
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
                    time.sleep(self.window_s)
                else:
                    self._backoff.wait()
        if self._backoff is not None:
            self._backoff.reset()
