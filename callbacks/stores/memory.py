"""Conversation memory: which target produced each thinking signature and each ``tool_use`` id.

Shared by every worker of a proxy (one conversation's steps land on different workers) and kept
across restarts. Fed from the success hooks with what each call produced; read on the request
path to keep the thinking blocks a target can verify and to hold a tool loop on the model that
made its ``tool_use``. It never holds prompt or response text: signatures are stored as hashes,
tool ids as they are (they are opaque ids).

:class:`ConversationMemory` is the interface the callback uses; :class:`SqliteMemory` is the
embedded backend (``memory.sqlite3`` in the state folder, private). Writes go through a
background thread, so a slow disk or a lock held by another worker never holds the event loop;
reads are one indexed query (WAL mode: readers never wait for writers).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from callbacks.stores.writer import KEEP_S, PROMPT_S, BatchWriter, WriterThread

log = logging.getLogger("reasoning_panel")

MEMORY_NAME: Final = "memory.sqlite3"
MAX_ENTRIES: Final = 200_000
MAX_AGE_S: Final = 7 * 24 * 3600
MAX_PENDING: Final = 20_000
PRUNE_EVERY: Final = 2_000  # inserts between prunes
KNOWN_CACHE: Final = 50_000  # signatures whose producer this process remembers
ROWS_A_STATEMENT: Final = 199  # 995 bound values: under the oldest SQLite's limit of 999


@dataclass(frozen=True)
class Producer:
    """Who produced a block: the model group the proxy sent the call to, and its deployment."""

    group: str
    """Model group (``model_name``) that served the call: what a held continuation is sent to."""
    model: str = ""
    """The deployment's upstream model (``litellm_params.model``): what verifies a signature."""
    tier: str | None = None
    """The tier the call was routed as; None when it passed through."""


@dataclass
class Recall:
    """What the memory knows about the blocks of one request."""

    signatures: dict[str, Producer] = field(default_factory=dict)
    tools: dict[str, Producer] = field(default_factory=dict)


class ConversationMemory(Protocol):
    """Provenance of thinking signatures and tool_use ids (one interface, several backends)."""

    def remember(self, producer: Producer, signatures: Iterable[str],
                 tool_use_ids: Iterable[str]) -> None:
        """Record that ``producer`` made these (never blocks: may be written later)."""

    def recall(self, signatures: Iterable[str], tool_use_ids: Iterable[str]) -> Recall:
        """The known producers of these signatures and tool ids (fast, local)."""

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything remembered so far is readable by every worker."""


def signature_key(signature: str) -> str:
    """The stored form of a signature: a hash (signatures can be long; never stored raw)."""
    return "s:" + hashlib.sha256(signature.encode("utf-8", "replace")).hexdigest()[:32]


def tool_key(tool_id: str) -> str:
    return "t:" + tool_id


_UNHASHED: Final = "\0"
"""Marks a queued signature still to be hashed: the writer's thread hashes a round's at once
(SHA-256 run on the event loop between two requests costs 30 times what it costs in a loop, its
code no longer in the CPU's caches). A stored key never starts with it (``s:``, ``t:``)."""


class SqliteMemory:
    """The embedded backend: one SQLite file in the state folder, shared by all workers."""

    def __init__(self, path: Path, max_entries: int = MAX_ENTRIES,
                 max_age_s: float = MAX_AGE_S, shared: bool = True) -> None:
        """``shared``: other processes read this memory while this one runs (the other workers
        of a proxy, a fleet's follower), so what it remembers is written within milliseconds;
        else once a second (this process answers from its own cache; what is queued is written
        when it exits)."""
        self.path = path
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._local = threading.local()
        self._known: dict[str, Producer] = {}
        self._known_tools: dict[str, Producer] = {}  # tool_use id -> its producer, the same way
        self._writer: BatchWriter[tuple[str, Producer, float]] = BatchWriter(
            "memory", self._write, MAX_PENDING, batch=MAX_PENDING,
            thread=WriterThread("memory", window_s=PROMPT_S if shared else KEEP_S))
        self._inserts = 0
        self._failing: str | None = None
        self._failed = 0

    @property
    def dropped(self) -> int:
        """Entries not stored: too many waiting, or a failed write."""
        return self._writer.dropped + self._failed

    # --- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", 0) == os.getpid():
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # private before SQLite opens it
        os.close(fd)
        conn = sqlite3.connect(self.path, timeout=2.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS made (key TEXT PRIMARY KEY, grp TEXT NOT NULL,"
                     " model TEXT NOT NULL, tier TEXT, at REAL NOT NULL)")
        conn.execute("CREATE INDEX IF NOT EXISTS made_at ON made(at)")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    # --- reading (request path) --------------------------------------------------------

    def recall(self, signatures: Iterable[str], tool_use_ids: Iterable[str]) -> Recall:
        # What was made never changes: known signatures and tool ids are answered from this
        # process's cache, so a long conversation asks SQLite only about its newest blocks.
        found = Recall()
        by_key: dict[str, tuple[str, str]] = {}
        for sig in signatures:
            hit = self._known.get(sig)
            if hit is not None:
                found.signatures[sig] = hit
            else:
                by_key[signature_key(sig)] = ("s", sig)
        for tool_id in tool_use_ids:
            made = self._known_tools.get(tool_id)
            if made is not None:
                found.tools[tool_id] = made
            else:
                by_key[tool_key(tool_id)] = ("t", tool_id)
        if not by_key:
            return found
        try:
            conn = self._connect()
            keys = list(by_key)
            rows: list[tuple[str, str, str, str | None]] = []
            for i in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[i:i + 500]
                rows += conn.execute(
                    f"SELECT key, grp, model, tier FROM made WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
        except (sqlite3.Error, OSError) as exc:
            self._report(exc)
            return found
        learned: dict[str, dict[str, Producer]] = {"s": {}, "t": {}}
        for key, grp, model, tier in rows:
            kind, original = by_key[key]
            learned[kind][original] = Producer(grp, model, tier)
        self._learn(learned["s"], learned["t"])
        found.signatures.update(learned["s"])
        found.tools.update(learned["t"])
        return found

    def _learn(self, signatures: dict[str, Producer], tools: dict[str, Producer]) -> None:
        """Keep producers in this process's caches (each bounded by ``KNOWN_CACHE``)."""
        for cache, new in ((self._known, signatures), (self._known_tools, tools)):
            if len(cache) + len(new) > KNOWN_CACHE:
                cache.clear()
            cache.update(new)

    # --- writing (success hooks; background thread) -------------------------------------

    def remember(self, producer: Producer, signatures: Iterable[str],
                 tool_use_ids: Iterable[str]) -> None:
        now = time.time()
        made: dict[str, Producer] = {}
        tools: dict[str, Producer] = {}
        items: list[tuple[str, Producer, float]] = []
        for signature in signatures:
            if signature:
                made[signature] = producer
                items.append((_UNHASHED + signature, producer, now))
        for tool_id in tool_use_ids:
            if tool_id:
                tools[tool_id] = producer
                items.append((tool_key(tool_id), producer, now))
        self._learn(made, tools)  # this process knows at once; the others once it is written
        if items:
            self._writer.put_many(items)

    def remember_keys(self, items: list[tuple[str, Producer, float]]) -> None:
        """Record entries already in stored form (key, producer, time), e.g. from another
        instance of a fleet."""
        if items:
            self._writer.put_many(items)

    def flush(self, timeout: float = 5.0) -> bool:
        return self._writer.flush(timeout)

    def _write(self, batch: list[tuple[str, Producer, float]]) -> None:
        written = 0
        batch = [(signature_key(k[1:]) if k[:1] == _UNHASHED else k, p, at) for k, p, at in batch]
        try:
            conn = self._connect()
            for i in range(0, len(batch), ROWS_A_STATEMENT):
                written = i  # each statement commits its rows: a failure loses only the rest
                # one statement for many rows, not one step a row: at each step SQLite lets go
                # of the GIL, and each time the thread serving requests hands it over and back
                chunk = batch[i:i + ROWS_A_STATEMENT]
                conn.execute("INSERT OR REPLACE INTO made (key, grp, model, tier, at) VALUES "
                             + ",".join(["(?,?,?,?,?)"] * len(chunk)),
                             [v for k, p, at in chunk for v in (k, p.group, p.model, p.tier, at)])
            written = len(batch)
            self._inserts += len(batch)
            if self._inserts >= PRUNE_EVERY:
                self._inserts = 0
                self.prune()
            if self._failing:
                log.warning("reasoning-panel: conversation memory is writable again (%s)", self.path)
                self._failing = None
        except (sqlite3.Error, OSError) as exc:
            self._failed += len(batch) - written
            self._report(exc)

    def prune(self, now: float | None = None) -> None:
        """Forget entries older than ``max_age_s``, then the oldest beyond ``max_entries``.

        Rows are numbered in the order they were written (a row written again takes a new
        number, leaving a gap), so the oldest beyond the bound are those numbered below the
        ``max_entries``-th newest: found from the end of the table, not by sorting on ``at``.
        """
        now = time.time() if now is None else now
        conn = self._connect()
        with conn:
            conn.execute("DELETE FROM made WHERE at < ?", (now - self.max_age_s,))
            if conn.execute("SELECT count(*) FROM made").fetchone()[0] > self.max_entries:
                conn.execute("DELETE FROM made WHERE rowid < (SELECT rowid FROM made ORDER BY"
                             " rowid DESC LIMIT 1 OFFSET ?)", (max(self.max_entries - 1, 0),))

    def count(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM made").fetchone()[0])

    def _report(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self._failing:
            self._failing = text
            log.warning("reasoning-panel: conversation memory %s failed (%s); routing goes on "
                        "without it", self.path, text)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.flush(1.0)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
