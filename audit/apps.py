from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from audit import guard

        connection_created.connect(guard.sqlite_connection_created, dispatch_uid="audit-sqlite-guard")
        # After every migrate (and flush): SQLite drops a table's triggers when
        # a migration rebuilds the table.
        post_migrate.connect(guard.post_migrate_install, sender=self, dispatch_uid="audit-guard-install")
        checks.register(signing_key_check, checks.Tags.security, deploy=True)


def signing_key_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.conf import settings

    from audit import signing

    if not settings.AUDIT_SIGNING_KEY:
        return [
            checks.Warning(
                "TOLLGATE_AUDIT_SIGNING_KEY is not set: the audit chain's checkpoints are not signed, "
                "so a rewrite of the whole audit table would go unnoticed.",
                id="tollgate.W101",
            )
        ]
    try:
        signing.signing_key()
    except Exception as exc:  # ImproperlyConfigured or a malformed PEM
        return [checks.Error(str(exc), id="tollgate.E101")]
    return []
