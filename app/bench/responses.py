"""A long Codex history (``POST /v1/responses``) for ``reasoning-panel bench``'s hook figures.

A 200-item ``input`` late in a Codex session: user messages, 50 reasoning items with encrypted
content made by three models, function calls and their outputs, ending in a tool continuation; the
memory knows every item's producer, so the hook holds the loop and fits the input (drops the other
models' reasoning items), with the SQLite memory and the event log on.
"""

from __future__ import annotations

from typing import Any


def responses_history(items: int = 200, reasoning_items: int = 50) -> dict[str, Any]:
    """A Codex request body whose ``input`` has ``items`` items, ``reasoning_items`` of them
    reasoning (each before a function call), the last ones a function call and its output."""
    history: list[dict[str, Any]] = []
    step = 0
    while len(history) < items - 3:
        if step % 4 == 0:
            history.append({"type": "message", "role": "user",
                            "content": [{"type": "input_text", "text": f"turn {step} " * 40}]})
        if sum(i["type"] == "reasoning" for i in history) < reasoning_items - 1:
            history.append({"type": "reasoning", "id": f"rs_{step:04d}", "summary": [],
                            "encrypted_content": f"gAAAAA{step:04d}" + "x" * 600})
        history += [{"type": "function_call", "id": f"fc_{step:04d}", "call_id": f"call_{step:04d}",
                     "name": "exec_command", "arguments": '{"cmd": "ls src"}'},
                    {"type": "function_call_output", "call_id": f"call_{step:04d}",
                     "output": "file " * 60}]
        step += 1
    history += [{"type": "reasoning", "id": "rs_last", "summary": [],
                 "encrypted_content": "gAAAAAlast" + "x" * 600},
                {"type": "function_call", "id": "fc_last", "call_id": "call_last",
                 "name": "exec_command", "arguments": '{"cmd": "pytest"}'},
                {"type": "function_call_output", "call_id": "call_last", "output": "ok"}]
    return {"model": "gpt-5.5", "input": history, "stream": True, "store": False,
            "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "medium"},
            "tools": [{"type": "function", "name": "exec_command", "parameters": {
                "type": "object", "properties": {"cmd": {"type": "string"}}}}]}
