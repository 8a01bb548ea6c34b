"""Events written before the chain existed are chained by the migration, in the order written."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.guard import guard_status
from audit.verify import audit_verify


def migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("audit", target)])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_chains_events_written_before_the_chain():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("audit")[0][1]
    migrate("0001_initial")
    try:
        assert not any(guard_status().values())
        with connection.cursor() as cursor:
            for n, ip in enumerate(["10.0.0.1", "::ffff:10.0.0.2", None]):
                cursor.execute(
                    "INSERT INTO audit_auditevent (created_at, actor_label, action, target_type, target_id,"
                    " target_label, before, after, request_id, ip) VALUES (%s, 'alice', 'team.create',"
                    " 'governance.team', %s, 'old', NULL, %s, '', %s)",
                    [timezone.now(), str(n), f'{{"n": {n}, "x": 2.0}}', ip],
                )
    finally:
        migrate(latest)
    result = audit_verify()
    assert result.intact and result.events == 3 and result.guarded, result.summary()
    from audit.models import AuditEvent

    assert list(AuditEvent.objects.order_by("seq").values_list("target_id", "ip")) == [
        ("0", "10.0.0.1"), ("1", "10.0.0.2"), ("2", None)
    ]
