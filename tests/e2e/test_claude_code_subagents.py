"""What marks a Claude Code subagent, seen with the real CLI (2.1.330) through the
gateway: its Agent tool starts a subagent whose requests carry the header
``x-claude-code-agent-id`` (and ``cc_is_subagent=true`` in the billing line of
the system prompt) under the same X-Claude-Code-Session-Id as the main loop."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.test_claude_code import result_of, run_claude

SUBAGENT = (
    'Please [[tool: Agent {"description": "Greet", "prompt": "Say hello from the subagent", '
    '"subagent_type": "general-purpose"}]] now.'
)


def test_it_attributes_a_subagents_requests_within_the_session(gateway, world, ledger, anthropic_upstream, tmp_path):
    proc = run_claude(gateway, world.secret, SUBAGENT, tmp_path, "--allowedTools", "Agent")
    result = result_of(proc)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert result["is_error"] is False
    calls = anthropic_upstream.messages_received()
    sub_calls = [c for c in calls if "x-claude-code-agent-id" in {k.lower() for k in c.headers}]
    assert sub_calls, "no request of the run carried x-claude-code-agent-id"
    agent = next(v for k, v in sub_calls[0].headers.items() if k.lower() == "x-claude-code-agent-id")
    system = sub_calls[0].body["system"]
    assert "cc_is_subagent=true" in system[0]["text"]
    rows = ledger(len(calls), key_prefix=world.key.prefix, endpoint="messages")
    assert len({r.session_id for r in rows}) == 1
    subagent = [r for r in rows if r.agent_id]
    main = [r for r in rows if not r.agent_id]
    assert {r.agent_id for r in subagent} == {agent} and len(subagent) == len(sub_calls)
    assert main and all(r.cost_usd > 0 for r in rows)

    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(world.alice)
    split = client.get(f"/api/v1/reports/sessions/{rows[0].session_id}/agents/").json()
    assert [a["role"] for a in split["agents"]] == ["main", "subagent"]
    assert Decimal(split["subagent_cost_usd"]) == sum((r.cost_usd for r in subagent), Decimal(0))
    assert Decimal(split["main_cost_usd"]) == sum((r.cost_usd for r in main), Decimal(0))
