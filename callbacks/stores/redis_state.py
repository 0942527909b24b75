"""The routing state in Redis, as one proxy worker sees it: a local copy kept fresh by a
background thread, so the request path never waits on Redis.

The state is one versioned value (``rp:{fleet}:state``: JSON ``{version, state, by, time}``,
``state`` being the mapping ``state.yaml`` holds). Each write publishes the new value on
``rp:{fleet}:state-changed``. A worker's thread subscribes, then re-reads the value (pub/sub
drops what is sent while a subscriber is away), applies each notice at once, and re-reads the
value every ``POLL_S`` as a safety net. It writes a heartbeat (``rp:{fleet}:instance:HOST:PID``,
expiring after ``TTL_S``) with the version it applied, and announces each apply on
``rp:{fleet}:applied``. The last applied value is kept in the state folder
(``fleet-state.json``): a worker that starts while Redis is down routes with it, else with the
env defaults.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

import redis

from callbacks.core.state import State, StateError, parse_state, state_from_env, state_to_dict
from callbacks.stores.base import Backoff, Instance, vtext
from callbacks.stores.redis_conn import RedisConfig, explain, instance_id
from callbacks.stores.statefile import atomic_write, ensure_private_dir

log = logging.getLogger("reasoning_panel")

SNAPSHOT_NAME: Final = "fleet-state.json"
POLL_S: Final = 5.0  # safety net for a missed notice
BEAT_S: Final = 2.0
PUT_BACK_TRIES: Final = 5
TTL_S: Final = 10  # a heartbeat older than this is a worker gone


def encode_value(state: State, version: int, by: str) -> str:
    return json.dumps({"version": version, "state": state_to_dict(state), "by": by,
                       "time": round(time.time(), 3)}, separators=(",", ":"))


def decode_value(text: str) -> tuple[int, State]:
    """The version and the validated state of a stored value; StateError names the problem."""
    try:
        data = json.loads(text)
    except ValueError:
        raise StateError("the value in Redis is not JSON") from None
    if not isinstance(data, dict) or type(data.get("version")) is not int:
        raise StateError("the value in Redis has no version number")
    try:
        return data["version"], parse_state(data.get("state"))
    except StateError as exc:
        raise StateError(f"v{data['version']}: {exc}") from None


SEED: Final = "seed"  # the ``by`` of a value made by seeding, not by a change
PUT_BACK: Final = "put back"  # ... or put back by a worker after Redis lost it


def provisional(text: str | None, version: int | None) -> bool:
    """Whether a stored value is older knowledge than a worker's ``version``: Redis lost the
    state (restarted empty), or holds only a seed (or another worker's older copy) put there
    since. Versions never go back while Redis keeps its data, so the highest copy wins."""
    if version is None:
        return False
    if text is None:
        return True
    try:
        data = json.loads(text)
        stored, by = data["version"], str(data.get("by", ""))
    except (ValueError, TypeError, KeyError):
        return False
    return by.startswith((SEED, PUT_BACK)) and type(stored) is int and stored < version


def peek_version(text: str | None) -> int | None:
    try:
        version = json.loads(text or "null").get("version")
    except (ValueError, AttributeError):
        return None
    return version if type(version) is int else None


def parse_instance(text: str | None) -> Instance | None:
    try:
        data = json.loads(text or "null")
        return Instance(str(data["id"]), str(data["host"]), int(data["pid"]),
                        int(data["workers"]), data.get("applied_version"), float(data["seen"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


class FleetLive:
    """The state in force in one proxy worker, in fleet mode (see the module's text)."""

    def __init__(self, config: RedisConfig, home: Path,
                 on_reload: Callable[[State, State], None] | None = None,
                 on_problem: Callable[[str], None] | None = None,
                 workers: int = 1) -> None:
        self.config = config
        self.keys = config.keys
        self.snapshot = home / SNAPSHOT_NAME
        self.workers = workers
        self._on_reload = on_reload
        self._on_problem = on_problem
        self._refused: str | None = None  # why the stored value is not in force
        self.down: str | None = None  # why Redis cannot be reached, while it cannot
        self.version: int | None = None
        self.state: State | None = None
        self.source = "env defaults"
        try:
            self.version, self.state = decode_value(self.snapshot.read_text(encoding="utf-8"))
            self.source = f"{self.snapshot} ({vtext(self.version)})"
        except (OSError, StateError):
            self.state = state_from_env()
        self._pid = 0
        self.id = ""
        self._start()

    @property
    def problem(self) -> str | None:
        return self._refused or self.down

    def current(self) -> State:
        if self._pid != os.getpid():  # a forked worker: the thread stayed in the parent
            self._start()
        return self.state  # type: ignore[return-value] # set in __init__

    def _start(self) -> None:
        self._pid = os.getpid()
        self.id = instance_id()
        threading.Thread(target=self._run, name="reasoning-panel-fleet", daemon=True).start()

    def close(self) -> None:
        """Stop the background thread (it ends at its next wake-up)."""
        self._pid = -1

    # --- the background thread -------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff()
        pid = os.getpid()
        while self._pid == pid:
            client: redis.Redis | None = None
            pubsub: Any = None
            try:
                client = self.config.client()
                pubsub = cast(Any, client).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.keys.changed)
                self._sync(client)  # what was written while we were not subscribed
                self._beat(client)
                self._back()
                backoff.reset()
                next_poll = time.monotonic() + POLL_S
                next_beat = time.monotonic() + BEAT_S
                while self._pid == pid:
                    wait = min(1.0, max(0.0, min(next_poll, next_beat) - time.monotonic()))
                    message = pubsub.get_message(timeout=wait)
                    if message is not None and message.get("type") == "message":
                        self._apply(client, str(message["data"]))
                    now = time.monotonic()
                    if now >= next_poll:
                        self._sync(client)
                        next_poll = now + POLL_S
                    if now >= next_beat:
                        self._beat(client)
                        next_beat = now + BEAT_S
            except redis.RedisError as exc:
                self._lost(str(explain(exc, self.config)))
            except Exception:  # noqa: BLE001 - the thread must never die
                log.exception("reasoning-panel: fleet state thread failed; restarting it")
            finally:
                for closable in (pubsub, client):
                    try:
                        if closable is not None:
                            closable.close()
                    except Exception:  # noqa: BLE001, S110 - closing a broken connection
                        pass
            backoff.wait()

    def _sync(self, client: redis.Redis) -> None:
        text = client.get(self.keys.state)
        self._apply(client, None if text is None else str(text))

    def _put_back(self, client: redis.Redis) -> str | None:
        """Store this worker's state over a provisional value (compare-and-set, looked at
        again when another writer came between); what is stored afterwards, or None to keep
        this worker's state until the next look."""
        assert self.state is not None and self.version is not None
        value = encode_value(self.state, self.version, f"{PUT_BACK} by {self.id}")
        for _ in range(PUT_BACK_TRIES):
            try:
                with cast(Any, client).pipeline() as pipe:
                    pipe.watch(self.keys.state)
                    stored = pipe.get(self.keys.state)
                    found = None if stored is None else str(stored)
                    if not provisional(found, self.version):
                        return found  # a real state was stored meanwhile: it wins
                    pipe.multi()
                    pipe.set(self.keys.state, value)
                    pipe.publish(self.keys.changed, value)
                    pipe.execute()
                log.warning("reasoning-panel: Redis had %s; put back %s from this worker",
                            "no state" if found is None else "only a new seed",
                            vtext(self.version))
                return value
            except redis.WatchError:
                continue  # written between the look and the write (a seed, say): look again
        return None

    def _apply(self, client: redis.Redis, text: str | None) -> None:
        if provisional(text, self.version):
            text = self._put_back(client)
        if text is None:
            return
        try:
            version, new = decode_value(text)
        except StateError as exc:
            problem = f"the state in Redis is invalid, last good state stays: {exc}"
            if problem != self._refused:
                self._refused = problem
                log.warning("reasoning-panel: %s", problem)
                if self._on_problem:
                    self._on_problem(problem)
            return
        self._refused = None
        if version == self.version and new == self.state:
            return
        old, self.state, self.version = self.state, new, version
        self.source = "Redis"
        if old is not None and old != new:
            log.info("reasoning-panel: state %s applied from Redis", vtext(version))
            if self._on_reload:
                self._on_reload(old, new)
        try:
            ensure_private_dir(self.snapshot.parent)
            atomic_write(self.snapshot, text + "\n")
        except OSError as exc:
            log.warning("reasoning-panel: cannot keep the fleet snapshot %s: %s", self.snapshot, exc)
        self._beat(client, announce=True)

    def _beat(self, client: redis.Redis, announce: bool = False) -> None:
        beat = json.dumps({"id": self.id, "host": socket.gethostname(), "pid": os.getpid(),
                           "workers": self.workers, "applied_version": self.version,
                           "seen": round(time.time(), 3)})
        pipe = client.pipeline(transaction=False)
        pipe.set(self.keys.instance(self.id), beat, ex=TTL_S)
        pipe.sadd(self.keys.instances, self.id)
        pipe.expire(self.keys.instances, 24 * 3600)
        if announce:
            pipe.publish(self.keys.applied, json.dumps({"id": self.id, "version": self.version}))
        pipe.execute()

    def _lost(self, problem: str) -> None:
        if self.down is None:
            log.warning("reasoning-panel: %s; routing goes on with %s, retrying", problem,
                        vtext(self.version) if self.version is not None else "the env defaults")
        self.down = problem

    def _back(self) -> None:
        if self.down is not None:
            log.warning("reasoning-panel: Redis is reachable again; state %s",
                        vtext(self.version))
        self.down = None
