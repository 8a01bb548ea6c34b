"""``manage.py audit_retention``: remove audit events past the retention period.

The one way events leave the database: the removed range and its last hash
are recorded first, so the rest of the chain still verifies.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.services import audit_retention


class Command(BaseCommand):
    help = "Remove audit events older than TOLLGATE_AUDIT_RETENTION_DAYS, recording the removed range."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=settings.AUDIT_RETENTION_DAYS)

    def handle(self, *args, **options):
        archive = audit_retention(actor="retention", older_than=timedelta(days=options["days"]))
        if archive is None:
            self.stdout.write("No audit event is past the retention period.")
        else:
            self.stdout.write(
                f"Removed seq {archive.first_seq}-{archive.last_seq} ({archive.events} event(s)); "
                f"the chain continues from hash {archive.last_hash}."
            )
