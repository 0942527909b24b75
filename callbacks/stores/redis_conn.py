"""Fleet mode's connection to Redis: the URL, the key names, clients with short timeouts.

redis-py's defaults (5 s socket and connect timeouts, 10 retries with backoff) would let a
stopped Redis hold a caller for a minute: every client here fails within ``TIMEOUT_S`` and does
not retry by itself; the background threads that use them reconnect on their own schedule.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from callbacks.stores.base import StoreDown, StoreError

FLEET_ENV: Final = "REASONING_PANEL_FLEET"
DEFAULT_FLEET: Final = "fleet"
TIMEOUT_S: Final = 0.5  # connect and socket timeouts of every client but blocking readers
BLOCK_MS: Final = 1000  # how long a stream reader waits for new entries in one call


@dataclass(frozen=True)
class Keys:
    """Key names, all under one hash tag so a Redis Cluster keeps them in one slot."""

    fleet: str = DEFAULT_FLEET

    @property
    def prefix(self) -> str:
        return f"rp:{{{self.fleet}}}:"

    @property
    def state(self) -> str:
        return self.prefix + "state"

    @property
    def changed(self) -> str:
        """Pub/sub channel: the new state's value after each write."""
        return self.prefix + "state-changed"

    @property
    def applied(self) -> str:
        """Pub/sub channel: a worker applied a version."""
        return self.prefix + "applied"

    def instance(self, instance_id: str) -> str:
        return self.prefix + "instance:" + instance_id

    @property
    def instances(self) -> str:
        """The ids that have sent a heartbeat (readers drop those whose heartbeat expired)."""
        return self.prefix + "instances"

    @property
    def events(self) -> str:
        return self.prefix + "events"

    @property
    def memory(self) -> str:
        return self.prefix + "memory"

    def sequence(self, writer: str) -> str:
        """The last record sequence number a writer got into the stream (no duplicates)."""
        return self.prefix + "seq:" + writer


def instance_id() -> str:
    """This worker in the fleet: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class RedisConfig:
    url: str
    """As given (may hold a password: never print it; use :attr:`shown`)."""
    kwargs: Mapping[str, Any]
    """Connection arguments parsed from the URL, with REDIS_USERNAME / REDIS_PASSWORD added."""
    keys: Keys

    @property
    def shown(self) -> str:
        """The URL without its password."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        user = quote(parts.username or "", safe="")
        netloc = f"{user}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def client(self, timeout: float = TIMEOUT_S) -> redis.Redis:
        """A client that gives up after ``timeout`` and never retries by itself."""
        pool = redis.ConnectionPool(
            **self.kwargs, socket_timeout=timeout, socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0), decode_responses=True, client_name="reasoning-panel",
            protocol=2)  # RESP2: what every Redis and proxy in front of one speaks
        client = redis.Redis(connection_pool=pool)
        client.auto_close_connection_pool = True
        return client


def redis_config(url: str, env: Mapping[str, str] | None = None) -> RedisConfig:
    """Parse a ``redis://`` / ``rediss://`` / ``unix://`` URL; StoreError names what is wrong.

    Without credentials in the URL, LiteLLM's ``REDIS_USERNAME`` / ``REDIS_PASSWORD`` apply.
    """
    env = os.environ if env is None else env
    url = url.strip()
    try:
        kwargs: dict[str, Any] = dict(cast(Any, parse_url)(url))
    except ValueError as exc:
        raise StoreError(f"bad Redis URL {hide_password(url)!r}: {exc} "
                         "(e.g. redis://:PASSWORD@host:6379/0)") from None
    if "password" not in kwargs and env.get("REDIS_PASSWORD"):
        kwargs["password"] = env["REDIS_PASSWORD"]
        if env.get("REDIS_USERNAME"):
            kwargs["username"] = env["REDIS_USERNAME"]
    if not kwargs.get("host") and not kwargs.get("path"):
        raise StoreError(f"bad Redis URL {hide_password(url)!r}: no host")
    fleet = env.get(FLEET_ENV, "").strip() or DEFAULT_FLEET
    return RedisConfig(url, kwargs, Keys(fleet))


def hide_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return url.replace(":" + parts.password + "@", ":***@")
    except ValueError:
        return "<unparsable>"


def explain(exc: BaseException, config: RedisConfig) -> StoreError:
    """A Redis client error as a sentence (and whether it is a refusal or an outage)."""
    where = config.shown
    if isinstance(exc, redis.AuthenticationError) or (
            isinstance(exc, redis.ResponseError) and str(exc).startswith(("NOAUTH", "WRONGPASS"))):
        return StoreError(f"Redis at {where} refused the credentials ({exc}); give the password "
                          "in the URL (redis://:PASSWORD@host:port) or in REDIS_PASSWORD")
    if isinstance(exc, redis.ResponseError) and str(exc).startswith("NOPERM"):
        return StoreError(f"the Redis user at {where} lacks a permission: {exc}")
    if isinstance(exc, redis.TimeoutError):
        return StoreDown(f"Redis at {where} does not answer (timed out after {TIMEOUT_S} s)")
    if isinstance(exc, redis.ConnectionError):
        return StoreDown(f"cannot reach Redis at {where}: {exc}")
    return StoreDown(f"Redis at {where} failed: {type(exc).__name__}: {exc}")
