"""The sessions view (one row per client session, live) and the preset picker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, OptionList
from textual.widgets.option_list import Option

from app.panel.model import Prices, Request, money
from app.usage import Usage, group, session_of
from callbacks.core.state import Preset

ALL: Final = "*"  # the row that clears the filter
NO_SESSION: Final = ""  # requests that carry no session (e.g. curl, some OpenAI clients)
COLUMNS: Final = (
    ("session", "Session", 8), ("client", "Client", 18), ("started", "Started", 11),
    ("last", "Last active", 11), ("turns", "Turns", 5), ("requests", "Reqs", 5),
    ("tiers", "Tiers used", 24), ("cost", "Cost", 9), ("saved", "Saved", 13),
    ("errors", "Errors", 6), ("held", "Held", 4), ("fallbacks", "Fallbacks", 9))


def session_key(request: Request) -> str:
    return session_of(request) or NO_SESSION


def short(session: str) -> str:
    """The first 8 characters of a session id: enough to tell sessions apart."""
    return session[:8] if session else "(none)"


def sessions(requests: Iterable[Request], prices: Prices) -> list[tuple[str, Usage]]:
    """(session key, its requests added up), the most recently active first."""
    groups = group(requests, session_key, prices)
    return sorted(groups.items(), key=lambda item: -(item[1].last or 0.0))


def _clock(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    same_day = time.localtime(at)[:3] == time.localtime(now)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M", time.localtime(at))


def session_cells(key: str, usage: Usage, now: float) -> dict[str, Any]:
    finished = usage.requests - usage.in_flight - usage.errors
    saved = "-"
    if usage.saved is not None and usage.saved_share is not None:
        saved = f"{money(usage.saved, 0, 1)} ({usage.saved_share:.0%})"
    return {
        "session": short(key),
        "client": ", ".join(sorted(usage.clients)) or "-",
        "started": _clock(usage.first, now),
        "last": _clock(usage.last, now),
        "turns": str(usage.turns),
        "requests": str(usage.requests) + (f" ↳{usage.subagent_requests}"
                                           if usage.subagent_requests else ""),
        "tiers": " ".join(f"{t} {usage.tiers[t].requests}" for t in usage.tiers_used()),
        "cost": money(usage.cost, usage.cost_unknown, finished),
        "saved": saved,
        "errors": Text(str(usage.errors), style="bold red" if usage.errors else ""),
        "held": str(usage.holds),
        "fallbacks": str(usage.fallbacks),
    }


class SessionsScreen(ModalScreen[str | None]):
    """Every session seen in the stream; Enter shows only that session's requests (its
    subagents' included), the first row shows all again."""

    BINDINGS: ClassVar = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, requests: Callable[[], Iterable[Request]], prices: Prices,
                 clock: Callable[[], float], current: str | None) -> None:
        super().__init__()
        self.requests = requests
        self.prices = prices
        self.clock = clock
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions"):
            yield Label("[b]Sessions[/b] (a subagent's requests count in its parent's session)")
            yield DataTable(id="sessions-table", cursor_type="row")
            yield Label("Enter shows only that session's requests · the first row shows all · "
                        "Esc closes", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        self.refresh_rows()
        keys = [str(row.value) for row in table.rows]
        if self.current is not None and self.current in keys:
            table.move_cursor(row=keys.index(self.current), animate=False)
        table.focus()
        self.set_interval(1.0, self.refresh_rows)

    def refresh_rows(self) -> None:
        """Rows anew (a few dozen sessions at most), the cursor kept on its session."""
        table = self.query_one(DataTable)
        selected = None
        if 0 <= table.cursor_row < table.row_count:
            selected = str(table.ordered_rows[table.cursor_row].key.value)
        rows = sessions(self.requests(), self.prices)
        table.clear()
        total = sum(usage.requests for _, usage in rows)
        table.add_row(Text("all", style="bold"), f"{len(rows)} sessions", "", "", "",
                      str(total), *[""] * (len(COLUMNS) - 6), key=ALL)
        now = self.clock()
        for key, usage in rows:
            cells = session_cells(key, usage, now)
            table.add_row(*[cells[k] for k, *_ in COLUMNS], key=key)
        keys = [str(row.value) for row in table.rows]
        if selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(str(event.row_key.value))


class PresetPicker(ModalScreen[str | None]):
    """Pick a saved preset to put in force (tiers, pin and caps in one change)."""

    BINDINGS: ClassVar = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, presets: dict[str, Preset], describe: Callable[[Preset], str]) -> None:
        super().__init__()
        self.presets = presets
        self.describe = describe

    def compose(self) -> ComposeResult:
        with Vertical(id="presets"):
            yield Label("[b]Use a preset[/b] (tiers, pin and caps in one change; u undoes it)")
            yield OptionList(*[Option(f"{name}  [dim]{self.describe(preset)}[/]", id=name)
                               for name, preset in self.presets.items()], id="preset-list")
            yield Label("↑↓ move · Enter uses · Esc cancels · "
                        "save one with `reasoning-panel preset save NAME`", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
