"""Provider trouble never stops a session: fallback chains and the context guard, against the
real proxy and the strict stand-in, on both endpoints, streamed and not.

What a user would see is asserted: which model served (the ``x-litellm-model-group`` header and
the reply's ``[model]`` prefix), what the provider received (the stand-in's records), and what
the event log says (one ``done`` with ``fallback`` for a call a fallback served, never a
``failed`` as well; one ``failed`` with every attempt when the whole chain failed; ``context``
on the ``routed`` record when the guard moved a request).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import anthropic
import openai
import pytest

from app.cli import main as cli
from callbacks.compat import error_names_failed_fallbacks
from callbacks.core.state import State, Tier
from callbacks.stores.statefile import atomic_write

from .conftest import Proxy, StandIn
from .redis_server import poll
from .test_conversations import Conversation
from .test_events_proxy import by_type, records_for

pytestmark = pytest.mark.timeout(240)
ENDPOINTS = [pytest.param("messages", False, id="messages-json"),
             pytest.param("messages", True, id="messages-stream"),
             pytest.param("chat", False, id="chat-json"),
             pytest.param("chat", True, id="chat-stream")]
APIError = (anthropic.APIStatusError, openai.APIStatusError)


@dataclass
class Reply:
    group: str
    call_id: str
    text: str


def ask(proxy: Proxy, endpoint: str, stream: bool, content: str = "hi",
        effort: str = "medium") -> Reply:
    """One request through the official SDK; the group that served it, its call id, its text."""
    messages: list[Any] = [{"role": "user", "content": content}]
    if endpoint == "messages":
        client = anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)
        body: dict[str, Any] = {"model": "claude-opus-4-8", "max_tokens": 256, "messages": messages,
                                "thinking": {"type": "adaptive"},
                                "output_config": {"effort": effort}}
        if stream:
            with client.messages.stream(**body) as events:
                message, headers = events.get_final_message(), events.response.headers
        else:
            raw = client.messages.with_raw_response.create(**body)
            message, headers = raw.parse(), raw.headers
        text = "".join(b.text for b in message.content if b.type == "text")
    else:
        gpt = openai.OpenAI(base_url=proxy.url + "/v1", api_key=proxy.key, max_retries=0)
        raw = gpt.chat.completions.with_raw_response.create(
            model="claude-opus-4-8", messages=messages, reasoning_effort=effort,  # type: ignore[arg-type]
            stream=stream)
        headers = raw.headers
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)  # type: ignore[union-attr]
        else:
            text = raw.parse().choices[0].message.content or ""  # type: ignore[union-attr]
    return Reply(headers["x-litellm-model-group"], headers["x-litellm-call-id"], text)


def records(proxy: Proxy, call_id: str) -> dict[str, list[dict[str, Any]]]:
    """The records of one call, once its outcome is written."""
    return by_type(records_for(proxy, {call_id}), call_id)


def edit_tier(proxy: Proxy, tier: Tier, **changes: Any) -> None:
    def change(state: State) -> State:
        tiers = dict(state.tiers)
        tiers[tier] = replace(tiers[tier], **changes)
        return replace(state, tiers=tiers)
    proxy.state_file.update(change)


def served_by(standin: StandIn, model: str) -> list[int]:
    """The statuses the stand-in answered ``model`` with, oldest first."""
    return [r["status"] for r in standin.calls(model)]


@pytest.fixture(autouse=True)
def _fresh(standin: StandIn) -> Any:
    standin.clear_faults()
    standin.clear()
    yield
    standin.clear_faults()  # the stand-in is shared with the other test modules


# --- fallback chains ----------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "stream"), ENDPOINTS)
def test_a_rate_limited_model_falls_back_and_serves_again_once_it_recovers(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool) -> None:
    edit_tier(proxy, "medium", fallbacks=("fast-coder",))
    standin.misbehave("standin-medium", "rate_limit", retry_after=30)

    replies = [ask(proxy, endpoint, stream) for _ in range(2)]
    assert [r.group for r in replies] == ["fast-coder", "fast-coder"]
    assert all(r.text.startswith("[standin-fast-coder]") for r in replies)
    for reply in replies:
        found = records(proxy, reply.call_id)
        assert "failed" not in found  # a fallback that served is not an error
        [routed], [done] = found["routed"], found["done"]
        assert routed["target"] == "medium-reasoning" and routed["fallbacks"] == ["fast-coder"]
        assert done["model_group"] == "fast-coder"
        assert done["fallback"] == {"from": "medium-reasoning", "to": "fast-coder",
                                    "reason": "rate_limit", "status_code": 429}
        [attempt] = done["attempts"]
        assert attempt["group"] == "medium-reasoning" and attempt["retry_after"] == 30
    assert served_by(standin, "standin-medium") == [429, 429]  # each request tried it first

    standin.recover("standin-medium")
    back = ask(proxy, endpoint, stream)
    assert back.group == "medium-reasoning" and back.text.startswith("[standin-medium]")
    [done] = records(proxy, back.call_id)["done"]
    assert "fallback" not in done


KINDS = [
    # (the fault, the tier's model, the reason recorded)
    pytest.param({"kind": "overloaded"}, "medium-reasoning", "overloaded", id="529-overloaded"),
    pytest.param({"kind": "server"}, "medium-reasoning", "server_error", id="500"),
    pytest.param({"kind": "stall", "delay_ms": 8000, "count": 1}, "slow-coder", "timeout",
                 id="stall-past-the-timeout"),
    pytest.param(None, "offline", "connection", id="connection-refused"),
    pytest.param({"max_input_tokens": 5}, "medium-reasoning", "context_window",
                 id="provider-context-error"),
]


@pytest.mark.parametrize(("fault", "model", "reason"), KINDS)
@pytest.mark.parametrize(("endpoint", "stream"), [ENDPOINTS[1], ENDPOINTS[2]])
def test_every_kind_of_provider_failure_falls_back(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool, fault: dict[str, Any] | None,
        model: str, reason: str) -> None:
    edit_tier(proxy, "medium", model=model, fallbacks=("fast-coder",))
    upstream = {"medium-reasoning": "standin-medium", "slow-coder": "standin-slow-coder"}.get(model)
    if fault and "max_input_tokens" in fault:
        standin.limit_context(str(upstream), fault["max_input_tokens"])
    elif fault:
        spec = dict(fault)
        standin.misbehave(str(upstream), spec.pop("kind"), **spec)
    reply = ask(proxy, endpoint, stream)
    assert reply.group == "fast-coder"
    [done] = records(proxy, reply.call_id)["done"]
    assert done["fallback"]["from"] == model and done["fallback"]["reason"] == reason


@pytest.mark.parametrize(("endpoint", "stream"), ENDPOINTS)
def test_a_chain_where_every_model_fails_ends_at_once_with_one_error(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool) -> None:
    edit_tier(proxy, "medium", fallbacks=("fast-coder", "low-reasoning"))
    standin.misbehave("standin-medium", "rate_limit", retry_after=5)
    standin.misbehave("standin-fast-coder", "overloaded")
    standin.misbehave("standin-low", "status", status=503)

    with pytest.raises(APIError) as raised:
        ask(proxy, endpoint, stream)
    error = raised.value
    # LiteLLM answers with the first model's error, and (1.104 on) says how its fallbacks failed
    assert error.status_code == 429
    if error_names_failed_fallbacks():
        assert "Fallback to fast-coder, low-reasoning also failed" in error.message
    # each model of the chain was asked exactly once: no loop, no retries
    assert [r["model"] for r in standin.requests()] == \
        ["standin-medium", "standin-fast-coder", "standin-low"]
    found = records(proxy, error.response.headers["x-litellm-call-id"])
    assert "done" not in found
    [failed] = found["failed"]
    assert failed["status_code"] == 429 and failed["model_group"] == "medium-reasoning"
    assert [(a["group"], a["reason"]) for a in failed["attempts"]] == [
        ("medium-reasoning", "rate_limit"), ("fast-coder", "overloaded"),
        ("low-reasoning", "overloaded")]
    assert failed["attempts"][-1]["status_code"] == 503  # the last provider's answer


@pytest.mark.parametrize("endpoint", ["messages", "chat"])
def test_a_fallback_edit_applies_to_the_next_request(proxy: Proxy, standin: StandIn,
                                                     endpoint: str) -> None:
    standin.misbehave("standin-medium", "rate_limit", retry_after=3)
    with pytest.raises(APIError) as raised:
        ask(proxy, endpoint, False)
    assert raised.value.status_code == 429
    [failed] = records(proxy, raised.value.response.headers["x-litellm-call-id"])["failed"]
    assert failed["status_code"] == 429 and failed["retry_after"] == 3

    # a chain written by hand into the state file
    path = proxy.state_file.path
    text = path.read_text()
    assert "  medium: medium-reasoning\n" in text
    atomic_write(path, text.replace("  medium: medium-reasoning\n", (
        "  medium:\n    model: medium-reasoning\n    fallbacks: [fast-coder, low-reasoning]\n")))

    def served_by_the_chain() -> bool:  # an edit by hand applies within CHECK_S: until then
        try:                            # the tier's model alone answers, rate limited
            return ask(proxy, endpoint, False).group == "fast-coder"
        except APIError as exc:
            assert exc.status_code == 429
            return False

    poll(served_by_the_chain, 10, what="the chain written by hand in force")

    # ... changed from the command line
    assert cli(["--home", str(proxy.home), "set-fallbacks", "medium", "low-reasoning"]) == 0
    assert ask(proxy, endpoint, False).group == "low-reasoning"

    # ... and cleared
    assert cli(["--home", str(proxy.home), "set-fallbacks", "medium", "off"]) == 0
    with pytest.raises(APIError):
        ask(proxy, endpoint, False)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_fallback_model_gets_a_history_it_accepts(proxy: Proxy, standin: StandIn,
                                                      stream: bool) -> None:
    """A conversation whose thinking blocks the tier's model made; then that model is rate
    limited, mid tool loop and on the next human turn. The fallback model's calls are accepted
    by the strict stand-in, and ``done.refits`` says what its history lost."""
    edit_tier(proxy, "medium", fallbacks=("fast-coder",))
    talk = Conversation(proxy.url, proxy.key, stream=stream)
    talk.turn("read the parser", "medium", 0)
    talk.turn("and the lexer", "medium", 1, between=lambda k: standin.misbehave(
        "standin-medium", "rate_limit"))
    talk.turn("now the tests", "medium", 0)
    assert [c.group for c in talk.calls] == ["medium-reasoning", "medium-reasoning",
                                             "fast-coder", "fast-coder"]
    assert standin.rejected() == [r for r in standin.requests() if r["fault"] == "rate_limit"]
    assert len(standin.rejected()) == 2

    continuation, next_turn = (records(proxy, c.call_id)["done"][0] for c in talk.calls[2:])
    # the tool loop's own thinking block was medium's: thinking off for the fallback, recorded
    [refit] = continuation["refits"]
    assert refit["group"] == "fast-coder" and refit["reasoning_lost"]
    assert continuation["fallback"]["to"] == "fast-coder"
    # a new turn keeps thinking on; the other model's blocks are dropped, and it says so
    [refit] = next_turn["refits"]
    assert refit["history"]["dropped"] >= 2 and "reasoning_lost" not in refit
    assert next_turn["sent"]["thinking.type"] == "adaptive"
    last = standin.calls("standin-fast-coder")[-1]
    assert not last["rejected"] and all(
        b["signature"] == "own" for b in last["history"]["thinking"])


# --- the context guard --------------------------------------------------------------------------

LONG = "lorem ipsum dolor sit amet " * 400  # about 3,300 tokens by the estimate


@pytest.mark.parametrize(("endpoint", "stream"), ENDPOINTS)
def test_a_request_too_long_for_its_tier_goes_to_a_tier_that_fits(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool) -> None:
    edit_tier(proxy, "medium", max_input_tokens=1000)
    standin.limit_context("standin-medium", 1000)  # the model really refuses it

    reply = ask(proxy, endpoint, stream, content=LONG)
    assert reply.group == "high-reasoning" and reply.text.startswith("[standin-high]")
    [routed] = records(proxy, reply.call_id)["routed"]
    context = routed["context"]
    assert context["estimate"] > 1000
    assert context == {"estimate": context["estimate"], "limit": 1000,
                       "from": "medium-reasoning", "to": "high-reasoning", "tier": "high"}
    assert routed["tier"] == "medium" and routed["target"] == "high-reasoning"
    assert standin.calls("standin-medium") == []

    short = ask(proxy, endpoint, stream)  # a request that fits stays on its tier
    assert short.group == "medium-reasoning"
    assert "context" not in records(proxy, short.call_id)["routed"][0]


def test_the_limit_comes_from_litellms_model_info(proxy: Proxy, standin: StandIn) -> None:
    """``fast-coder`` declares ``max_input_tokens: 32768`` in the proxy config."""
    proxy.state_file.update(lambda s: s.with_tier_model("low", "fast-coder"))
    reply = ask(proxy, "messages", False, content="x = 1\n" * 30_000, effort="low")
    assert reply.group == "medium-reasoning"
    context = records(proxy, reply.call_id)["routed"][0]["context"]
    assert context["limit"] == 32768 and context["from"] == "fast-coder"
    assert ask(proxy, "messages", False, effort="low").group == "fast-coder"


@pytest.mark.parametrize(("endpoint", "stream"), ENDPOINTS)
def test_a_request_no_tier_fits_goes_to_long_context_or_on_with_a_warning(
        proxy: Proxy, standin: StandIn, endpoint: str, stream: bool) -> None:
    edit_tier(proxy, "medium", max_input_tokens=1000)
    edit_tier(proxy, "high", max_input_tokens=1000)
    standin.limit_context("standin-medium", 1000)

    # nothing fits and no long_context model: sent on as asked, the record warns
    with pytest.raises(APIError) as raised:
        ask(proxy, endpoint, stream, content=LONG)
    assert raised.value.status_code == 400 and "prompt is too long" in raised.value.message
    found = records(proxy, raised.value.response.headers["x-litellm-call-id"])
    [routed] = found["routed"]
    assert routed["target"] == "medium-reasoning"
    assert routed["context"]["from"] == "medium-reasoning" and "to" not in routed["context"]
    assert "fits no tier above" in routed["context"]["warning"]
    assert [r["status"] for r in standin.calls("standin-medium")] == [400]

    proxy.state_file.update(lambda s: replace(s, long_context="long-context"))
    reply = ask(proxy, endpoint, stream, content=LONG)
    assert reply.group == "long-context" and reply.text.startswith("[standin-long-context]")
    context = records(proxy, reply.call_id)["routed"][0]["context"]
    assert context["to"] == "long-context" and context["tier"] is None


# --- the demo -------------------------------------------------------------------------------------

def test_the_demo_shows_fallbacks_and_bumps_live(tmp_path: Any) -> None:
    """The demo's medium tier model is rate-limited every fourth call and falls back; a long
    paste is too long for the low tier's window and moves up; nothing else fails."""
    from app.demo import Traffic, demo_stack
    from callbacks.stores.eventlog import EVENTS_NAME, read_tail

    with demo_stack(tmp_path, traffic=False) as demo:
        traffic = Traffic(demo.proxy.url, demo.key, pace_s=(0.0, 0.01), seed=3)
        thread = traffic.start()

        def seen() -> list[dict[str, Any]]:
            return read_tail(tmp_path / EVENTS_NAME)[0]

        def ready() -> bool:
            found = seen()
            return any(r.get("fallback") for r in found) and any(
                (r.get("context") or {}).get("to") for r in found)

        deadline = time.monotonic() + 150
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        traffic.stop.set()
        thread.join(60)
        assert ready()
        found = seen()
        assert [r for r in found if r.get("type") == "failed" and r.get("model_group") != "flaky"] \
            == []
        fallbacks = [r["fallback"] for r in found if r.get("fallback")]
        assert {(f["from"], f["to"], f["reason"]) for f in fallbacks} == \
            {("medium-reasoning", "fast-coder", "rate_limit")}
        assert {r["context"]["from"] for r in found if (r.get("context") or {}).get("to")} == \
            {"low-reasoning"}
