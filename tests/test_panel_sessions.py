"""The dashboard's sessions view, session filter, subagent marks, presets key and caps setting."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from app.panel.app import ReasoningPanel
from app.panel.screens import DetailScreen, SettingsScreen
from app.panel.sessions import PresetPicker, SessionsScreen
from callbacks.core.state import Preset, State, TierTarget
from callbacks.stores.statefile import StateFile

from .sessions_log import AGENT, S1, S2, T0, routed, write_sessions_log
from .test_panel import SIZE, cell, request_rows, table, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def home(request: pytest.FixtureRequest) -> Path:
    """A state folder at a fixed path (it is shown on screen) with the sessions log."""
    path = Path("/tmp/reasoning-panel-tests") / request.node.name[:40].replace("[", "-")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    StateFile.in_home(path).write(State())
    write_sessions_log(path)
    return path


def panel(home: Path) -> ReasoningPanel:
    return ReasoningPanel(home, live=False, clock=lambda: T0 + 86_400 + 60)


def sessions_table(app: ReasoningPanel) -> DataTable[Any]:
    return app.screen.query_one("#sessions-table", DataTable)


def session_rows(app: ReasoningPanel) -> list[str]:
    return [str(row.key.value) for row in sessions_table(app).ordered_rows]


def session_cell(app: ReasoningPanel, row: str, column: str) -> str:
    return str(sessions_table(app).get_cell(row, column))


class TestSnapshots:
    def test_sessions_view(self, home: Path, snap_compare: Any) -> None:
        assert snap_compare(panel(home), press=["S"], terminal_size=SIZE)


async def test_sessions_view_has_a_row_per_session(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("S")
        assert isinstance(app.screen, SessionsScreen)
        assert session_rows(app) == ["*", S2, "", S1]  # all, then the most recently active
        row = {column: session_cell(app, S1, column) for column in (
            "session", "client", "started", "last", "turns", "requests", "tiers", "cost",
            "saved", "errors", "held", "fallbacks")}
        assert row == {"session": "5e0c1d2a", "client": "claude-cli/2.1.328",
                       "started": "01-15 08:00", "last": "01-15 08:00", "turns": "3",
                       "requests": "4 ↳1", "tiers": "low 2 medium 1 high 1", "cost": "$0.0062",
                       "saved": "$0.0288 (82%)", "errors": "1", "held": "1", "fallbacks": "1"}
        assert session_cell(app, S2, "started") == "08:00:00"  # today: the time only
        assert session_cell(app, S2, "requests") == "2"
        assert session_cell(app, "", "session") == "(none)"
        await pilot.press("escape")
        assert not isinstance(app.screen, SessionsScreen) and app.session_filter is None


async def test_picking_a_session_filters_the_stream_with_its_subagents(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        assert len(request_rows(app)) == 7
        await pilot.press("S")
        sessions_table(app).move_cursor(row=session_rows(app).index(S1))
        await pilot.press("enter")
        assert app.session_filter == S1
        assert request_rows(app) == ["s1-a", "s1-b", "s1-c", "s1-d"]
        assert "session: 5e0c1d2a" in str(app.query_one("#stream-title", Static).render())
        # a new request of the session streams in; another session's does not
        app.apply_records([routed("s1-e", T0 + 50, "high"), routed("s2-c", T0 + 51, "high",
                                                                    session=S2)])
        app.refresh_view()
        await pilot.pause()
        assert request_rows(app)[-1] == "s1-e" and "s2-c" not in request_rows(app)
        # the filter combines with the status filter
        await pilot.press("s", "s")  # ok, error
        assert request_rows(app) == ["s1-d"]
        await pilot.press("s", "s")  # in flight, all
        # the first row shows every session again
        await pilot.press("S")
        assert sessions_table(app).cursor_row == session_rows(app).index(S1)
        sessions_table(app).move_cursor(row=0)
        await pilot.press("enter")
        assert app.session_filter is None and len(request_rows(app)) == 9
        assert "session:" not in str(app.query_one("#stream-title", Static).render())


async def test_requests_without_a_session_can_be_picked_too(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("S")
        sessions_table(app).move_cursor(row=session_rows(app).index(""))
        await pilot.press("enter")
        assert request_rows(app) == ["gpt-1"]


async def test_subagent_and_capped_rows_are_marked_in_the_stream(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        assert cell(app, "requests", "s1-b", "target") == "↳ ⤓ low-reasoning"
        assert cell(app, "requests", "s1-a", "target") == "high-reasoning"
        table(app, "requests").move_cursor(row=request_rows(app).index("s1-b"))
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert f"session       {S1}" in text and f"subagent      {AGENT}" in text
        assert "client        claude-cli/2.1.328" in text
        assert "capped: subagent requests go no higher than low" in text


async def test_the_sessions_view_follows_new_requests(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("S")
        app.apply_records([routed("s3-a", T0 + 86_400 + 30, "low", session="c0ffee00-new")])
        await wait_for(lambda: "c0ffee00-new" in session_rows(app), 3.0)
        assert session_rows(app)[1] == "c0ffee00-new"


# --- presets and caps --------------------------------------------------------------------------


CHEAP = Preset(tiers={"high": TierTarget("fast-coder")}, pin=None, caps={"subagent": "none"})


async def test_presets_key_uses_a_preset_and_undo_puts_it_back(home: Path) -> None:
    before = replace(State(), pin="medium", presets={"cheap": CHEAP, "focus": Preset(pin="high")})
    StateFile.in_home(home).write(before)
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("P")
        assert isinstance(app.screen, PresetPicker)
        options = app.screen.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == \
            ["cheap", "focus"]
        await pilot.press("enter")  # the first: cheap
        await pilot.pause()
        state = StateFile.in_home(home).read()
        assert state.tiers["high"].model == "fast-coder"
        assert state.pin is None and state.caps == {"subagent": "none"}
        assert cell(app, "tiers", "high", "model") == "fast-coder"
        await pilot.press("u")
        assert StateFile.in_home(home).read() == before
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        commands["Use preset focus"]()
        assert StateFile.in_home(home).read().pin == "high"


async def test_presets_key_without_presets_says_how_to_save_one(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("P")
        assert not isinstance(app.screen, PresetPicker)
        assert any("preset save" in str(n.message) for n in app._notifications)


async def test_caps_are_edited_in_the_settings(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert screen.query_one("#caps", Input).value == "{}"
        screen.query_one("#caps", Input).value = "{subagent: extreme}"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert "caps.subagent: 'extreme' is not valid" in str(
            screen.query_one("#settings-error", Static).render())
        screen.query_one("#caps", Input).value = "{subagent: low, claude-haiku-*: none}"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert StateFile.in_home(home).read().caps == {"subagent": "low", "claude-haiku-*": "none"}
        await pilot.press("u")
        assert StateFile.in_home(home).read().caps == {}


async def test_palette_opens_the_sessions_view(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        commands["Sessions"]()
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        await pilot.press("escape")
        app.set_session_filter(S2)
        assert request_rows(app) == ["s2-a", "s2-b"]
        commands["Show session: all"]()
        assert len(request_rows(app)) == 7
