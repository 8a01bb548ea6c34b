import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def chain_existing(apps, schema_editor):
    """Chain the events written before the chain existed, in the order they were written."""
    from audit import canonical

    AuditEvent = apps.get_model("audit", "AuditEvent")
    prev_hash = canonical.GENESIS
    for seq, event in enumerate(AuditEvent.objects.using(schema_editor.connection.alias).order_by("id").iterator(), 1):
        event.seq = seq
        event.prev_hash = prev_hash
        event.ip = canonical.ip_text(event.ip)
        event.before = canonical.json_value(event.before)
        event.after = canonical.json_value(event.after)
        values = {name: getattr(event, name) for name in canonical.FIELDS}
        event.hash = prev_hash = canonical.event_hash(values)
        event.save(update_fields=["seq", "prev_hash", "hash", "ip", "before", "after"])


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(model_name="auditevent", name="seq", field=models.BigIntegerField(null=True)),
        migrations.AddField(
            model_name="auditevent", name="prev_hash", field=models.CharField(default="", max_length=64), preserve_default=False
        ),
        migrations.AddField(
            model_name="auditevent", name="hash", field=models.CharField(default="", max_length=64), preserve_default=False
        ),
        migrations.AddField(
            model_name="auditevent",
            name="user_agent",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(model_name="auditevent", name="seq", field=models.BigIntegerField(unique=True)),
        migrations.AlterField(
            model_name="auditevent", name="hash", field=models.CharField(db_index=True, max_length=64)
        ),
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["-seq"]}),
        migrations.CreateModel(
            name="AuditArchive",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("first_seq", models.BigIntegerField()),
                ("last_seq", models.BigIntegerField(unique=True)),
                ("last_hash", models.CharField(max_length=64)),
                ("events", models.BigIntegerField()),
                ("location", models.CharField(blank=True, default="", max_length=500)),
                ("manifest_sha256", models.CharField(blank=True, default="", max_length=64)),
            ],
            options={"ordering": ["-last_seq"]},
        ),
    ]
