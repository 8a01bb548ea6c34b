"""audit_verify finds a forged history at the right seq and says what is wrong with it.

Each forgery is done as a database owner would: triggers off, then SQL.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection

from audit import canonical
from audit.services import audit_checkpoint
from audit.verify import audit_verify
from tests.audit.tamper import as_superuser, raw, rechain, triggers_off
from tests.conftest import ROOT


def broken_at(seq: int, kind: str):
    result = audit_verify()
    assert not result.intact, result.summary()
    assert (result.problem.seq, result.problem.kind) == (seq, kind), result.summary()
    assert result.last_seq == seq - 1
    return result


def test_it_says_intact_up_to_the_head(history):
    result = audit_verify()
    assert result.intact and result.last_seq == 6 and result.events == 6
    assert result.summary() == "intact up to seq 6, no signed checkpoint yet"


def test_it_finds_an_edited_event(history):
    with as_superuser():
        raw("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE seq = 3")
    result = broken_at(3, "changed")
    assert "content does not match its hash" in result.problem.detail


def test_it_finds_an_edited_json_document(history):
    with as_superuser():
        after = dict(history[4].after, status="active")
        from audit.models import AuditEvent

        AuditEvent.objects.filter(seq=5).update(after=after)
    broken_at(5, "changed")


def test_it_finds_an_edit_covered_by_a_fresh_hash(history):
    with as_superuser():
        raw("UPDATE audit_auditevent SET target_label = 'nothing to see' WHERE seq = 2")
        # Its own hash made right again; the next event still names the old one.
        values = {name: getattr(history[1], name) for name in canonical.FIELDS}
        forged = canonical.event_hash({**values, "target_label": "nothing to see"})
        raw("UPDATE audit_auditevent SET hash = %s WHERE seq = 2", [forged])
    result = broken_at(2, "changed")
    assert "seq 2 was rewritten" in result.problem.detail


def test_it_finds_a_deleted_event(history):
    with as_superuser():
        raw("DELETE FROM audit_auditevent WHERE seq = 4")
    result = broken_at(4, "missing")
    assert result.problem.detail == "seq 4 missing: seq 5 follows seq 3"


def test_it_finds_deleted_events_at_the_start(history):
    with as_superuser():
        raw("DELETE FROM audit_auditevent WHERE seq <= 2")
    broken_at(1, "missing")


def test_it_finds_two_events_swapped(history):
    with as_superuser():
        raw("UPDATE audit_auditevent SET seq = -1 WHERE seq = 3")
        raw("UPDATE audit_auditevent SET seq = 3 WHERE seq = 4")
        raw("UPDATE audit_auditevent SET seq = 4 WHERE seq = -1")
    result = broken_at(3, "reordered")
    assert result.problem.detail == "seq 3 holds the event written as seq 4"


def test_it_finds_an_event_moved_and_rehashed(history):
    # Moved with a hash recomputed for its new seq, but still chained where it was written.
    with as_superuser():
        raw("UPDATE audit_auditevent SET seq = -1 WHERE seq = 5")
        raw("UPDATE audit_auditevent SET seq = 5 WHERE seq = 2")
        raw("UPDATE audit_auditevent SET seq = 2 WHERE seq = -1")
        from audit import canonical
        from audit.models import AuditEvent

        for seq in (2, 5):
            event = AuditEvent.objects.get(seq=seq)
            new = canonical.event_hash({name: getattr(event, name) for name in canonical.FIELDS})
            raw("UPDATE audit_auditevent SET hash = %s WHERE seq = %s", [new, seq])
    result = broken_at(2, "reordered")
    assert result.problem.detail == "seq 2 was chained after seq 4, not after seq 1"


def test_it_finds_a_whole_history_rewritten_under_a_signed_checkpoint(history, alice, acme):
    checkpoint = audit_checkpoint()
    assert checkpoint.seq == 7
    from governance import services

    services.team_create(actor=alice, organization=acme, name="After")
    with as_superuser():
        # Every hash recomputed from seq 1: consistent from end to end, except
        # for what the checkpoint signed.
        raw("UPDATE audit_auditevent SET actor_label = 'mallory' WHERE seq = 1")
        rechain(from_seq=1)
    result = audit_verify()
    assert (result.problem.seq, result.problem.kind) == (6, "changed"), result.summary()
    assert "history up to seq 6 was rewritten" in result.problem.detail


def test_it_exits_zero_and_says_where_the_checkpoint_is(history, capsys):
    checkpoint = audit_checkpoint()
    call_command("audit_verify")
    out = capsys.readouterr().out
    signed_at = checkpoint.after["signed_at"]
    assert out.startswith(f"intact up to seq 7, checkpoint signed at {signed_at} (seq 6, key ")
    assert "7 event(s) checked, 0 since the last checkpoint" in out


def test_it_exits_one_at_the_first_broken_event(history, capsys):
    with as_superuser():
        raw("UPDATE audit_auditevent SET target_id = '0' WHERE seq = 2")
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_verify")
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("BROKEN at seq 2 (changed)")


def test_it_exits_two_when_the_database_no_longer_refuses_edits(history, capsys):
    triggers_off()
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_verify")
    assert exit_.value.code == 2
    assert "WARNING: the database no longer refuses edits" in capsys.readouterr().out


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the embedded test database lives in this process's memory",
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_runs_as_a_command_with_an_exit_code(tmp_path):
    # A real process, as a cron job or a CI step would run it, on the committed trail.
    from django.contrib.auth import get_user_model

    from governance import services

    alice = get_user_model().objects.create_superuser("alice", "alice@example.com", "alice-password-1")
    services.organization_create(actor=alice, name="Acme", slug="acme")
    env = {**os.environ, "DATABASE_URL": _url(), "TOLLGATE_DATA_DIR": str(tmp_path)}
    ok = subprocess.run([sys.executable, "manage.py", "audit_verify"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("intact up to seq 1, no signed checkpoint yet")
    with as_superuser():
        raw("UPDATE audit_auditevent SET action = 'organization.delete' WHERE seq = 1")
    bad = subprocess.run([sys.executable, "manage.py", "audit_verify"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.startswith("BROKEN at seq 1 (changed)")


def _url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def test_it_prints_the_public_key_an_auditor_needs(db, capsys):
    from audit import signing

    call_command("audit_verify", "--print-public-key")
    assert capsys.readouterr().out.strip() == signing.public_key_text(signing.signing_key().public_key())
