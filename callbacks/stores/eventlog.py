"""The event log on disk: append from any number of processes, rotate, read back, follow.

Writing never blocks the proxy's event loop: :meth:`EventLog.emit` only queues the record; a background
thread (:class:`~callbacks.stores.writer.BatchWriter`) writes batches of whole lines. Every
batch is written under an exclusive ``flock`` shared by all writers (proxy workers), which is
also held while rotating, so with several workers no line is torn, lost or written twice. A
write error (disk full, permission denied) drops that batch, is reported once in the proxy log,
and never reaches a request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from callbacks.stores.writer import BatchWriter


def _log() -> Any:
    """The proxy's logger, imported on first use: readers (the status line) never need it."""
    import logging

    return logging.getLogger("reasoning_panel")


EVENTS_NAME: Final = "events.jsonl"
DEFAULT_MAX_BYTES: Final = 32 * 1024 * 1024
DEFAULT_BACKUPS: Final = 1
MAX_PENDING: Final = 50_000  # records queued in memory before new ones are dropped
BATCH: Final = 1_000


# one encoder for every record: ``json.dumps`` with options builds a new one each call
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
_orjson: Any = None
"""orjson's ``dumps`` and its options (a LiteLLM proxy has it, in its proxy extras: the same
bytes, about 7x faster), imported by the first :func:`encode`: the readers (the status line,
run after every answer) never pay its import (datetime, uuid, platform: 7 ms). False without
it."""


def _load_orjson() -> Any:
    global _orjson
    try:
        import orjson
    except ImportError:  # pragma: no cover - the proxy's extras bring it
        _orjson = False
    else:
        _orjson = (orjson.dumps, orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
    return _orjson


def encode(record: dict[str, Any]) -> bytes:
    """A record as one line of compact JSON (UTF-8, non-ASCII characters as they are): orjson
    takes 0.7 us where the json module takes 5 us, for the same bytes (see :meth:`EventLog.emit`)."""
    fast = _orjson if _orjson is not None else _load_orjson()
    if fast:
        try:
            return fast[0](record, default=str, option=fast[1])  # type: ignore[no-any-return]
        except TypeError:  # what orjson refuses (an integer past 64 bits): the json module's
            pass
    return (_ENCODER.encode(record) + "\n").encode()


def put_encoded(writer: BatchWriter[bytes], record: dict[str, Any], where: str) -> None:
    """Queue ``record`` encoded on ``writer``; one that cannot be encoded is dropped alone,
    counted in ``writer.dropped`` and logged (never raised into a request)."""
    try:
        line = encode(record)
    except Exception as exc:  # noqa: BLE001 - never raised into a request: dropped, said
        writer.dropped += 1
        _log().error("reasoning-panel: a %s record cannot be %s: %s",
                     record.get("type") if isinstance(record, dict) else "?", where, exc)
        return
    writer.put(line)


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


class EventLog:
    """Appends records to ``events.jsonl`` from a background thread."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        from callbacks.stores.writer import LOCAL, BatchWriter  # the proxy's side only

        self._writer: BatchWriter[bytes] = BatchWriter(
            "events", self._write_batch, MAX_PENDING, BATCH, thread=LOCAL)
        self._fd: int | None = None
        self._ino = 0  # the inode of the file ``_fd`` is open on
        self._lock_fd: int | None = None
        self._pid = 0
        self._failing: str | None = None  # the write error already reported

    @property
    def dropped(self) -> int:
        """Records dropped because too many were waiting to be written."""
        return self._writer.dropped

    # --- producer side (the request path): cheap, never raises -------------------------------

    def emit(self, record: dict[str, Any]) -> None:
        """Queue a record for writing (the writer takes it within a window).

        It is encoded here, while it is still in the CPU's caches (1 us): the writer thread
        then only joins lines and writes them. Each microsecond that thread runs Python holds
        the GIL that the thread serving requests waits for; encoding there cost it 5 to 10 us a
        record. And a record changed after it was emitted is written as it was."""
        put_encoded(self._writer, record, "written to the event log")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (or dropped)."""
        return self._writer.flush(timeout)

    # --- writer thread -----------------------------------------------------------------------

    def _write_batch(self, batch: list[bytes]) -> None:
        if self._pid != os.getpid():  # a forked worker: the file handles are per process
            self._pid, self._fd, self._lock_fd = os.getpid(), None, None
        try:
            self._write(b"".join(batch))
        except Exception as exc:  # noqa: BLE001 - reported once, the batch is dropped
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        problem = f"{type(exc).__name__}: {exc}"
        if problem != self._failing:
            self._failing = problem
            _log().error("reasoning-panel: cannot write the event log %s (%s); routing goes on, "
                      "records are dropped until it is writable", self.path, problem)
        with contextlib.suppress(OSError):
            if self._fd is not None:
                os.close(self._fd)
        self._fd = None

    def _open(self) -> tuple[int, os.stat_result]:
        """Open the log for appending: its descriptor (kept in ``_fd``, its inode in ``_ino``)
        and its stat."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        st = os.fstat(fd)
        self._ino = st.st_ino
        return fd, st

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._lock_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT,
                                    0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            # one stat a batch: the file at the path, whose size counts if it is still ours
            # (another writer may have rotated it since we opened it). Each system call of
            # this thread lets the GIL go, and takes it back from the thread serving requests
            fd, st = self._fd, _stat(self.path)
            if fd is None or st is None or st.st_ino != self._ino:
                if fd is not None:
                    self._fd = None  # closed once, whether or not the open below succeeds
                    os.close(fd)
                fd, st = self._open()
            if st.st_size and st.st_size + len(data) > self.max_bytes:
                self._fd = None
                os.close(fd)
                self._rotate()
                fd, _ = self._open()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if self._failing:
            _log().warning("reasoning-panel: the event log %s is writable again", self.path)
            self._failing = None

    def _rotate(self) -> None:
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            if rotated(self.path, n).exists():
                os.replace(rotated(self.path, n), rotated(self.path, n + 1))
        os.replace(self.path, rotated(self.path, 1))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _inode(path: Path) -> int | None:
    st = _stat(path)
    return None if st is None else st.st_ino


# --- reading -------------------------------------------------------------------------------


Select = Callable[[bytes], Iterable[bytes]]
"""Picks the lines worth parsing out of raw complete lines (cheaper than parsing them all)."""


def parse_lines(data: bytes, select: Select | None = None) -> list[dict[str, Any]]:
    """Records of complete lines (those ``select`` picks); anything unparsable is skipped."""
    out = []
    for line in data.split(b"\n") if select is None else select(data):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


Position = tuple[int | None, int]  # (inode, offset) of a log file


def _tail_bytes(path: Path, limit: int) -> tuple[bytes, Position]:
    """The last ``limit`` bytes of a file (from a line boundary, up to its last whole line),
    and the position just after them."""
    try:
        with open(path, "rb") as f:
            inode = os.fstat(f.fileno()).st_ino
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - limit)
            f.seek(start)
            data = f.read(size - start)
    except (FileNotFoundError, IsADirectoryError):
        return b"", (None, 0)
    if start:
        data = data[data.find(b"\n") + 1:]
    whole = data.rfind(b"\n") + 1  # a line still being written is left to the follower
    return data[:whole], (inode, size - (len(data) - whole))


def read_tail(path: Path, enough: Callable[[list[dict[str, Any]]], bool] | None = None,
              limit: int = 8 * 1024 * 1024, select: Select | None = None
              ) -> tuple[list[dict[str, Any]], Position]:
    """Recent records, oldest first: the tail of the log, and of the rotated file when the
    current one does not hold ``enough`` (reads at most ``limit`` bytes of each); and the
    position where a follower should go on. ``select`` picks the lines to parse."""
    data, position = _tail_bytes(path, limit)
    records = parse_lines(data, select)
    if enough is None or not enough(records):
        records = parse_lines(_tail_bytes(rotated(path, 1), limit)[0], select) + records
    return records, position


def read_all(path: Path) -> list[dict[str, Any]]:
    """Every record of the log and its rotated files, oldest first."""
    files = []
    n = 1
    while rotated(path, n).exists():
        files.append(rotated(path, n))
        n += 1
    records: list[dict[str, Any]] = []
    for file in [*reversed(files), path]:
        try:
            records += parse_lines(file.read_bytes())
        except FileNotFoundError:  # rotated away while reading
            continue
    return records


def follow(path: Path, poll: float = 0.02, position: Position | None = None,
           stop: threading.Event | None = None) -> Iterator[list[dict[str, Any]]]:
    """Yield batches of new records as they are appended, across rotations, until ``stop``.

    Starts at ``position`` (from :func:`read_tail`) when it is still the current file, else at
    the end of the file; an empty batch means "nothing new yet".
    """
    f = None
    inode = None
    buffer = b""
    from_start = False
    try:
        while stop is None or not stop.is_set():
            if f is None:
                try:
                    f = open(path, "rb")  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    time.sleep(poll)
                    continue
                inode = os.fstat(f.fileno()).st_ino
                if position is not None and position[0] in (inode, None):
                    f.seek(position[1] if position[0] == inode else 0)  # None: it was missing
                elif not from_start:
                    f.seek(0, os.SEEK_END)
                position = None
                from_start = True  # after a rotation, read the new file from its start
            chunk = f.read()
            rotated_away = not chunk and _inode(path) != inode
            if rotated_away:  # the old file is finished: take its last bytes, go to the new one
                chunk = f.read()
                f.close()
                f = None
            if chunk:
                buffer += chunk
                complete, _, buffer = buffer.rpartition(b"\n")
                if complete:
                    yield parse_lines(complete)
            if chunk or rotated_away:
                continue
            yield []
            time.sleep(poll)
    finally:
        if f is not None:
            f.close()
