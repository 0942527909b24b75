"""Integration: a real LiteLLM proxy with the callback, the official SDKs, the stand-in upstream.

What a user sees is asserted: the model group that served a request (``x-litellm-model-group``),
the reply text (the stand-in names the upstream model), and what the upstream received.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anthropic
import openai
import pytest

from callbacks.core.state import Adapter, State, TierTarget

from .conftest import Proxy, StandIn, reset_state
from .redis_server import poll

pytestmark = pytest.mark.timeout(180)

USER = [{"role": "user", "content": "Refactor the parser, please."}]


@pytest.fixture(autouse=True)
def _fresh(standin: StandIn) -> None:
    standin.clear()


def claude(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=proxy.key, max_retries=0)


def gpt(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=proxy.key, max_retries=0)


def send_messages(proxy: Proxy, stream: bool = False, **body: Any) -> tuple[str, str]:
    """POST /v1/messages with the anthropic SDK; (model group, reply text)."""
    body.setdefault("model", "claude-opus-4-8")
    body.setdefault("max_tokens", 256)
    body.setdefault("messages", USER)
    client = claude(proxy)
    if stream:
        with client.messages.with_streaming_response.create(stream=True, **body) as response:
            group = response.headers["x-litellm-model-group"]
            text = "".join(
                event.delta.text for event in response.parse()
                if event.type == "content_block_delta" and event.delta.type == "text_delta"
            )
        return group, text
    raw = client.messages.with_raw_response.create(timeout=60, **body)
    message = raw.parse()
    return raw.headers["x-litellm-model-group"], "".join(
        b.text for b in message.content if b.type == "text")


def send_chat(proxy: Proxy, stream: bool = False, **body: Any) -> tuple[str, str]:
    """POST /v1/chat/completions with the openai SDK; (model group, reply text)."""
    body.setdefault("model", "claude-opus-4-8")
    body.setdefault("messages", USER)
    client = gpt(proxy)
    if stream:
        with client.chat.completions.with_streaming_response.create(stream=True, **body) as r:
            group = r.headers["x-litellm-model-group"]
            text = "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
        return group, text
    raw = client.chat.completions.with_raw_response.create(**body)
    return raw.headers["x-litellm-model-group"], raw.parse().choices[0].message.content or ""


# Claude Code's request shapes (shared/domain/claude-code-requests.md) -> expected model group.
ADAPTIVE = {"type": "adaptive"}
MESSAGES_CASES = [
    ("default-effort-high", dict(thinking=ADAPTIVE, output_config={"effort": "high"}), "high"),
    ("effort-low", dict(thinking=ADAPTIVE, output_config={"effort": "low"}), "low"),
    ("effort-medium", dict(thinking={"type": "adaptive", "display": "summarized"},
                           output_config={"effort": "medium"}), "medium"),
    ("effort-xhigh", dict(thinking=ADAPTIVE, output_config={"effort": "xhigh"}), "high"),
    ("effort-max", dict(thinking=ADAPTIVE, output_config={"effort": "max"}), "high"),
    ("effort-auto", dict(thinking=ADAPTIVE), "high"),
    ("max-thinking-0", dict(thinking={"type": "disabled"}, output_config={"effort": "high"}),
     "none"),
    ("thinking-off", dict(output_config={"effort": "high"}), "none"),
    ("budget-1024", dict(model="claude-sonnet-4-5-20250929", max_tokens=32000,
                         thinking={"type": "enabled", "budget_tokens": 1024}), "low"),
    ("budget-8000", dict(model="claude-sonnet-4-5-20250929", max_tokens=32000,
                         thinking={"type": "enabled", "budget_tokens": 8000}), "medium"),
    ("budget-31999", dict(model="claude-haiku-4-5-20251001", max_tokens=32000,
                          thinking={"type": "enabled", "budget_tokens": 31999}), "high"),
    ("sonnet-5", dict(model="claude-sonnet-5", thinking=ADAPTIVE,
                      output_config={"effort": "medium"}), "medium"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("body,tier", [c[1:] for c in MESSAGES_CASES],
                         ids=[c[0] for c in MESSAGES_CASES])
def test_messages_land_on_their_tier(proxy: Proxy, body: dict[str, Any], tier: str,
                                     stream: bool) -> None:
    group, text = send_messages(proxy, stream=stream, **body)
    assert group == f"{tier}-reasoning"
    assert text.startswith(f"[standin-{tier}]")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("effort,tier", [("minimal", "low"), ("low", "low"), ("medium", "medium"),
                                         ("high", "high"), (None, "none")])
def test_chat_completions_land_on_their_tier(proxy: Proxy, effort: str | None, tier: str,
                                             stream: bool) -> None:
    extra = {"reasoning_effort": effort} if effort else {}
    group, text = send_chat(proxy, stream=stream, **extra)
    assert group == f"{tier}-reasoning"
    assert text.startswith(f"[standin-{tier}]")


def test_unrouted_model_passes_through_untouched(proxy: Proxy, standin: StandIn) -> None:
    group, text = send_chat(proxy, model="gpt-5-mini", reasoning_effort="high")
    assert (group, text.split()[0]) == ("gpt-5-mini", "[standin-gpt-5-mini]")
    received = standin.requests()[-1]["body"]
    assert received["reasoning_effort"] == "high"


def test_title_request_reaches_none_tier_without_reasoning(proxy: Proxy, standin: StandIn
                                                           ) -> None:
    """Claude Code's session-title request: thinking off, effort high, a JSON format."""
    fmt = {"type": "json_schema", "schema": {"type": "object",
                                             "properties": {"title": {"type": "string"}}}}
    group, _ = send_messages(
        proxy, stream=True, tools=[], thinking={"type": "disabled"},
        output_config={"effort": "high", "format": fmt},
        extra_body={"context_management": {"edits": [{"type": "clear_thinking_20251015",
                                                      "keep": "all"}]}},
    )
    assert group == "none-reasoning"
    received = standin.requests()[-1]["body"]
    assert received["thinking"] == {"type": "disabled"}
    assert received["output_config"] == {"format": fmt}
    assert "context_management" not in received
    assert "reasoning_effort" not in received


def test_other_tiers_keep_the_clients_reasoning(proxy: Proxy, standin: StandIn) -> None:
    group, _ = send_messages(proxy, thinking=ADAPTIVE, output_config={"effort": "medium"})
    assert group == "medium-reasoning"
    received = standin.requests()[-1]["body"]
    assert received["thinking"]["type"] == "adaptive"
    assert received["output_config"] == {"effort": "medium"}


def test_tier_params_replace_the_clients_reasoning(proxy: Proxy, standin: StandIn) -> None:
    """An OpenAI low tier with ``reasoning_effort: low``, as the original openai.yaml did."""
    state = State()
    tiers = dict(state.tiers)
    tiers["low"] = TierTarget("openai-reasoner", {"reasoning_effort": "low"})
    proxy.state_file.write(State(tiers=tiers))
    group, text = send_chat(proxy, reasoning_effort="minimal")
    assert group == "openai-reasoner"
    assert text.startswith("[standin-openai-reasoner]")
    received = standin.requests()[-1]
    assert received["path"].endswith("/chat/completions")
    assert received["body"]["reasoning_effort"] == "low"


def test_cerebras_adapter_cleans_tools_and_flattens_content(proxy: Proxy, standin: StandIn
                                                            ) -> None:
    proxy.state_file.write(State(
        tiers={**State().tiers, "high": TierTarget("cerebras-coder")},
        adapters={"cerebras-coder": Adapter(cerebras=True)},
    ))
    tools = [{"name": "fetch", "description": "Fetch a URL", "input_schema": {
        "type": "object", "required": ["url"],
        "properties": {"url": {"type": "string", "format": "uri", "minLength": 3}}}}]
    history = [
        {"role": "user", "content": "Fetch the page"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "tu_1", "name": "fetch", "input": {"url": "http://x"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "tu_1", "content": "PAGE BODY"},
            {"type": "text", "text": "Summarise it"}]},
    ]
    group, text = send_messages(proxy, tools=tools, messages=history, thinking=ADAPTIVE,
                                output_config={"effort": "high"})
    assert group == "cerebras-coder"
    assert text.startswith("[standin-cerebras-coder]")
    received = standin.requests()[-1]["body"]
    url_schema = received["tools"][0]["function"]["parameters"]["properties"]["url"]
    assert "format" not in url_schema and "minLength" not in url_schema
    assert url_schema["description"] == "(format: uri; minLength: 3)"
    contents = [m["content"] for m in received["messages"]]
    assert all(isinstance(c, str) for c in contents)
    assert "[tool_use fetch id=tu_1]" in contents[1]
    assert "[tool_result id=tu_1] PAGE BODY" in contents[2]


def cli(proxy: Proxy, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "--home", str(proxy.home), *args],
                          capture_output=True, text=True, timeout=60)


def _groups(proxy: Proxy, n: int, **body: Any) -> set[str]:
    return {send_messages(proxy, **body)[0] for _ in range(n)}


MEDIUM = dict(thinking=ADAPTIVE, output_config={"effort": "medium"})


@pytest.mark.parametrize("which", ["proxy", "proxy2"])
def test_cli_edits_apply_to_the_very_next_request(which: str, request: pytest.FixtureRequest
                                                  ) -> None:
    """set / pin / routing while the proxy runs; with 2 workers every worker follows at once."""
    target: Proxy = request.getfixturevalue(which)
    reset_state(target)
    n = 6 if which == "proxy2" else 1  # several requests: they spread over both workers
    assert _groups(target, n, **MEDIUM) == {"medium-reasoning"}

    assert cli(target, "set", "medium", "fast-coder").returncode == 0
    assert _groups(target, n, **MEDIUM) == {"fast-coder"}

    assert cli(target, "pin", "low").returncode == 0
    assert _groups(target, n, **MEDIUM) == {"low-reasoning"}

    assert cli(target, "pin", "off").returncode == 0
    assert cli(target, "routing", "off").returncode == 0
    assert _groups(target, n, **MEDIUM) == {"claude-opus-4-8"}

    assert cli(target, "routing", "on").returncode == 0
    assert _groups(target, n, **MEDIUM) == {"fast-coder"}
    reset_state(target)


def test_broken_state_file_keeps_the_last_good_mapping(proxy: Proxy) -> None:
    assert cli(proxy, "set", "medium", "fast-coder").returncode == 0
    assert _groups(proxy, 1, **MEDIUM) == {"fast-coder"}
    good = proxy.state_file.path.read_text()
    log_before = proxy.service.log_text().count("state file refused")
    proxy.state_file.path.write_text(good.replace("medium: fast-coder", "medium: [oops"))
    # an edit by hand applies within CHECK_S: requests meanwhile, all on the last good mapping
    served: set[str] = set()
    poll(lambda: served.update(_groups(proxy, 1, **MEDIUM)) or
         proxy.service.log_text().count("state file refused") > log_before, 10,
         what="the refusal in the proxy's log")
    assert served == {"fast-coder"}
    assert _groups(proxy, 3, **MEDIUM) == {"fast-coder"}
    assert proxy.service.log_text().count("state file refused") == log_before + 1
    shown = cli(proxy, "show")
    assert shown.returncode == 1 and "invalid" in shown.stderr

    proxy.state_file.path.write_text(good.replace("medium: fast-coder", "medium: high-reasoning"))
    poll(lambda: _groups(proxy, 1, **MEDIUM) == {"high-reasoning"}, 10,
         what="the valid hand edit in force")


def test_invalid_value_is_refused_with_its_name(proxy: Proxy) -> None:
    assert _groups(proxy, 1, **MEDIUM) == {"medium-reasoning"}  # the default state is in force
    text = proxy.state_file.path.read_text().replace("pin: null", "pin: extreme")
    proxy.state_file.path.write_text(text)
    served: set[str] = set()
    poll(lambda: served.update(_groups(proxy, 1, **MEDIUM)) or
         "pin: 'extreme' is not valid" in proxy.service.log_text(), 10,
         what="the refusal in the proxy's log")
    assert served == {"medium-reasoning"}
