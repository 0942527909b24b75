"""The state file on disk: where it lives, atomic writes, locked edits, and a cheap live view.

``state.yaml`` is read by every proxy worker and written by the CLI and the panel. Writers go
through :meth:`StateFile.update` (a lock file serialises read-modify-write; the write itself is
temp file + fsync + rename, so readers see the old or the new file, never a torn one), then change
the 8 bytes of ``state.yaml.stamp``. Readers in the request path use :class:`LiveState`, which
reads that stamp from memory (no system call: a ``stat`` per request cost a loaded proxy about
2 % of its throughput, the GIL it lets go taken by other threads) and looks at the file itself
when the stamp changed or every :data:`CHECK_S` (an edit by hand changes no stamp); YAML is
parsed only when the file changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from callbacks.core.state import State, StateError, parse_state, state_from_env, state_to_dict

log = logging.getLogger("reasoning_panel")

HOME_ENV: Final = "REASONING_PANEL_HOME"
STATE_NAME: Final = "state.yaml"
CHECK_S: Final = 0.5
"""How often a reader looks at the state file while its stamp is unchanged: an edit by hand
(which changes no stamp) applies within this; a command's write, at the very next request."""
STAMP_BYTES: Final = 8
HEADER: Final = """\
# reasoning-panel state: edited by `reasoning-panel set/pin/routing`, the dashboard, or by hand.
# The proxy applies a valid change to the next request (an edit by hand: within half a second);
# an invalid one is refused and the last good state stays in force. Keys: routing, pin
# (none|low|medium|high|null), route_models (names or globs), tiers (tier -> model, or {model,
# params, fallbacks, max_input_tokens}), detection, adapters (model/glob -> {cerebras,
# openrouter}), caps (subagent or client-model glob -> highest tier), presets (name -> {tiers,
# pin, caps}), long_context (model for requests no tier fits).
"""

try:  # the C loader and emitter are several times faster; fall back when libyaml is missing
    _Loader: Any = yaml.CSafeLoader
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Loader, _Dumper = yaml.SafeLoader, yaml.SafeDumper


def default_home() -> Path:
    """``$REASONING_PANEL_HOME``, else the per-user state folder."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
    return Path(base).expanduser() / "reasoning-panel"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) if needed."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def atomic_write(path: Path, text: str, mode: int = 0o600, overwrite: bool = True,
                 sync_dir: bool = True) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same folder, fsync, rename.

    With ``overwrite=False`` an existing file is kept (the temp file is linked into place, which
    fails when ``path`` exists), so concurrent creators all end up with one complete file.
    ``sync_dir=False`` leaves making the rename durable to a later write in the same folder.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if not sync_dir:
        return
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def stamp_path(path: Path) -> Path:
    """The stamp beside a state file: 8 bytes every write by a command changes."""
    return path.with_name(path.name + ".stamp")


def change_stamp(path: Path) -> None:
    """Tell every :class:`LiveState` of ``path`` that it changed (after the file is in place).
    Best effort: without a stamp, readers still see the change within :data:`CHECK_S`."""
    with contextlib.suppress(OSError):
        fd = os.open(stamp_path(path), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, os.urandom(STAMP_BYTES), 0)
        finally:
            os.close(fd)


class _Stamp:
    """A state file's stamp, mapped into memory: read without a system call."""

    def __init__(self, path: Path) -> None:
        self.path = stamp_path(path)
        self.map: mmap.mmap | None = None
        self.inode = -1
        self._retry_by = 0.0  # a stamp that could not be mapped is tried again after this

    def refresh(self) -> None:
        """Map the stamp file (created when missing), again if it was replaced or cut short
        (reading a mapped page past the end of its file kills the process: the size is put
        back); unmapped when it cannot be (the state file is then looked at every time)."""
        try:
            if self.map is not None:
                st = os.stat(self.path)
                if st.st_ino == self.inode and st.st_size >= STAMP_BYTES:
                    return
            if self.map is None and time.monotonic() < self._retry_by:
                return
            self._retry_by = time.monotonic() + CHECK_S
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size < STAMP_BYTES:
                    os.ftruncate(fd, STAMP_BYTES)
                self.map = mmap.mmap(fd, STAMP_BYTES, prot=mmap.PROT_READ)
                self.inode = os.fstat(fd).st_ino
            finally:
                os.close(fd)
        except (OSError, ValueError):
            self.map, self.inode = None, -1


def render_state(state: State) -> str:
    """The YAML text of a state, with the explanatory header."""
    return HEADER + yaml.dump(state_to_dict(state), Dumper=_Dumper, sort_keys=False,
                              default_flow_style=False)


def parse_state_text(text: str) -> State:
    """Parse and validate the text of a state file."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise StateError(f"not valid YAML: {exc}".replace("\n", " ")) from None
    return parse_state(data)


@dataclass
class StateFile:
    """``state.yaml`` in a state folder."""

    path: Path

    @classmethod
    def in_home(cls, home: Path | None = None) -> StateFile:
        return cls((home or default_home()) / STATE_NAME)

    def read(self) -> State:
        """The state on disk; :class:`StateError` when it is missing, unreadable or invalid."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StateError(f"{self.path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"{self.path} cannot be read: {exc}") from None
        return parse_state_text(text)

    @property
    def saved_path(self) -> Path:
        """A copy of the last state a command saved: what a later broken edit falls back to."""
        return self.path.with_name(self.path.name + ".saved")

    def write(self, state: State) -> None:
        ensure_private_dir(self.path.parent)
        text = render_state(state)
        # The state in force first: the proxies see it one disk flush after the write began.
        # The copy follows, and one folder fsync after both renames makes them durable.
        atomic_write(self.path, text, sync_dir=False)
        change_stamp(self.path)
        atomic_write(self.saved_path, text)

    def ensure(self, env: dict[str, str] | None = None) -> State:
        """The state on disk, first creating it from the environment's defaults if missing.

        Creation never overwrites: two processes creating at once both end up reading one file.
        """
        if not self.path.exists():
            ensure_private_dir(self.path.parent)
            atomic_write(self.path, render_state(state_from_env(env)), overwrite=False)
            change_stamp(self.path)
        return self.read()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, change: Callable[[State], State]) -> State:
        """Read, change and write the state under a lock; returns the new state.

        Raises :class:`StateError` when the file on disk is invalid: an edit is never based on
        a guess of what the user meant.
        """
        with self._locked():
            new = change(self.ensure())
            parse_state(state_to_dict(new))  # never write what would be refused
            self.write(new)
            return new


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_ctime_ns)


class LiveState:
    """The state in force for one process, refreshed from disk when the file changes.

    :meth:`current` reads the file's stamp from memory; when it changed, or :data:`CHECK_S` after
    the last look, it costs a ``stat``, and the file is read and parsed only when its identity,
    size or times changed. A bad file is reported once (``on_problem``) and the last good state
    stays.
    """

    def __init__(
        self,
        file: StateFile,
        on_reload: Callable[[State, State], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
        check_s: float = CHECK_S,
    ) -> None:
        self.file = file
        self.check_s = check_s  # how often the file is looked at while its stamp is unchanged
        self._on_reload = on_reload
        self._on_problem = on_problem
        self._seen: tuple[int, int, int, int] | None = None
        self._raw: bytes | None = None  # the bytes last examined, good or bad
        self._raw_problem: str | None = None  # what was wrong with them
        self._problem: str | None = None
        self._loaded_ns = 0  # when the file in force was written
        self._loaded_raw = b""  # and its bytes
        self._stamp = _Stamp(file.path)
        self._stamp_seen: bytes | None = None  # the stamp at the last look at the file
        self._look_by = 0.0  # when the next look is due with the stamp unchanged (monotonic)
        self.state: State | None = None

    @property
    def problem(self) -> str | None:
        """Why the file on disk is not in force, or None when it is."""
        return self._problem

    def current(self) -> State:
        """The state in force now."""
        stamp = self._stamp.map  # the time first: a look repairs a stamp cut short (below)
        if stamp is not None and self.state is not None and time.monotonic() < self._look_by \
                and stamp[:STAMP_BYTES] == self._stamp_seen:
            return self.state  # nothing written by a command, and no look due
        return self._look()

    def _look(self) -> State:
        """The state in force, from the file itself."""
        self._stamp.refresh()
        stamp = self._stamp.map
        # taken before the stat below: a write after it changes the stamp again
        self._stamp_seen = stamp[:STAMP_BYTES] if stamp is not None else None
        self._look_by = time.monotonic() + self.check_s
        path = self.file.path
        try:
            sig = _signature(os.stat(path))
        except FileNotFoundError:
            if self.state is not None:
                return self._keep(f"{path} does not exist")
            try:  # first use: create it from the environment's defaults
                self.file.ensure()
                sig = _signature(os.stat(path))
            except (OSError, StateError) as exc:
                return self._keep(f"{path} cannot be created: {exc}")
        except OSError as exc:
            return self._keep(f"{path} cannot be read: {exc}")
        if sig == self._seen and not self._racy(sig):
            return self._in_force()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return self._keep(f"{path} cannot be read: {exc}")
        self._seen = sig
        if raw == self._raw:  # touched or restored, not changed
            if self._raw_problem is not None:
                return self._keep(self._raw_problem)
            self._problem = None
            return self._in_force()
        self._raw = raw
        try:
            new = parse_state_text(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self._raw_problem = f"{path} is not UTF-8 text: {exc}"
            return self._keep(self._raw_problem)
        except StateError as exc:
            self._raw_problem = str(exc)
            return self._keep(self._raw_problem)
        self._loaded_ns, self._loaded_raw = sig[3], raw
        self._raw_problem = None
        return self._adopt(new)

    def _adopt(self, new: State) -> State:
        old, self.state, self._problem = self.state, new, None
        if old is not None and old != new:
            log.info("reasoning-panel: state reloaded from %s", self.file.path)
            if self._on_reload:
                self._on_reload(old, new)
        return new

    def _saved_since_loaded(self) -> State | None:
        try:
            path = self.file.saved_path
            if os.stat(path).st_mtime_ns <= self._loaded_ns:
                return None
            raw = path.read_bytes()
            if raw == self._loaded_raw:  # the copy of the state in force (it is written after)
                return None
            return parse_state_text(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, StateError):
            return None

    def _racy(self, sig: tuple[int, int, int, int]) -> bool:
        """Whether an unchanged signature may still hide a change.

        File times are coarse (a few ms) and a rename can reuse a freed inode, so two quick
        writes can leave the same signature. As git does for "racy" index entries, a file changed
        within the last two seconds is compared by content (a small read, no parse).
        """
        if time.time_ns() - sig[3] > 2_000_000_000:
            return False
        try:
            return self.file.path.read_bytes() != self._raw
        except OSError:
            return True

    def _in_force(self) -> State:
        return self.state if self.state is not None else self._keep("no state loaded")

    def _keep(self, problem: str) -> State:
        """Keep the last good state; report a new problem once.

        The last good state is the newer of the one in force and the last one a command saved
        (a save this process never read, say a remap made just before a hand edit broke the
        file, is not lost).
        """
        if problem != self._problem:
            saved = self._saved_since_loaded()
            if saved is not None:
                self._adopt(saved)
            self._problem = problem
            log.warning("reasoning-panel: state file refused, last good state stays: %s", problem)
            if self._on_problem:
                self._on_problem(problem)
        if self.state is None:  # nothing good yet: the env defaults route until the file is fixed
            self.state = state_from_env()
        return self.state
