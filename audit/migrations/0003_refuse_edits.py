from django.db import migrations


def install(apps, schema_editor):
    from audit.guard import guard_install

    guard_install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from audit.guard import guard_uninstall

    guard_uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    """The database refuses UPDATE, DELETE (and TRUNCATE) on the audit tables (audit/guard.py)."""

    dependencies = [("audit", "0002_hash_chain")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
