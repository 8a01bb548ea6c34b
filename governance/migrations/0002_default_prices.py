from decimal import Decimal

from django.db import migrations


def seed(apps, schema_editor):
    from governance.prices import DEFAULT_PRICES

    ModelPrice = apps.get_model("governance", "ModelPrice")
    for model, (inp, out, cw, cr) in DEFAULT_PRICES.items():
        ModelPrice.objects.get_or_create(
            model=model,
            defaults={
                "input_per_mtok": Decimal(inp),
                "output_per_mtok": Decimal(out),
                "cache_write_per_mtok": Decimal(cw),
                "cache_read_per_mtok": Decimal(cr),
            },
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
