"""Conversation memory across a fleet: recall stays local and fast, Redis carries the news.

Each instance keeps the local SQLite memory (:class:`SqliteMemory`) and reads only that on the
request path. What a worker remembers is written there at once and also appended (in stored
form: signature hashes and tool ids, never text) to one bounded stream,
``rp:{fleet}:memory``; one worker per state folder (whoever holds ``memory.follow.lock``)
follows the stream into the local memory. A tool continuation that lands on another instance
then finds the producer of its ``tool_use``, typically within milliseconds of the call that
made it ending, long before the client has run the tool.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

import redis

from callbacks.stores.base import Backoff
from callbacks.stores.memory import Producer, Recall, SqliteMemory, signature_key, tool_key
from callbacks.stores.redis_conn import BLOCK_MS, TIMEOUT_S, RedisConfig
from callbacks.stores.statefile import atomic_write
from callbacks.stores.writer import PROMPT_S, BatchWriter, WriterThread

log = logging.getLogger("reasoning_panel")

MEMORY_MAXLEN: Final = 200_000
MAX_PENDING: Final = 20_000
BATCH: Final = 500
LOCK_RETRY_S: Final = 5.0
CURSOR_NAME: Final = "memory.cursor"

Item = tuple[str, Producer, float]


class RedisMemory:
    """:class:`~callbacks.stores.memory.ConversationMemory` shared by a fleet."""

    def __init__(self, config: RedisConfig, local: SqliteMemory, instance: str) -> None:
        self.config = config
        self.local = local
        self.instance = instance
        self.home = local.path.parent
        self._writer: BatchWriter[Item] = BatchWriter(
            "memory-send", self._send, MAX_PENDING, BATCH, retry=(redis.RedisError,),
            backoff=Backoff(cap=1.0), thread=WriterThread("memory-send", window_s=PROMPT_S))
        self._client: redis.Redis | None = None
        self._pid = 0
        self._start()

    def _start(self) -> None:
        """Once in each process (a forked worker too): its own connection and follower."""
        if self._pid == os.getpid():
            return
        self._pid, self._client = os.getpid(), None
        threading.Thread(target=self._follow, name="reasoning-panel-memory-follow",
                         daemon=True).start()

    @property
    def dropped(self) -> int:
        """Entries not sent to the fleet: too many waiting, or a batch that failed."""
        return self._writer.dropped

    # --- the interface -----------------------------------------------------------------------

    def remember(self, producer: Producer, signatures: Iterable[str],
                 tool_use_ids: Iterable[str]) -> None:
        now = time.time()
        items = [(signature_key(s), producer, now) for s in signatures if s] + \
            [(tool_key(t), producer, now) for t in tool_use_ids if t]
        if not items:
            return
        self._start()
        self.local.remember_keys(items)
        self._writer.put_many(items)

    def recall(self, signatures: Iterable[str], tool_use_ids: Iterable[str]) -> Recall:
        return self.local.recall(signatures, tool_use_ids)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was remembered here is local and sent to the fleet."""
        deadline = time.monotonic() + timeout
        return self._writer.flush(timeout) and \
            self.local.flush(max(0.0, deadline - time.monotonic()))

    # --- sending (a RedisError keeps the batch: the writer sends it again) ----------------------

    def _send(self, batch: list[Item]) -> None:
        try:
            if self._client is None:
                self._client = self.config.client()
            pipe = self._client.pipeline(transaction=False)
            for key, producer, at in batch:
                pipe.xadd(self.config.keys.memory, {
                    "k": key, "g": producer.group, "m": producer.model,
                    "t": producer.tier or "", "at": repr(at), "i": self.instance,
                }, maxlen=MEMORY_MAXLEN, approximate=True)
            pipe.execute()
        except redis.RedisError:
            if self._client is not None:
                self._client.close()
            self._client = None
            raise

    # --- following (one worker per state folder) ----------------------------------------------

    def _follow(self) -> None:
        lock_path = self.home / "memory.follow.lock"
        while True:
            try:
                self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                time.sleep(LOCK_RETRY_S)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # another worker of this folder follows; take over if it goes
                os.close(fd)
                time.sleep(LOCK_RETRY_S)
                continue
            try:
                self._follow_locked()
            finally:
                os.close(fd)

    def _follow_locked(self) -> None:
        key = self.config.keys.memory
        cursor_path = self.home / CURSOR_NAME
        try:
            cursor = cursor_path.read_text().strip() or "0-0"
        except OSError:
            cursor = "0-0"
        saved_at = 0.0
        client: redis.Redis | None = None
        backoff = Backoff(cap=1.0)
        while True:
            try:
                if client is None:
                    client = self.config.client(timeout=BLOCK_MS / 1000 + TIMEOUT_S)
                reply: Any = client.xread({key: cursor}, count=1000, block=BLOCK_MS)
                backoff.reset()
            except redis.RedisError:
                if client is not None:
                    client.close()
                client = None
                backoff.wait()
                continue
            entries = reply.get(key) if isinstance(reply, dict) else reply[0][1] if reply else []
            if not entries:
                continue
            items: list[Item] = []
            for _, fields in entries:
                with contextlib.suppress(KeyError, ValueError, TypeError):
                    items.append((fields["k"], Producer(fields["g"], fields.get("m", ""),
                                                        fields.get("t") or None),
                                  float(fields["at"])))
            self.local.remember_keys(items)
            cursor = entries[-1][0]
            if time.monotonic() - saved_at > 1.0:
                saved_at = time.monotonic()
                with contextlib.suppress(OSError):
                    atomic_write(cursor_path, cursor + "\n")

    def close(self) -> None:
        self.local.close()

