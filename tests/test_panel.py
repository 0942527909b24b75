"""The dashboard: snapshots of each screen state, and Pilot tests of every key and command."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from app.clients.window import WINDOWS_FILE
from app.panel.app import ReasoningPanel
from app.panel.screens import DetailScreen, ModelPicker, SettingsScreen
from callbacks.core.state import DEFAULT_EFFORT_MAP, State
from callbacks.stores.eventlog import EVENTS_NAME
from callbacks.stores.statefile import StateFile

from .conftest import Proxy

pytestmark = pytest.mark.timeout(120)
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
SIZE = (160, 40)
SHAPES = [  # (client model, rule, value, strength)
    ("claude-opus-4-8", "effort", "high", "high"),
    ("claude-opus-4-8", "effort", "low", "low"),
    ("claude-sonnet-4-5-20250929", "budget", "8000", "medium"),
    ("claude-opus-4-8", "disabled", "disabled", "none"),
    ("claude-sonnet-5", "reasoning_effort", "medium", "medium"),
    ("claude-opus-4-8", "keyword", "ultrathink", "high"),
]


def fixed_log(n: int = 24) -> list[dict[str, Any]]:
    """A fixed event log: every shape, a pass-through, a failure and one still in flight."""
    records: list[dict[str, Any]] = []
    for i in range(n):
        client, rule, value, strength = SHAPES[i % len(SHAPES)]
        signal = {"effort": "output_config.effort", "budget": "thinking.budget_tokens",
                  "disabled": "thinking.type", "reasoning_effort": "reasoning_effort",
                  "keyword": "keyword"}[rule]
        call_id = f"call-{i:03d}"
        at = T0 + i * 2.5
        records.append({
            "v": 1, "type": "routed", "time": at, "call_id": call_id,
            "endpoint": "/v1/messages", "client_model": client,
            "fields": [f"{signal}={value}"], "signal": signal, "value": value, "rule": rule,
            "strength": strength, "tier": strength, "target": f"{strength}-reasoning",
            "reason": "routed", "pin": None, "routing": True, "notes": [],
        })
        if i == n - 1:
            continue  # in flight
        if i % 7 == 3:
            records.append({"v": 1, "type": "failed", "time": at + 0.2, "call_id": call_id,
                            "model_group": f"{strength}-reasoning", "deployment": f"d-{strength}",
                            "status": "error", "error_class": "InternalServerError",
                            "status_code": 500, "message": "upstream failed", "latency_ms": 200})
        else:
            records.append({"v": 1, "type": "done", "time": at + 0.8, "call_id": call_id,
                            "model_group": f"{strength}-reasoning", "deployment": f"d-{strength}",
                            "status": "ok", "stream": i % 2 == 0, "latency_ms": 800.0 + i,
                            "ttft_ms": 120.0 + i if i % 2 == 0 else None,
                            "input_tokens": 1500 + 10 * i, "output_tokens": 200 + i,
                            "cost": 0.0001 * (1 + i)})
    records.insert(6, {"v": 1, "type": "routed", "time": T0 + 6, "call_id": "pass-1",
                       "endpoint": "/v1/chat/completions", "client_model": "gpt-5-mini",
                       "fields": [], "signal": "default", "value": "", "rule": "default",
                       "strength": "none", "tier": None, "target": None,
                       "reason": "not_routed", "pin": None, "routing": True, "notes": []})
    records.insert(7, {"v": 1, "type": "done", "time": T0 + 6.1, "call_id": "pass-1",
                       "model_group": "gpt-5-mini", "deployment": "d-gpt", "status": "ok",
                       "stream": False, "latency_ms": 50.0, "ttft_ms": None,
                       "input_tokens": 40, "output_tokens": 9, "cost": None})
    records.append({"v": 1, "type": "state", "time": T0 + 30, "event": "reload", "pid": 1,
                    "changes": [{"key": "pin", "old": None, "new": "high"}]})
    return records


@pytest.fixture
def home(request: pytest.FixtureRequest) -> Path:
    """A state folder at a fixed path (it is shown on screen) with a fixed log."""
    path = Path("/tmp/reasoning-panel-tests") / request.node.name[:40].replace("[", "-")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    StateFile.in_home(path).write(State())
    (path / EVENTS_NAME).write_text("".join(json.dumps(r) + "\n" for r in fixed_log()))
    # the model windows a launch read from the proxy (the others are unknown)
    (path / WINDOWS_FILE).write_text(json.dumps({"low-reasoning": 131_072,
                                                 "high-reasoning": 200_000}))
    return path


def panel(home: Path, live: bool = False, **kwargs: Any) -> ReasoningPanel:
    return ReasoningPanel(home, live=live, clock=lambda: T0 + 62, **kwargs)


def table(app: ReasoningPanel, which: str) -> DataTable[Any]:
    return app.query_one(f"#{which}", DataTable)


def cell(app: ReasoningPanel, which: str, row: str, column: str) -> str:
    return str(table(app, which).get_cell(row, column))


def request_rows(app: ReasoningPanel) -> list[str]:
    requests = table(app, "requests")
    return [str(requests.coordinate_to_cell_key((i, 0)).row_key.value)
            for i in range(requests.row_count)]


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


# --- snapshots ------------------------------------------------------------------------------


class TestSnapshots:
    def test_main_screen(self, home: Path, snap_compare: Any) -> None:
        assert snap_compare(panel(home), terminal_size=SIZE)

    def test_model_picker(self, home: Path, snap_compare: Any) -> None:
        assert snap_compare(panel(home, config=Path("configs/demo.yaml").resolve()),
                            press=["m"], terminal_size=SIZE)

    def test_detail_view(self, home: Path, snap_compare: Any) -> None:
        async def open_failed(pilot: Any) -> None:
            requests = table(pilot.app, "requests")
            requests.move_cursor(row=request_rows(pilot.app).index("call-003"))
            await pilot.press("enter")

        assert snap_compare(panel(home), run_before=open_failed, terminal_size=SIZE)

    def test_invalid_state_banner(self, home: Path, snap_compare: Any) -> None:
        async def break_it(pilot: Any) -> None:
            (home / "state.yaml").write_text("version: 1\npin: extreme\n")
            pilot.app.reload_state()
            await pilot.pause()

        assert snap_compare(panel(home), run_before=break_it, terminal_size=SIZE)

    def test_filtered_view(self, home: Path, snap_compare: Any) -> None:
        assert snap_compare(panel(home), press=["t", "t", "t", "t", "s"], terminal_size=SIZE)

    def test_settings(self, home: Path, snap_compare: Any) -> None:
        assert snap_compare(panel(home), press=["e"], terminal_size=SIZE)


# --- what the screen says -------------------------------------------------------------------


async def test_tiers_show_live_figures(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE):
        assert cell(app, "tiers", "high", "model") == "high-reasoning"
        assert cell(app, "tiers", "high", "requests") == "8"
        assert cell(app, "tiers", "high", "window") == "200.0k"
        assert cell(app, "tiers", "none", "window") == "?"  # nobody knows it
        assert cell(app, "tiers", "pass", "requests") == "1"
        assert cell(app, "tiers", "medium", "share") == "32%"  # 8 of 25
        assert cell(app, "tiers", "none", "p50") == "815 ms"  # of 200 (failed), 809, 815, 821
        totals = str(app.query_one("#totals", Static).render())
        assert "on the models the clients asked for" in totals
        assert "all requests: 25, errors: 3" in totals
        assert len(request_rows(app)) == 25
        assert cell(app, "requests", "call-023", "status") == "in flight"
        assert cell(app, "requests", "call-003", "status") == "error 500"
        assert cell(app, "requests", "call-002", "signal") == "budget=8000"
        assert cell(app, "requests", "call-005", "signal") == "ultrathink"
        assert cell(app, "requests", "pass-1", "target") == "pass (not_routed)"


async def test_a_pinned_request_shows_the_pin_where_it_went(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        pinned = {**fixed_log()[0], "call_id": "pinned-1", "strength": "low", "tier": "high",
                  "target": "high-reasoning", "reason": "pinned", "pin": "high"}
        app.apply_records([pinned])
        app.refresh_view()
        await pilot.pause()
        assert cell(app, "requests", "pinned-1", "strength") == "low"
        assert cell(app, "requests", "pinned-1", "target") == "📌 high-reasoning"
        assert cell(app, "requests", "call-000", "target") == "high-reasoning"


def held_and_lost() -> list[dict[str, Any]]:
    """A held continuation, one sent without thinking, a hidden retry, a tier dropping it."""
    base = fixed_log()[0]
    done = {"v": 1, "type": "done", "status": "ok", "stream": True, "latency_ms": 10.0,
            "input_tokens": 10, "output_tokens": 5, "cost": 0.0,
            "sent": {"thinking.type": "adaptive", "output_config.effort": "high", "thinking_blocks": 2}}
    held = {**base, "call_id": "held-1", "strength": "low", "tier": "high", "reason": "held",
            "target": "high-reasoning", "history": {"kept": 2, "dropped": 1, "why": {"other model": 1}},
            "held": {"target": "high-reasoning", "tier": "high", "instead_of": "low-reasoning",
                     "tool_use": "toolu_01"}}
    lost = {**base, "call_id": "lost-1", "reasoning_lost": "tool continuation without its own "
            "thinking block: sent with thinking off",
            "hold": {"failed": "its tool_use was not made through this proxy (or is forgotten)",
                     "tool_use": "toolu_x"}}
    retried = {**base, "call_id": "retry-1"}
    dropped = {**base, "call_id": "drop-1", "strength": "medium", "tier": "medium",
               "target": "medium-reasoning"}
    return [held, {**done, "call_id": "held-1"},
            lost, {**done, "call_id": "lost-1", "sent": {"thinking.type": "disabled"}},
            retried, {**done, "call_id": "retry-1", "hidden_retry": True, "sent": {}},
            dropped, {**done, "call_id": "drop-1", "sent": {}}]


async def test_holds_and_lost_reasoning_are_marked(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        app.apply_records(held_and_lost())
        app.refresh_view()
        await pilot.pause()
        assert cell(app, "requests", "held-1", "target") == "⏸ high-reasoning"
        assert cell(app, "requests", "held-1", "status") == "ok"
        for call_id in ("lost-1", "retry-1", "drop-1"):
            assert cell(app, "requests", call_id, "status") == "ok ⚠ no thinking"
        assert cell(app, "tiers", "medium", "model") == "medium-reasoning  ⚠ no reasoning ×1"
        assert cell(app, "tiers", "high", "model") == "high-reasoning  ⚠ no reasoning ×2"
        table(app, "requests").move_cursor(row=request_rows(app).index("held-1"))
        await pilot.press("enter")
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "held: it continues a tool loop (tool_use toolu_01) made by high-reasoning; " \
               "without the hold it would have gone to low-reasoning" in text
        assert "kept 2, dropped 1 (1 other model)" in text
        assert "reasoning asked: output_config.effort=high" in text
        assert "reasoning sent:  thinking=adaptive effort=high blocks=2" in text
        await pilot.press("escape")
        table(app, "requests").move_cursor(row=request_rows(app).index("retry-1"))
        await pilot.press("enter")
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "⚠ LiteLLM retried it without thinking after the provider refused a block" in text
        await pilot.press("escape")
        table(app, "requests").move_cursor(row=request_rows(app).index("lost-1"))
        await pilot.press("enter")
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "sent without thinking: tool continuation without its own thinking block" in text


async def test_a_narrow_terminal_keeps_the_columns_that_matter(home: Path) -> None:
    """Beside an editor (100 columns, then 80) the tables drop their least important columns
    instead of scrolling sideways; widening the terminal brings every column back."""
    app = panel(home)
    async with app.run_test(size=(100, 30)) as pilot:
        for width in (100, 80):
            await pilot.resize_terminal(width, 30)
            await pilot.pause()
            for which in ("tiers", "requests"):
                shown = table(app, which)
                assert shown.virtual_size.width <= shown.scrollable_content_region.width, which
            columns = [str(c.value) for c in table(app, "requests").columns]
            assert {"time", "strength", "target", "status", "signal"} <= set(columns)
            assert "ttft" not in columns
            assert {"tier", "model", "requests"} <= {str(c.value) for c in table(app, "tiers").columns}
            assert cell(app, "requests", "call-003", "status") == "error 500"
            assert cell(app, "requests", "call-002", "signal") == "budget=8000"
        await pilot.resize_terminal(200, 30)
        await pilot.pause()
        assert [str(c.value) for c in table(app, "requests").columns] == [
            "time", "client", "signal", "strength", "target", "served", "status", "latency", "ttft",
            "tokens", "cost"]
        assert cell(app, "requests", "call-001", "latency") == "801 ms"
        assert len(request_rows(app)) == 25


async def test_rows_are_bounded(home: Path) -> None:
    app = panel(home, max_rows=10)
    async with app.run_test(size=SIZE):
        assert request_rows(app) == [f"call-{i:03d}" for i in range(14, 24)]


# --- keys -----------------------------------------------------------------------------------


async def test_remap_key_picks_a_model_and_writes_the_state(home: Path) -> None:
    app = panel(home, config=Path("configs/demo.yaml").resolve())
    async with app.run_test(size=SIZE) as pilot:
        table(app, "tiers").move_cursor(row=2)  # medium
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ModelPicker))  # a busy machine is slow
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        assert options.option_count > 5  # the demo config's models
        await pilot.press(*"fast")
        await pilot.press("enter")
        await pilot.pause()
        assert StateFile.in_home(home).read().tiers["medium"].model == "fast-coder"
        assert cell(app, "tiers", "medium", "model") == "fast-coder"


async def test_picker_lists_the_running_proxys_models_without_a_config(proxy: Proxy) -> None:
    """With no config file at hand, the picker offers what the running proxy serves
    (fetched in the background when the proxy comes up, so the key press never waits)."""
    app = ReasoningPanel(proxy.home, config=Path("/nonexistent.yaml"), poll_s=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: bool(app.proxy_models), 10)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ModelPicker))  # a busy machine is slow
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        offered = {options.get_option_at_index(i).id for i in range(options.option_count)}
        assert {"fast-coder", "medium-reasoning", "claude-opus-4-8"} <= offered
        await pilot.press("escape")


@pytest.mark.parametrize("key", ["m", "e"])
async def test_a_change_key_on_a_never_valid_state_file_says_why(home: Path, key: str) -> None:
    """A state file that was invalid from the start leaves nothing to remap or edit: the key
    says why instead of doing nothing."""
    (home / "state.yaml").write_text("version: 1\npin: extreme\n")
    app = panel(home, config=Path("configs/demo.yaml").resolve())
    async with app.run_test(size=SIZE) as pilot:
        assert app.state is None
        await pilot.press(key)
        await wait_for(lambda: any("Not changed" in str(n.message) and "extreme" in
                                   str(n.message) for n in app._notifications))
        assert not isinstance(app.screen, ModelPicker | SettingsScreen)


async def test_picker_starts_on_the_current_model_and_arrows_move(home: Path) -> None:
    """Enter alone changes nothing; Down then Enter takes the next model in the list."""
    app = panel(home, config=Path("configs/demo.yaml").resolve())
    async with app.run_test(size=SIZE) as pilot:
        table(app, "tiers").move_cursor(row=2)  # medium
        await pilot.press("m", "enter")
        await pilot.pause()
        assert StateFile.in_home(home).read().tiers["medium"].model == "medium-reasoning"
        assert not isinstance(app.screen, ModelPicker)
        await pilot.press("m", "down", "enter")
        await pilot.pause()
        assert StateFile.in_home(home).read().tiers["medium"].model == "high-reasoning"


async def test_remap_to_a_typed_model_name(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")  # the none tier (cursor on the first row)
        await wait_for(lambda: isinstance(app.screen, ModelPicker))
        await pilot.pause()
        app.screen.query_one(Input).value = "my-own-model"
        await pilot.press("enter")
        await pilot.pause()
        assert StateFile.in_home(home).read().tiers["none"].model == "my-own-model"


async def test_pin_key_pins_and_unpins_the_selected_tier(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        table(app, "tiers").move_cursor(row=3)
        await pilot.press("p")
        assert StateFile.in_home(home).read().pin == "high"
        assert "pinned" in cell(app, "tiers", "high", "model")
        assert "pin high" in str(app.query_one("#status", Static).render())
        await pilot.press("p")
        assert StateFile.in_home(home).read().pin is None


async def test_routing_key_toggles(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        assert StateFile.in_home(home).read().routing is False
        assert "routing off" in str(app.query_one("#status", Static).render())
        await pilot.press("r")
        assert StateFile.in_home(home).read().routing is True


async def test_settings_edit_saves_valid_and_refuses_invalid(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#low-below", Input).value = "20000"  # above medium_below: invalid
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert "medium_below" in str(screen.query_one("#settings-error", Static).render())
        screen.query_one("#low-below", Input).value = "4000"
        screen.query_one("#route-models", Input).value = "claude-*, my-model"
        screen.query_one("#effort-map", Input).value = "{low: none, medium: low, high: high}"
        screen.query_one("#adapters", Input).value = "{cerebras-*: {cerebras: true}}"
        await pilot.press("ctrl+s")
        await pilot.pause()
        state = StateFile.in_home(home).read()
        assert state.detection.low_below == 4000
        assert state.route_models == ("claude-*", "my-model")
        assert dict(state.detection.effort_map) == {**DEFAULT_EFFORT_MAP, "low": "none",
                                                    "medium": "low", "high": "high"}
        assert state.adapter_for("cerebras-coder").cerebras is True


async def test_undo_puts_the_previous_state_back(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        table(app, "tiers").move_cursor(row=1)
        await pilot.press("p")
        assert StateFile.in_home(home).read() == replace(State(), routing=False, pin="low")
        await pilot.press("u")
        assert StateFile.in_home(home).read() == replace(State(), routing=False)
        await pilot.press("u")
        assert StateFile.in_home(home).read() == State()


async def test_undo_never_drops_a_change_made_elsewhere(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")  # routing off, from the panel
        StateFile.in_home(home).update(lambda s: s.with_tier_model("low", "from-the-cli"))
        await pilot.press("u")
        state = StateFile.in_home(home).read()
        assert state.tiers["low"].model == "from-the-cli" and state.routing is False
        assert app.undo_stack == []


async def test_filter_keys_filter_the_stream(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")  # none
        assert all(cell(app, "requests", r, "strength") == "none" for r in request_rows(app))
        await pilot.press("t", "t", "t", "t")  # low, medium, high, pass
        assert request_rows(app) == ["pass-1"]
        await pilot.press("t")  # all again
        await pilot.press("s", "s")  # ok, then error
        assert request_rows(app) == ["call-003", "call-010", "call-017"]
        await pilot.press("s")  # in flight
        assert request_rows(app) == ["call-023"]
        assert "status: in flight" in str(app.query_one("#stream-title", Static).render())


async def test_enter_explains_a_request(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        table(app, "requests").move_cursor(row=request_rows(app).index("call-002"))
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "thinking.budget_tokens=8000" in text
        assert "5. thinking budget -> budget thresholds" in text
        assert "tier medium -> model medium-reasoning" in text
        assert "latency 802 ms" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


async def test_quit_key(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_redraw_while_shutting_down_does_not_crash(home: Path) -> None:
    """The redraw timer or the health poll can fire once more after the widgets are gone
    (seen in CI at exit); that must not turn a clean quit into a crash."""
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await app.screen.query_children().remove()
        app._tiers_dirty = True
        app.refresh_view()
        app.update_status()
        await pilot.press("q")
    assert app.return_code == 0  # a clean quit, not a crash


PALETTE = [  # (command typed, check on the state written)
    ("Pin high tier", lambda s: s.pin == "high"),
    ("Routing on/off", lambda s: s.routing is False),
]


@pytest.mark.parametrize("command,check", PALETTE, ids=[c for c, _ in PALETTE])
async def test_palette_commands_change_the_state(home: Path, command: str,
                                                 check: Callable[[State], bool]) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*command)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert check(StateFile.in_home(home).read())


async def test_every_palette_command_acts(home: Path) -> None:
    """Each of the panel's own palette commands does what it says (called as the palette
    would call it)."""
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        state = StateFile.in_home(home)
        for tier in ("none", "low", "medium", "high"):
            commands[f"Pin {tier} tier"]()
            assert state.read().pin == tier
            commands[f"Remap {tier} tier"]()
            await pilot.pause()
            assert isinstance(app.screen, ModelPicker) and app.screen.tier == tier
            await pilot.press("escape")
        commands["Unpin"]()
        assert state.read().pin is None
        commands["Routing on/off"]()
        assert state.read().routing is False
        commands["Undo last change"]()
        assert state.read().routing is True
        commands["Edit settings"]()
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("escape")
        commands["Show tier: pass"]()
        assert request_rows(app) == ["pass-1"]
        commands["Show tier: all"]()
        commands["Show status: error"]()
        assert len(request_rows(app)) == 3
        commands["Show status: all"]()
        commands["Follow newest requests"]()
        assert table(app, "requests").cursor_row == 24


# --- live sources ---------------------------------------------------------------------------


async def test_external_state_edit_shows_up(home: Path) -> None:
    app = panel(home, live=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        StateFile.in_home(home).write(State().with_tier_model("low", "edited-elsewhere"))
        await wait_for(lambda: cell(app, "tiers", "low", "model") == "edited-elsewhere", 2.0)
        (home / "state.yaml").write_text("version: 1\ntiers: {low: 3}\n")  # a bad hand edit
        banner = app.query_one("#banner", Static)
        await wait_for(lambda: banner.display and "tiers.low: 3" in str(banner.render()), 2.0)
        assert cell(app, "tiers", "low", "model") == "edited-elsewhere"  # last good stays


async def test_new_records_stream_in_and_count_while_scrolled_away(home: Path) -> None:
    app = panel(home, live=True)
    async with app.run_test(size=(160, 24)) as pilot:
        await pilot.pause(0.3)
        requests = table(app, "requests")
        requests.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        with open(home / EVENTS_NAME, "a") as log:
            for i in range(3):
                record = dict(fixed_log()[0], call_id=f"late-{i}", time=T0 + 100 + i)
                log.write(json.dumps(record) + "\n")
        await wait_for(lambda: "late-2" in request_rows(app), 3.0)
        await wait_for(lambda: app.new_rows == 3, 2.0)
        assert "3 new" in str(app.query_one("#stream-title", Static).render())
        await pilot.press("G")
        assert app.new_rows == 0
        # at the bottom, newer rows are followed: no count
        with open(home / EVENTS_NAME, "a") as log:
            log.write(json.dumps(dict(fixed_log()[0], call_id="later", time=T0 + 200)) + "\n")
        await wait_for(lambda: "later" in request_rows(app), 3.0)
        await pilot.pause(0.3)
        assert app.new_rows == 0
        # the cursor follows too, so Enter explains the newest request
        assert request_rows(app)[requests.cursor_row] == "later"
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen) and app.screen.request.call_id == "later"
        await pilot.press("escape")
        # reading an older row (cursor moved up) stops following: new rows are counted
        await pilot.press("up")
        with open(home / EVENTS_NAME, "a") as log:
            log.write(json.dumps(dict(fixed_log()[0], call_id="last", time=T0 + 300)) + "\n")
        await wait_for(lambda: "last" in request_rows(app), 3.0)
        await wait_for(lambda: app.new_rows == 1, 2.0)
        assert request_rows(app)[requests.cursor_row] == "late-2"


def headroom_records() -> list[dict[str, Any]]:
    """A low-tier request headroom moved to fast-coder, after the tier's model reported 1 of
    10 requests left until T0 + 90."""
    routed = {"v": 1, "type": "routed", "endpoint": "/v1/messages", "client_model": "claude-opus-4-8",
              "fields": [], "signal": "effort=low", "value": "low", "rule": "effort",
              "strength": "low", "tier": "low", "reason": "tier", "pin": None,
              "routing": True, "notes": []}
    quota = {"requests": {"remaining": 1, "limit": 10, "reset": T0 + 90},
             "tokens": {"remaining": 9000, "limit": 10000, "reset": T0 + 90}}
    return [
        {**routed, "time": T0 + 40, "call_id": "on-low", "target": "low-reasoning"},
        {"v": 1, "type": "done", "time": T0 + 40.5, "call_id": "on-low", "status": "ok",
         "model_group": "low-reasoning", "deployment": "standin-low", "quota": quota},
        {**routed, "time": T0 + 41, "call_id": "moved", "target": "fast-coder",
         "fallbacks": ["low-reasoning"],
         "headroom": {"from": "low-reasoning", "to": "fast-coder", "deployment": "standin-low",
                      "requests": {"remaining": 1, "limit": 10, "min": "2", "reset": T0 + 90},
                      "until": T0 + 90}},
        {"v": 1, "type": "done", "time": T0 + 41.5, "call_id": "moved", "status": "ok",
         "model_group": "fast-coder", "deployment": "standin-fast-coder"},
    ]


async def test_headroom_shows_in_health_stream_and_detail(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        app.apply_records(headroom_records())
        app.refresh_view()
        await pilot.pause()
        # one request moved; the tier's model has 10 % of its requests left until 08:01:30
        assert cell(app, "tiers", "low", "health") == "⤳1 ▮10%→08:01:30"
        assert cell(app, "requests", "moved", "target") == "⤳ fast-coder"
        table(app, "requests").move_cursor(row=request_rows(app).index("moved"))
        await pilot.press("enter")
        text = str(app.screen.query_one("#detail-text", Static).render())
        assert "low-reasoning reported requests 1 of 10 left (keeps 2), until 08:01:30" in text
        assert "sent to its fallback fast-coder" in text
    # after the reset the figures say nothing any more
    later = ReasoningPanel(home, live=False, clock=lambda: T0 + 91)
    async with later.run_test(size=SIZE) as pilot:
        later.apply_records(headroom_records())
        later.refresh_view()
        await pilot.pause()
        assert cell(later, "tiers", "low", "health") == "⤳1"


async def test_settings_edit_the_headroom(home: Path) -> None:
    app = panel(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#headroom", Input).value = "{low: {tokens: 200%}}"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen)
        assert "tiers.low.min_remaining.tokens" in str(
            screen.query_one("#settings-error", Static).render())
        screen.query_one("#headroom", Input).value = "{low: {tokens: 5%, requests: 2}}"
        await pilot.press("ctrl+s")
        await pilot.pause()
        minimum = StateFile.in_home(home).read().tiers["low"].min_remaining
        assert {k: v.text() for k, v in minimum.items()} == {"tokens": "5%", "requests": "2"}
