"""``manage.py bootstrap_admin``: the first admin of a production install, without a prompt.

Reads TOLLGATE_ADMIN_USERNAME (default ``admin``), TOLLGATE_ADMIN_EMAIL and
TOLLGATE_ADMIN_PASSWORD, each also from ``<NAME>_FILE`` (a mounted secret).
Running it again, or on an install that has an admin, changes nothing, so it can
run on every release beside the migrations.
"""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from controlplane.settings import env
from governance.services import admin_bootstrap


class Command(BaseCommand):
    help = "Create the first platform admin from TOLLGATE_ADMIN_* values (or their _FILE) if none exists."

    def handle(self, *args, **options):
        username = env("TOLLGATE_ADMIN_USERNAME", "admin").strip() or "admin"
        email = env("TOLLGATE_ADMIN_EMAIL").strip()
        password = env("TOLLGATE_ADMIN_PASSWORD").strip()
        if password:
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError("TOLLGATE_ADMIN_PASSWORD is too weak: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            created = admin_bootstrap(username=username, email=email, password=password)
        if created is None:
            self.stdout.write("An admin exists already; nothing changed.")
            return
        user, secret = created
        if password:
            self.stdout.write(f"Created the first admin '{user.get_username()}' with the given password.")
        else:
            # No secret was given: this output is the only place the password appears.
            self.stdout.write(f"Created the first admin '{user.get_username()}'; password (shown only now): {secret}")
