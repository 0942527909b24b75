"""History fitting, tool loops and the conversation memory (pure core + the SQLite store)."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.core.history import (
    ENCRYPTED_PREFIX,
    Target,
    fit_history,
    history_reasoning,
    signatures_in,
    tool_loop,
)
from callbacks.stores.memory import Producer, SqliteMemory, signature_key

OPUS = Producer("high-reasoning", "anthropic/claude-opus-4-8", "high")
HAIKU = Producer("low-reasoning", "anthropic/claude-haiku-4-5", "low")
OPUS_T = Target("high-reasoning", "anthropic/claude-opus-4-8", anthropic=True)
HAIKU_T = Target("low-reasoning", "anthropic/claude-haiku-4-5", anthropic=True)
CHAT_T = Target("fast-coder", "openrouter/some-reasoner", anthropic=False)
SIG_OPUS = "EqAbCdEfOpusSignature0123456789+/=="
SIG_HAIKU = "EqAbCdEfHaikuSignature0123456789+/=="
SIG_OUTSIDE = "EqAbCdEfMadeOutsideTheProxy0123456789"


def thinking(sig: Any, text: str = "let me think") -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": sig}


def turn(*content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(content)}


def user(text: str = "go on") -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def tool_use(tid: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": tid, "name": "Read", "input": {"path": "a.py"}}


def results(*ids: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "ok"}
                                        for i in ids]}


def body(*messages: dict[str, Any], on: bool = True) -> dict[str, Any]:
    return {"model": "claude-opus-4-8", "messages": list(messages),
            **({"thinking": {"type": "adaptive"}} if on else {})}


KNOWN = {SIG_OPUS: OPUS, SIG_HAIKU: HAIKU}


def test_a_conversation_that_never_changes_target_is_forwarded_as_sent() -> None:
    b = body(user("a"), turn(thinking(SIG_OPUS), {"type": "text", "text": "x"}), user("b"))
    fit = fit_history(b, OPUS_T, KNOWN)
    assert fit.messages is None and fit.kept == 1 and not fit.dropped


def test_another_models_block_is_dropped_and_its_turn_kept() -> None:
    b = body(user("a"), turn(thinking(SIG_HAIKU), {"type": "text", "text": "x"}), user("b"))
    fit = fit_history(b, OPUS_T, KNOWN)
    assert fit.messages is not None
    assert fit.messages[1] == {"role": "assistant", "content": [{"type": "text", "text": "x"}]}
    assert fit.dropped == {"other model": 1}


@pytest.mark.parametrize("sig,why", [
    (None, "unsigned"), ("", "unsigned"), (ENCRYPTED_PREFIX + "gAAAAB", "not from this target"),
    ("not base64 at all!", "unverifiable"),
])
def test_unverifiable_blocks_are_dropped(sig: Any, why: str) -> None:
    b = body(user(), turn(thinking(sig), {"type": "text", "text": "x"}), user())
    fit = fit_history(b, OPUS_T, KNOWN)
    assert fit.dropped == {why: 1}


def test_a_block_missing_its_signature_key_is_dropped() -> None:
    block = {"type": "thinking", "thinking": "hm"}
    fit = fit_history(body(user(), turn(block, {"type": "text", "text": "x"}), user()), OPUS_T, {})
    assert fit.dropped == {"unsigned": 1}


def test_an_encrypted_block_is_kept_for_the_target_that_made_it() -> None:
    sig = ENCRYPTED_PREFIX + "gAAAAB-encrypted"
    reasoner = Target("openai-reasoner", "openai/o-reasoner", anthropic=False)
    made = {sig: Producer("openai-reasoner", "openai/o-reasoner", "high")}
    fit = fit_history(body(user(), turn(thinking(sig), {"type": "text", "text": "x"}), user()),
                      reasoner, made)
    assert fit.messages is None and fit.kept == 1


def test_unknown_well_formed_block_is_kept_for_an_anthropic_target_only() -> None:
    b = body(user(), turn(thinking(SIG_OUTSIDE), {"type": "text", "text": "x"}), user())
    fit = fit_history(b, OPUS_T, {})
    assert fit.messages is None and fit.kept_unknown == 1
    fit = fit_history(b, CHAT_T, {})
    assert fit.dropped == {"unverifiable": 1}


def test_strip_all_drops_every_block_and_removes_a_turn_left_empty() -> None:
    b = body(user("a"), turn(thinking(SIG_OPUS)), user("b"), turn(thinking(SIG_OPUS),
             {"type": "text", "text": "y"}), user("c"))
    fit = fit_history(b, OPUS_T, KNOWN, strip_all=True)
    assert fit.messages is not None
    assert [m["role"] for m in fit.messages] == ["user", "user", "assistant", "user"]
    assert fit.dropped == {"thinking off": 2}


def test_redacted_thinking_is_judged_by_its_data() -> None:
    b = body(user(), turn({"type": "redacted_thinking", "data": SIG_HAIKU},
                          {"type": "text", "text": "x"}), user())
    assert fit_history(b, OPUS_T, KNOWN).dropped == {"other model": 1}
    assert fit_history(b, HAIKU_T, KNOWN).messages is None


def test_chat_thinking_blocks_of_another_provider_are_dropped() -> None:
    msg = {"role": "assistant", "content": "x", "thinking_blocks": [thinking(SIG_OPUS)]}
    b = {"messages": [{"role": "user", "content": "a"}, msg, {"role": "user", "content": "b"}]}
    fit = fit_history(b, CHAT_T, KNOWN)
    assert fit.messages is not None and "thinking_blocks" not in fit.messages[1]
    assert fit.messages[1]["content"] == "x"


def test_group_match_when_the_upstream_model_is_not_known() -> None:
    mixed = Target("high-reasoning", "", anthropic=True)
    b = body(user(), turn(thinking(SIG_OPUS), {"type": "text", "text": "x"}), user())
    assert fit_history(b, mixed, KNOWN).messages is None


# --- tool loops ----------------------------------------------------------------------------------

def test_tool_loop_finds_the_ids_a_continuation_answers() -> None:
    b = body(user("fix it"), turn(thinking(SIG_OPUS), tool_use("toolu_1"), tool_use("toolu_2")),
             results("toolu_1", "toolu_2"))
    assert tool_loop(b) == ["toolu_1", "toolu_2"]
    assert tool_loop(body(user("fix it"))) == []
    chat = {"messages": [{"role": "user", "content": "a"},
                         {"role": "assistant", "content": None,
                          "tool_calls": [{"id": "call_9", "type": "function"}]},
                         {"role": "tool", "tool_call_id": "call_9", "content": "ok"}]}
    assert tool_loop(chat) == ["call_9"]


def test_a_continuation_that_loses_its_thinking_block_is_flagged() -> None:
    b = body(user("fix"), turn(thinking(SIG_HAIKU), tool_use("toolu_1")), results("toolu_1"))
    fit = fit_history(b, OPUS_T, KNOWN)
    assert fit.tool_loop_unsigned
    assert not fit_history(b, HAIKU_T, KNOWN).tool_loop_unsigned
    # with thinking off there is no such rule
    assert not fit_history(body(*b["messages"], on=False), OPUS_T, KNOWN).tool_loop_unsigned


def test_signatures_in_lists_every_signed_block() -> None:
    b = body(user(), turn(thinking(SIG_OPUS), {"type": "redacted_thinking", "data": SIG_HAIKU}),
             user(), turn(thinking(None)), user())
    assert signatures_in(b) == [SIG_OPUS, SIG_HAIKU]


def test_history_reasoning_finds_every_shape_of_reasoning_once() -> None:
    """Blocks in the content, else in ``thinking_blocks``; reasoning text with its tool ids;
    an unsigned block still makes its turn one that fitting looks at."""
    b = body(
        user(),
        turn(thinking(SIG_OPUS), {"type": "redacted_thinking", "data": SIG_HAIKU}),  # 1
        user(),
        {"role": "assistant", "content": "plain", "thinking_blocks": [thinking(SIG_OUTSIDE)]},  # 3
        {"role": "assistant", "content": [thinking("C")], "thinking_blocks": [thinking("T")]},
        {"role": "assistant", "content": "x", "reasoning_content": "hmm",  # 5
         "tool_calls": [{"id": "call_1", "type": "function"}]},
        turn(thinking(None), {"type": "text", "text": "no signature"}),  # 6
        turn({"type": "text", "text": "nothing to fit"}),
        {"role": "user", "content": [thinking("a user's block is not history")]},
    )
    b["messages"].append("not a message")
    found = history_reasoning(b)
    assert found.signatures == [SIG_OPUS, SIG_HAIKU, SIG_OUTSIDE, "C"]
    assert found.text_ids == ["call_1"]
    assert found.carriers == [1, 3, 4, 5, 6]


# Property: whatever mix of producers a history holds, what is sent to a target carries only
# blocks that target made (or unknown well-formed ones, for an Anthropic target).
PRODUCERS = [OPUS, HAIKU, Producer("medium-reasoning", "anthropic/claude-sonnet-5", "medium")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.booleans()), min_size=1,
                max_size=12), st.integers(0, 2), st.booleans())
def test_sent_history_only_carries_blocks_the_target_made(
        turns: list[tuple[int, bool, bool]], target_i: int, strip: bool) -> None:
    messages: list[dict[str, Any]] = [user("start")]
    made: dict[str, Producer] = {}
    for i, (who, with_text, tools) in enumerate(turns):
        sig = f"EqSig{i:04d}x{PRODUCERS[who].model.replace('/', '')}"
        made[sig] = PRODUCERS[who]
        content = [thinking(sig)] + ([{"type": "text", "text": "t"}] if with_text else []) + \
            ([tool_use(f"toolu_{i}")] if tools else [])
        messages += [turn(*content), results(f"toolu_{i}") if tools else user(f"u{i}")]
    producer = PRODUCERS[target_i]
    target = Target(producer.group, producer.model)
    fit = fit_history(body(*messages), target, made, strip_all=strip)
    sent = fit.messages if fit.messages is not None else messages
    for message in sent:
        for block in message["content"] if isinstance(message["content"], list) else ():
            if block.get("type") == "thinking":
                assert not strip and made[block["signature"]] == producer
        assert message["role"] == "user" or message["content"]
    assert fit.kept + sum(fit.dropped.values()) == len(turns)
    # ``kept`` is what the sent history holds: done.sent counts from it
    assert fit.kept == sum(isinstance(m["content"], list) and sum(
        b.get("type") == "thinking" for b in m["content"]) for m in sent)


# --- the SQLite memory ---------------------------------------------------------------------------

def test_memory_remembers_and_recalls(tmp_path: Path) -> None:
    memory = SqliteMemory(tmp_path / "memory.sqlite3")
    memory.remember(OPUS, [SIG_OPUS], ["toolu_1"])
    memory.remember(HAIKU, [SIG_HAIKU], [])
    assert memory.flush()
    found = memory.recall([SIG_OPUS, SIG_HAIKU, "never-seen"], ["toolu_1", "toolu_x"])
    assert found.signatures == {SIG_OPUS: OPUS, SIG_HAIKU: HAIKU}
    assert found.tools == {"toolu_1": OPUS}
    assert stat.S_IMODE(os.stat(memory.path).st_mode) == 0o600
    raw = b"".join(p.read_bytes() for p in memory.path.parent.glob("memory.sqlite3*"))
    assert SIG_OPUS.encode() not in raw and signature_key(SIG_OPUS)[2:].encode() in raw


def _remember_in_child(path: str) -> None:
    memory = SqliteMemory(Path(path))
    memory.remember(HAIKU, [SIG_HAIKU], ["toolu_child"])
    memory.flush()


def test_memory_is_shared_between_processes_and_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    child = multiprocessing.get_context("spawn").Process(target=_remember_in_child, args=(str(path),))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert SqliteMemory(path).recall([], ["toolu_child"]).tools == {"toolu_child": HAIKU}


def _remember_and_exit(path: str, shared: bool) -> None:
    memory = SqliteMemory(Path(path), shared=shared)
    memory.remember(OPUS, [SIG_OPUS], ["toolu_exit"])
    # this process knows at once, before anything is written
    assert memory.recall([SIG_OPUS], ["toolu_exit"]).tools == {"toolu_exit": OPUS}
    # no flush: a proxy stopped right after a call still leaves what it made in the memory


@pytest.mark.parametrize("shared", [True, False], ids=["several-workers", "one-worker"])
def test_what_a_process_remembers_is_written_before_it_exits(tmp_path: Path, shared: bool
                                                             ) -> None:
    path = tmp_path / "memory.sqlite3"
    child = multiprocessing.get_context("spawn").Process(target=_remember_and_exit,
                                                         args=(str(path), shared))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    found = SqliteMemory(path).recall([SIG_OPUS], ["toolu_exit"])
    assert found.signatures == {SIG_OPUS: OPUS} and found.tools == {"toolu_exit": OPUS}


def test_memory_is_bounded_in_size_and_age(tmp_path: Path) -> None:
    memory = SqliteMemory(tmp_path / "m.sqlite3", max_entries=50, max_age_s=100)
    memory.remember(OPUS, [f"sig{i}" for i in range(80)], [])
    assert memory.flush()
    memory.prune()
    assert memory.count() == 50
    memory.prune(now=10**12)
    assert memory.count() == 0


def test_memory_failure_never_raises(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    memory = SqliteMemory(tmp_path / "dir")  # a directory where the file should be
    memory.remember(OPUS, [SIG_OPUS], [])
    memory.flush(2)
    assert memory.dropped == 1  # not written: only this process knows who made it
    assert memory.recall([SIG_OPUS], []).signatures == {SIG_OPUS: OPUS}
    assert SqliteMemory(tmp_path / "dir").recall([SIG_OPUS], []).signatures == {}


def test_system_messages_after_the_tool_results_do_not_end_a_loop() -> None:
    """Claude Code 2.1.328+ adds system-role messages (per-turn effort, notices) after them."""
    b = body(user("fix it"), turn(thinking(SIG_OPUS), tool_use("toolu_1")), results("toolu_1"),
             {"role": "system", "content": [{"type": "text", "text": "[SYSTEM NOTIFICATION]"}]},
             {"role": "system", "content": [], "output_config": {"effort": "high"}})
    assert tool_loop(b) == ["toolu_1"]
    assert fit_history(b, HAIKU_T, KNOWN).tool_loop_unsigned


def test_chat_reasoning_text_of_another_model_is_not_replayed() -> None:
    mine, theirs = Producer("fast", "openai/fast"), Producer("deep", "deepseek/deep")
    said = {"role": "assistant", "content": None, "reasoning_content": "hmm", "reasoning": "hmm",
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "Read", "arguments": "{}"}}]}
    chat = {"messages": [{"role": "user", "content": "go"}, said,
                         {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]}
    fast = Target("fast", "openai/fast", anthropic=False)
    fit = fit_history(chat, fast, {}, tools={"call_1": theirs})
    assert fit.messages is not None and fit.summary() == {"kept": 0, "dropped": 1,
                                                          "why": {"other model": 1}}
    assert fit.messages[1] == {k: v for k, v in said.items() if k not in ("reasoning_content",
                                                                           "reasoning")}
    assert fit_history(chat, fast, {}, tools={"call_1": mine}).messages is None
    assert fit_history(chat, fast, {}).messages is None  # unknown maker: kept
    assert "reasoning_content" not in fit_history(chat, fast, {}, strip_all=True).messages[1]


def test_the_memorys_own_cache_stays_bounded_when_it_only_remembers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that remembers what it made answers from its cache at once; that cache never
    outgrows its bound, whether it is filled by recalls or by what the worker remembered."""
    import callbacks.stores.memory as memory_module

    monkeypatch.setattr(memory_module, "KNOWN_CACHE", 10)
    memory = SqliteMemory(tmp_path / "m.sqlite3", shared=False)
    for i in range(25):
        memory.remember(OPUS, [f"sig{i}"], [f"toolu_{i}"])
        assert len(memory._known) <= 10 and len(memory._known_tools) <= 10
    assert memory.flush()
    # what left the cache is still known, from the file
    assert memory.recall(["sig0"], ["toolu_0"]).tools == {"toolu_0": OPUS}
    assert len(memory._known) <= 10 and len(memory._known_tools) <= 10


def test_a_batch_larger_than_one_statement_is_stored_whole(tmp_path: Path) -> None:
    from callbacks.stores.memory import ROWS_A_STATEMENT

    memory = SqliteMemory(tmp_path / "m.sqlite3")
    signatures = [f"sig{i}" for i in range(ROWS_A_STATEMENT * 2 + 7)]
    memory.remember(OPUS, signatures, ["toolu_last"])
    assert memory.flush()
    assert memory.count() == len(signatures) + 1
    fresh = SqliteMemory(memory.path)  # asks SQLite, not this process's cache
    found = fresh.recall([signatures[0], signatures[ROWS_A_STATEMENT], signatures[-1]],
                         ["toolu_last"])
    assert set(found.signatures) == {signatures[0], signatures[ROWS_A_STATEMENT], signatures[-1]}
    assert found.tools == {"toolu_last": OPUS}


def test_pruning_keeps_the_newest_entries_also_when_some_were_written_again(tmp_path: Path
                                                                            ) -> None:
    memory = SqliteMemory(tmp_path / "m.sqlite3", max_entries=3)
    memory.remember(OPUS, ["a", "b", "c", "d"], [])
    assert memory.flush()
    memory.remember(HAIKU, ["a"], [])  # made again: now the newest
    assert memory.flush()
    memory.prune()
    fresh = SqliteMemory(memory.path)
    assert fresh.recall(["a", "b", "c", "d"], []).signatures == {"a": HAIKU, "c": OPUS,
                                                                "d": OPUS}


def test_pruning_under_the_bound_forgets_nothing_when_entries_were_written_again(
        tmp_path: Path) -> None:
    memory = SqliteMemory(tmp_path / "m.sqlite3", max_entries=3)
    memory.remember(OPUS, ["a", "b", "c"], [])
    assert memory.flush()
    for _ in range(2):  # written again (a fleet's follower does): gaps in the row numbers
        memory.remember(HAIKU, ["a"], [])
        assert memory.flush()
    memory.prune()
    assert memory.count() == 3
