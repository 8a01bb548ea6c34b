import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [("audit", "0003_refuse_edits")]

    operations = [
        migrations.CreateModel(
            name="AuditSink",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=60, unique=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("elastic", "Elasticsearch (bulk API)"),
                            ("splunk", "Splunk HTTP Event Collector"),
                            ("datadog", "Datadog logs"),
                            ("webhook", "Webhook (HMAC-signed)"),
                            ("syslog", "Syslog (RFC 5424 over TCP or TLS)"),
                        ],
                        max_length=20,
                    ),
                ),
                ("url", models.CharField(max_length=500)),
                ("secret_sealed", models.TextField(blank=True, default="")),
                ("options", models.JSONField(blank=True, default=dict)),
                ("is_active", models.BooleanField(default=True)),
                ("cursor_seq", models.BigIntegerField(default=0)),
                ("delivered", models.BigIntegerField(default=0)),
                ("failures", models.IntegerField(default=0)),
                ("last_error", models.TextField(blank=True, default="")),
                ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("last_success_at", models.DateTimeField(blank=True, null=True)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("lease_until", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"ordering": ["name"]},
        ),
    ]
