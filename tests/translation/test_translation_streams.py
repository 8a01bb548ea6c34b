"""Response and stream translation, including guards for known peer bugs."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from dataplane.translation import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    SSEParser,
    Usage,
    anthropic_response_to_openai,
    openai_response_to_anthropic,
)
from tests.translation.helpers import (
    Output,
    parse_anthropic_sse,
    parse_openai_sse,
    render_anthropic_response,
    render_anthropic_stream,
    render_openai_response,
    run_stream,
    split_bytes,
)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
    }
    body["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    body.update(extra)
    return b"data: " + orjson.dumps(body) + b"\n\n"


USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 7,
    "total_tokens": 107,
    "prompt_tokens_details": {"cached_tokens": 60},
}
DONE = b"data: [DONE]\n\n"


def o2a_stream(data: bytes, one_byte: bool = False) -> dict[str, Any]:
    return parse_anthropic_sse(
        run_stream(OpenAIToAnthropicStream(), split_bytes(data, random.Random(0), one_byte))
    )


# --------------------------------------------------------------------------- SSE parser


def test_sse_parser_crlf_comments_multiline_and_split_utf8() -> None:
    data = ': hello\r\nevent: x\r\ndata: {"a":\r\ndata: "é😀"}\r\n\r\ndata: [DONE]\n\n'.encode()
    for size in (1, 2, 3, 7):
        parser = SSEParser()
        events = []
        for i in range(0, len(data), size):
            events += parser.feed(data[i : i + size])
        events += parser.close()
        assert events == [(b"x", '{"a":\n"é😀"}'.encode()), (b"", b"[DONE]")]


def test_sse_parser_flushes_unterminated_event_on_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n") == []
    assert parser.close() == [(b"", b"1")]


# --------------------------------------------------------------------------- OpenAI -> Anthropic


def test_openai_response_to_anthropic() -> None:
    resp = {
        "id": "chatcmpl-9",
        "model": "gpt",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sure.",
                    "reasoning_content": "think",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "finish_reason": "stop",  # some servers say stop although a tool was called
            }
        ],
        "usage": USAGE,
    }
    out = openai_response_to_anthropic(resp)
    assert out["id"] == "msg_chatcmpl-9"
    assert out["content"] == [
        {"type": "thinking", "thinking": "think", "signature": ""},
        {"type": "text", "text": "Sure."},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {
        "input_tokens": 40,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
    }


@pytest.mark.parametrize(
    ("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use")]
)
def test_finish_reason_mapping(finish: str, stop: str) -> None:
    resp = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert openai_response_to_anthropic(resp)["stop_reason"] == stop
    msg = o2a_stream(chunk({"content": "x"}) + chunk({}, finish) + DONE)
    assert msg["stop_reason"] == stop


def test_stream_text_usage_and_single_message_start() -> None:
    data = (
        chunk({"role": "assistant", "content": ""})
        + chunk({"content": "Hé"})
        + chunk({"content": "llo"})
    )
    data += chunk({}, "stop") + chunk(None, usage=USAGE) + DONE
    t = OpenAIToAnthropicStream()
    out = run_stream(t, [data])
    assert out.count(b"event: message_start") == 1
    msg = parse_anthropic_sse(out)
    assert msg["content"] == [{"type": "text", "text": "Héllo"}]
    # message_start could not know usage; message_delta carries the final counts.
    assert msg["usage"]["input_tokens"] == 40
    assert msg["usage"]["cache_read_input_tokens"] == 60
    assert msg["usage"]["output_tokens"] == 7
    assert t.usage == Usage(40, 7, 60, 0)
    assert t.stop_reason == "end_turn"


def test_message_start_usage_when_known_up_front() -> None:
    data = chunk({"content": "x"}, usage=USAGE) + chunk({}, "stop") + DONE
    out = run_stream(OpenAIToAnthropicStream(), [data])
    first = orjson.loads(out.split(b"\n\n")[0].split(b"data: ")[1])
    assert first["message"]["usage"]["input_tokens"] == 40


def test_first_text_delta_after_thinking_is_kept() -> None:
    # The reasoning's last fragment and the first text arrive in the same delta.
    data = chunk({"reasoning_content": "Let me"}) + chunk(
        {"reasoning_content": " see", "content": "A"}
    )
    data += chunk({"content": "nswer"}) + chunk({}, "stop") + DONE
    msg = o2a_stream(data)
    assert msg["content"] == [
        {"type": "thinking", "thinking": "Let me see", "signature": ""},
        {"type": "text", "text": "Answer"},
    ]


def test_reasoning_field_name_variant() -> None:
    msg = o2a_stream(chunk({"reasoning": "r"}) + chunk({"content": "t"}) + chunk({}, "stop") + DONE)
    assert [b["type"] for b in msg["content"]] == ["thinking", "text"]


def test_done_never_leaks_and_duplicate_done_ignored() -> None:
    out = run_stream(
        OpenAIToAnthropicStream(), [chunk({"content": "x"}), chunk({}, "stop"), DONE, DONE]
    )
    assert b"[DONE]" not in out
    parse_anthropic_sse(out)


def test_stop_reason_tool_use_even_when_upstream_says_stop() -> None:
    data = chunk(
        {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}
    )
    data += chunk({}, "stop") + DONE
    t = OpenAIToAnthropicStream()
    msg = parse_anthropic_sse(run_stream(t, [data]))
    assert msg["stop_reason"] == "tool_use" and t.stop_reason == "tool_use"


def test_tool_arguments_keep_last_brace_in_finish_chunk() -> None:
    # The closing brace rides on the chunk that also carries finish_reason.
    data = chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "c",
                    "type": "function",
                    "function": {"name": "f", "arguments": ""},
                }
            ]
        }
    )
    data += chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": "a.py"'}}]})
    data += chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}, "tool_calls")
    data += chunk(None, usage=USAGE) + DONE
    msg = o2a_stream(data, one_byte=True)
    assert msg["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": {"path": "a.py"}}
    ]


def test_tool_name_arriving_after_id_and_args() -> None:
    data = chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": '{"a"'}}]})
    data += chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]})
    data += chunk({}, "tool_calls") + DONE
    msg = o2a_stream(data)
    assert msg["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {"a": 1}}]


def test_parallel_tools_interleaved_with_text_get_sequential_indices() -> None:
    data = chunk({"content": "I'll run two."})
    data += chunk(
        {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"n":'}}]}
    )
    data += chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})
    data += chunk(
        {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"n":2}'}}]}
    )
    data += chunk({"content": " Done."})
    data += chunk({}, "tool_calls") + DONE
    msg = o2a_stream(data)
    assert msg["content"] == [
        {"type": "text", "text": "I'll run two."},
        {"type": "tool_use", "id": "a", "name": "f", "input": {"n": 1}},
        {"type": "tool_use", "id": "b", "name": "g", "input": {"n": 2}},
        {"type": "text", "text": " Done."},
    ]
    assert msg["stop_reason"] == "tool_use"


def test_whole_tool_call_in_one_chunk_without_index() -> None:
    call = {"id": "z", "type": "function", "function": {"name": "f", "arguments": '{"k": "v"}'}}
    msg = o2a_stream(chunk({"tool_calls": [call]}, "tool_calls") + DONE)
    assert msg["content"] == [{"type": "tool_use", "id": "z", "name": "f", "input": {"k": "v"}}]


def test_last_block_stopped_when_upstream_ends_without_done() -> None:
    t = OpenAIToAnthropicStream()
    out = run_stream(t, [chunk({"content": "x"}), chunk({}, "length")])
    msg = parse_anthropic_sse(out)  # asserts content_block_stop, message_delta, message_stop
    assert msg["stop_reason"] == "max_tokens"


def test_truncated_upstream_becomes_error_event() -> None:
    t = OpenAIToAnthropicStream()
    out = run_stream(t, [chunk({"content": "x"})])
    assert b"event: error" in out and t.errored


def test_upstream_error_chunk_becomes_error_event() -> None:
    t = OpenAIToAnthropicStream()
    out = run_stream(
        t, [b'data: {"error": {"message": "overloaded"}}\n\n', chunk({"content": "late"})]
    )
    assert out.startswith(b"event: error\n") and b"overloaded" in out and b"late" not in out


def test_usage_chunk_with_null_choices() -> None:
    data = chunk({"content": "x"}) + chunk({}, "stop")
    data += b'data: {"id":"c","choices":null,"usage":' + orjson.dumps(USAGE) + b"}\n\n" + DONE
    assert o2a_stream(data)["usage"]["output_tokens"] == 7


def test_feed_after_finish_returns_nothing() -> None:
    t = OpenAIToAnthropicStream()
    t.feed(chunk({}, "stop") + DONE)
    assert t.feed(chunk({"content": "more"})) == b""
    assert t.close() == b""


# --------------------------------------------------------------------------- Anthropic -> OpenAI


def test_anthropic_response_to_openai() -> None:
    o = Output(
        thinking="t",
        texts=["a", "b"],
        tools=[("tu", "f", {"x": [1]})],
        stop="tool_use",
        usage=Usage(10, 5, 20, 3),
    )
    out = anthropic_response_to_openai(render_anthropic_response(o), created=5)
    assert out["created"] == 5 and out["object"] == "chat.completion"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "ab",
        "reasoning_content": "t",
        "tool_calls": [
            {"id": "tu", "type": "function", "function": {"name": "f", "arguments": '{"x":[1]}'}}
        ],
    }
    assert out["usage"] == {
        "prompt_tokens": 33,
        "completion_tokens": 5,
        "total_tokens": 38,
        "prompt_tokens_details": {"cached_tokens": 20},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
    ],
)
def test_stop_reason_mapping(stop: str, finish: str) -> None:
    resp = {"content": [{"type": "text", "text": "x"}], "stop_reason": stop}
    assert anthropic_response_to_openai(resp)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("include_usage", [True, False])
def test_anthropic_stream_to_openai_chunks(include_usage: bool) -> None:
    o = Output(
        texts=["Hi ", "there"],
        tools=[("t1", "f", {"a": "ü"}), ("t2", "g", {})],
        stop="tool_use",
        usage=Usage(3, 9, 4, 2),
    )
    data = render_anthropic_stream(o, random.Random(1))
    t = AnthropicToOpenAIStream(include_usage=include_usage, created=1)
    out = run_stream(t, split_bytes(data, random.Random(2), one_byte=True))
    got = parse_openai_sse(out, include_usage)
    assert got["finish_reason"] == "tool_calls"
    assert got["message"]["content"] == "Hi there"
    assert got["message"]["tool_calls"] == [
        {"id": "t1", "name": "f", "input": {"a": "ü"}},
        {"id": "t2", "name": "g", "input": {}},
    ]
    if include_usage:
        assert got["usage"]["prompt_tokens"] == 9 and got["usage"]["completion_tokens"] == 9
        assert got["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert t.usage == Usage(3, 9, 4, 2) and t.stop_reason == "tool_use"


def test_anthropic_stream_duplicate_message_start_ignored() -> None:
    o = Output(texts=["x"], usage=Usage(1, 1))
    data = render_anthropic_stream(o, random.Random(0))
    first_event = data[: data.index(b"\n\n") + 2]
    out = run_stream(AnthropicToOpenAIStream(), [first_event, data])
    assert out.count(b'"role":"assistant"') == 1
    assert parse_openai_sse(out, False)["message"]["content"] == "x"


def test_anthropic_stream_error_event() -> None:
    err = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    t = AnthropicToOpenAIStream()
    out = run_stream(t, [err])
    body = orjson.loads(out[6:])
    assert body["error"]["type"] == "overloaded_error" and t.errored
    assert b"[DONE]" not in out


def test_anthropic_stream_truncated_after_message_delta_still_finishes() -> None:
    o = Output(texts=["x"], usage=Usage(1, 1))
    data = render_anthropic_stream(o, random.Random(0))
    data = data[: data.index(b"event: message_stop")]
    out = run_stream(AnthropicToOpenAIStream(include_usage=True), [data])
    assert parse_openai_sse(out, True)["finish_reason"] == "stop"


def test_round_trip_of_responses() -> None:
    o = Output(texts=["hello"], tools=[("c", "f", {"a": 1})], stop="tool_use", usage=Usage(5, 6, 7))
    back = openai_response_to_anthropic(render_openai_response(o))
    assert back["content"][1:] == [{"type": "tool_use", "id": "c", "name": "f", "input": {"a": 1}}]
    assert Usage.from_anthropic(back["usage"]) == o.usage
    assert back["stop_reason"] == "tool_use"
