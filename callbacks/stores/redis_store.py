"""The Redis backend (fleet mode): one routing state, one event stream and one conversation
memory for every proxy instance that points at the same Redis.

Keys (``FLEET`` is ``$REASONING_PANEL_FLEET``, default ``fleet``; one hash tag so a cluster
keeps them in one slot): ``rp:{FLEET}:state`` (the versioned state), channels
``rp:{FLEET}:state-changed`` and ``rp:{FLEET}:applied``, ``rp:{FLEET}:instance:HOST:PID``
(heartbeats), ``rp:{FLEET}:events`` (the event stream), ``rp:{FLEET}:memory`` (conversation
memory), ``rp:{FLEET}:seq:WRITER`` (no duplicate records), ``rp:{FLEET}:quotas`` (rate-limit
figures per deployment, :mod:`callbacks.stores.quotas`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import redis

from callbacks.core.state import State, StateError, parse_state, state_from_env, state_to_dict
from callbacks.stores.base import (
    REDIS_URL_ENV,
    WORKERS_ENV,
    Backoff,
    Conflict,
    EventSink,
    FleetStatus,
    LiveView,
    Record,
    StoreDown,
    Version,
    Versioned,
)
from callbacks.stores.memory import MEMORY_NAME, ConversationMemory, SqliteMemory
from callbacks.stores.quotas import QuotaBook, RedisQuotas
from callbacks.stores.redis_conn import (
    FLEET_ENV,
    TIMEOUT_S,
    RedisConfig,
    explain,
    instance_id,
    redis_config,
)
from callbacks.stores.redis_events import (
    RedisEventLog,
    follow_events,
    read_all,
    read_events,
    stream_length,
)
from callbacks.stores.redis_memory import RedisMemory
from callbacks.stores.redis_state import (
    SEED,
    SNAPSHOT_NAME,
    FleetLive,
    decode_value,
    encode_value,
    parse_instance,
    peek_version,
)
from callbacks.stores.statefile import StateFile


class RedisStore:
    backend = "redis"
    state_name = "the state in Redis"

    def __init__(self, url: str, home: Path, env: dict[str, str] | None = None) -> None:
        self.config: RedisConfig = redis_config(url, env)
        self.keys = self.config.keys
        self.home = home
        self.where = self.config.shown + (f" (fleet {self.keys.fleet})"
                                          if self.keys.fleet != "fleet" else "")
        self._env = dict(os.environ if env is None else env)
        self._client_: tuple[int, redis.Redis] | None = None
        self._memory: RedisMemory | None = None
        self._quotas: QuotaBook | None = None

    def _client(self) -> redis.Redis:
        if self._client_ is None or self._client_[0] != os.getpid():
            self._client_ = (os.getpid(), self.config.client())
        return self._client_[1]

    def _by(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    # --- state ---------------------------------------------------------------------------

    def read(self) -> Versioned:
        try:
            text = self._client().get(self.keys.state)
        except redis.RedisError as exc:
            raise explain(exc, self.config) from None
        if text is None:
            raise StateError(f"Redis at {self.where} holds no state yet")
        version, state = decode_value(str(text))
        return Versioned(state, version)

    def ensure(self) -> Versioned:
        """The stored state; an empty Redis is seeded from the local state file if there is a
        valid one, else from the env defaults (the note says which)."""
        try:
            return self.read()
        except StateError:
            if self._peek() is not None:  # invalid, or written since the read (a worker
                return self.read()         # putting its state back): never replaced by a guess
        version, state, source = self._seed()
        value = encode_value(state, version, f"{SEED} by {self._by()}")
        try:
            created = self._client().set(self.keys.state, value, nx=True)
            if created:
                self._client().publish(self.keys.changed, value)
        except redis.RedisError as exc:
            raise explain(exc, self.config) from None
        return Versioned(state, version, source) if created else self.read()

    def _seed(self) -> tuple[int, State, str]:
        """What an empty Redis starts from: this folder's fleet snapshot (what its proxy ran
        last), else its state file, else the env defaults. Running workers that know a newer
        version replace a seed (see :func:`~callbacks.stores.redis_state.provisional`)."""
        snapshot = self.home / SNAPSHOT_NAME
        with contextlib.suppress(OSError, StateError):
            version, state = decode_value(snapshot.read_text(encoding="utf-8"))
            return version, state, f"seeded Redis from the snapshot {snapshot} (v{version})"
        local = StateFile.in_home(self.home)
        try:
            return 1, local.read(), f"seeded Redis from {local.path}"
        except StateError as exc:
            return 1, state_from_env(self._env), "seeded Redis from the env defaults" + (
                f" ({exc})" if local.path.exists() else "")

    def _peek(self) -> str | None:
        try:
            text = self._client().get(self.keys.state)
        except redis.RedisError as exc:
            raise explain(exc, self.config) from None
        return None if text is None else str(text)

    def update(self, change: Callable[[State], State], expect: Version = None) -> Versioned:
        self.ensure()
        version: int | None = None
        try:
            with cast(Any, self._client()).pipeline() as pipe:
                pipe.watch(self.keys.state)
                text = pipe.get(self.keys.state)
                if text is None:  # removed since ensure()
                    raise Conflict(expect, None)
                version, state = decode_value(str(text))
                if expect is not None and version != expect:
                    raise Conflict(expect, version)
                new = change(state)
                parse_state(state_to_dict(new))  # never store what workers would refuse
                value = encode_value(new, version + 1, self._by())
                pipe.multi()
                pipe.set(self.keys.state, value)
                pipe.publish(self.keys.changed, value)
                pipe.execute()
        except redis.WatchError:
            raise Conflict(expect if expect is not None else version,
                           peek_version(self._peek())) from None
        except redis.RedisError as exc:
            raise explain(exc, self.config) from None
        return Versioned(new, version + 1)

    def live(self, on_reload: Callable[[State, State], None] | None = None,
             on_problem: Callable[[str], None] | None = None) -> LiveView:
        workers = self._env.get(WORKERS_ENV, "1")
        return FleetLive(self.config, self.home, on_reload, on_problem,
                         int(workers) if workers.isdigit() else 1)

    def watch(self, stop: threading.Event, every: float = 1.0) -> Iterator[bool]:
        backoff = Backoff(cap=every)
        while not stop.is_set():
            pubsub: Any = None
            try:
                pubsub = cast(Any, self.config.client(timeout=every + TIMEOUT_S)).pubsub(
                    ignore_subscribe_messages=True)
                pubsub.subscribe(self.keys.changed)
                backoff.reset()
                yield True  # (re)subscribed: anything may have changed meanwhile
                while not stop.is_set():
                    yield pubsub.get_message(timeout=every) is not None
            except redis.RedisError:
                yield False
                backoff.wait(stop)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except redis.RedisError:
                        pass

    # --- fleet ---------------------------------------------------------------------------------

    def status(self) -> FleetStatus:
        try:
            client: Any = self._client()
            version = peek_version(client.get(self.keys.state))
            ids = sorted(client.smembers(self.keys.instances))
            beats = client.mget([self.keys.instance(i) for i in ids]) if ids else []
            gone = [i for i, beat in zip(ids, beats, strict=True) if beat is None]
            if gone:  # their heartbeats expired
                client.srem(self.keys.instances, *gone)
        except redis.RedisError as exc:
            self._client_ = None
            return FleetStatus(None, acknowledged=True, problem=f"Redis down: {explain(exc, self.config)}")
        found = (parse_instance(b) for b in beats)
        instances = tuple(sorted((i for i in found if i is not None), key=lambda i: i.id))
        return FleetStatus(version, instances, acknowledged=True)

    def wait_applied(self, version: Version, timeout: float) -> FleetStatus:
        deadline = time.monotonic() + timeout
        pubsub: Any = None
        try:
            pubsub = cast(Any, self.config.client()).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(self.keys.applied)  # before reading the heartbeats: no ack missed
            pending = {i.id for i in self.status().instances if i.applied_version != version}
            while pending and time.monotonic() < deadline:
                message = pubsub.get_message(timeout=min(0.2, deadline - time.monotonic()))
                if message is not None and message.get("type") == "message":
                    ack = json.loads(message["data"])
                    if ack.get("version") == version:
                        pending.discard(ack.get("id"))
        except (redis.RedisError, ValueError, AttributeError):
            pass
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
        return self.status()

    def proxy_env(self) -> dict[str, str]:
        return {REDIS_URL_ENV: self.config.url, FLEET_ENV: self.keys.fleet}

    # --- events ------------------------------------------------------------------------------

    def event_log(self) -> EventSink:
        return RedisEventLog(self.config, instance_id())

    def read_events(self, enough: Callable[[list[Record]], bool] | None = None,
                    limit: int = 8 * 1024 * 1024) -> tuple[list[Record], Any]:
        return read_events(self.config, enough, max_entries=max(1000, limit // 400))

    def all_events(self) -> list[Record]:
        return read_all(self.config)

    def follow_events(self, cursor: Any, stop: threading.Event | None = None
                      ) -> Iterator[list[Record]]:
        return follow_events(self.config, cursor, stop)

    def events_hint(self) -> str | None:
        try:
            if stream_length(self.config):
                return None
        except StoreDown:
            return None  # reading says so
        return f"no events yet in {self.keys.events} at {self.where} (are the proxies running " \
               "with this Redis?)"

    # --- memory --------------------------------------------------------------------------------

    def memory(self) -> ConversationMemory:
        if self._memory is None:
            self._memory = RedisMemory(self.config, SqliteMemory(self.home / MEMORY_NAME),
                                       instance_id())
        return self._memory

    def quotas(self) -> QuotaBook:
        if self._quotas is None:
            self._quotas = QuotaBook(RedisQuotas(self.config.client(),
                                                 self.config.keys.prefix + "quotas"))
        return self._quotas

