"""``manage.py audit_verify``: prove the audit trail intact, or name the first broken event.

Exit status: 0 intact (and the database still refuses edits), 1 broken,
2 intact but a trigger that refuses edits is missing or disabled.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from audit.verify import audit_verify


class Command(BaseCommand):
    help = "Verify the audit chain and its signed checkpoints; exit 1 at the first broken event."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")
        parser.add_argument(
            "--print-public-key", action="store_true", help="print the checkpoint key's public half (for auditors) and stop"
        )

    def handle(self, *args, **options):
        if options["print_public_key"]:
            from audit import signing

            key = signing.signing_key()
            if key is None:
                raise CommandError("TOLLGATE_AUDIT_SIGNING_KEY is not set")
            self.stdout.write(signing.public_key_text(key.public_key()))
            return
        result = audit_verify(using=options["database"])
        line = result.summary()
        if not result.intact:
            self.stderr.write(line)
            sys.exit(1)
        self.stdout.write(
            f"{line}; {result.events} event(s) checked, {result.unsigned_events} since the last checkpoint, "
            f"{result.anchors} request-log batch(es) matching their anchors"
        )
        if not result.guarded:
            sys.exit(2)
