"""The callback as LiteLLM calls it, in-process: decisions recorded, errors never escape."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import callbacks.model_route_callback as hook
import callbacks.routing as routing
from callbacks.core.state import State
from callbacks.stores.statefile import StateFile


def call(router: hook.ReasoningRouter, data: dict[str, Any], call_type: str) -> dict[str, Any]:
    return asyncio.run(router.async_pre_call_hook(None, None, data, call_type))


@pytest.fixture
def router(tmp_path: Path) -> hook.ReasoningRouter:
    state_file = StateFile(tmp_path / "state.yaml")
    state_file.write(State())
    return hook.ReasoningRouter(state_file)


def test_routes_and_records_the_decision_in_metadata(router: hook.ReasoningRouter) -> None:
    data = {"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
            "output_config": {"effort": "low"}, "litellm_metadata": {"user": "u"}}
    out = call(router, data, "anthropic_messages")
    assert out["model"] == "low-reasoning"
    record = out["litellm_metadata"]["reasoning_panel"]
    assert record["reason"] == "routed"
    assert (record["signal"], record["value"], record["strength"]) == (
        "output_config.effort", "low", "low")
    assert record["client_model"] == "claude-opus-4-8"
    assert record["endpoint"] == "/v1/messages"
    assert out["litellm_metadata"]["user"] == "u"


def test_litellms_copy_of_the_metadata_for_an_attempt_keeps_the_record_apart(
        router: hook.ReasoningRouter) -> None:
    """LiteLLM deep-copies the metadata for each attempt of a call (``safe_deep_copy``): the
    record's copy is shallow (cheap), yet what one attempt appends is not in another's."""
    from litellm.litellm_core_utils.core_helpers import safe_deep_copy

    data = {"model": "claude-opus-4-8", "output_config": {"effort": "low"},
            "thinking": {"type": "adaptive"}, "litellm_metadata": {}}
    record = call(router, data, "anthropic_messages")["litellm_metadata"]["reasoning_panel"]
    record["attempts"] = [{"group": "low-reasoning"}]
    copied = safe_deep_copy(data["litellm_metadata"])["reasoning_panel"]
    assert copied == record and copied is not record
    copied["attempts"].append({"group": "fast-coder"})
    copied["fitted_for"] = "anthropic/other"
    assert record["attempts"] == [{"group": "low-reasoning"}]
    assert "fitted_for" not in record or record["fitted_for"] != "anthropic/other"
    assert copied["fields"] is record["fields"]  # never changed after the hook: shared


def test_chat_metadata_key(router: hook.ReasoningRouter) -> None:
    out = call(router, {"model": "claude-sonnet-5", "reasoning_effort": "high"}, "acompletion")
    assert out["model"] == "high-reasoning"
    assert out["metadata"]["reasoning_panel"]["endpoint"] == "/v1/chat/completions"


def test_other_call_types_are_left_alone(router: hook.ReasoningRouter) -> None:
    data = {"model": "claude-opus-4-8", "input": "text to embed"}
    assert call(router, dict(data), "aembedding") == data


def test_internal_error_passes_the_request_through_unchanged(
    router: hook.ReasoningRouter, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(routing, "detect_strength", boom)
    data = {"model": "claude-opus-4-8", "thinking": {"type": "disabled"}}
    out = call(router, data, "anthropic_messages")
    assert out["model"] == "claude-opus-4-8"
    assert out["thinking"] == {"type": "disabled"}
    assert out["litellm_metadata"]["reasoning_panel"]["reason"] == "error"
    assert "routing failed" in caplog.text


def test_unknown_model_type_is_not_routed(router: hook.ReasoningRouter) -> None:
    out = call(router, {"model": None, "reasoning_effort": "high"}, "acompletion")
    assert out["model"] is None
    assert out["metadata"]["reasoning_panel"]["reason"] == "not_routed"


def test_proxy_side_never_imports_textual() -> None:
    """The callback runs headless on servers: importing it must not pull in the TUI."""
    code = ("import sys, callbacks.model_route_callback, callbacks.launcher, app.standin.server, "
            "app.local_stack; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


CONFIGS = ["cerebras", "cerebras_openrouter", "openai", "demo"]


@pytest.fixture(scope="module")
def validations(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """`litellm --config configs/X.yaml --validate_config` for every config, started at once
    (each spends its time importing LiteLLM), each from a folder of its own."""
    root = Path(__file__).resolve().parent.parent
    litellm = Path(sys.executable).with_name("litellm")
    started: dict[str, subprocess.Popen[str]] = {}
    for config in CONFIGS:
        folder = tmp_path_factory.mktemp(f"validate-{config}")
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "CEREBRAS_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "OPENROUTER_API_KEY": "k",
               "OPENAI_API_KEY": "k", "REASONING_PANEL_HOME": str(folder),
               "REASONING_PANEL_STANDIN_URL": "http://127.0.0.1:9"}
        started[config] = subprocess.Popen(
            [str(litellm), "--config", str(root / "configs" / f"{config}.yaml"),
             "--validate_config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=folder)
    yield started
    for proc in started.values():  # a test that failed early leaves its process to stop
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("config", CONFIGS)
def test_configs_load_the_callback_with_plain_litellm(
        config: str, validations: dict[str, subprocess.Popen[str]]) -> None:
    """`litellm --config configs/X.yaml` (the original README's way) loads the callback,
    from any folder."""
    stdout, stderr = validations[config].communicate(timeout=240)
    assert "config OK" in stdout + stderr, stdout[-2000:] + stderr[-2000:]


def test_done_sent_counts_a_fitted_history_once(router: hook.ReasoningRouter,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The thinking blocks a deployment gets are counted where the history was fitted: when
    LiteLLM hands the deployment the very list the pre-call hook left, ``done.sent`` takes that
    count (the history is not walked again); any other list is counted."""
    from litellm.litellm_core_utils.core_helpers import safe_deep_copy

    import callbacks.core.produced as produced
    from callbacks.proxy_targets import ProxyTargets

    class Deployments(ProxyTargets):  # each group one native Anthropic deployment of its name
        def __call__(self, group: str) -> routing.Target:
            return routing.target_of(group, "anthropic/" + group)

        def deployment_model(self, deployment_id: Any) -> str:
            return "anthropic/" + str(deployment_id)

    router.targets = router.book.targets = Deployments()

    def deployment_and_done(data: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        metadata = safe_deep_copy(data["litellm_metadata"])
        metadata.update(model_group=data["model"], model_info={"id": data["model"]})
        kwargs = {**data, "messages": messages, "litellm_metadata": metadata}
        asyncio.run(router.async_pre_call_deployment_hook(kwargs, "anthropic_messages"))
        emitted: list[dict[str, Any]] = []
        monkeypatch.setattr(router.book, "emit", emitted.append)
        asyncio.run(router.async_log_success_event(kwargs, {"content": []}, None, None))
        return next(r for r in emitted if r["type"] == "done")

    signed = [{"role": "user", "content": "q"},
              {"role": "assistant", "content": [
                  {"type": "thinking", "thinking": "t", "signature": "S" * 40},
                  {"type": "text", "text": "a"}]},
              {"role": "user", "content": "next"}]
    data = {"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"}, "messages": signed, "litellm_metadata": {},
            "litellm_call_id": "call-1"}
    call(router, data, "anthropic_messages")
    assert data["litellm_metadata"]["reasoning_panel"]["history"]["kept"] == 1
    walked: list[Any] = []
    counter = produced._thinking_blocks
    monkeypatch.setattr(produced, "_thinking_blocks", lambda m: walked.append(m) or counter(m))

    done = deployment_and_done(data, data["messages"])
    assert done["sent"] == {"thinking.type": "adaptive", "output_config.effort": "high",
                            "thinking_blocks": 1}
    assert walked == []
    # a list the hook did not leave (another attempt's refit, a copy): counted
    done = deployment_and_done(data, [m for m in data["messages"] if m["role"] == "user"])
    assert "thinking_blocks" not in done["sent"] and len(walked) == 1


def test_done_records_carry_a_deployments_rate_limit_once_a_second_unless_a_tier_keeps_headroom(
        router: hook.ReasoningRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a call's rate-limit figures is a tenth of its bookkeeping: while they are only
    shown (no tier keeps a headroom), a ``done`` record carries them once a second for each
    deployment; with a headroom, every call's are read and recorded for the routing."""
    from callbacks.core.headroom import Threshold

    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(router.book, "emit", emitted.append)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(hook.time, "time", lambda: clock[0])  # the hook reads the time

    def done(deployment: str, remaining: int) -> dict[str, Any]:
        kwargs = {"litellm_call_id": f"c{len(emitted)}", "response_headers": {
                      "anthropic-ratelimit-requests-remaining": str(remaining),
                      "anthropic-ratelimit-requests-limit": "100"},
                  "standard_logging_object": {"model_id": deployment,
                                              "model_group": "low-reasoning"}}
        asyncio.run(router.async_log_success_event(kwargs, {"content": []}, None, None))
        return emitted[-1]

    left = lambda record: (record.get("quota") or {}).get("requests", {}).get("remaining")  # noqa: E731
    assert left(done("a", 90)) == 90
    assert left(done("a", 89)) is None  # the same deployment within the second
    assert left(done("b", 50)) == 50  # another deployment: its own second
    clock[0] += 1.0
    assert left(done("a", 88)) == 88
    assert router.quotas.of_group("low-reasoning") == []  # only shown: nothing recorded

    router.live.file.write(router.live.current().with_tier_headroom(
        "low", {"requests": Threshold(5, False)}))
    router.live.current()  # as the next request's hook does
    assert [left(done("a", n)) for n in (87, 86)] == [87, 86]  # every call's, and recorded
    assert [q.requests.remaining for q in router.quotas.of_group("low-reasoning")
            if q.requests] == [86]


@pytest.mark.parametrize("api", ["messages", "responses"])
def test_a_new_turn_waits_for_what_another_worker_just_remembered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str) -> None:
    """The client sends its next turn as soon as the last answer reaches it, and another worker
    may serve it while the first is still writing down who made that answer's reasoning. The new
    turn waits for it: a block the memory never saw would be kept (made before the proxy saw
    the conversation), and the new tier's provider would refuse another model's signature."""
    from callbacks.stores.memory import Producer

    state_file = StateFile(tmp_path / "state.yaml")
    state_file.write(State())
    first, other = hook.ReasoningRouter(state_file), hook.ReasoningRouter(state_file)
    monkeypatch.setattr(hook.ReasoningRouter, "TOOL_WAIT_S", 60.0)  # the write ends the wait
    if api == "messages":
        made = "S" * 40
        data: dict[str, Any] = {
            "model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
            "output_config": {"effort": "low"}, "litellm_metadata": {},
            "messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": [
                             {"type": "thinking", "thinking": "t", "signature": made},
                             {"type": "text", "text": "a"}]},
                         {"role": "user", "content": "next"}]}
        call_type, replayed = "anthropic_messages", lambda: data["messages"][1]["content"]
    else:
        made = "litellm_encrypted_reasoning:" + "gAAAA" + "e" * 60
        data = {"model": "claude-opus-4-8", "reasoning": {"effort": "low"}, "litellm_metadata": {},
                "input": [{"type": "message", "role": "user", "content": "q"},
                          {"type": "reasoning", "id": "rs_1", "summary": [],
                           "encrypted_content": made.removeprefix("litellm_encrypted_reasoning:")},
                          {"type": "message", "role": "assistant", "id": "msg_1",
                           "content": [{"type": "output_text", "text": "a"}]},
                          {"type": "message", "role": "user", "content": "next"}]}
        call_type, replayed = "aresponses", lambda: data["input"]

    async def next_turn_while_the_first_worker_writes() -> dict[str, Any]:
        turn = asyncio.create_task(other.async_pre_call_hook(None, None, data, call_type))
        first.memory.remember(Producer("high-reasoning", "anthropic/high", "high"), [made], [])
        return await turn

    out = asyncio.run(next_turn_while_the_first_worker_writes())
    record = out["litellm_metadata"]["reasoning_panel"]
    assert out["model"] == "low-reasoning"
    assert record["history"]["dropped"] == 1 and "other model" in record["history"]["why"], record
    assert made.removeprefix("litellm_encrypted_reasoning:") not in repr(replayed())
    for router in (first, other):
        router.memory.flush()
