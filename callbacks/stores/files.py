"""The files backend (the embedded default): ``state.yaml``, ``events.jsonl`` and
``memory.sqlite3`` in the state folder. One machine; every proxy worker reads the state file on
each request, so nothing has to be acknowledged. Its version is a hash of the state's content.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from callbacks.core.state import State, StateError
from callbacks.stores.base import (
    WORKERS_ENV,
    Conflict,
    EventSink,
    FleetStatus,
    LiveView,
    Record,
    Version,
    Versioned,
    content_version,
)
from callbacks.stores.eventlog import EVENTS_NAME, EventLog, follow, read_all, read_tail
from callbacks.stores.memory import MEMORY_NAME, ConversationMemory, SqliteMemory
from callbacks.stores.quotas import FileQuotas, QuotaBook
from callbacks.stores.statefile import STATE_NAME, LiveState, StateFile, default_home


class FileStore:
    backend = "files"

    def __init__(self, home: Path | None = None, state_file: StateFile | None = None) -> None:
        self.file = state_file or StateFile.in_home(home)
        self.home = self.file.path.parent
        self.where = str(self.file.path)
        self.state_name = f"{self.file.path.name} on disk"
        self.events_path = self.home / EVENTS_NAME
        self._memory: SqliteMemory | None = None
        self._quotas: QuotaBook | None = None

    @classmethod
    def in_home(cls, home: Path | None = None) -> FileStore:
        return cls(home or default_home())

    # --- state ---------------------------------------------------------------------------

    def read(self) -> Versioned:
        state = self.file.read()
        return Versioned(state, content_version(state))

    def ensure(self) -> Versioned:
        created = not self.file.path.exists()
        state = self.file.ensure()
        return Versioned(state, content_version(state),
                         "created from the env defaults" if created else "")

    def update(self, change: Callable[[State], State], expect: Version = None) -> Versioned:
        def checked(current: State) -> State:
            found = content_version(current)
            if expect is not None and str(found) != str(expect):  # typed: digits may be an int
                raise Conflict(expect, found)
            return change(current)

        new = self.file.update(checked)  # the lock serialises writers: no lost update
        return Versioned(new, content_version(new))

    def live(self, on_reload: Callable[[State, State], None] | None = None,
             on_problem: Callable[[str], None] | None = None) -> LiveView:
        return LiveState(self.file, on_reload=on_reload, on_problem=on_problem)

    def watch(self, stop: threading.Event, every: float = 1.0) -> Iterator[bool]:
        from watchfiles import watch

        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        for changes in watch(self.home, debounce=50, step=10, stop_event=stop,
                             rust_timeout=int(every * 1000), yield_on_timeout=True,
                             recursive=False):
            yield any(Path(path).name == STATE_NAME for _, path in changes)

    # --- fleet (one machine: nothing to acknowledge) --------------------------------------

    def status(self) -> FleetStatus:
        try:
            return FleetStatus(self.read().version)
        except (StateError, OSError):
            return FleetStatus(None)

    def wait_applied(self, version: Version, timeout: float) -> FleetStatus:
        return self.status()

    def proxy_env(self) -> dict[str, str]:
        return {}

    # --- events ------------------------------------------------------------------------------

    def event_log(self) -> EventSink:
        return EventLog(self.events_path)

    def read_events(self, enough: Callable[[list[Record]], bool] | None = None,
                    limit: int = 8 * 1024 * 1024) -> tuple[list[Record], Any]:
        return read_tail(self.events_path, enough, limit)

    def all_events(self) -> list[Record]:
        return read_all(self.events_path)

    def follow_events(self, cursor: Any, stop: threading.Event | None = None
                      ) -> Iterator[list[Record]]:
        return follow(self.events_path, position=cursor, stop=stop)

    def events_hint(self) -> str | None:
        if self.events_path.exists():
            return None
        return f"no events yet at {self.events_path} (is a proxy running with this --home?)"

    # --- memory --------------------------------------------------------------------------------

    def memory(self) -> ConversationMemory:
        if self._memory is None:
            # one worker: no other process reads the memory while it runs
            self._memory = SqliteMemory(self.home / MEMORY_NAME,
                                        shared=os.environ.get(WORKERS_ENV) != "1")
        return self._memory

    def quotas(self) -> QuotaBook:
        if self._quotas is None:
            self._quotas = QuotaBook(FileQuotas(self.home))
        return self._quotas
