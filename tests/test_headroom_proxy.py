"""Headroom through the real proxy and the strict stand-in, whose rate-limit headers count down
per model: a tier whose model reports less left than its ``min_remaining`` sends its next
requests to its fallback, with no call failing, comes back once the window resets, never moves
a tool loop, and the records say so; both endpoints, streamed and not."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import pytest

from callbacks.core.headroom import Threshold
from callbacks.stores.quotas import QUOTAS_NAME

from .conftest import Proxy, StandIn, reset_state
from .redis_server import poll
from .test_fallbacks import ENDPOINTS, Reply, _fresh, ask, edit_tier, records, served_by

pytestmark = pytest.mark.timeout(240)
__all__ = ["_fresh"]  # the fixture that resets the state and the stand-in's faults

WINDOW_S = 15  # long enough for the first requests on a loaded machine, short for the test


def figures_expired(proxy: Proxy) -> bool:
    """Whether no rate-limit figure the proxy's workers share is low any more: each has passed
    its reset or has more than half of its limit left."""
    saved = proxy.home / QUOTAS_NAME
    if not saved.exists():
        return True
    now = time.time()
    return all((f["reset"] is not None and f["reset"] <= now)
               or (f["limit"] and f["remaining"] / f["limit"] > 0.5)
               for entry in json.loads(saved.read_text()).values()
               for f in (entry.get("requests"), entry.get("tokens")) if f)


def shared_remaining(proxy: Proxy) -> int | None:
    saved = proxy.home / QUOTAS_NAME
    entry = json.loads(saved.read_text()).get("standin-low") if saved.exists() else None
    return entry["requests"]["remaining"] if entry else None


@pytest.fixture(autouse=True)
def _earlier_figures_expired(request: pytest.FixtureRequest) -> None:
    """The proxies are shared: an earlier test's low figures must have reset before this one
    starts (they belong to the same stand-in models). Only the proxy the test uses is waited
    for: the other one's figures do not reach it."""
    for name in ("proxy", "proxy2"):
        if name in request.fixturenames:
            shared: Proxy = request.getfixturevalue(name)
            poll(lambda shared=shared: figures_expired(shared),  # type: ignore[misc]
                 WINDOW_S + 30, every=0.2, what="an earlier test's rate-limit figures reset")


def rate_limit(standin: StandIn, model: str, requests: int) -> None:
    standin._call("POST", "/_standin/faults", {
        "model": model, "rate_limit": {"requests": requests, "window_s": WINDOW_S}})


def low(proxy: Proxy, endpoint: str, stream: bool) -> Reply:
    """One low-tier request, returned once its outcome is recorded (the next one is decided
    knowing what this one's response said)."""
    reply = ask(proxy, endpoint, stream, effort="low")
    records(proxy, reply.call_id)
    return reply


@pytest.mark.parametrize(("endpoint", "stream"), ENDPOINTS)
def test_a_tier_moves_to_its_fallback_before_any_429_and_comes_back_after_the_reset(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool) -> None:
    edit_tier(proxy, "low", fallbacks=("fast-coder",),
              min_remaining={"requests": Threshold(2, False)})
    rate_limit(standin, "standin-low", 5)

    replies = [low(proxy, endpoint, stream) for _ in range(4)]
    # 4, 3, then 2 requests left: at the headroom, so the fourth goes to the fallback
    assert [r.group for r in replies] == ["low-reasoning"] * 3 + ["fast-coder"]
    assert replies[3].text.startswith("[standin-fast-coder]")
    last_on_low = records(proxy, replies[2].call_id)["done"][0]
    assert last_on_low["quota"]["requests"]["remaining"] == 2
    assert last_on_low["quota"]["requests"]["limit"] == 5
    [routed] = records(proxy, replies[3].call_id)["routed"]
    assert routed["target"] == "fast-coder" and routed["tier"] == "low"
    headroom = routed["headroom"]
    assert (headroom["from"], headroom["to"], headroom["deployment"]) == (
        "low-reasoning", "fast-coder", "standin-low")
    assert headroom["requests"]["remaining"] == 2 and headroom["requests"]["min"] == "2"
    assert headroom["until"] > time.time() - WINDOW_S
    assert routed["fallbacks"] == ["low-reasoning"]  # the tier's model still serves last

    # it comes back once the provider's window has reset, and no call ever failed
    deadline = time.monotonic() + WINDOW_S + 30
    while (reply := low(proxy, endpoint, stream)).group != "low-reasoning":
        assert reply.group == "fast-coder"
        assert time.monotonic() < deadline, "the tier never came back"
        time.sleep(0.25)
    assert "headroom" not in records(proxy, reply.call_id)["routed"][0]
    assert set(served_by(standin, "standin-low")) == {200}
    assert not standin.rejected()


TOOLS: list[Any] = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]


def test_a_tool_loop_stays_on_its_model_and_the_record_says_why(
        proxy: Proxy, standin: StandIn) -> None:
    edit_tier(proxy, "low", fallbacks=("fast-coder",),
              min_remaining={"requests": Threshold(3, False)})
    rate_limit(standin, "standin-low", 5)
    client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)
    body: dict[str, Any] = {"model": "claude-opus-4-8", "max_tokens": 256, "tools": TOOLS,
                            "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}
    question = {"role": "user", "content": "read the file steps=1"}
    raw = client.messages.with_raw_response.create(**body, messages=[question])
    first = raw.parse()
    records(proxy, raw.headers["x-litellm-call-id"])
    [tool_use] = [b for b in first.content if b.type == "tool_use"]
    assert low(proxy, "messages", False).group == "low-reasoning"  # 3 left: at the headroom

    raw = client.messages.with_raw_response.create(**body, messages=[
        question, {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                    for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id,
                                      "content": "hello"}]}])
    assert raw.headers["x-litellm-model-group"] == "low-reasoning"  # the loop stayed
    [routed] = records(proxy, raw.headers["x-litellm-call-id"])["routed"]
    assert routed["target"] == "low-reasoning" and routed["tool_loop"] is True
    assert routed["headroom"]["kept"].startswith("tool loop")
    assert routed["headroom"]["requests"]["remaining"] == 3
    # the next user turn moves
    assert low(proxy, "messages", False).group == "fast-coder"
    assert set(served_by(standin, "standin-low")) == {200}
    assert not standin.rejected()  # its own thinking block went back to its own model


@pytest.mark.parametrize(("endpoint", "stream"), [ENDPOINTS[0], ENDPOINTS[3]])
def test_after_one_429_the_tier_stops_calling_its_model_until_the_retry_after(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool) -> None:
    """A refusal says nothing is left until its retry-after: only the first request pays a
    refused call; the next ones go to the fallback at once."""
    edit_tier(proxy, "low", fallbacks=("fast-coder",),
              min_remaining={"tokens": Threshold(5, True)})
    standin.misbehave("standin-low", "rate_limit", retry_after=10)
    first = low(proxy, endpoint, stream)
    assert first.group == "fast-coder"
    assert records(proxy, first.call_id)["done"][0]["fallback"]["reason"] == "rate_limit"
    later = [low(proxy, endpoint, stream) for _ in range(3)]
    assert [r.group for r in later] == ["fast-coder"] * 3
    for reply in later:
        [routed] = records(proxy, reply.call_id)["routed"]
        assert routed["headroom"]["to"] == "fast-coder"
        assert routed["headroom"]["requests"]["remaining"] == 0
        assert "fallback" not in records(proxy, reply.call_id)["done"][0]
    assert served_by(standin, "standin-low") == [429]  # one refused call, not four


def test_two_workers_share_the_figures(proxy2: Proxy, standin: StandIn) -> None:
    """With two proxy workers the figures one worker read reach the other through the state
    folder: the tier moves before its model's limit runs out, whichever worker decides (the
    other worker reads them within about 0.1 s: a headroom of 3 covers a request or two
    decided in between)."""
    try:
        edit_tier(proxy2, "low", fallbacks=("fast-coder",),
                  min_remaining={"requests": Threshold(3, False)})
        rate_limit(standin, "standin-low", 6)
        replies = []
        for _ in range(8):
            reply = low(proxy2, "messages", False)
            replies.append(reply)
            quota = records(proxy2, reply.call_id)["done"][0].get("quota") or {}
            if reply.group == "low-reasoning":  # written to the state folder for the other
                left = quota["requests"]["remaining"]
                poll(lambda left=left: shared_remaining(proxy2) == left,  # type: ignore[misc]
                     10, what="the figures shared")
        groups = [r.group for r in replies]
        assert "fast-coder" in groups and groups[0] == "low-reasoning"
        assert set(served_by(standin, "standin-low")) == {200}  # moved before any 429
        assert not standin.rejected()
    finally:
        reset_state(proxy2)
