"""``manage.py audit_checkpoint``: sign the chain's head now (Celery beat does it on a schedule)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from audit.services import audit_checkpoint


class Command(BaseCommand):
    help = "Sign the audit chain's head with the Ed25519 checkpoint key and append the signature."

    def handle(self, *args, **options):
        event = audit_checkpoint()
        if event is None:
            self.stdout.write("Nothing new since the last checkpoint.")
        else:
            self.stdout.write(f"Checkpoint at seq {event.seq}: head seq {event.after['seq']} signed at {event.after['signed_at']}.")
