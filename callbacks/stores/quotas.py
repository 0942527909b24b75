"""What providers last reported of each deployment's rate limit, shared by every worker (and,
in fleet mode, every instance) so that any of them can move a tier before its model answers 429.

The request path only reads dictionaries: a worker's own figures are there as soon as it
records them, and one background thread per process writes them out and reads the others'
back every :data:`SYNC_S` seconds. Two backends behind one class:

- files: ``quotas.json`` in the state folder (one JSON object, deployment -> figures; updated
  under ``quotas.lock`` so workers merge instead of overwriting each other, newest figures win);
- Redis: the hash ``rp:{FLEET}:quotas`` (field: deployment, value: the same JSON).

A backend that fails (Redis down, a full disk) costs only freshness: the worker keeps its own
figures and tries again on the next round.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Protocol

from callbacks.core.headroom import Quota, quota_from_json
from callbacks.stores.statefile import atomic_write, ensure_private_dir

log = logging.getLogger("reasoning_panel")

QUOTAS_NAME: Final = "quotas.json"
LOCK_NAME: Final = "quotas.lock"
SYNC_S: Final = 0.1
MAX_DEPLOYMENTS: Final = 2000


class QuotaBackend(Protocol):
    def push(self, quotas: list[Quota]) -> None: ...

    def pull(self) -> dict[str, Quota] | None:
        """Every deployment's figures; None when nothing changed since the last pull."""
        ...


class QuotaBook:
    """Per-deployment rate-limit figures: :meth:`record` after a response, :meth:`of_group` on
    the request path."""

    def __init__(self, backend: QuotaBackend | None, sync_s: float = SYNC_S,
                 background: bool = True) -> None:
        self.backend = backend
        self.sync_s = sync_s
        self.background = background  # False: only explicit sync_once calls (tests)
        self._own: dict[str, Quota] = {}
        self._shared: dict[str, Quota] = {}
        self._pending: dict[str, Quota] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0

    def _start(self) -> None:
        if self._pid == os.getpid() or self.backend is None or not self.background:
            return
        self._pid = os.getpid()  # a forked worker starts its own thread
        self._wake = threading.Event()
        threading.Thread(target=self._sync, name="reasoning-panel-quotas", daemon=True).start()

    def record(self, quota: Quota) -> None:
        """Keep ``quota`` as its deployment's latest figures (and share them soon)."""
        self._start()
        with self._lock:
            if len(self._own) >= MAX_DEPLOYMENTS and quota.deployment not in self._own:
                self._own.pop(next(iter(self._own)))
            self._own[quota.deployment] = quota
            self._pending[quota.deployment] = quota
        self._wake.set()

    def latest(self) -> dict[str, Quota]:
        """Every deployment's newest figures, this worker's or another's."""
        self._start()
        merged = dict(self._shared)
        for deployment, quota in list(self._own.items()):
            other = merged.get(deployment)
            if other is None or other.at <= quota.at:
                merged[deployment] = quota
        return merged

    def of_group(self, group: str) -> list[Quota]:
        """The newest figures of each deployment of model group ``group``."""
        return [q for q in self.latest().values() if q.group == group]

    def sync_once(self) -> None:
        """Write out what this worker recorded and read the others' figures (the background
        thread's round; tests call it directly)."""
        if self.backend is None:
            return
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        try:
            if pending:
                self.backend.push(pending)
            shared = self.backend.pull()
        except Exception as exc:  # noqa: BLE001 - a failing backend costs only freshness
            log.debug("reasoning-panel: quotas not shared this round: %s", exc)
            with self._lock:  # try them again next round (newer figures win)
                for quota in pending:
                    self._pending.setdefault(quota.deployment, quota)
            return
        if shared is not None:
            self._shared = shared

    def _sync(self) -> None:
        while True:
            self._wake.wait(self.sync_s)
            self._wake.clear()
            self.sync_once()
            time.sleep(self.sync_s / 4)  # a burst of records is written once


def _decode(text: str) -> dict[str, Quota]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    out = {}
    for value in (data.values() if isinstance(data, dict) else []):
        quota = quota_from_json(value)
        if quota is not None:
            out[quota.deployment] = quota
    return out


class FileQuotas:
    """``quotas.json`` in the state folder."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / QUOTAS_NAME
        self._seen: tuple[int, int] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        ensure_private_dir(self.home)
        fd = os.open(self.home / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> dict[str, Quota]:
        try:
            return _decode(self.path.read_text(encoding="utf-8"))
        except OSError:
            return {}

    def push(self, quotas: list[Quota]) -> None:
        with self._locked():
            current = self.read()
            for quota in quotas:
                old = current.get(quota.deployment)
                if old is None or old.at <= quota.at:
                    current[quota.deployment] = quota
            newest = sorted(current.values(), key=lambda q: q.at)[-MAX_DEPLOYMENTS:]
            atomic_write(self.path, json.dumps({q.deployment: q.as_json() for q in newest}))

    def pull(self) -> dict[str, Quota] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return None
        self._seen = seen
        return self.read()


class RedisQuotas:
    """The hash ``rp:{FLEET}:quotas`` in fleet mode."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    def push(self, quotas: list[Quota]) -> None:
        self.client.hset(self.key, mapping={q.deployment: json.dumps(q.as_json()) for q in quotas})

    def pull(self) -> dict[str, Quota] | None:
        raw = self.client.hgetall(self.key) or {}
        out = {}
        for value in raw.values():
            quota = quota_from_json(json.loads(value)) if value else None
            if quota is not None:
                out[quota.deployment] = quota
        return out
