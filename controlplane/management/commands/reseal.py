"""``manage.py reseal``: re-encrypt every sealed secret under the first encryption key.

Rotating the encryption key: prepend a new Fernet key to
TOLLGATE_ENCRYPTION_KEYS on every process and restart them (all keys still
decrypt), run this once, then remove the old key and restart again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from governance.services import secrets_reseal


class Command(BaseCommand):
    help = "Re-encrypt every sealed secret (provider credentials, MCP secrets…) under the first key."

    def handle(self, *args, **options):
        counts = secrets_reseal(actor="reseal")
        for label, count in sorted(counts.items()):
            self.stdout.write(f"{label}: {count} sealed value(s) resealed")
        self.stdout.write(self.style.SUCCESS(f"Resealed {sum(counts.values())} value(s) under the first key."))
