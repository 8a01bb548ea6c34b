from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_dailyusage_refusals"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="requestlog",
            index=models.Index(
                fields=["organization_id", "created_at"], name="request_log_org_time"
            ),
        ),
    ]
