"""Request translation, both directions, one mapping per test."""

from __future__ import annotations

from typing import Any

from dataplane.translation import (
    TOOL_ERROR_PREFIX,
    anthropic_request_to_openai,
    openai_request_to_anthropic,
)


def a2o(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return anthropic_request_to_openai(body, **kw)


def o2a(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return openai_request_to_anthropic(body, **kw)


BASE: dict[str, Any] = {"model": "claude", "max_tokens": 100}


# --------------------------------------------------------------------------- Anthropic -> OpenAI


def test_system_string_and_blocks() -> None:
    out = a2o({**BASE, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]})
    assert out["messages"][:2] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    dropped: list[str] = []
    blocks = [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "b"},
    ]
    out = a2o({**BASE, "system": blocks, "messages": []}, dropped=dropped)
    assert out["messages"] == [{"role": "system", "content": "a\n\nb"}]
    assert "system.cache_control" in dropped


def test_system_role_inside_messages_claude_code_style() -> None:
    body = {
        **BASE,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "reminder"},
            {"role": "system", "content": [{"type": "text", "text": "x"}]},
        ],
    }
    out = a2o(body)
    assert out["messages"][1:] == [
        {"role": "system", "content": "reminder"},
        {"role": "system", "content": "x"},
    ]


def test_images_base64_and_url() -> None:
    body = {
        **BASE,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "text", "text": "what?"},
                ],
            }
        ],
    }
    assert a2o(body)["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "text", "text": "what?"},
    ]


def test_tools_and_tool_choice() -> None:
    schema = {"type": "object", "properties": {"p": {"type": "string"}}, "required": ["p"]}
    dropped: list[str] = []
    body = {
        **BASE,
        "messages": [],
        "tools": [
            {"name": "read", "description": "Read a file", "input_schema": schema},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "tool_choice": {"type": "tool", "name": "read", "disable_parallel_tool_use": True},
    }
    out = a2o(body, dropped=dropped)
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "read", "parameters": schema, "description": "Read a file"},
        }
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "read"}}
    assert out["parallel_tool_calls"] is False
    assert "tools.web_search_20250305" in dropped
    for choice, expected in (
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
    ):
        assert a2o({**body, "tool_choice": choice})["tool_choice"] == expected


def test_tool_use_and_parallel_tool_results() -> None:
    body = {
        **BASE,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Running both."},
                    {"type": "tool_use", "id": "t1", "name": "a", "input": {"x": 1}},
                    {"type": "tool_use", "id": "t2", "name": "b", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "boom"},
                            {"type": "text", "text": "!"},
                        ],
                    },
                    {"type": "text", "text": "continue"},
                ],
            },
        ],
    }
    dropped: list[str] = []
    msgs = a2o(body, dropped=dropped)["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "content": "Running both.",
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
            {"id": "t2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
    }
    assert msgs[2] == {"role": "tool", "tool_call_id": "t1", "content": "one"}
    assert msgs[3] == {
        "role": "tool",
        "tool_call_id": "t2",
        "content": [
            {"type": "text", "text": TOOL_ERROR_PREFIX + "boom"},
            {"type": "text", "text": "!"},
        ],
    }
    assert msgs[4] == {"role": "user", "content": [{"type": "text", "text": "continue"}]}
    assert "messages.content.thinking" in dropped


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    body = {
        **BASE,
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
            }
        ],
    }
    assert a2o(body)["messages"][0]["content"] is None


def test_image_inside_tool_result_moves_to_user_turn() -> None:
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
    body = {
        **BASE,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "text", "text": "shot"}, img],
                    }
                ],
            }
        ],
    }
    msgs = a2o(body)["messages"]
    assert msgs[0] == {
        "role": "tool",
        "tool_call_id": "t",
        "content": [{"type": "text", "text": "shot"}],
    }
    assert msgs[1] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
    }


def test_sampling_limits_stream_metadata() -> None:
    body = {
        **BASE,
        "messages": [],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["END"],
        "stream": True,
        "metadata": {"user_id": "u-1"},
        "service_tier": "auto",
    }
    dropped: list[str] = []
    out = a2o(body, dropped=dropped)
    assert out["max_tokens"] == 100
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["stop"] == ["END"]
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["user"] == "u-1"
    assert "top_k" not in out and sorted(dropped) == ["service_tier", "top_k"]
    assert a2o(body, max_tokens_field="max_completion_tokens")["max_completion_tokens"] == 100


def test_model_override() -> None:
    assert a2o({**BASE, "messages": []}, model="gpt-x")["model"] == "gpt-x"


def test_thinking_dropped_unless_reasoning_supported() -> None:
    body = {**BASE, "messages": [], "thinking": {"type": "enabled", "budget_tokens": 2000}}
    dropped: list[str] = []
    assert "reasoning_effort" not in a2o(body, dropped=dropped)
    assert dropped == ["thinking"]
    for budget, effort in ((1024, "low"), (8000, "medium"), (32000, "high")):
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        assert a2o(body, reasoning=True)["reasoning_effort"] == effort
    body["thinking"] = {"type": "disabled"}
    assert "reasoning_effort" not in a2o(body, reasoning=True)


# --------------------------------------------------------------------------- OpenAI -> Anthropic


def test_system_and_developer_collected() -> None:
    out = o2a(
        {
            "model": "gpt",
            "messages": [
                {"role": "system", "content": "s1"},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": [{"type": "text", "text": "d1"}]},
            ],
        }
    )
    assert out["system"] == [{"type": "text", "text": "s1"}, {"type": "text", "text": "d1"}]
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    assert out["max_tokens"] == 4096
    single = o2a({"messages": [{"role": "system", "content": "s"}]})
    assert single["system"] == "s"


def test_openai_images() -> None:
    out = o2a(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklG"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://h/i.gif", "detail": "low"},
                        },
                    ],
                }
            ]
        }
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklG"}},
        {"type": "image", "source": {"type": "url", "url": "https://h/i.gif"}},
    ]


def test_openai_tool_calls_and_tool_messages() -> None:
    out = o2a(
        {
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "a", "arguments": '{"q": [1, 2]}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "b", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "r1"},
                {"role": "tool", "tool_call_id": "c2", "content": TOOL_ERROR_PREFIX + "bad"},
                {"role": "user", "content": "next"},
            ]
        }
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "c1", "name": "a", "input": {"q": [1, 2]}},
            {"type": "tool_use", "id": "c2", "name": "b", "input": {}},
        ],
    }
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "r1"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "bad", "is_error": True},
            {"type": "text", "text": "next"},
        ],
    }
    assert len(out["messages"]) == 3


def test_openai_tools_choice_parallel() -> None:
    body = {
        "messages": [],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    out = o2a(body)
    assert out["tools"] == [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    body["tool_choice"] = {"type": "function", "function": {"name": "f"}}
    del body["parallel_tool_calls"]
    assert o2a(body)["tool_choice"] == {"type": "tool", "name": "f"}
    assert o2a({**body, "tool_choice": "none"})["tool_choice"] == {"type": "none"}
    no_params = o2a({"messages": [], "tools": [{"type": "function", "function": {"name": "g"}}]})
    assert no_params["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


def test_openai_limits_sampling_user_unknown() -> None:
    dropped: list[str] = []
    out = o2a(
        {
            "model": "gpt",
            "messages": [],
            "max_completion_tokens": 77,
            "max_tokens": 5,
            "temperature": 1.7,
            "top_p": 0.5,
            "stop": "###",
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u",
            "n": 1,
            "logit_bias": {},
        },
        model="claude-x",
        dropped=dropped,
    )
    assert out["model"] == "claude-x"
    assert out["max_tokens"] == 77
    assert out["temperature"] == 1.0 and out["top_p"] == 0.5
    assert out["stop_sequences"] == ["###"]
    assert out["stream"] is True and "stream_options" not in out
    assert out["metadata"] == {"user_id": "u"}
    assert sorted(dropped) == ["logit_bias", "n"]


def test_reasoning_effort_to_thinking() -> None:
    dropped: list[str] = []
    out = o2a(
        {"messages": [], "max_tokens": 30000, "reasoning_effort": "high", "temperature": 0.3},
        dropped=dropped,
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert "temperature" not in out and dropped == ["temperature"]
    capped = o2a({"messages": [], "max_tokens": 3000, "reasoning_effort": "medium"})
    assert capped["thinking"]["budget_tokens"] == 2999
    too_small = o2a({"messages": [], "max_tokens": 500, "reasoning_effort": "low"})
    assert "thinking" not in too_small


def test_assistant_text_only_stays_string() -> None:
    out = o2a({"messages": [{"role": "assistant", "content": "hello"}]})
    assert out["messages"] == [{"role": "assistant", "content": "hello"}]
