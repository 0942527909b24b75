"""The fleet's event stream: one bounded Redis stream (``rp:{fleet}:events``) that every proxy
worker appends to and every reader (``tail``, the panel) reads.

Writing never waits on Redis: :meth:`RedisEventLog.emit` queues the record (up to
``MAX_PENDING``; beyond that records are dropped and counted); the stores' background writer
(:class:`~callbacks.stores.writer.BatchWriter`) sends batches. While Redis is unreachable it
keeps the batch and retries; once Redis is back, a ``fleet`` record says how long it was away
and how many records were dropped. Each batch goes through a small script that skips records
the stream already has (each writer numbers its records), so a batch retried after a timeout is
never added twice.

Reading: :func:`read_events` pages back with ``XREVRANGE``; :func:`follow_events` goes on with
``XREAD BLOCK`` from the last entry id it returned, so a reader that reconnects misses nothing
and sees nothing twice (unless the stream was trimmed past it meanwhile).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import redis

from callbacks.core.events import fleet_record
from callbacks.stores.base import Backoff, Record
from callbacks.stores.eventlog import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, put_encoded
from callbacks.stores.redis_conn import BLOCK_MS, TIMEOUT_S, RedisConfig, explain
from callbacks.stores.writer import BatchWriter

log = logging.getLogger("reasoning_panel")

STREAM_MAXLEN: Final = 100_000  # entries kept (approximately: MAXLEN ~)
MAX_PENDING: Final = 20_000  # records buffered per worker while Redis is away
BATCH: Final = 500
SEQUENCE_TTL_S: Final = 24 * 3600

# KEYS: stream, sequence key. ARGV: maxlen, sequence ttl, then (sequence, record) pairs.
ADD_SCRIPT: Final = """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local added = 0
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'r', ARGV[i + 1])
    last = seq
    added = added + 1
  end
end
redis.call('SET', KEYS[2], last, 'EX', ARGV[2])
return added
"""


class RedisEventLog:
    """Appends one worker's records to the fleet's stream from a background thread."""

    def __init__(self, config: RedisConfig, instance: str, maxlen: int = STREAM_MAXLEN) -> None:
        self.config = config
        self.instance = instance
        self.maxlen = maxlen
        self.max_bytes = DEFAULT_MAX_BYTES  # set by the hook from the state; the stream is
        self.backups = DEFAULT_BACKUPS  # bounded by entries instead
        self.sent = 0
        self.down: str | None = None
        self._writer: BatchWriter[bytes] = BatchWriter(
            "stream", self._send, MAX_PENDING, BATCH, retry=(redis.RedisError,),
            backoff=Backoff(cap=0.5))
        # The sender's own, per process (a forked worker starts afresh in _send):
        self._pid = 0
        self._client: redis.Redis | None = None
        self._script: Any = None
        self._writer_id = ""
        self._sequence = 0
        self._numbered: tuple[list[bytes], list[Any]] = ([], [])  # a batch, its script args
        self._down_since = 0.0
        self._reported = 0  # drops already told in a recovery record

    @property
    def dropped(self) -> int:
        """Records dropped: too many waiting while Redis was away, or a batch that failed."""
        return self._writer.dropped

    def emit(self, record: Record) -> None:
        """Queue a record for the stream, encoded here as the event log's are (the sender
        thread holds the GIL less, and a record changed after it was emitted is sent as it
        was); one that cannot be encoded is dropped alone, counted and said."""
        record["instance"] = self.instance
        put_encoded(self._writer, record, "sent to the event stream")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is in the stream (False if Redis is away)."""
        return self._writer.flush(timeout)

    # --- the sender thread (a RedisError keeps the batch: the writer sends it again) ---------

    def _send(self, batch: list[bytes]) -> None:
        if self._pid != os.getpid():
            self._pid, self._client, self._sequence, self.down = os.getpid(), None, 0, None
            self._writer_id = f"{self.instance}:{secrets.token_hex(4)}"  # a pid numbers afresh
        if batch is not self._numbered[0]:  # a retried batch keeps its sequence numbers
            args: list[Any] = [self.maxlen, SEQUENCE_TTL_S]
            for line in batch:
                self._sequence += 1
                args += (self._sequence, line)
            self._numbered = (batch, args)
        try:
            if self._client is None:
                self._client = self.config.client()
                self._script = self._client.register_script(ADD_SCRIPT)
            self._script(keys=[self.config.keys.events, self.config.keys.sequence(self._writer_id)],
                         args=self._numbered[1], client=self._client)
        except redis.RedisError as exc:
            if self.down is None:
                self._down_since = time.time()
                self.down = str(explain(exc, self.config))
                log.warning("reasoning-panel: %s; records are kept (up to %d) until it is back",
                            self.down, MAX_PENDING)
            if self._client is not None:
                self._client.close()
            self._client = None
            raise
        self.sent += len(batch)
        if self.down is not None:
            down_s = time.time() - self._down_since
            lost, self._reported = self.dropped - self._reported, self.dropped
            log.warning("reasoning-panel: Redis is back after %.1f s; the event stream resumes "
                        "(%d records dropped meanwhile)", down_s, lost)
            self.down = None
            # queued before this batch is done: flush() waits for it too
            self.emit(fleet_record("recovered", down_s=round(down_s, 3), dropped=lost))


# --- reading ---------------------------------------------------------------------------------


def _records(entries: Any) -> list[Record]:
    out = []
    for _, fields in entries:
        try:
            record = json.loads(fields.get("r", ""))
        except (ValueError, AttributeError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def read_events(config: RedisConfig, enough: Callable[[list[Record]], bool] | None = None,
                max_entries: int = 20_000) -> tuple[list[Record], str]:
    """Recent records, oldest first, and the id to follow from; StoreDown when unreachable."""
    key = config.keys.events
    newest_first: list[Record] = []
    cursor = ""
    top = "+"
    try:
        client: Any = config.client()
        while len(newest_first) < max_entries:
            entries = client.xrevrange(key, max=top, min="-", count=min(1000, max_entries))
            if not entries:
                break
            cursor = cursor or entries[0][0]
            newest_first += _records(entries)
            top = "(" + entries[-1][0]
            if enough is not None and enough(newest_first[::-1]):
                break
        client.close()
    except redis.RedisError as exc:
        raise explain(exc, config) from None
    return newest_first[::-1], cursor or "0-0"


def read_all(config: RedisConfig) -> list[Record]:
    """Every record the stream holds, oldest first; StoreDown when unreachable."""
    records: list[Record] = []
    bottom = "-"
    try:
        client: Any = config.client()
        while True:
            entries = client.xrange(config.keys.events, min=bottom, max="+", count=1000)
            if not entries:
                break
            records += _records(entries)
            bottom = "(" + entries[-1][0]
        client.close()
    except redis.RedisError as exc:
        raise explain(exc, config) from None
    return records


def follow_events(config: RedisConfig, cursor: str | None,
                  stop: threading.Event | None = None) -> Iterator[list[Record]]:
    """Batches of records after ``cursor`` (None: after the newest now), across reconnects;
    an empty batch means nothing new yet (or Redis away: it retries)."""
    key = config.keys.events
    client: Any = None
    backoff = Backoff(cap=1.0)
    try:
        while stop is None or not stop.is_set():
            try:
                if client is None:
                    client = config.client(timeout=BLOCK_MS / 1000 + TIMEOUT_S)
                if cursor is None:
                    newest = client.xrevrange(key, count=1)
                    cursor = newest[0][0] if newest else "0-0"
                reply: Any = client.xread({key: cursor}, count=1000, block=BLOCK_MS)
                backoff.reset()
            except redis.RedisError:
                if client is not None:
                    client.close()
                client = None
                yield []
                backoff.wait(stop)
                continue
            entries = (reply.get(key) if isinstance(reply, dict) else
                       reply[0][1] if reply else None)
            if not entries:
                yield []
                continue
            cursor = entries[-1][0]
            yield _records(entries)
    finally:
        if client is not None:
            client.close()


def stream_length(config: RedisConfig) -> int:
    try:
        client = config.client()
        try:
            return int(client.xlen(config.keys.events))
        finally:
            client.close()
    except redis.RedisError as exc:
        raise explain(exc, config) from None

