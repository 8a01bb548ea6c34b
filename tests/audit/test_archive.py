"""Archive to S3-compatible storage (moto's S3 server as the store) and the offline verify."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import botocore.session
import pytest

from audit import signing
from audit.archive import S3Store, audit_archive, audit_archive_all, audit_archive_expire
from audit.models import AuditArchive, AuditEvent
from audit.services import audit_checkpoint
from audit.tasks import retention
from audit.verify import audit_verify
from tests.audit.tamper import as_superuser, raw, rechain
from tests.conftest import ROOT, free_port


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch, settings, request) -> S3Store:
    for name, value in {"AWS_ACCESS_KEY_ID": "tollgate", "AWS_SECRET_ACCESS_KEY": "tollgate-secret", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    name = f"audit-{request.node.name.replace('_', '-')[:40].lower()}"
    client = botocore.session.get_session().create_client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    settings.AUDIT_ARCHIVE_URL = f"s3://{name}/tollgate/audit"
    settings.AUDIT_ARCHIVE_ENDPOINT_URL = s3_server
    return S3Store.from_url(settings.AUDIT_ARCHIVE_URL, endpoint_url=s3_server)


def backdate(days: int, seqs: list[int]) -> None:
    """As if these events were written ``days`` ago (hashes made to match)."""
    from django.utils import timezone

    with as_superuser():
        for seq in seqs:
            raw("UPDATE audit_auditevent SET created_at = %s WHERE seq = %s", [timezone.now() - timedelta(days=days), seq])
        rechain()


def download(store: S3Store, into: Path) -> Path:
    for name in store.names():
        (into / name).write_bytes(store.get(name))
    return into


def offline(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # An auditor's machine: no database, no settings, only the files.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "audit.offline", str(directory), *args], cwd=directory, env=env, capture_output=True, text=True
    )


def test_it_moves_old_events_to_the_bucket_and_both_halves_verify(history, bucket, tmp_path):
    backdate(100, [1, 2, 3, 4, 5, 6])
    audit_checkpoint()  # seq 7, signing seq 6, which is about to leave
    archive = audit_archive(older_than=timedelta(days=90))
    assert (archive.first_seq, archive.last_seq, archive.events) == (1, 6, 6)
    assert archive.location == f"{bucket.url('000000000001-000000000006.manifest.json')}"
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [7, 8]
    assert AuditEvent.objects.get(seq=8).action == "audit.archive"
    assert audit_verify().intact
    assert bucket.names() == ["000000000001-000000000006.jsonl", "000000000001-000000000006.manifest.json"]
    manifest = json.loads(bucket.get("000000000001-000000000006.manifest.json"))
    assert (manifest["first_seq"], manifest["last_seq"], manifest["last_hash"]) == (1, 6, archive.last_hash)
    lines = bucket.get("000000000001-000000000006.jsonl").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]

    folder = download(bucket, tmp_path)
    key = signing.public_key_text(signing.signing_key().public_key())
    ok = offline(folder, "--public-key", key)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("archive intact: seq 1-6 in 1 part(s), 6 event(s), 0 checkpoint(s)")
    assert archive.last_hash in ok.stdout


def test_it_chains_parts_and_finds_a_forged_or_missing_one(history, bucket, tmp_path, alice, acme):
    from governance import services

    backdate(100, [1, 2, 3, 4, 5, 6])
    assert audit_archive(older_than=timedelta(days=90), part_events=4).last_seq == 4
    # Its own record (seq 7) is now the head, so seq 6 may go too.
    assert audit_archive(older_than=timedelta(days=90), part_events=4).last_seq == 6
    audit_checkpoint()
    services.team_create(actor=alice, organization=acme, name="Later")
    assert audit_verify().intact
    folder = download(bucket, tmp_path)
    assert offline(folder).returncode == 0

    # An event edited in the file: its manifest's digest no longer matches.
    part = folder / "000000000001-000000000004.jsonl"
    original = part.read_bytes()
    part.write_bytes(original.replace(b'"actor_label":"alice"', b'"actor_label":"mallory"', 1))
    bad = offline(folder)
    assert bad.returncode == 1 and "its digest is not the one its manifest signed" in bad.stderr
    part.write_bytes(original)

    # A part left out: the gap is named.
    (folder / "000000000001-000000000004.manifest.json").rename(tmp_path / "aside.json")
    (folder / "000000000005-000000000006.manifest.json").rename(tmp_path / "aside5.json")
    assert offline(folder).returncode == 1  # nothing to check
    (tmp_path / "aside.json").rename(folder / "000000000001-000000000004.manifest.json")
    ok = offline(folder)
    assert ok.returncode == 0 and "seq 1-4 in 1 part(s)" in ok.stdout
    (tmp_path / "aside5.json").rename(folder / "000000000005-000000000006.manifest.json")

    # Signed by someone else: refused when the auditor names the real key.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = signing.public_key_text(Ed25519PrivateKey.generate().public_key())
    refused = offline(folder, "--public-key", stranger)
    assert refused.returncode == 1 and "not by the key given" in refused.stderr


def test_it_finds_an_event_forged_before_it_was_archived(history, bucket, tmp_path):
    backdate(100, [1, 2, 3, 4, 5, 6])
    with as_superuser():
        raw("UPDATE audit_auditevent SET target_label = 'forged' WHERE seq = 3")
    audit_archive(older_than=timedelta(days=90))
    # The archive signs what it was given; the broken link still shows, offline.
    bad = offline(download(bucket, tmp_path))
    assert bad.returncode == 1 and bad.stderr.startswith("BROKEN at seq 3 (changed)")


def test_it_expires_parts_past_retention_on_the_record(history, bucket):
    backdate(400, [1, 2, 3])
    audit_archive(older_than=timedelta(days=90))
    assert len(bucket.names()) == 2
    assert audit_archive_expire(older_than=timedelta(days=365)) == ["000000000001-000000000003.manifest.json"]
    assert bucket.names() == []
    event = AuditEvent.objects.get(action="audit.archive_expire")
    assert event.after["parts"] == ["000000000001-000000000003.manifest.json"]
    assert audit_verify().intact


def test_it_archives_from_the_daily_task_when_a_bucket_is_named(history, bucket):
    backdate(100, [1, 2, 3, 4])
    assert retention.apply().get() == 4
    assert AuditArchive.objects.get().location.startswith("s3://")
    assert audit_archive_all(older_than=timedelta(days=90)) == 0


def test_it_names_a_missing_middle_part(history, bucket, tmp_path):
    backdate(100, [1, 2, 3, 4, 5, 6])
    for _ in range(3):
        audit_archive(older_than=timedelta(days=90), part_events=2)
    assert list(AuditArchive.objects.order_by("first_seq").values_list("first_seq", "last_seq")) == [(1, 2), (3, 4), (5, 6)]
    folder = download(bucket, tmp_path)
    ok = offline(folder)
    assert ok.returncode == 0 and "seq 1-6 in 3 part(s)" in ok.stdout
    (folder / "000000000003-000000000004.manifest.json").unlink()
    bad = offline(folder)
    assert bad.returncode == 1 and bad.stderr.strip() == "seq 3-4 missing: no part holds them"
