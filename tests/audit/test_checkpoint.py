"""Signed checkpoints of the chain's head, on a schedule, checked by the verifier."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import transaction

from audit import canonical, signing
from audit.chain import chain_append
from audit.models import AuditEvent
from audit.services import audit_checkpoint
from audit.tasks import checkpoint as checkpoint_task
from audit.verify import audit_verify
from controlplane.celery import app


def test_it_signs_the_head_with_the_configured_key(history, settings):
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = base64.b64encode(key.private_bytes_raw()).decode()
    event = audit_checkpoint()
    doc = event.after
    assert (event.seq, event.action, doc["seq"], doc["hash"]) == (7, "audit.checkpoint", 6, history[-1].hash)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["public_key"]))
    public.verify(
        base64.b64decode(doc["signature"]),
        canonical.checkpoint_message(seq=6, head_hash=history[-1].hash, signed_at=doc["signed_at"]),
    )
    assert doc["public_key"] == signing.public_key_text(key.public_key())
    result = audit_verify()
    assert result.intact and result.checkpoint.seq == 6 and result.checkpoints == 1
    assert result.unsigned_events == 0


def test_it_signs_nothing_twice(history):
    assert audit_checkpoint() is not None
    assert audit_checkpoint() is None
    assert AuditEvent.objects.filter(action="audit.checkpoint").count() == 1


def test_it_keeps_a_rotated_keys_checkpoints_trusted(history, settings):
    old = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = base64.b64encode(old.private_bytes_raw()).decode()
    audit_checkpoint()
    new = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = base64.b64encode(new.private_bytes_raw()).decode()
    result = audit_verify()
    assert (result.problem.seq, result.problem.kind) == (7, "checkpoint")
    settings.AUDIT_TRUSTED_KEYS = [signing.public_key_text(old.public_key())]
    assert audit_verify().intact


def test_it_refuses_a_checkpoint_signed_by_a_stranger(history):
    stranger = Ed25519PrivateKey.generate()
    signed_at = canonical.time_text(history[-1].created_at)
    message = canonical.checkpoint_message(seq=6, head_hash=history[-1].hash, signed_at=signed_at)
    with transaction.atomic():
        chain_append(
            actor_id=None, actor_label="system", action="audit.checkpoint", target_type="audit.chain", target_id="6",
            after={
                "seq": 6, "hash": history[-1].hash, "signed_at": signed_at,
                "public_key": signing.public_key_text(stranger.public_key()),
                "signature": base64.b64encode(stranger.sign(message)).decode(),
            },
        )
    result = audit_verify()
    assert (result.problem.seq, result.problem.kind) == (7, "checkpoint"), result.summary()
    assert "not trusted" in result.problem.detail


def test_it_refuses_a_checkpoint_whose_signature_does_not_match(history, settings):
    event_doc = {"seq": 6, "hash": history[-1].hash, "signed_at": canonical.time_text(history[-1].created_at)}
    key = signing.signing_key()
    other = canonical.checkpoint_message(seq=5, head_hash=history[-1].hash, signed_at=event_doc["signed_at"])
    with transaction.atomic():
        chain_append(
            actor_id=None, actor_label="system", action="audit.checkpoint", target_type="audit.chain", target_id="6",
            after={**event_doc, "public_key": signing.public_key_text(key.public_key()),
                   "signature": base64.b64encode(key.sign(other)).decode()},
        )
    result = audit_verify()
    assert (result.problem.seq, result.problem.kind) == (7, "checkpoint")
    assert "signature is not valid" in result.problem.detail


def test_it_counts_events_after_the_last_checkpoint(history, alice, acme):
    audit_checkpoint()
    from governance import services

    services.team_create(actor=alice, organization=acme, name="Later")
    services.team_create(actor=alice, organization=acme, name="Later still")
    result = audit_verify()
    assert result.intact and result.unsigned_events == 2 and result.last_seq == 9


def test_it_checkpoints_on_the_beat_schedule(history, settings):
    entry = app.conf.beat_schedule["audit-checkpoint"]
    assert entry["task"] == "audit.tasks.checkpoint" == checkpoint_task.name
    assert entry["schedule"] == settings.AUDIT_CHECKPOINT_SECONDS
    assert checkpoint_task.apply().get() == 7
    assert audit_verify().checkpoint.event_seq == 7


def test_it_makes_and_keeps_a_key_in_the_embedded_state_dir(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "TOLLGATE_AUDIT_SIGNING_KEY")}
    env["TOLLGATE_DATA_DIR"] = str(tmp_path)
    code = "from django.conf import settings; import django; django.setup(); print(settings.AUDIT_SIGNING_KEY)"
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "controlplane.settings"},
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    first = run()
    assert first == (tmp_path / "audit_signing_key").read_text().strip() == run()
    assert oct((tmp_path / "audit_signing_key").stat().st_mode & 0o777) == "0o600"
    assert signing.private_key_parse(first)
