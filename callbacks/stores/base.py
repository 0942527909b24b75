"""The store interface: where the routing state, the event stream and the conversation memory
live. Two backends implement it: the local files (:mod:`callbacks.stores.files`, the embedded
default) and Redis (:mod:`callbacks.stores.redis_store`, fleet mode); :func:`callbacks.stores.
open_store` picks one from the configuration. The callback, the CLI, ``tail`` and the panel only
use what is defined here.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from callbacks.core.state import State, state_to_dict
from callbacks.stores.memory import ConversationMemory

if TYPE_CHECKING:  # the stores import it themselves; readers of this module need not
    from callbacks.stores.quotas import QuotaBook

REDIS_URL_ENV: Final = "REASONING_PANEL_REDIS_URL"
"""Fleet mode's switch: the Redis URL (``--redis URL`` on the command line)."""
WORKERS_ENV: Final = "REASONING_PANEL_WORKERS"
"""How many worker processes the proxy runs (set by ``reasoning-panel proxy``; unknown when
LiteLLM is started another way)."""

Record = dict[str, Any]
Version = int | str | None
"""Redis: a counter that grows with each write. Files: a hash of the state's content."""


class StoreError(Exception):
    """The store cannot be used as configured (bad URL, refused credentials)."""


class StoreDown(StoreError):
    """The store is unreachable right now (Redis stopped, network down)."""


class Conflict(Exception):
    """The state changed since the writer read it: nothing was written, nothing was lost."""

    def __init__(self, expected: Version, found: Version) -> None:
        self.expected, self.found = expected, found
        super().__init__(
            f"the state changed since it was read ({vtext(expected)} -> now {vtext(found)}), "
            "so this change was not written and the other one was kept")


def vtext(version: Version) -> str:
    return f"v{version}" if isinstance(version, int) else str(version or "?")


def content_version(state: State) -> str:
    """The files backend's version: a short hash of the state's content."""
    text = json.dumps(state_to_dict(state), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Versioned:
    """A state as stored, with its version."""

    state: State
    version: Version
    note: str = ""
    """Set when this read created the stored state, e.g. "seeded from the env defaults"."""


@dataclass(frozen=True)
class Instance:
    """One proxy worker of the fleet, from its heartbeat."""

    id: str
    host: str
    pid: int
    workers: int
    applied_version: Version
    seen: float
    """Unix time of its last heartbeat."""


@dataclass(frozen=True)
class FleetStatus:
    """The stored state's version and which workers have applied it."""

    version: Version
    instances: tuple[Instance, ...] = ()
    acknowledged: bool = False
    """Whether this backend hears from its workers (Redis); files: every worker checks the file
    on each request, so there is nothing to acknowledge."""
    problem: str | None = None
    """Why the store could not be read (e.g. Redis down); None when it was."""

    def laggards(self) -> list[Instance]:
        return [i for i in self.instances if i.applied_version != self.version]

    def summary(self) -> str:
        """One line for a status bar: "v42 applied by 6/6", and who is behind."""
        if self.problem:
            return self.problem
        if not self.acknowledged:
            return ""
        if not self.instances:
            return f"{vtext(self.version)}, no proxy instance seen"
        behind = self.laggards()
        text = f"{vtext(self.version)} applied by {len(self.instances) - len(behind)}" \
               f"/{len(self.instances)}"
        if behind:
            text += "; behind: " + ", ".join(
                f"{i.id} ({vtext(i.applied_version)})" for i in behind[:4]) \
                + (f" and {len(behind) - 4} more" if len(behind) > 4 else "")
        return text

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version,
                "instances": [{k: v for k, v in asdict(i).items()
                               if k in ("id", "host", "pid", "workers", "applied_version", "seen")}
                              for i in self.instances]}


class LiveView(Protocol):
    """The state in force in one proxy worker; :meth:`current` is on the request path."""

    state: State | None

    @property
    def problem(self) -> str | None:
        """Why the stored state is not in force (invalid, unreachable), or None."""

    def current(self) -> State:
        """The state in force now (cheap; never waits on I/O that can hang)."""


class EventSink(Protocol):
    """Where the hook's records go (``emit`` is on the request path: cheap, never raises)."""

    max_bytes: int
    backups: int

    @property
    def dropped(self) -> int:
        """Records dropped: too many waiting to be written."""
        ...

    def emit(self, record: Record) -> None: ...

    def flush(self, timeout: float = 5.0) -> bool: ...


class Store(Protocol):
    """State, events and memory of one proxy or fleet."""

    backend: str
    """``files`` or ``redis``."""
    where: str
    """What users are told the state is: a file path, or the Redis URL (password hidden)."""
    state_name: str
    """How messages name the stored state, e.g. "state.yaml on disk"."""
    home: Path
    """The local state folder (master key, proxy.json, the local copies)."""

    # --- the routing state ---------------------------------------------------------------

    def read(self) -> Versioned:
        """The stored state; StateError when invalid, StoreDown when unreachable."""

    def ensure(self) -> Versioned:
        """The stored state, created first (env defaults or a local file) when there is none."""

    def update(self, change: Callable[[State], State], expect: Version = None) -> Versioned:
        """Change the state with compare-and-set: ``change`` gets the stored state and returns
        the new one, validated before it is stored. Conflict when the stored version is not
        ``expect`` (or changed while writing); nothing is written then."""

    def live(self, on_reload: Callable[[State, State], None] | None = None,
             on_problem: Callable[[str], None] | None = None) -> LiveView:
        """The request path's view of the state (one per proxy worker)."""

    def watch(self, stop: threading.Event, every: float = 1.0) -> Iterator[bool]:
        """Yield True when the stored state may have changed, False every ``every`` seconds
        otherwise (for a status refresh), until ``stop``."""

    # --- the fleet -------------------------------------------------------------------------

    def status(self) -> FleetStatus: ...

    def wait_applied(self, version: Version, timeout: float) -> FleetStatus:
        """Wait until every live worker has applied ``version`` (or ``timeout``)."""

    def proxy_env(self) -> dict[str, str]:
        """Environment a proxy process needs to open this store."""

    # --- events ------------------------------------------------------------------------------

    def event_log(self) -> EventSink: ...

    def read_events(self, enough: Callable[[list[Record]], bool] | None = None,
                    limit: int = 8 * 1024 * 1024) -> tuple[list[Record], Any]:
        """Recent records, oldest first, until ``enough`` says so (reading about ``limit`` bytes
        at most), and a cursor for :meth:`follow_events`."""

    def all_events(self) -> list[Record]:
        """Every record the store still holds, oldest first (reports)."""

    def follow_events(self, cursor: Any, stop: threading.Event | None = None
                      ) -> Iterator[list[Record]]:
        """Batches of records appended after ``cursor`` (an empty batch: nothing new yet)."""

    def events_hint(self) -> str | None:
        """Why there is nothing to read yet, or None."""

    # --- conversation memory -----------------------------------------------------------------

    def memory(self) -> ConversationMemory: ...

    # --- rate-limit figures --------------------------------------------------------------------

    def quotas(self) -> QuotaBook:
        """What providers last reported of each deployment's rate limit (shared)."""
        ...


@dataclass
class Backoff:
    """Reconnect delays: quick at first, then at most ``cap`` seconds apart."""

    start: float = 0.05
    cap: float = 1.0
    _next: float = field(default=0.0, init=False)

    def reset(self) -> None:
        self._next = 0.0

    def wait(self, stop: threading.Event | None = None) -> None:
        self._next = min(self.cap, self._next * 2 or self.start)
        if stop is not None:
            stop.wait(self._next)
        else:
            threading.Event().wait(self._next)
