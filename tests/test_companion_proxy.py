"""Through the real proxy: who sent each request (Claude Code's headers and metadata, subagents,
OpenAI clients), caps and presets, as a user sees them (the model that served, the event log)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from app.cli import main
from callbacks.stores.eventlog import EVENTS_NAME

from .conftest import Proxy, StandIn
from .test_eventlog import all_records
from .test_events_proxy import by_type, records_for

pytestmark = pytest.mark.timeout(180)

SESSION = "7c1e2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"
AGENT = "a9f8e7d6c5b4a3921"
USER_ID = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": SESSION})
CLAUDE_CLI = "claude-cli/2.1.328 (external, cli)"
BILLING = "x-anthropic-billing-header: cc_version=2.1.328.a1b; cc_entrypoint=cli; cc_is_subagent=true;"
ADAPTIVE = {"type": "adaptive"}
USER = [{"role": "user", "content": "List the files, please."}]


@pytest.fixture(autouse=True)
def _fresh(standin: StandIn) -> None:
    standin.clear()


def claude_code(proxy: Proxy, **headers: str) -> anthropic.Anthropic:
    """An anthropic client that identifies itself as Claude Code does."""
    return anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0,
                               default_headers={"User-Agent": CLAUDE_CLI, **headers})


def send(client: anthropic.Anthropic, proxy: Proxy, **body: Any) -> tuple[str, dict[str, Any]]:
    """One /v1/messages call; (model group that served, its routed record)."""
    body.setdefault("model", "claude-opus-4-8")
    body.setdefault("max_tokens", 64)
    body.setdefault("messages", USER)
    body.setdefault("thinking", ADAPTIVE)
    body.setdefault("output_config", {"effort": "high"})
    body = {key: value for key, value in body.items() if value is not None}
    raw = client.messages.with_raw_response.create(timeout=60, **body)
    call_id = raw.headers["x-litellm-call-id"]
    return raw.headers["x-litellm-model-group"], by_type(records_for(proxy, {call_id}),
                                                         call_id)["routed"][0]


def cli(proxy: Proxy, *args: str) -> int:
    return main(["--home", str(proxy.home), *args])


# --- who sent it --------------------------------------------------------------------------------


def test_the_session_header_form(proxy: Proxy) -> None:
    client = claude_code(proxy, **{"x-claude-code-session-id": SESSION})
    _, routed = send(client, proxy)
    assert (routed["session"], routed["agent"], routed["client"]) == \
        (SESSION, None, "claude-cli/2.1.328")


def test_the_metadata_form(proxy: Proxy) -> None:
    """No session header: the session id inside the JSON string metadata.user_id."""
    _, routed = send(claude_code(proxy), proxy, metadata={"user_id": USER_ID})
    assert (routed["session"], routed["agent"], routed["client"]) == \
        (SESSION, None, "claude-cli/2.1.328")


def test_a_subagent(proxy: Proxy) -> None:
    client = claude_code(proxy, **{"x-claude-code-session-id": SESSION})
    group, routed = send(client, proxy, metadata={"user_id": USER_ID},
                         system=[{"type": "text", "text": BILLING}],
                         extra_headers={"x-claude-code-agent-id": AGENT})
    assert (routed["session"], routed["agent"]) == (SESSION, AGENT)
    assert group == "high-reasoning" and "capped" not in routed  # no cap set: routed as usual


def test_an_anonymous_request(proxy: Proxy) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)
    _, routed = send(client, proxy)
    assert routed["session"] is None and routed["agent"] is None
    assert routed["client"].startswith("Anthropic/Python")


def test_an_openai_client_with_a_user(proxy: Proxy) -> None:
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=proxy.key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-opus-4-8", messages=USER, reasoning_effort="low", user="alice-laptop")
    call_id = raw.headers["x-litellm-call-id"]
    routed = by_type(records_for(proxy, {call_id}), call_id)["routed"][0]
    assert routed["session"] == "alice-laptop" and routed["agent"] is None


# --- caps ---------------------------------------------------------------------------------------


def test_a_subagent_cap_holds_a_subagent_at_its_tier(proxy: Proxy, standin: StandIn) -> None:
    assert cli(proxy, "cap", "subagent", "low") == 0
    main_agent = claude_code(proxy, **{"x-claude-code-session-id": SESSION})
    group, routed = send(main_agent, proxy)
    assert group == "high-reasoning" and "capped" not in routed
    subagent = claude_code(proxy, **{"x-claude-code-session-id": SESSION,
                                     "x-claude-code-agent-id": AGENT})
    group, routed = send(subagent, proxy)
    assert group == "low-reasoning"
    assert (routed["strength"], routed["tier"], routed["capped"]) == ("high", "low", "subagent")
    # the mark in system[0] alone is enough (no agent header)
    group, routed = send(main_agent, proxy, system=[{"type": "text", "text": BILLING}])
    assert group == "low-reasoning" and routed["capped"] == "subagent"


def test_a_cap_holds_even_when_pinned(proxy: Proxy) -> None:
    assert cli(proxy, "pin", "high") == 0
    assert cli(proxy, "cap", "claude-haiku-*", "none") == 0
    group, routed = send(claude_code(proxy), proxy, model="claude-haiku-4-5-20251001",
                         thinking={"type": "enabled", "budget_tokens": 31999},
                         output_config=None, max_tokens=32000)
    assert group == "none-reasoning"
    assert (routed["reason"], routed["tier"], routed["capped"]) == \
        ("pinned", "none", "claude-haiku-*")
    group, _ = send(claude_code(proxy), proxy)  # other models: the pin
    assert group == "high-reasoning"


def test_a_capped_request_to_the_none_tier_carries_no_reasoning(proxy: Proxy,
                                                                standin: StandIn) -> None:
    assert cli(proxy, "cap", "subagent", "none") == 0
    subagent = claude_code(proxy, **{"x-claude-code-agent-id": AGENT})
    group, _ = send(subagent, proxy, output_config={"effort": "max"})
    assert group == "none-reasoning"
    received = standin.requests()[-1]["body"]
    assert "effort" not in json.dumps(received.get("output_config") or {})
    assert (received.get("thinking") or {"type": "disabled"})["type"] == "disabled"


# --- presets ------------------------------------------------------------------------------------


def test_a_preset_applies_tiers_pin_and_caps_in_one_change(proxy: Proxy) -> None:
    assert cli(proxy, "set", "high", "fast-coder") == 0
    assert cli(proxy, "cap", "subagent", "none") == 0
    assert cli(proxy, "preset", "save", "cheap") == 0
    assert cli(proxy, "set", "high", "high-reasoning") == 0
    assert cli(proxy, "cap", "subagent", "off") == 0
    assert cli(proxy, "pin", "medium") == 0
    group, _ = send(claude_code(proxy), proxy)
    assert group == "medium-reasoning"  # pinned, before the preset
    before = len(all_records(proxy.home / EVENTS_NAME))
    assert cli(proxy, "preset", "use", "cheap") == 0
    group, _ = send(claude_code(proxy), proxy)
    assert group == "fast-coder"  # unpinned; high -> fast-coder
    subagent = claude_code(proxy, **{"x-claude-code-agent-id": AGENT})
    group, routed = send(subagent, proxy)
    assert group == "none-reasoning" and routed["capped"] == "subagent"
    reloads = [r for r in all_records(proxy.home / EVENTS_NAME)[before:]
               if r["type"] == "state" and r.get("event") == "reload"]
    assert len(reloads) == 1  # one atomic change: tiers, pin and caps together
    changed = {c["key"] for c in reloads[0]["changes"]}
    assert {"tiers.high", "pin", "caps.subagent"} <= changed
