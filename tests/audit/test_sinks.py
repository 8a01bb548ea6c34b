"""SIEM exports: every kind in its own wire format, in order, at least once, nothing missing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.test import Client

from audit.models import AuditEvent, AuditSink
from audit.services import audit_checkpoint
from audit.sinks import sink_catch_up, sink_create, sink_deliver, sink_health, sinks_deliver_all
from audit.tasks import deliver_sinks
from controlplane.celery import app
from governance import services
from tests.fakes.siem import FakeSiem, FakeSyslog


@pytest.fixture(scope="module")
def _siem() -> Iterator[FakeSiem]:
    fake = FakeSiem().start()
    yield fake
    fake.stop()


@pytest.fixture
def siem(_siem: FakeSiem) -> FakeSiem:
    _siem.reset()
    return _siem


def trail() -> list[tuple[int, str]]:
    return list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))


def add(kind: str, url: str, secret: str = "", **options) -> AuditSink:
    return sink_create(actor="test", name=f"{kind}-1", kind=kind, url=url, secret=secret, options=options)


def test_it_exports_to_every_kind_in_its_format(history, siem):
    syslog = FakeSyslog().start()
    try:
        add("elastic", siem.url, index="audit-acme")
        add("splunk", siem.url, siem.hec_token, sourcetype="tollgate:audit")
        add("datadog", siem.url, siem.dd_key, service="tollgate-audit")
        add("webhook", f"{siem.url}/hook", siem.hook_secret)
        add("syslog", syslog.url)
        expected = trail()  # the five sink_create events are on the trail too
        assert sinks_deliver_all() == 5 * len(expected)
        for kind in ("elastic", "splunk", "datadog", "webhook"):
            got = [(d["seq"], d["hash"]) for d in siem.received[kind]]
            assert got == expected, kind
        assert [d["_id"] for d in siem.received["elastic"]] == [str(s) for s, _ in expected]
        assert {d["_index"] for d in siem.received["elastic"]} == {"audit-acme"}
        assert siem.received["splunk"][0]["_sourcetype"] == "tollgate:audit"
        assert siem.headers["/services/collector/event"]["x-splunk-request-channel"]
        first = AuditEvent.objects.get(seq=1)
        assert siem.received["splunk"][0]["_time"] == pytest.approx(first.created_at.timestamp())
        assert {d["_service"] for d in siem.received["datadog"]} == {"tollgate-audit"}
        deadline = time.monotonic() + 5
        while len(syslog.messages) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(m["doc"]["seq"], m["doc"]["hash"]) for m in syslog.messages] == expected
        message = syslog.messages[0]
        assert (message["pri"], message["app"], message["msgid"]) == (13 * 8 + 6, "tollgate", "organization.create")
        assert message["sd"] == f'[tollgate@32473 seq="1" hash="{first.hash}"]'
        # Every sink level with the head; the documents carry the chain's own fields.
        assert all(h.lag == 0 and h.healthy for h in sink_health())
        assert siem.received["webhook"][0]["prev_hash"] == "0" * 64
    finally:
        syslog.stop()


def test_it_catches_up_in_order_after_a_sink_was_down(history, siem, alice, acme):
    sink = add("webhook", f"{siem.url}/hook", siem.hook_secret)
    assert sink_catch_up(sink=sink) == 7
    siem.down = True
    for n in range(30):
        services.team_create(actor=alice, organization=acme, name=f"while-down-{n}")
    assert sink_deliver(sink=sink) == 0
    sink.refresh_from_db()
    assert (sink.cursor_seq, sink.failures) == (7, 1) and "503" in sink.last_error
    assert sink.next_attempt_at is not None
    # Backing off: not due yet, so not even tried.
    tries = siem.requests["/hook"]
    assert sink_deliver(sink=sink) == 0 and siem.requests["/hook"] == tries
    assert sink_deliver(sink=sink, force=True) == 0
    sink.refresh_from_db()
    assert sink.failures == 2
    siem.down = False
    audit_checkpoint()  # checkpoints travel in the same stream
    delivered = sink_catch_up(sink=sink, batch=8, force=True)
    assert delivered == len(trail()) - 7
    got = [(d["seq"], d["hash"]) for d in siem.received["webhook"]]
    # Exactly once here (no batch was half-sent), in order, none missing: count and compare hashes.
    assert got == trail()
    assert siem.received["webhook"][-1]["action"] == "audit.checkpoint"
    sink.refresh_from_db()
    assert (sink.failures, sink.last_error, sink.cursor_seq) == (0, "", trail()[-1][0])


def test_it_resends_from_the_first_document_elastic_refused(history, siem):
    sink = add("elastic", siem.url)
    siem.refuse_seq = 4
    assert sink_deliver(sink=sink) == 3
    sink.refresh_from_db()
    assert sink.cursor_seq == 3 and "refused seq 4: 429 queue full" in sink.last_error
    assert sink_deliver(sink=sink, force=True) == len(trail()) - 3
    assert siem.seqs("elastic") == [s for s, _ in trail()]


def test_it_waits_for_splunk_to_acknowledge_indexing(history, siem):
    siem.ack_after = 2
    sink = add("splunk", siem.url, siem.hec_token, ack=True)
    assert sink_deliver(sink=sink) == 7
    assert siem.requests["/services/collector/ack"] == 3
    # A token Splunk does not know: refused, cursor unmoved.
    wrong = sink_create(actor="test", name="splunk-2", kind="splunk", url=siem.url, secret="nope")
    assert sink_deliver(sink=wrong) == 0
    wrong.refresh_from_db()
    assert wrong.cursor_seq == 0 and "403" in wrong.last_error


def test_it_keeps_tokens_off_the_trail(history, siem):
    add("datadog", siem.url, siem.dd_key)
    event = AuditEvent.objects.get(action="audit_sink.create")
    assert event.after["has_secret"] is True
    assert siem.dd_key not in str(event.after)
    assert siem.dd_key not in AuditSink.objects.get().secret_sealed


def test_it_shows_each_sinks_health_in_metrics(history, siem):
    healthy = add("webhook", f"{siem.url}/hook", siem.hook_secret)
    sink_deliver(sink=healthy)
    broken = sink_create(actor="test", name="down", kind="webhook", url="http://127.0.0.1:9/hook", secret="x")
    sink_deliver(sink=broken)
    body = Client().get("/metrics").content.decode()
    head = trail()[-1][0]
    assert f"tollgate_audit_head_seq {head}" in body
    assert f'tollgate_audit_sink_lag_events{{sink="webhook-1",kind="webhook"}} {head - 7}' in body
    assert 'tollgate_audit_sink_up{sink="webhook-1",kind="webhook"} 1' in body
    assert 'tollgate_audit_sink_up{sink="down",kind="webhook"} 0' in body
    assert 'tollgate_audit_sink_failures{sink="down",kind="webhook"} 1' in body


def test_it_delivers_on_the_beat_schedule(history, siem):
    assert app.conf.beat_schedule["audit-deliver-sinks"]["task"] == deliver_sinks.name
    add("webhook", f"{siem.url}/hook", siem.hook_secret)
    assert deliver_sinks.apply().get() == 7


def test_it_refuses_a_sink_it_could_not_deliver_to(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        sink_create(actor="test", name="x", kind="syslog", url="http://example.com")
    with pytest.raises(ValidationError):
        sink_create(actor="test", name="y", kind="splunk", url="https://splunk.example.com:8088")
    with pytest.raises(ValidationError):
        sink_create(actor="test", name="z", kind="kafka", url="https://example.com")
