"""A Claude Code subagent's requests carry x-claude-code-agent-id; the request log
keeps it, and a session's spend splits into its main loop and its subagents."""

from __future__ import annotations

from decimal import Decimal

import httpx
import orjson
import pytest
from rest_framework.test import APIClient

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def send(gateway, secret: str, session: str, agent: str | None = None, stream: bool = False) -> None:
    headers = {"x-api-key": secret, "content-type": "application/json", "x-claude-code-session-id": session}
    if agent:
        headers["x-claude-code-agent-id"] = agent
    response = httpx.post(f"{gateway.url}/anthropic/v1/messages", content=orjson.dumps(BODY | {"stream": stream}), headers=headers, timeout=20)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("stream", [False, True])
def test_it_logs_the_subagent_and_passes_its_header_on(gateway, world, ledger, anthropic_upstream, stream):
    send(gateway, world.secret, "s-1", agent="a1b2c3d4e5f60718", stream=stream)
    (row,) = ledger(1, key_prefix=world.key.prefix)
    assert (row.session_id, row.agent_id) == ("s-1", "a1b2c3d4e5f60718")
    assert anthropic_upstream.messages_received()[-1].headers["x-claude-code-agent-id"] == "a1b2c3d4e5f60718"


def test_it_splits_a_session_into_its_main_loop_and_subagents(gateway, world, ledger, anthropic_upstream):
    for agent in (None, "agent-one", None, "agent-two", "agent-one"):
        send(gateway, world.secret, "s-2", agent=agent)
    send(gateway, world.secret, "another-session")
    rows = ledger(6, key_prefix=world.key.prefix)
    cost = {a: sum((r.cost_usd for r in rows if r.session_id == "s-2" and r.agent_id == a), Decimal(0)) for a in ("", "agent-one", "agent-two")}
    client = APIClient()
    client.force_authenticate(world.alice)
    split = client.get("/api/v1/reports/sessions/s-2/agents/").json()
    assert [(a["role"], a["agent_id"], a["requests"]) for a in split["agents"]] == [
        ("main", "", 2), ("subagent", "agent-one", 2), ("subagent", "agent-two", 1),
    ]
    assert Decimal(split["main_cost_usd"]) == cost[""] > 0
    assert Decimal(split["subagent_cost_usd"]) == cost["agent-one"] + cost["agent-two"] > 0
    sessions = client.get("/api/v1/reports/sessions/").json()["rows"]
    (session,) = [s for s in sessions if s["session_id"] == "s-2"]
    assert (session["subagents"], session["subagent_requests"]) == (2, 3)
    assert Decimal(session["main_cost_usd"]) + Decimal(session["subagent_cost_usd"]) == Decimal(session["cost_usd"])
    assert client.get("/api/v1/reports/sessions/nobody/agents/").status_code == 404
