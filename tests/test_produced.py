"""What a call produced, read from LiteLLM's own response objects (not their dumps)."""

from __future__ import annotations

from litellm.types.llms.openai import ResponsesAPIResponse
from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Choices,
    Function,
    Message,
    ModelResponse,
)

from callbacks.core.history import ENCRYPTED_PREFIX
from callbacks.core.produced import produced_blocks


def test_a_chat_response_gives_its_thinking_signatures_and_tool_call_ids() -> None:
    call = ChatCompletionMessageToolCall(id="toolu_1", type="function",
                                         function=Function(name="Read", arguments="{}"))
    message = Message(content="ok", role="assistant", tool_calls=[call], thinking_blocks=[
        {"type": "thinking", "thinking": "hm", "signature": "SIG-1"},
        {"type": "redacted_thinking", "data": "REDACTED-1"}])
    response = ModelResponse(choices=[Choices(message=message)])
    assert produced_blocks(response) == (["SIG-1", "REDACTED-1"], ["toolu_1"])


def test_a_signature_in_a_field_litellm_does_not_declare_is_found() -> None:
    message = Message(content="ok", role="assistant")
    message.reasoning_details = [{"type": "reasoning.text", "signature": "SIG-EXTRA"}]
    response = ModelResponse(choices=[Choices(message=message)])
    response.provider_extra = {"type": "thinking", "signature": "SIG-TOP"}
    signatures, _ = produced_blocks(response)
    assert set(signatures) == {"SIG-EXTRA", "SIG-TOP"}


def test_a_responses_api_object_gives_its_reasoning_and_ids() -> None:
    response = ResponsesAPIResponse.model_validate({
        "id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "model": "gpt-5.5", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "ENC"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "f",
             "arguments": "{}", "status": "completed"}]})
    assert produced_blocks(response) == ([ENCRYPTED_PREFIX + "ENC"], ["resp_1", "rs_1", "call_9"])


def test_a_messages_answer_gives_its_blocks_and_an_unknown_block_is_still_walked() -> None:
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "content": [
        {"type": "thinking", "thinking": "hm", "signature": "SIG-1"},
        {"type": "redacted_thinking", "data": "REDACTED-1"},
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}],
        "usage": {"input_tokens": 3, "output_tokens": 2}}
    assert produced_blocks(answer) == (["SIG-1", "REDACTED-1"], ["toolu_1"])
    answer["content"].append({"type": "compaction", "signature": "SIG-NEW-KIND"})
    assert produced_blocks(answer) == (["SIG-1", "REDACTED-1", "SIG-NEW-KIND"], ["toolu_1"])
