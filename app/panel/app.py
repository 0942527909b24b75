"""The dashboard: tiers and their figures, the live request stream, and the keys to remap."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, cast

import httpx
from rich.markup import escape
from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from app.clients.window import group_windows, model_window, saved_windows
from app.panel.model import PASS, PanelModel, Request, count_text, money, sparkline
from app.panel.prices import price
from app.panel.screens import DetailScreen, ModelPicker, SettingsScreen
from app.panel.sessions import ALL, PresetPicker, SessionsScreen, short
from callbacks.core.state import TIERS, State, StateError, Tier
from callbacks.launcher import config_models, read_proxy_info, saved_master_key
from callbacks.stores.base import Conflict, FleetStatus, Store, StoreError, Version
from callbacks.stores.store import open_store

TIER_FILTERS = (None, *TIERS, PASS)
STATUS_FILTERS = (None, "ok", "error", "in flight")
TIER_STYLE = {"none": "dim", "low": "cyan", "medium": "yellow", "high": "magenta", PASS: "dim"}
STATUS_STYLE = {"ok": "green", "lost": "yellow", "error": "bold red", "in flight": "italic"}
Column = tuple[str, str, int, int]  # key, label, width, priority (1 = shown on any width)
REQUEST_COLUMNS: tuple[Column, ...] = (
    ("time", "Time", 8, 1), ("client", "Client model", 19, 3), ("signal", "Signal", 23, 2),
    ("strength", "Strength", 8, 1), ("target", "Routed to", 18, 1), ("served", "Served by", 15, 5),
    ("status", "Status", 9, 1), ("latency", "Latency", 8, 2), ("ttft", "TTFT", 7, 6),
    ("tokens", "Tokens", 9, 4), ("cost", "Cost", 9, 5))
TIER_COLUMNS: tuple[Column, ...] = (
    ("tier", "Tier", 6, 1), ("model", "Model", 30, 1), ("window", "Window", 7, 3),
    ("requests", "Reqs", 6, 1), ("share", "Share", 5, 2), ("p50", "p50", 8, 3),
    ("tokens", "Tokens in/out", 15, 4),
    ("cost", "Cost", 10, 3), ("rate", "Rate (1 min)", 14, 5), ("health", "Health", 22, 2))
SCROLLBAR = 2  # the request table's vertical scrollbar


class ChangedElsewhere(Exception):
    """The state on disk is no longer what the panel wrote: undoing would drop another change."""


def fitting(columns: tuple[Column, ...], width: int) -> tuple[Column, ...]:
    """The columns that fit in ``width`` cells, the least important left out first (a narrow
    pane beside the editor still shows where each request went and how it went)."""
    kept: set[str] = set()
    used, limit = 0, None
    for key, _, cells, priority in sorted(columns, key=lambda c: c[3]):  # stable sort
        if limit is not None and priority > limit:
            break  # a more important column did not fit: none less important is shown
        if used + cells + 2 <= width:  # 2: the cell padding
            kept.add(key)
            used += cells + 2
        else:
            limit = priority
    return tuple(c for c in columns if c[0] in kept)


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else "-"


class ReasoningPanel(App[None]):
    """``reasoning-panel``: the live view and the remote control of the routing state."""

    CSS_PATH = "panel.tcss"
    TITLE = "reasoning-panel"
    BINDINGS: ClassVar = [
        Binding("m", "remap", "Remap"),
        Binding("p", "pin", "Pin"),
        Binding("r", "toggle_routing", "Routing"),
        Binding("e", "settings", "Settings"),
        Binding("u", "undo", "Undo"),
        Binding("t", "filter_tier", "Tier"),
        Binding("s", "filter_status", "Status"),
        Binding("S", "sessions", "Sessions"),
        Binding("P", "presets", "Presets"),
        Binding("end,G", "newest", "Newest"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, home: Path, *, max_rows: int = 1000, proxy_url: str | None = None,
                 config: Path | None = None, clock: Callable[[], float] = time.time,
                 live: bool = True, poll_s: float = 2.0, store: Store | None = None) -> None:
        super().__init__()
        self.home = home
        self.store = store or open_store(home)  # the files of home, or Redis (fleet mode)
        self.version: Version = None
        self.fleet: FleetStatus | None = None
        info = read_proxy_info(home)
        self.proxy_url = proxy_url or info.get("url")
        self.config = config or (Path(info["config"]) if info.get("config") else None)
        self.clock = clock
        self.live = live
        self.poll_s = poll_s
        self.model = PanelModel(max_rows, prices=price)
        self.state: State | None = None
        self.state_problem: str | None = None
        self.proxy_up: bool | None = None
        self.tier_filter: str | None = None
        self.status_filter: str | None = None
        self.session_filter: str | None = None  # a session id; "" for requests without one
        self.new_rows = 0
        self.undo_stack: list[tuple[State, State]] = []  # (before, after) of the panel's changes
        self._stop = threading.Event()
        self._dirty: dict[str, None] = {}  # ordered: rows are added in arrival order
        self._removed: list[str] = []
        self._tiers_dirty = True
        self.startup_hint: str | None = None
        self._tables_ready = False  # the widgets exist (App.is_mounted is a method, not a flag)
        self._tier_columns: tuple[Column, ...] = ()
        self.proxy_models: list[str] = []
        # input windows by model group: the last launch's copy, then the proxy's model info
        self.windows: dict[str, int] = saved_windows(home)
        self._request_columns: tuple[Column, ...] = ()

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="banner")
        yield DataTable(id="tiers", cursor_type="row", zebra_stripes=False)
        yield Static(id="totals")
        yield Static(id="stream-title")
        yield DataTable(id="requests", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.fit_columns(self.size.width)
        requests = self.query_one("#requests", DataTable)
        self._tables_ready = True
        self.reload_state()
        try:
            records, position = self.store.read_events(
                lambda rs: len(rs) >= 3 * self.model.max_rows, limit=4 * 1024 * 1024)
        except StoreError:  # Redis down: the status line says so; follow from when it is back
            records, position = [], None
        self.apply_records(records)
        self.refresh_view()
        self._follow(requests)
        self._draw_stream_title()
        requests.focus()
        if self.live:
            self.follow_events(position)
            self.watch_state()
            if self.proxy_url:
                self.poll_health()
        self.set_interval(0.25, self.refresh_view)
        if self.startup_hint:
            self.notify(self.startup_hint, timeout=20)

    # --- sources -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="events")
    def follow_events(self, position: Any) -> None:
        for batch in self.store.follow_events(position, stop=self._stop):
            if batch:
                try:
                    self.call_from_thread(self.apply_records, batch)
                except RuntimeError:  # the app stopped between two reads
                    return

    @work(thread=True, exclusive=True, group="state")
    def watch_state(self) -> None:
        """Reload on a state change; refresh the fleet line (versions applied, Redis up)."""
        for changed in self.store.watch(self._stop, every=self.poll_s):
            fleet = self.store.status()
            try:
                self.call_from_thread(self.show_fleet, fleet, changed)
            except RuntimeError:  # the app stopped meanwhile
                return

    def show_fleet(self, fleet: FleetStatus, changed: bool) -> None:
        self.fleet = fleet
        if changed or (fleet.problem is None and fleet.version != self.version):
            self.reload_state()
        else:
            self.update_status()

    @work(exclusive=True, group="health")
    async def poll_health(self) -> None:
        async with httpx.AsyncClient(timeout=1.5) as client:
            while True:
                try:
                    response = await client.get(f"{self.proxy_url}/health/liveliness")
                    up = response.status_code == 200
                except httpx.HTTPError:
                    up = False
                if up != self.proxy_up:
                    self.proxy_up = up
                    self.update_status()
                    if up:  # (re)started: its models may have changed
                        self.proxy_models = await self._fetch_models(client)
                        self.windows.update(await self._fetch_windows(client))
                        self._tiers_dirty = True
                await asyncio.sleep(self.poll_s)

    async def _fetch_models(self, client: httpx.AsyncClient) -> list[str]:
        try:
            response = await client.get(f"{self.proxy_url}/v1/models", headers={
                "Authorization": f"Bearer {saved_master_key(self.home)}"})
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return []

    async def _fetch_windows(self, client: httpx.AsyncClient) -> dict[str, int]:
        try:
            response = await client.get(f"{self.proxy_url}/model/info", headers={
                "Authorization": f"Bearer {saved_master_key(self.home)}"})
            return group_windows(response.json())
        except (httpx.HTTPError, ValueError):
            return {}

    def on_unmount(self) -> None:
        self._stop.set()

    def on_resize(self, event: events.Resize) -> None:
        if self._tables_ready and self.fit_columns(event.size.width):
            self.redraw_requests()  # every row anew: the columns changed
            self._tiers_dirty = True
            self.refresh_view()

    def fit_columns(self, width: int) -> bool:
        """Show the columns that fit the terminal's width; True when that changed them."""
        tier_columns = fitting(TIER_COLUMNS, width)
        request_columns = fitting(REQUEST_COLUMNS, width - SCROLLBAR)
        if (tier_columns, request_columns) == (self._tier_columns, self._request_columns):
            return False
        self._tier_columns, self._request_columns = tier_columns, request_columns
        tiers = self.query_one("#tiers", DataTable)
        tiers.clear(columns=True)
        for key, label, cells, _ in tier_columns:
            tiers.add_column(label, key=key, width=cells)
        for tier in (*TIERS, PASS):
            tiers.add_row(*[""] * len(tier_columns), key=tier)
        requests = self.query_one("#requests", DataTable)
        requests.clear(columns=True)
        for key, label, cells, _ in request_columns:
            requests.add_column(label, key=key, width=cells)
        return True

    # --- applying what comes in --------------------------------------------------------------

    def apply_records(self, records: Iterable[dict[str, Any]]) -> None:
        changes = self.model.apply(records)
        self._dirty.update(dict.fromkeys(changes.added))
        self._dirty.update(dict.fromkeys(changes.updated))
        self._removed += changes.removed
        self._tiers_dirty = True
        if changes.states:
            self.update_status()

    def reload_state(self) -> None:
        """Read the state file; an invalid one shows a banner and the last good stays shown."""
        try:
            stored = self.store.ensure()
            self.state, self.version = stored.state, stored.version
            self.state_problem = None
        except StoreError as exc:  # unreachable: the last state read stays shown
            self.fleet = FleetStatus(self.version, problem=f"Redis down: {exc}")
        except (StateError, OSError) as exc:
            self.state_problem = str(exc)
        self._tiers_dirty = True
        self.update_status()
        self.refresh_view()

    # --- drawing -------------------------------------------------------------------------------

    def update_status(self) -> None:
        if not self._tables_ready:
            return
        try:
            self._draw_status()
        except NoMatches:  # a timer or worker can fire once more while the app shuts down
            self._tables_ready = False

    def _draw_status(self) -> None:
        if self.proxy_url is None:
            proxy = "[dim]proxy: none configured[/]"
        elif self.proxy_up is None:
            proxy = f"proxy [dim]checking[/] {self.proxy_url}"
        elif self.proxy_up:
            proxy = f"proxy [b green]● up[/] {self.proxy_url}"
        else:
            proxy = f"proxy [b red]● down[/] {self.proxy_url}"
        state = self.state
        routing = "[dim]?[/]" if state is None else (
            "[b green]on[/]" if state.routing else "[b red]off[/]")
        pin = "-" if state is None else (f"[b magenta]{state.pin}[/]" if state.pin else "off")
        reload = self.model.last_state
        last = (time.strftime("%H:%M:%S", time.localtime(reload["time"]))
                if reload and isinstance(reload.get("time"), int | float) else "-")
        fleet = self.fleet.summary() if self.fleet else ""
        if fleet:
            colour = "b red" if self.fleet and (self.fleet.problem or self.fleet.laggards()) \
                else "b green"
            fleet = f"  │  [{colour}]{escape(fleet)}[/]"
        self.query_one("#status", Static).update(
            f"{proxy}  │  routing {routing}  │  pin {pin}  │  last reload {last}"
            f"  │  state {escape(self.store.where)}{fleet}")
        banner = self.query_one("#banner", Static)
        if self.state_problem:
            banner.update(f"⚠ {self.store.state_name} is invalid: "
                          f"{self.state_problem}\n  The last good mapping (below) stays in "
                          "force until the file is fixed.")
            banner.display = True
        else:
            banner.display = False

    def refresh_view(self) -> None:
        """Redraw what changed since the last call (runs a few times a second)."""
        if not self._tables_ready:
            return
        try:
            with self.batch_update():
                if self._tiers_dirty:
                    self._draw_tiers()
                    self._tiers_dirty = False
                self._draw_requests()
        except NoMatches:  # the interval timer can tick once more while the app shuts down
            self._tables_ready = False

    def _draw_tiers(self) -> None:
        table = self.query_one("#tiers", DataTable)
        total = self.model.total()
        now = self.clock()
        in_flight = dict.fromkeys((*TIERS, PASS), 0)
        for request in self.model.requests.values():
            if request.outcome is None:
                in_flight[request.tier] += 1
        for tier in (*TIERS, PASS):
            stats = self.model.tiers[tier]
            if tier == PASS:
                model: str | Text = "(passed through)"
            elif self.state is None:
                model = "?"
            else:
                model = self.state.tiers[cast(Tier, tier)].model
                if self.state.pin == tier:
                    model += "  📌 pinned"
                elif self.state.pin:
                    model = Text(model, style="dim")
            chain = self.state.tiers[cast(Tier, tier)].fallbacks if self.state and tier != PASS \
                else ()
            if chain:  # where it falls back to
                more = f" +{len(chain) - 1}" if len(chain) > 1 else ""
                model = Text.assemble(model, (f"  ↪ {chain[0]}{more}", "dim"))
            if stats.reasoning_lost:  # its target drops the reasoning (or a loop lost it)
                model = Text.assemble(model, (f"  ⚠ no reasoning ×{stats.reasoning_lost}", "yellow"))
            finished = stats.requests - in_flight[tier]
            window = None if self.state is None or tier == PASS else model_window(
                self.state, self.state.tiers[cast(Tier, tier)].model, self.windows.get)
            quota = None if self.state is None or tier == PASS else \
                self.model.quotas.get(self.state.tiers[cast(Tier, tier)].model)
            health = stats.health(now, quota)
            cells = {
                "tier": Text(tier, style=TIER_STYLE[tier]),
                "model": model,
                "window": Text(count_text(window) if window else "?" if tier != PASS else "",
                               style="" if window else "dim"),
                "requests": str(stats.requests),
                "share": f"{stats.requests / total.requests:.0%}" if total.requests else "-",
                "p50": _ms(stats.p50_ms),
                "tokens": f"{count_text(stats.input_tokens)} / {count_text(stats.output_tokens)}",
                "cost": money(stats.cost, stats.cost_unknown, max(finished - stats.errors, 0)),
                "rate": Text(sparkline(stats.rate(now)), style=TIER_STYLE[tier]),
                "health": Text(health or "-", style="yellow" if health else "dim"),
            }
            for key, *_ in self._tier_columns:
                table.update_cell(tier, key, cells[key])
        routed = self.model.total(TIERS)  # what routing changed: passed-through calls aside
        priced = routed.requests - routed.errors - sum(in_flight[t] for t in TIERS)
        actual = money(routed.cost, routed.cost_unknown, priced)
        asked = money(routed.client_cost, routed.client_cost_unknown, priced)
        saved = ""
        if not routed.cost_unknown and not routed.client_cost_unknown and routed.client_cost:
            saved = f"  →  routing saved [b green]{1 - routed.cost / routed.client_cost:.0%}[/]"
        self.query_one("#totals", Static).update(
            f"Routed: [b]{actual}[/] for {count_text(routed.input_tokens + routed.output_tokens)}"
            f" tokens · on the models the clients asked for: [b]{asked}[/]{saved}"
            f" · all requests: {total.requests}, errors: {total.errors}")

    def _row(self, request: Request) -> list[Any]:
        """The request's cells for the columns shown."""
        cells = self._cells(request)
        return [cells[key] for key, *_ in self._request_columns]

    def _cells(self, request: Request) -> dict[str, Any]:
        routed = request.routed or {}
        outcome = request.outcome or {}
        tier = routed.get("strength") or "?"
        status = request.status
        if status == "error" and outcome.get("status_code"):
            status_text = f"error {outcome['status_code']}"
        else:
            status_text = status
        target = routed.get("target") or (f"pass ({routed['reason']})" if routed else "?")
        if request.fallback:  # where it ended: a fallback of the chain served it
            target = f"↪ {request.fallback.get('to')}"
        elif request.context.get("to"):  # moved by the context guard
            target = f"⇡ {target}"
        elif request.context:  # too long for every model: sent on as asked
            target = f"⚠ {target}"
        elif routed.get("reason") == "pinned":
            target = f"📌 {target}"
        elif request.held:
            target = f"⏸ {target}"
        elif request.headroom.get("to"):  # its tier's model was low on its rate limit
            target = f"⤳ {target}"
        if routed.get("capped"):
            target = f"⤓ {target}"
        if routed.get("agent"):  # a subagent's request
            target = f"↳ {target}"
        if status == "ok" and request.reasoning_lost:
            status, status_text = "lost", "ok ⚠ no thinking"
        tokens = (f"{count_text(outcome.get('input_tokens'))}/{count_text(outcome.get('output_tokens'))}"
                  if outcome.get("type") == "done" else "-")
        cost = outcome.get("cost")
        return {
            "time": time.strftime("%H:%M:%S", time.localtime(request.time)) if request.time else "-",
            "client": str(routed.get("client_model") or "?"),
            "signal": request.signal,
            "strength": Text(tier, style=TIER_STYLE.get(tier, "")),
            "target": target,
            "served": str(outcome.get("deployment") or outcome.get("model_group") or "-"),
            "status": Text(status_text, style=STATUS_STYLE.get(status, "")),
            "latency": _ms(outcome.get("latency_ms")),
            "ttft": _ms(outcome.get("ttft_ms")),
            "tokens": tokens,
            "cost": "-" if outcome.get("type") != "done" else (
                "unknown" if cost is None else f"${cost:.5f}"),
        }

    def _passes(self, request: Request) -> bool:
        return ((self.tier_filter is None or request.tier == self.tier_filter)
                and (self.status_filter is None or request.status == self.status_filter)
                and self._in_session(request))

    def _in_session(self, request: Request) -> bool:
        """In the session the stream is filtered on (its subagents carry its id too)."""
        return self.session_filter is None or \
            ((request.routed or {}).get("session") or "") == self.session_filter

    def _draw_requests(self) -> None:
        table = self.query_one("#requests", DataTable)
        # Following: the view at the bottom and the cursor on the newest row (move either away,
        # e.g. to read a row, and new rows are counted instead of pulling the view down).
        following = (table.scroll_y >= table.max_scroll_y - 1
                     and table.cursor_row >= table.row_count - 1)
        for call_id in self._removed:
            if call_id in table.rows:
                table.remove_row(call_id)
        self._removed.clear()
        added = 0
        for call_id in self._dirty:
            request = self.model.requests.get(call_id)
            if request is None:
                continue
            shown = call_id in table.rows
            if not self._passes(request):
                if shown:  # e.g. a status filter and the request just finished
                    table.remove_row(call_id)
                continue
            row = self._row(request)
            if shown:
                for (key, *_), value in zip(self._request_columns, row, strict=True):
                    table.update_cell(call_id, key, value)
            else:
                table.add_row(*row, key=call_id)
                added += 1
        self._dirty.clear()
        if added:
            if following:
                self._follow(table)
            else:
                self.new_rows += added
        elif following:
            self.new_rows = 0
        self._draw_stream_title()

    def _draw_stream_title(self) -> None:
        tier = self.tier_filter or "all"
        status = self.status_filter or "all"
        table = self.query_one("#requests", DataTable)
        waiting = f"   [b reverse] {self.new_rows} new ↓ [/] (End to follow)" if self.new_rows else ""
        session = "" if self.session_filter is None else \
            f" · session: [b]{short(self.session_filter)}[/] (S to change)"
        self.query_one("#stream-title", Static).update(
            f"[b]Requests[/] {table.row_count} shown · tier: {tier} · status: {status}{session}"
            f"{waiting}")

    def redraw_requests(self) -> None:
        """Rebuild the request table (after a filter change)."""
        table = self.query_one("#requests", DataTable)
        table.clear()
        self._removed.clear()
        with self.batch_update():
            for request in filter(self._in_session,
                                  self.model.visible(self.tier_filter, self.status_filter)):
                table.add_row(*self._row(request), key=request.call_id)
            self._dirty.clear()
            self._follow(table)
            self._draw_stream_title()

    # --- acting --------------------------------------------------------------------------------

    @property
    def selected_tier(self) -> Tier | None:
        """The tier under the tier table's cursor (None on the pass-through row)."""
        row = self.query_one("#tiers", DataTable).cursor_row
        return TIERS[row] if 0 <= row < len(TIERS) else None

    def change_state(self, change: Callable[[State], State], summary: str) -> bool:
        """Apply a change through the same code as the CLI; remember it for undo."""
        seen: list[State] = []

        def remembered(current: State) -> State:
            seen.append(current)  # read under the same lock as the write
            return change(current)

        try:  # compare-and-set: based on the version shown, never over an unseen change
            after = self.store.update(remembered, expect=self.version)
        except Conflict as exc:
            self.notify(f"Not changed: {exc}. The view now shows the newer state: make the "
                        "change again if it still applies", severity="warning", timeout=10)
            self.reload_state()
            return False
        except (StateError, StoreError) as exc:
            self.notify(f"Not changed: {exc}", severity="error", timeout=8)
            return False
        self.undo_stack.append((seen[-1], after.state))
        self.reload_state()
        self.notify(summary, timeout=3)
        return True

    def models(self) -> list[str]:
        """Models the proxy serves: from its config file, else as the running proxy listed
        them when it came up (fetched by the health poll, so a key press never waits on it)."""
        if self.config and self.config.exists():
            found = config_models(self.config)
            if found:
                return found
        return self.proxy_models

    def action_remap(self) -> None:
        if self.selected_tier is None:
            self.notify("Select a tier first (Tab to the tier table, arrows)", timeout=4)
        else:
            self.remap(self.selected_tier)

    def say_no_state(self) -> None:
        """Answer a change key when there is no state to change (its file was never valid
        while the panel ran) with why, instead of ignoring it."""
        self.notify(f"Not changed: {self.state_problem or 'the state is not read yet'}",
                    severity="error", timeout=8)

    def remap(self, tier: Tier) -> None:
        if self.state is None:
            self.say_no_state()
            return
        current = self.state.tiers[tier].model

        def picked(model: str | None) -> None:
            if model and model != current:
                known = self.models()
                if known and model not in known:
                    self.notify(f"{model} is not a model of the proxy: requests will fail",
                                severity="warning", timeout=6)
                self.change_state(lambda s: s.with_tier_model(tier, model),
                                  f"{tier} → {model}")

        self.push_screen(ModelPicker(tier, current, self.models()), picked)

    def action_pin(self) -> None:
        tier = self.selected_tier
        if tier is None:
            self.notify("Select a tier first (Tab to the tier table, arrows)", timeout=4)
        elif self.state is not None and self.state.pin == tier:
            self.pin(None)
        else:
            self.pin(tier)

    def pin(self, tier: Tier | None) -> None:
        self.change_state(lambda s: replace(s, pin=tier),
                          f"pinned to {tier}" if tier else "unpinned: routing by strength")

    def action_toggle_routing(self) -> None:
        on = not (self.state.routing if self.state else True)
        self.change_state(lambda s: replace(s, routing=on), f"routing {'on' if on else 'off'}")

    def action_settings(self) -> None:
        if self.state is None:
            self.say_no_state()
            return

        def saved(new: State | None) -> None:
            if new is not None:
                self.change_state(lambda s: new, "settings saved")

        self.push_screen(SettingsScreen(self.state), saved)

    def action_undo(self) -> None:
        if not self.undo_stack:
            self.notify("Nothing to undo", timeout=3)
            return
        previous, ours = self.undo_stack[-1]

        def undo(current: State) -> State:
            if current != ours:
                raise ChangedElsewhere
            return previous

        try:
            self.store.update(undo)
        except (ChangedElsewhere, Conflict):
            self.undo_stack.clear()
            self.notify("Not undone: the state was changed elsewhere since (CLI, an editor or "
                        "another panel), and undo would drop that change", severity="warning",
                        timeout=8)
            return
        except (StateError, StoreError) as exc:
            self.notify(f"Not undone: {exc}", severity="error", timeout=8)
            return
        self.undo_stack.pop()
        self.reload_state()
        self.notify("undone", timeout=3)

    def action_filter_tier(self) -> None:
        self.tier_filter = TIER_FILTERS[(TIER_FILTERS.index(self.tier_filter) + 1)
                                        % len(TIER_FILTERS)]
        self.redraw_requests()

    def action_filter_status(self) -> None:
        self.status_filter = STATUS_FILTERS[(STATUS_FILTERS.index(self.status_filter) + 1)
                                            % len(STATUS_FILTERS)]
        self.redraw_requests()

    def set_filters(self, tier: str | None, status: str | None) -> None:
        self.tier_filter, self.status_filter = tier, status
        self.redraw_requests()

    def action_sessions(self) -> None:
        def picked(key: str | None) -> None:
            if key is not None:
                self.set_session_filter(None if key == ALL else key)

        self.push_screen(SessionsScreen(lambda: self.model.requests.values(), self.model.prices,
                                        self.clock, self.session_filter), picked)

    def set_session_filter(self, session: str | None) -> None:
        """Show only one session's requests (its subagents' included), or all for None."""
        self.session_filter = session
        self.redraw_requests()

    def action_presets(self) -> None:
        from callbacks.core.state import describe_preset

        if self.state is None or not self.state.presets:
            self.notify("No presets yet: save the current mapping with "
                        "`reasoning-panel preset save NAME`", timeout=6)
            return

        def picked(name: str | None) -> None:
            if name is not None:
                self.use_preset(name)

        self.push_screen(PresetPicker(dict(self.state.presets), describe_preset), picked)

    def use_preset(self, name: str) -> None:
        self.change_state(lambda s: s.with_preset(name), f"preset {name} in force")

    def action_newest(self) -> None:
        self._follow(self.query_one("#requests", DataTable))
        self._draw_stream_title()

    def _follow(self, table: DataTable[Any]) -> None:
        """Cursor and view on the newest row: new rows will be followed."""
        if table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
        table.scroll_end(animate=False, immediate=True)
        self.new_rows = 0

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "requests":
            return
        request = self.model.requests.get(str(event.row_key.value))
        if request is not None:
            self.push_screen(DetailScreen(request))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for tier in TIERS:
            yield SystemCommand(f"Remap {tier} tier", f"Pick the model of the {tier} tier",
                                lambda tier=tier: self.remap(tier))
            yield SystemCommand(f"Pin {tier} tier", f"Send every routed request to {tier}",
                                lambda tier=tier: self.pin(tier))
        yield SystemCommand("Unpin", "Route by strength again", lambda: self.pin(None))
        yield SystemCommand("Routing on/off", "Pass everything through, or route",
                            self.action_toggle_routing)
        yield SystemCommand("Edit settings", "Budget thresholds, effort map, routed models, "
                            "adapters", self.action_settings)
        yield SystemCommand("Undo last change", "Put the state back as it was",
                            self.action_undo)
        for shown in TIER_FILTERS:
            yield SystemCommand(f"Show tier: {shown or 'all'}", "Filter the request stream",
                                lambda shown=shown: self.set_filters(shown, self.status_filter))
        for status in STATUS_FILTERS:
            yield SystemCommand(f"Show status: {status or 'all'}", "Filter the request stream",
                                lambda status=status: self.set_filters(self.tier_filter, status))
        yield SystemCommand("Follow newest requests", "Jump to the bottom of the stream",
                            self.action_newest)
        yield SystemCommand("Sessions", "One row per session; pick one to filter the stream",
                            self.action_sessions)
        yield SystemCommand("Show session: all", "Stop filtering the stream by session",
                            lambda: self.set_session_filter(None))
        for name in (self.state.presets if self.state else {}):
            yield SystemCommand(f"Use preset {name}", "Tiers, pin and caps in one change",
                                lambda name=name: self.use_preset(name))
