"""The usage event is one contract between the data plane that writes it and the
log writer that stores it: a field one side knows and the other does not fails here."""

from __future__ import annotations

from dataplane.events import UsageEvent
from dataplane.exchange import Exchange
from dataplane.snapshot import parse
from ledger.models import RequestLog

# Fields that are not RequestLog columns of the same name.
NOT_COLUMNS = {"ts", "begin", "holds"}  # ts is stored as created_at; the other two only live in journals
# Columns the writer fills from something other than a field of the same name.
NOT_FIELDS = {"id", "created_at"}


def test_every_event_field_is_a_column_and_every_column_a_field() -> None:
    fields = set(UsageEvent.__annotations__) - NOT_COLUMNS
    columns = {f.name for f in RequestLog._meta.get_fields() if f.concrete} - NOT_FIELDS
    assert fields - columns == set(), "event fields the log would drop"
    assert columns - fields == set(), "columns no event fills"


def test_the_exchange_reports_exactly_the_required_fields() -> None:
    x = Exchange("tg_contract", "messages")
    event = x.event(parse({"version": 1}, unseal=lambda sealed: sealed))
    assert set(event) == set(UsageEvent.__required_keys__)
