"""A Responses ``input`` fitted to its target (callbacks.core.responses_history), judged by the
strict stand-in's own copy of the Responses API's replay rules."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.standin.rules import encrypted_content, responses_error
from callbacks.core.history import ENCRYPTED_PREFIX, Target
from callbacks.core.responses_history import fit_input, is_responses, tool_loop
from callbacks.core.sessions import is_subagent, who_sent
from callbacks.stores.memory import Producer

MODELS = ("m-fast", "m-coder", "m-deep")


def target(model: str, responses: bool = True) -> Target:
    return Target(model, model, anthropic=not responses, responses=responses)


def user(text: str = "go on") -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def reasoning(model: str, n: int) -> dict[str, Any]:
    return {"type": "reasoning", "id": f"rs_{model}_{n}", "summary": [],
            "encrypted_content": encrypted_content(model, f"seed-{n}")}


def call(n: int) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}",
            "name": "exec_command", "arguments": '{"cmd": "ls"}'}


def output(n: int) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": f"call_{n}", "output": "ok"}


def said(n: int) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{n}", "role": "assistant",
            "content": [{"type": "output_text", "text": "done"}]}


def producers(items: list[dict[str, Any]]) -> dict[str, Producer]:
    """What the memory learnt: each reasoning item's producer (the model named in its id)."""
    return {ENCRYPTED_PREFIX + i["encrypted_content"]: Producer(i["id"].split("_")[1], i["id"].split("_")[1])
            for i in items if i.get("type") == "reasoning" and i.get("encrypted_content")}


def body(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "input": items, "store": False,
            "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low"}, **extra}


def accepted(items: list[dict[str, Any]], model: str) -> bool:
    return responses_error(items, model, False, {}, {}) is None


def test_a_conversation_on_one_model_is_left_as_it_is() -> None:
    items = [user(), reasoning("m-fast", 1), call(1), output(1), reasoning("m-fast", 2), said(2)]
    fit = fit_input(body(items), target("m-fast"), producers(items))
    assert fit.messages is None and fit.summary() == {"kept": 2, "dropped": 0}


def test_foreign_reasoning_is_dropped_whole_and_what_followed_it_loses_its_id() -> None:
    items = [user(), reasoning("m-deep", 1), call(1), output(1), said(1), user("next"),
             reasoning("m-fast", 2), call(2), output(2)]
    assert not accepted(items, "m-fast")  # the provider refuses it as sent
    fit = fit_input(body(items), target("m-fast"), producers(items))
    assert fit.messages is not None and accepted(fit.messages, "m-fast")
    assert [i.get("type") for i in fit.messages] == \
        ["message", "function_call", "function_call_output", "message", "message", "reasoning",
         "function_call", "function_call_output"]
    assert "id" not in fit.messages[1] and fit.messages[1]["call_id"] == "call_1"
    assert fit.messages[6]["id"] == "fc_2"  # its own call keeps its id and its reasoning
    assert fit.summary() == {"kept": 1, "dropped": 1, "why": {"other model": 1}}


def test_the_none_tier_gets_no_reasoning_items() -> None:
    items = [user(), reasoning("m-fast", 1), call(1), output(1)]
    fit = fit_input(body(items), target("m-fast"), producers(items), strip_all=True)
    assert fit.messages == [user(), {k: v for k, v in call(1).items() if k != "id"}, output(1)]
    assert fit.summary()["why"] == {"reasoning off": 1}


def test_unknown_reasoning_is_kept_for_a_native_target_only() -> None:
    items = [user(), reasoning("m-fast", 1), said(1), user()]
    assert fit_input(body(items), target("m-fast"), {}).summary() == \
        {"kept": 1, "dropped": 0, "kept_unknown": 1}
    translated = fit_input(body(items), target("claude", responses=False), {})
    assert translated.summary()["why"] == {"unverifiable": 1}


def test_by_id_alone_without_store_is_dropped_and_with_store_judged_by_its_producer() -> None:
    by_id = {"type": "reasoning", "id": "rs_x", "summary": []}
    items = [user(), by_id, said(1), user()]
    assert fit_input(body(items), target("m-fast"), {}).summary()["why"] == {"not persisted": 1}
    stored = body(items, store=True)
    assert fit_input(stored, target("m-fast"), {"rs_x": Producer("m-deep", "m-deep")}
                     ).summary()["why"] == {"other model": 1}
    assert fit_input(stored, target("m-deep"), {"rs_x": Producer("m-deep", "m-deep")}
                     ).messages is None


def test_a_reasoning_item_is_never_left_without_its_following_item() -> None:
    items = [user(), reasoning("m-fast", 1), user("the client cut the answer")]
    fit = fit_input(body(items), target("m-fast"), producers(items))
    assert fit.messages == [user(), user("the client cut the answer")]
    assert fit.summary()["why"] == {"no following item": 1}


def test_tool_loop_finds_the_call_ids_a_continuation_answers() -> None:
    assert tool_loop(body([user(), reasoning("m-fast", 1), call(1), call(2), output(1), output(2)])) \
        == ["call_1", "call_2"]
    assert tool_loop(body([user(), call(1), output(1), user("new")])) == []
    assert tool_loop({"input": "hi"}) == [] and is_responses({"input": "hi"})
    assert not is_responses({"messages": [], "input": []})


def test_codex_sessions_agents_and_client() -> None:
    turn = '{"agent_name": "/root/explorer", "request_kind": "turn"}'
    data = {"input": [], "prompt_cache_key": "pk", "proxy_server_request": {"headers": {
        "Session-Id": "s-1", "user-agent": "codex_exec/0.171.0 (Linux; x86_64)",
        "x-codex-turn-metadata": turn}}}
    assert who_sent(data) == {"session": "s-1", "agent": "/root/explorer",
                              "client": "codex_exec/0.171.0"}
    assert is_subagent(data)
    main = {"input": [], "client_metadata": {"session_id": "s-2"}, "proxy_server_request": {
        "headers": {"x-codex-turn-metadata": '{"agent_name": "/root"}'}}}
    assert who_sent(main)["session"] == "s-2" and who_sent(main)["agent"] is None
    assert not is_subagent(main)
    assert who_sent({"input": [], "prompt_cache_key": "pk"})["session"] == "pk"


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A Codex history: turns by several models, each a run of reasoning + call + output steps
    ending in a message (or, for the last turn, a pending tool continuation)."""
    items: list[dict[str, Any]] = []
    n = 0
    for t in range(draw(st.integers(1, 5))):
        items.append(user(f"turn {t}"))
        model = draw(st.sampled_from(MODELS))
        steps = draw(st.integers(0, 3))
        for _ in range(steps):
            n += 1
            if draw(st.booleans()):
                items.append(reasoning(model, n))
            items += [call(n), output(n)]
        n += 1
        if draw(st.booleans()):
            items.append(reasoning(model, n))
        items.append(said(n))
    if draw(st.booleans()):
        n += 1
        model = draw(st.sampled_from(MODELS))
        items += [user("last"), reasoning(model, n), call(n), output(n)]
    return items


@settings(max_examples=200, deadline=None)
@given(conversations(), st.sampled_from(MODELS), st.booleans())
def test_any_fitted_history_is_accepted_by_its_target(items: list[dict[str, Any]], model: str,
                                                      strip_all: bool) -> None:
    fit = fit_input(body(items), target(model), producers(items), strip_all)
    fitted = items if fit.messages is None else fit.messages
    assert accepted(fitted, model), responses_error(fitted, model, False, {}, {})
    kept = [i for i in fitted if i.get("type") == "reasoning"]
    assert all(i["id"].startswith(f"rs_{model}_") for i in kept) and not (strip_all and kept)
    # everything that is not reasoning reaches the target, in order, ids aside
    assert [{k: v for k, v in i.items() if k != "id"} for i in fitted if i["type"] != "reasoning"] \
        == [{k: v for k, v in i.items() if k != "id"} for i in items if i["type"] != "reasoning"]
    own = all(i["id"].startswith(f"rs_{model}_") for i in items if i["type"] == "reasoning")
    assert (fit.messages is None) == (own and not (strip_all and any(
        i["type"] == "reasoning" for i in items)))
    assert fit.kept + sum(fit.dropped.values()) == sum(i["type"] == "reasoning" for i in items)


def test_a_reasoning_item_litellm_made_from_thinking_is_known_by_its_signature() -> None:
    from callbacks.core.produced import produced_blocks
    from callbacks.core.responses_history import reasoning_key

    blocks = '[{"type":"thinking","thinking":"hm","signature":"' + "S" * 40 + '"}]'
    item = {"type": "reasoning", "id": "rs_1", "encrypted_content": blocks}
    assert reasoning_key(item) == "S" * 40
    assert "S" * 40 in produced_blocks({"output": [item]})[0]


def test_an_effort_the_anthropic_target_refuses_is_lowered_and_said() -> None:
    from callbacks.routing import lower_effort

    claude = Target("high-reasoning", "anthropic/standin-high", anthropic=True, responses=False)
    work: dict[str, Any] = {"input": [], "reasoning": {"effort": "xhigh", "summary": "auto"}}
    assert lower_effort(work, claude) == {"from": "xhigh", "to": "high",
                                          "why": "anthropic/standin-high does not take it"}
    assert work["reasoning"] == {"effort": "high", "summary": "auto"}
    chat = {"messages": [], "reasoning_effort": "xhigh"}
    assert lower_effort(chat, claude) and chat["reasoning_effort"] == "high"
    same = {"input": [], "reasoning": {"effort": "xhigh"}}
    assert lower_effort(same, target("gpt-5.5")) is None and same["reasoning"]["effort"] == "xhigh"


def test_a_translated_anthropic_target_needs_signed_reasoning_before_its_calls() -> None:
    from callbacks.core.responses_history import calls_without_signed_reasoning

    signed = {"type": "reasoning", "id": "rs_1", "summary": [],
              "encrypted_content": '[{"type":"thinking","thinking":"hm","signature":"' + "S" * 40 + '"}]'}
    streamed = {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "hm"}]}
    compaction = user("You are performing a CONTEXT CHECKPOINT COMPACTION.")
    assert calls_without_signed_reasoning([user(), streamed, call(1), output(1)])
    assert calls_without_signed_reasoning([user(), streamed, call(1), output(1), compaction])
    assert not calls_without_signed_reasoning([user(), signed, call(1), output(1), compaction])
    assert not calls_without_signed_reasoning([user(), streamed, said(1), user()])  # no calls
    assert not calls_without_signed_reasoning([user()])


def test_fitting_judges_each_item_by_the_key_reasoning_refs_found_in_the_same_body() -> None:
    from callbacks.core.responses_history import Keys, reasoning_refs

    items = [user(), reasoning("m-deep", 1), call(1), output(1), reasoning("m-fast", 2), said(2)]
    sent = body(items)
    known: Keys = {}
    keys, _ = reasoning_refs(sent, known)
    assert sorted(k for k in known.values() if k) == sorted(keys) and len(keys) == 2
    made = producers(items)
    assert fit_input(sent, target("m-fast"), made, known=known).summary() == \
        fit_input(sent, target("m-fast"), made).summary() == \
        {"kept": 1, "dropped": 1, "why": {"other model": 1}}
    # the keys given are the ones used: swapped, the other item is the foreign one
    first, second = (id(i) for i in sent["input"] if i.get("type") == "reasoning")
    known[first], known[second] = known[second], known[first]
    fit = fit_input(sent, target("m-fast"), made, known=known)
    assert fit.messages is not None
    kept = [i for i in fit.messages if i.get("type") == "reasoning"]
    assert [i["encrypted_content"] for i in kept] == [items[1]["encrypted_content"]]
