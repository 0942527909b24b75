"""Modal screens of the dashboard: request detail, model picker, settings editor."""

from __future__ import annotations

from typing import Any

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static, Switch
from textual.widgets.option_list import Option, OptionDoesNotExist

from app.panel.model import Request, explain
from callbacks.core.state import TIERS, State, StateError, parse_state, state_to_dict


class DetailScreen(ModalScreen[None]):
    """Why a request went where it went, step by step, and how it went."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static("\n".join(explain(self.request)), id="detail-text")
            yield Label("Esc / Enter to close", classes="hint")


class ModelPicker(ModalScreen[str | None]):
    """Pick the model a tier goes to: from the proxy's models, or typed."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("up", "move(-1)", show=False), Binding("down", "move(1)", show=False)]

    def __init__(self, tier: str, current: str, models: list[str]) -> None:
        super().__init__()
        self.tier = tier
        self.current = current
        self.models = models

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(f"Send the [b]{self.tier}[/b] tier to (now: {self.current})")
            yield Input(placeholder="type to filter, or a new model name", id="picker-input")
            yield OptionList(*self._options(""), id="picker-list")
            yield Label("↑↓ move · Enter picks · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self._highlight_current()

    def _options(self, text: str) -> list[Option]:
        shown = [m for m in self.models if text.lower() in m.lower()]
        return [Option(("● " if m == self.current else "  ") + m, id=m) for m in shown]

    def _highlight_current(self) -> None:
        """Start on the tier's current model, so Enter alone changes nothing."""
        options = self.query_one("#picker-list", OptionList)
        try:
            options.highlighted = options.get_option_index(self.current)
        except OptionDoesNotExist:  # not in the (filtered) list: the first match
            options.highlighted = 0 if options.option_count else None

    def action_move(self, step: int) -> None:
        options = self.query_one("#picker-list", OptionList)
        if step < 0:
            options.action_cursor_up()
        else:
            options.action_cursor_down()

    def on_input_changed(self, event: Input.Changed) -> None:
        options = self.query_one("#picker-list", OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        self._highlight_current()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one("#picker-list", OptionList)
        name = event.value.strip()
        if name in self.models or not options.option_count or options.highlighted is None:
            self.dismiss(name or None)  # an exact or new name; nothing typed and no list: cancel
        else:  # the highlighted model (the current one until moved, or the first match)
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class SettingsScreen(ModalScreen[State | None]):
    """Edit detection settings, the routed client models and the adapters."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    def compose(self) -> ComposeResult:
        det = self.state.detection
        with VerticalScroll(id="settings"):
            yield Label("[b]Settings[/b] (validated as the state file is; Ctrl+S saves)")
            yield Label("Routed client models (names or globs, comma-separated)")
            yield Input(", ".join(self.state.route_models), id="route-models")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Budget below this is low")
                    yield Input(str(det.low_below), id="low-below", type="integer")
                with Vertical():
                    yield Label("Budget below this is medium")
                    yield Input(str(det.medium_below), id="medium-below", type="integer")
            yield Label("Effort map (effort word: tier)")
            yield Input(_flow_yaml(dict(det.effort_map)), id="effort-map")
            with Horizontal(classes="row"):
                yield Label("\"ultrathink\" keyword makes a turn high ")
                yield Switch(det.ultrathink, id="ultrathink")
            yield Label("Adapters (target model or glob: {cerebras, openrouter})")
            adapters = state_to_dict(self.state)["adapters"]
            yield Input(_flow_yaml(adapters) if adapters else "{}",
                        id="adapters")
            yield Label("Caps (subagent or client model/glob: highest tier it may go to)")
            yield Input(_flow_yaml(dict(self.state.caps)) if self.state.caps else "{}", id="caps")
            tiers = self.state.tiers
            yield Label("Fallbacks (tier: list of models, tried in order when its model fails)")
            yield Input(_flow_yaml({t: list(tiers[t].fallbacks) for t in TIERS}), id="fallbacks")
            yield Label("Input limits (tier: tokens; null: LiteLLM's model info)")
            yield Input(_flow_yaml({t: tiers[t].max_input_tokens for t in TIERS}),
                        id="input-limits")
            yield Label("Headroom (tier: {requests: N, tokens: P%} left of its model's rate "
                        "limit; below it, the tier's fallbacks serve first)")
            headroom = {t: state_to_dict(self.state)["tiers"][t].get("min_remaining")
                        for t in TIERS if tiers[t].min_remaining}
            yield Input(_flow_yaml(headroom) if headroom else "{}", id="headroom")
            yield Label("Model for requests too long for every tier (empty: none)")
            yield Input(self.state.long_context or "", id="long-context")
            yield Static("", id="settings-error")
            with Horizontal(classes="row"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def build(self) -> State:
        """The edited state; :class:`StateError` names what is wrong."""
        data: dict[str, Any] = state_to_dict(self.state)

        def parsed(widget_id: str, what: str) -> Any:
            try:
                return yaml.safe_load(self._value(widget_id))
            except yaml.YAMLError:
                raise StateError(f"{what}: not valid YAML") from None

        def number(widget_id: str, key: str) -> Any:
            text = self._value(widget_id).strip()
            return int(text) if text.lstrip("-").isdigit() else text

        data["route_models"] = [m.strip() for m in self._value("route-models").split(",")
                                if m.strip()]
        data["detection"] = {
            "budget_thresholds": {"low_below": number("low-below", "low_below"),
                                  "medium_below": number("medium-below", "medium_below")},
            "effort_map": parsed("effort-map", "effort map"),
            "ultrathink": self.query_one("#ultrathink", Switch).value,
        }
        data["adapters"] = parsed("adapters", "adapters") or {}
        data["caps"] = parsed("caps", "caps") or {}
        chains = parsed("fallbacks", "fallbacks") or {}
        limits = parsed("input-limits", "input limits") or {}
        headroom = parsed("headroom", "headroom") or {}
        for what, value in (("fallbacks", chains), ("input limits", limits),
                            ("headroom", headroom)):
            if not isinstance(value, dict) or not set(value) <= set(TIERS):
                raise StateError(f"{what}: expected a mapping of tiers ({', '.join(TIERS)})")
        for tier in TIERS:
            entry = data["tiers"][tier]
            entry = dict(entry) if isinstance(entry, dict) else {"model": entry}
            entry["fallbacks"], entry["max_input_tokens"] = chains.get(tier), limits.get(tier)
            entry["min_remaining"] = headroom.get(tier)
            data["tiers"][tier] = entry
        data["long_context"] = self._value("long-context").strip() or None
        return parse_state(data)

    def action_save(self) -> None:
        try:
            new = self.build()
        except StateError as exc:
            self.query_one("#settings-error", Static).update(f"[b red]{exc}[/]")
            return
        self.dismiss(new)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)


def _flow_yaml(data: Any) -> str:
    """A mapping as one line of YAML flow style, as the settings inputs take it."""
    return yaml.safe_dump(data, default_flow_style=True, width=1000, sort_keys=False).strip()
