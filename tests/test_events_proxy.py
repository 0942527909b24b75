"""The event log written by the real proxy, and ``reasoning-panel tail`` reading it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import anthropic
import httpx
import openai
import pytest

from app.local_stack import cli_command
from callbacks.core.state import EventLogSettings, State
from callbacks.stores.eventlog import EVENTS_NAME

from .conftest import Proxy, StandIn, reset_state
from .redis_server import poll
from .test_eventlog import all_records

pytestmark = pytest.mark.timeout(240)
ADAPTIVE = {"type": "adaptive"}


@pytest.fixture(autouse=True)
def _fresh(standin: StandIn) -> None:
    standin.clear()


def records_for(proxy: Proxy, call_ids: set[str], wait: float = 10.0) -> list[dict[str, Any]]:
    """The records of these calls, once each has an outcome (waits for the writer)."""
    deadline = time.monotonic() + wait
    while True:
        found = [r for r in all_records(proxy.home / EVENTS_NAME) if r.get("call_id") in call_ids]
        outcomes = {r["call_id"] for r in found if r["type"] in ("done", "failed")}
        if outcomes >= call_ids or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def by_type(records: list[dict[str, Any]], call_id: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("call_id") == call_id:
            out.setdefault(r["type"], []).append(r)
    return out


def test_each_request_has_one_decision_and_one_outcome(proxy: Proxy) -> None:
    client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)
    sent = {}
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=100, thinking=ADAPTIVE,
        output_config={"effort": "medium"}, messages=[{"role": "user", "content": "hello"}])
    sent[raw.headers["x-litellm-call-id"]] = ("medium", "medium-reasoning", raw.parse().usage,
                                              False)
    with client.messages.with_streaming_response.create(
        model="claude-sonnet-4-5-20250929", max_tokens=20000, stream=True,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "stream please"}],
    ) as response:
        usage = None
        for event in response.parse():
            if event.type == "message_delta":
                usage = event.usage
        sent[response.headers["x-litellm-call-id"]] = ("low", "low-reasoning", usage, True)
    gpt = openai.OpenAI(base_url=proxy.url + "/v1", api_key=proxy.key, max_retries=0)
    chat = gpt.chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
    sent[chat.headers["x-litellm-call-id"]] = ("none", None, chat.parse().usage, False)

    records = records_for(proxy, set(sent))
    for call_id, (strength, target, usage, stream) in sent.items():
        kinds = by_type(records, call_id)
        assert sorted(kinds) == ["done", "routed"]
        assert len(kinds["routed"]) == 1 and len(kinds["done"]) == 1
        routed, done = kinds["routed"][0], kinds["done"][0]
        assert routed["strength"] == strength and routed["target"] == target
        assert done["model_group"] == (target or "gpt-5-mini")
        assert done["latency_ms"] > 0 and done["stream"] is stream
        if target:  # demo.yaml prices the tiers; gpt-5-mini's stand-in has no price anywhere
            assert done["cost"] > 0
        else:
            assert done["cost"] is None
        assert done["output_tokens"] == getattr(usage, "output_tokens", None) or \
            done["output_tokens"] == getattr(usage, "completion_tokens", None)
        if stream:
            assert 0 < done["ttft_ms"] <= done["latency_ms"]
    chat_routed = by_type(records, chat.headers["x-litellm-call-id"])["routed"][0]
    assert chat_routed["reason"] == "not_routed"
    assert chat.parse().usage.prompt_tokens == \
        by_type(records, chat.headers["x-litellm-call-id"])["done"][0]["input_tokens"]


def test_a_failing_deployment_yields_a_failure_record(proxy: Proxy, standin: StandIn) -> None:
    standin.fault("standin-high", status=500)
    try:
        client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as exc:
            client.messages.create(model="claude-opus-4-8", max_tokens=50, thinking=ADAPTIVE,
                                   output_config={"effort": "max"}, timeout=60,
                                   messages=[{"role": "user", "content": "x"}])
        call_id = exc.value.response.headers["x-litellm-call-id"]
    finally:
        standin.fault("standin-high", status=None)
    kinds = by_type(records_for(proxy, {call_id}), call_id)
    assert sorted(kinds) == ["failed", "routed"]
    failed = kinds["failed"][0]
    assert failed["status_code"] == 500
    assert failed["error_class"] == "InternalServerError"
    assert "fails on purpose" in failed["message"]
    assert failed["model_group"] == "high-reasoning"


def state_records_after(proxy: Proxy, change: Callable[[], object], event: str
                        ) -> list[dict[str, Any]]:
    """The ``state`` records of this event once ``change`` has been seen by a request (one
    request before it, so the change is what the proxy reloads; an edit by hand applies
    within ``CHECK_S``, so requests are sent until the record is there)."""
    client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)
    client.messages.create(model="claude-opus-4-8", max_tokens=10, timeout=60,
                           messages=[{"role": "user", "content": "x"}])
    since = time.time()
    change()

    def found() -> list[dict[str, Any]]:
        raw = client.messages.with_raw_response.create(
            model="claude-opus-4-8", max_tokens=10, timeout=60,
            messages=[{"role": "user", "content": "x"}])
        records_for(proxy, {raw.headers["x-litellm-call-id"]})
        return [r for r in all_records(proxy.home / EVENTS_NAME)
                if r["type"] == "state" and r.get("event") == event and r["time"] >= since]

    poll(found, 10, every=0.1, what=f"a {event} record")
    return found()


def test_a_refused_state_edit_is_recorded(proxy: Proxy) -> None:
    refused = state_records_after(
        proxy, lambda: proxy.state_file.path.write_text("version: 1\ntiers: {low: [broken]}\n"),
        "refused")
    assert refused and "tiers.low: ['broken'] is not valid" in refused[-1]["message"]


def test_reload_records_say_what_changed(proxy: Proxy) -> None:
    reloads = state_records_after(
        proxy, lambda: proxy.state_file.write(State().with_tier_model("low", "fast-coder")),
        "reload")
    assert {"key": "tiers.low", "old": "low-reasoning", "new": "fast-coder"} in \
        reloads[-1]["changes"]


@pytest.mark.parametrize("preview", [False, True], ids=["default", "preview-opt-in"])
def test_secrets_never_reach_the_log(proxy: Proxy, preview: bool) -> None:
    proxy.state_file.write(replace(State(), event_log=EventLogSettings(preview=preview)))
    secret_prompt = "sk-ant-api03-PROMPTSECRET0123456789"
    secret_header = "HEADERSECRET-abcdef0123456789"
    client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0,
                                 default_headers={"x-custom-secret": secret_header,
                                                  "authorization": f"Bearer {proxy.key}"})
    raw = client.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=10, timeout=60,
        messages=[{"role": "user", "content": f"my key is {secret_prompt}, keep it safe"}])
    call_id = raw.headers["x-litellm-call-id"]
    records = records_for(proxy, {call_id})
    text = (proxy.home / EVENTS_NAME).read_text()
    for secret in (secret_prompt, secret_header, proxy.key):
        assert secret not in text
    routed = by_type(records, call_id)["routed"][0]
    if preview:
        assert routed["preview"].startswith("my key is [redacted]")
    else:
        assert "preview" not in routed and "keep it safe" not in text


def _send(url: str, key: str, i: int) -> str:
    body = {"model": "claude-opus-4-8", "max_tokens": 10,
            "thinking": ADAPTIVE, "output_config": {"effort": ["low", "medium", "high"][i % 3]},
            "messages": [{"role": "user", "content": f"request {i}"}]}
    response = httpx.post(url + "/v1/messages", json=body, headers={"x-api-key": key},
                          timeout=60)
    assert response.status_code == 200, response.text
    return response.headers["x-litellm-call-id"]


def test_two_workers_under_load_with_tiny_rotation_lose_nothing(proxy2: Proxy) -> None:
    proxy2.state_file.write(replace(State(), event_log=EventLogSettings(max_bytes=4096,
                                                                        backups=10_000)))
    _send(proxy2.url, proxy2.key, 0)  # both workers pick the new settings up
    with ThreadPoolExecutor(8) as pool:
        call_ids = set(pool.map(lambda i: _send(proxy2.url, proxy2.key, i), range(300)))
    assert len(call_ids) == 300
    records = records_for(proxy2, call_ids, wait=30)
    routed = [r["call_id"] for r in records if r["type"] == "routed"]
    done = [r["call_id"] for r in records if r["type"] == "done"]
    assert sorted(routed) == sorted(call_ids)  # none lost, none twice
    assert sorted(done) == sorted(call_ids)
    assert len(list(proxy2.home.glob(EVENTS_NAME + ".*"))) > 10  # it really rotated
    reset_state(proxy2)


def tail(proxy: Proxy, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli_command(), "--home", str(proxy.home), "tail", *args],
                          capture_output=True, text=True, timeout=60)


def test_tail_shows_what_was_sent(proxy: Proxy) -> None:
    ids = [_send(proxy.url, proxy.key, i) for i in range(3)]  # low, medium, high
    records_for(proxy, set(ids))
    text = tail(proxy, "-n", "3")
    lines = [line for line in text.stdout.splitlines() if "state reloaded" not in line]
    assert len(lines) == 3, text.stdout + text.stderr
    for line, tier in zip(lines, ["low", "medium", "high"], strict=True):
        assert f"output_config.effort={tier}" in line
        assert f"{tier:<6} -> {tier}-reasoning" in line and "  ok  " in line
    raw = tail(proxy, "-n", "3", "--json")
    records = [json.loads(line) for line in raw.stdout.splitlines()]
    assert {r["call_id"] for r in records if "call_id" in r} == set(ids)
    assert sorted({r["type"] for r in records} - {"state"}) == ["done", "routed"]


def test_tail_follow_picks_up_new_requests_across_rotation(proxy: Proxy) -> None:
    proxy.state_file.write(replace(State(), event_log=EventLogSettings(max_bytes=2048)))
    _send(proxy.url, proxy.key, 0)
    follower = subprocess.Popen([*cli_command(), "--home", str(proxy.home), "tail", "-f",
                                 "--json", "-n", "0"], stdout=subprocess.PIPE, text=True)
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(
        target=lambda: seen.extend(json.loads(line) for line in follower.stdout or []))
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:  # until the follower is up and reading
            _send(proxy.url, proxy.key, 0)
            time.sleep(0.5)
        ids = {_send(proxy.url, proxy.key, i) for i in range(12)}  # several rotations
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if {r.get("call_id") for r in seen if r["type"] == "done"} >= ids:
                break
            time.sleep(0.1)
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(10)
    assert {r.get("call_id") for r in seen if r["type"] == "done"} >= ids
    routed = [r["call_id"] for r in seen if r["type"] == "routed" and r["call_id"] in ids]
    assert sorted(routed) == sorted(ids)  # each once, across the rotations
