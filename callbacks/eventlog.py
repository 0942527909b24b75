"""The event log on disk: append from any number of processes, rotate, read back, follow.

Writing never blocks the proxy's event loop: :meth:`EventLog.emit` only queues the record; a
background thread writes batches of whole lines. Every batch is written under an exclusive
``flock`` shared by all writers (proxy workers), which is also held while rotating, so with
several workers no line is torn, lost or written twice. A write error (disk full, permission
denied) drops that batch, is reported once in the proxy log, and never reaches a request.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("reasoning_panel")

EVENTS_NAME: Final = "events.jsonl"
DEFAULT_MAX_BYTES: Final = 32 * 1024 * 1024
DEFAULT_BACKUPS: Final = 1
MAX_PENDING: Final = 50_000  # records queued in memory before new ones are dropped
BATCH: Final = 1_000


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode() \
        + b"\n"


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


class EventLog:
    """Appends records to ``events.jsonl`` from a background thread."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._emitted = itertools.count(1)  # next() is atomic: safe from any thread
        self._last_emitted = 0
        self._written = 0
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._failing: str | None = None  # the write error already reported
        self.dropped = 0

    # --- producer side (the request path): cheap, never raises -------------------------------

    def emit(self, record: dict[str, Any]) -> None:
        """Queue a record for writing."""
        if self._pid != os.getpid():
            self._start()
        if self._last_emitted - self._written >= MAX_PENDING:
            self.dropped += 1
            return
        self._last_emitted = next(self._emitted)
        self._idle.clear()
        self._queue.put(record)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (or dropped)."""
        return self._idle.wait(timeout)

    def _start(self) -> None:
        # a new process (or the first use): the writer thread and file handles are per process
        self._pid = os.getpid()
        self._fd = self._lock_fd = None
        self._queue = queue.SimpleQueue()
        self._emitted, self._last_emitted, self._written = itertools.count(1), 0, 0
        self._thread = threading.Thread(target=self._run, name="reasoning-panel-events",
                                        daemon=True)
        self._thread.start()

    # --- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        q = self._queue
        while True:
            batch = [q.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            data = b"".join(encode(r) for r in batch if r is not None)
            try:
                self._write(data)
            except Exception as exc:  # noqa: BLE001 - the writer must never die
                self._report(exc)
            self._written += len(batch)
            if self._written >= self._last_emitted and q.empty():
                self._idle.set()

    def _report(self, exc: BaseException) -> None:
        problem = f"{type(exc).__name__}: {exc}"
        if problem != self._failing:
            self._failing = problem
            log.error("reasoning-panel: cannot write the event log %s (%s); routing goes on, "
                      "records are dropped until it is writable", self.path, problem)
        with contextlib.suppress(OSError):
            if self._fd is not None:
                os.close(self._fd)
        self._fd = None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._lock_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT,
                                    0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            fd = self._fd
            # another writer may have rotated the file since we opened it
            if fd is None or _inode(self.path) != os.fstat(fd).st_ino:
                if fd is not None:
                    os.close(fd)
                fd = self._fd = self._open()
            size = os.fstat(fd).st_size
            if size and size + len(data) > self.max_bytes:
                os.close(fd)
                self._fd = None
                self._rotate()
                fd = self._fd = self._open()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if self._failing:
            log.warning("reasoning-panel: the event log %s is writable again", self.path)
            self._failing = None

    def _rotate(self) -> None:
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            if rotated(self.path, n).exists():
                os.replace(rotated(self.path, n), rotated(self.path, n + 1))
        os.replace(self.path, rotated(self.path, 1))


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


# --- reading -------------------------------------------------------------------------------


def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """Records of complete lines; anything unparsable is skipped."""
    out = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _tail_bytes(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a file, starting at a line boundary."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - limit)
            f.seek(start)
            data = f.read()
    except (FileNotFoundError, IsADirectoryError):
        return b""
    if start:
        data = data[data.find(b"\n") + 1:]
    return data


def read_tail(path: Path, enough: Callable[[list[dict[str, Any]]], bool] | None = None,
              limit: int = 8 * 1024 * 1024) -> list[dict[str, Any]]:
    """Recent records, oldest first: the tail of the log, and of the rotated file when the
    current one does not hold ``enough`` (reads at most ``limit`` bytes of each)."""
    records = parse_lines(_tail_bytes(path, limit))
    if enough is None or not enough(records):
        records = parse_lines(_tail_bytes(rotated(path, 1), limit)) + records
    return records


def follow(path: Path, poll: float = 0.05, from_start: bool = False,
           stop: threading.Event | None = None) -> Iterator[list[dict[str, Any]]]:
    """Yield batches of new records as they are appended, across rotations, until ``stop``."""
    f = None
    inode = None
    buffer = b""
    try:
        while stop is None or not stop.is_set():
            if f is None:
                try:
                    f = open(path, "rb")  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    time.sleep(poll)
                    continue
                inode = os.fstat(f.fileno()).st_ino
                if not from_start:
                    f.seek(0, os.SEEK_END)
                from_start = True  # after a rotation, read the new file from its start
            chunk = f.read()
            if chunk:
                buffer += chunk
                complete, _, buffer = buffer.rpartition(b"\n")
                if complete:
                    yield parse_lines(complete)
                continue
            if _inode(path) != inode:  # rotated: the old file is finished, go to the new one
                rest = f.read()
                f.close()
                f = None
                if rest:
                    buffer += rest
                    complete, _, buffer = buffer.rpartition(b"\n")
                    if complete:
                        yield parse_lines(complete)
                continue
            yield []
            time.sleep(poll)
    finally:
        if f is not None:
            f.close()
