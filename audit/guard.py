"""The database itself refuses to rewrite the audit trail.

Triggers reject UPDATE and DELETE on the audit tables (and TRUNCATE on
PostgreSQL) from any client: the ORM, the Django admin, psql. The one
exception is retention (``audit_retention`` in audit/services.py), which may
delete events only up to a range already recorded in AuditArchive, and only
while it has said so for its own transaction: ``SET LOCAL
tollgate.audit_retention`` on PostgreSQL, a per-context flag read by a
function registered on each SQLite connection (a client without that
function, such as the sqlite3 shell, cannot delete at all).

A database owner can still drop or disable a trigger; that is what the hash
chain and the signed checkpoints are for.

SQLite loses a table's triggers when Django rebuilds the table in a
migration, so they are (re)installed after every ``migrate``, idempotently.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

EVENTS = "audit_auditevent"
ARCHIVES = "audit_auditarchive"
SQLITE_FUNCTION = "tollgate_audit_retention"

_retention: contextvars.ContextVar[bool] = contextvars.ContextVar("tollgate_audit_retention", default=False)

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION tollgate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    occupied boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- Emptying an empty table destroys nothing (a test run's flush does it).
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_TABLE_NAME) INTO occupied;
        IF NOT occupied THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = '{EVENTS}' THEN
        IF current_setting('tollgate.audit_retention', true) = 'on'
           AND OLD.seq <= (SELECT COALESCE(MAX(last_seq), 0) FROM {ARCHIVES}) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'old events leave only through manage.py audit_retention';
END
$$;
"""

PG_TRIGGERS = {
    f"{EVENTS}_append_only": f"BEFORE UPDATE OR DELETE ON {EVENTS} FOR EACH ROW",
    f"{EVENTS}_no_truncate": f"BEFORE TRUNCATE ON {EVENTS} FOR EACH STATEMENT",
    f"{ARCHIVES}_append_only": f"BEFORE UPDATE OR DELETE ON {ARCHIVES} FOR EACH ROW",
    f"{ARCHIVES}_no_truncate": f"BEFORE TRUNCATE ON {ARCHIVES} FOR EACH STATEMENT",
}

SQLITE_TRIGGERS = {
    f"{EVENTS}_no_update": f"""BEFORE UPDATE ON {EVENTS}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE on {EVENTS} refused'); END""",
    f"{EVENTS}_no_delete": f"""BEFORE DELETE ON {EVENTS}
        WHEN NOT ({SQLITE_FUNCTION}() AND OLD.seq <= (SELECT COALESCE(MAX(last_seq), 0) FROM {ARCHIVES}))
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE on {EVENTS} refused'); END""",
    f"{ARCHIVES}_no_update": f"""BEFORE UPDATE ON {ARCHIVES}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE on {ARCHIVES} refused'); END""",
    f"{ARCHIVES}_no_delete": f"""BEFORE DELETE ON {ARCHIVES}
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE on {ARCHIVES} refused'); END""",
}


def guard_install(connection: BaseDatabaseWrapper) -> None:
    """Create (or re-create, enabled) the triggers. Idempotent."""
    tables = set(connection.introspection.table_names())
    if not {EVENTS, ARCHIVES} <= tables:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_FUNCTION)
            for name, when in PG_TRIGGERS.items():
                table = when.split(" ON ")[1].split()[0]
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
                cursor.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION tollgate_audit_append_only()")
        elif connection.vendor == "sqlite":
            for name, body in SQLITE_TRIGGERS.items():
                cursor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
        else:
            raise NotImplementedError(f"no audit guard for {connection.vendor}")


def guard_uninstall(connection: BaseDatabaseWrapper) -> None:
    """For migrating the audit app backwards only."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name, when in PG_TRIGGERS.items():
                table = when.split(" ON ")[1].split()[0]
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS tollgate_audit_append_only()")
        else:
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def guard_status(using: str = "default") -> dict[str, bool]:
    """Each trigger the guard relies on and whether it is in place and enabled."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname, tgenabled <> 'D' FROM pg_trigger WHERE tgname = ANY(%s) AND NOT tgisinternal",
                [list(PG_TRIGGERS)],
            )
            found = dict(cursor.fetchall())
            names = list(PG_TRIGGERS)
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            found = {row[0]: True for row in cursor.fetchall()}
            names = list(SQLITE_TRIGGERS)
    return {name: bool(found.get(name, False)) for name in names}


@contextlib.contextmanager
def retention_window(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Let this transaction delete events already covered by an AuditArchive row."""
    if not connection.in_atomic_block:
        raise RuntimeError("retention runs inside the transaction that records the archive")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL tollgate.audit_retention = 'on'")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL tollgate.audit_retention = 'off'")
    else:
        token = _retention.set(True)
        try:
            yield
        finally:
            _retention.reset(token)


def sqlite_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 0, lambda: int(_retention.get()))


def post_migrate_install(sender: Any, using: str = "default", **kwargs: Any) -> None:
    guard_install(connections[using])
