from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_request_log_org_time"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(fields=["key_id", "created_at"], name="request_log_key_time"),
        ),
        migrations.AddIndex(
            model_name="dailyusage",
            index=models.Index(fields=["key_id", "day"], name="daily_usage_key_day"),
        ),
    ]
