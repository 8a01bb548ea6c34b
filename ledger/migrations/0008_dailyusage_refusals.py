from django.db import migrations, models


def forget_rollups(apps, schema_editor):
    # Days rolled up before refusals were counted hold 0 there: forget when they
    # were rolled, so reports read those days from the log, and rewind the sweep,
    # so the next one rolls every day up again with the new column.
    apps.get_model("ledger", "RollupState").objects.all().delete()
    apps.get_model("ledger", "RollupCursor").objects.update(seen_id=0, rescan_from_id=0)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0007_subagent_attribution"),
    ]

    operations = [
        migrations.AddField(
            model_name="dailyusage",
            name="refusals",
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunPython(forget_rollups, migrations.RunPython.noop),
    ]
