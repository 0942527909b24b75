"""Nothing turns routing off silently: the start-up checks, pure and in a real proxy."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.local_stack import DEMO_CONFIG, PROJECT_ROOT, start_proxy
from callbacks.core.preflight import (
    SUPPORTED,
    ProxySettings,
    preflight,
    preflight_record,
    summary,
    version_check,
)
from callbacks.stores.eventlog import EVENTS_NAME

from .conftest import Proxy, StandIn
from .test_eventlog import all_records

HEALTHY = ProxySettings(litellm_version="1.108.5", callback="callbacks", drop_params=True,
                        master_key="set", store="files", store_where="/tmp/home")


def statuses(settings: ProxySettings) -> dict[str, str]:
    return {c.name: c.status for c in preflight(settings)}


def test_a_healthy_proxy_passes_every_check() -> None:
    checks = preflight(HEALTHY)
    assert {c.status for c in checks} == {"ok"}
    assert summary(checks).startswith("reasoning-panel: preflight ok: routing /v1/messages")


@pytest.mark.parametrize("change,name,status", [
    ({"chat_url_for_messages": True}, "endpoint /v1/messages", "warn"),
    ({"drop_params": False}, "drop_params", "warn"),
    ({"master_key": "missing"}, "master_key", "warn"),
    ({"master_key": "weak"}, "master_key", "warn"),
    ({"callback": "other_list"}, "callback", "fail"),
    ({"callback": "absent"}, "callback", "fail"),
    ({"store_problem": "not writable by this user"}, "state_folder", "fail"),
    ({"store": "redis", "store_problem": "Redis is down"}, "redis", "fail"),
    ({"state_problem": "tiers.high: not a model"}, "state", "fail"),
    ({"pass_through": ("/anthropic",)}, "pass-through", "warn"),
    ({"litellm_version": "1.82.7"}, "litellm_version", "fail"),
    ({"litellm_version": "1.90.0"}, "litellm_version", "warn"),
    ({"litellm_version": "2.0.0"}, "litellm_version", "warn"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_risky_setting_names_itself_with_a_fix(change: dict[str, Any], name: str,
                                                    status: str) -> None:
    checks = {c.name: c for c in preflight(replace(HEALTHY, **change))}
    assert checks[name].status == status
    assert checks[name].fix
    assert [c for c in checks.values() if c.status != "ok"] == [checks[name]]
    assert name in summary(checks.values()) and status.upper() in summary(checks.values())


def test_versions_at_both_ends_of_the_range() -> None:
    assert version_check("1.100.0").status == "ok"
    assert version_check("1.108.7").status == "ok"
    assert version_check("1.99.4").status == "warn"
    assert version_check(None).status == "fail"


def test_pyproject_states_the_same_range() -> None:
    project = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert f'"litellm[proxy]{SUPPORTED}"' in project


def test_the_record_says_what_is_not_routed() -> None:
    record = preflight_record(preflight(replace(HEALTHY, callback="absent")))
    assert record["type"] == "state" and record["event"] == "preflight"
    assert record["ok"] is False
    assert {"name": "callback", "status": "fail"}.items() <= record["checks"][1].items()


def preflights(home: Path, wait: float = 60.0, count: int = 1) -> list[dict[str, Any]]:
    """The preflight records in a state folder's event log, once there are ``count``."""
    deadline = time.monotonic() + wait
    while True:
        found = [r for r in all_records(home / EVENTS_NAME)
                 if r.get("type") == "state" and r.get("event") == "preflight"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_proxy_says_once_per_worker_that_all_is_routed(proxy2: Proxy) -> None:
    records = preflights(proxy2.home, count=2)
    assert len(records) == 2 and len({r["pid"] for r in records}) == 2
    for record in records:
        assert record["ok"] is True
        assert record["config"] == str(DEMO_CONFIG)  # which config the proxy runs
        assert {c["status"] for c in record["checks"]} == {"ok"}, record["checks"]


def test_a_bypassing_config_is_named_at_start_up(tmp_path: Path, standin: StandIn) -> None:
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["litellm_settings"].update(use_chat_completions_url_for_anthropic_messages=True,
                                      drop_params=False)
    path = tmp_path / "bypass.yaml"
    path.write_text(yaml.safe_dump(config))
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "state.yaml").write_text("routing: maybe\n")  # invalid: the last good state rules
    service = start_proxy(home, path, standin_url=standin.url, log_path=tmp_path / "proxy.log")
    try:
        [record] = preflights(home)
        bad = {c["name"]: c["status"] for c in record["checks"] if c["status"] != "ok"}
        assert bad == {"endpoint /v1/messages": "warn", "drop_params": "warn", "state": "fail"}
        assert record["ok"] is False
        deadline = time.monotonic() + 10
        while "preflight:" not in service.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        line = next(line for line in service.log_text().splitlines() if "preflight:" in line)
        assert re.search(r"WARN endpoint /v1/messages: use_chat_completions_url_for_anthropic", line)
        assert "FAIL state" in line and "drop_params" in line
    finally:
        service.stop()


def test_tail_shows_what_the_start_up_checks_found() -> None:
    from app.tail import format_state

    ok = format_state(preflight_record(preflight(HEALTHY)))
    assert ok.endswith("proxy started, checks ok")
    bad = format_state(preflight_record(preflight(replace(HEALTHY, drop_params=False))))
    assert "proxy started: warn drop_params: drop_params is off" in bad


def test_the_dashboard_does_not_count_start_up_checks_as_a_reload() -> None:
    from app.panel.model import PanelModel

    model = PanelModel()
    changes = model.apply([preflight_record(preflight(HEALTHY))])
    assert model.last_state is None and len(changes.states) == 1


def test_compat_finds_litellms_effort_check_in_every_supported_version() -> None:
    """LiteLLM 1.106 made ``validate_effort_for_model`` public; before, it is underscored."""
    from callbacks.compat import effort_refused

    assert effort_refused("anthropic/standin-high", "xhigh")
    assert not effort_refused("anthropic/claude-opus-4-8", "xhigh")
