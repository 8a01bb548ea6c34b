from decimal import Decimal

from django.db import migrations

# The table as first shipped (0011 brings it up to date).
DEFAULT_PRICES: dict[str, tuple[str, str, str, str]] = {
    # Anthropic (https://platform.claude.com/docs/en/about-claude/pricing). Haiku 5.5
    # is the band for prompts up to 100k tokens; longer prompts cost 5x.
    "claude-fable-5-1": ("10", "50", "12.50", "0.25"),
    "claude-mythos-5-1": ("10", "50", "12.50", "0.25"),
    "claude-fable-5": ("10", "50", "12.50", "1"),
    "claude-mythos-5": ("10", "50", "12.50", "1"),
    # Opus 5.5 (Claude Code's default tier in 2.1.x) at the Opus 5 rate: the
    # published table in hand predates it. Verify against the pricing page.
    "claude-opus-5-5": ("5", "25", "6.25", "0.50"),
    "claude-opus-5": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-8": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-7": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-6": ("5", "25", "6.25", "0.50"),
    "claude-sonnet-5-5": ("2", "10", "2.50", "0.10"),
    "claude-sonnet-5": ("2", "10", "2.50", "0.20"),
    "claude-sonnet-4-6": ("3", "15", "3.75", "0.30"),
    "claude-haiku-5-5": ("0.10", "0.50", "0.125", "0.01"),
    "claude-opus-4-5": ("5", "25", "6.25", "0.50"),
    "claude-opus-4-1": ("15", "75", "18.75", "1.50"),
    "claude-opus-4": ("15", "75", "18.75", "1.50"),
    "claude-sonnet-4-5": ("3", "15", "3.75", "0.30"),
    "claude-sonnet-4": ("3", "15", "3.75", "0.30"),
    "claude-3-7-sonnet": ("3", "15", "3.75", "0.30"),
    "claude-haiku-4-5": ("1", "5", "1.25", "0.10"),
    "claude-3-5-haiku": ("0.80", "4", "1.00", "0.08"),
    "claude-3-haiku": ("0.25", "1.25", "0.30", "0.03"),
    # OpenAI (https://openai.com/api/pricing/)
    "gpt-5": ("1.25", "10", "0", "0.125"),
    "gpt-5-mini": ("0.25", "2", "0", "0.025"),
    "gpt-5-nano": ("0.05", "0.40", "0", "0.005"),
    "gpt-4.1": ("2", "8", "0", "0.50"),
    "gpt-4.1-mini": ("0.40", "1.60", "0", "0.10"),
    "gpt-4.1-nano": ("0.10", "0.40", "0", "0.025"),
    "gpt-4o": ("2.50", "10", "0", "1.25"),
    "gpt-4o-mini": ("0.15", "0.60", "0", "0.075"),
    "o3": ("2", "8", "0", "0.50"),
    "o4-mini": ("1.10", "4.40", "0", "0.275"),
    # Google (https://ai.google.dev/gemini-api/docs/pricing), prompts up to 200k tokens
    "gemini-2.5-pro": ("1.25", "10", "0", "0.31"),
    "gemini-2.5-flash": ("0.30", "2.50", "0", "0.075"),
    "gemini-2.5-flash-lite": ("0.10", "0.40", "0", "0.025"),
    "gemini-2.0-flash": ("0.10", "0.40", "0", "0.025"),
}


def seed(apps, schema_editor):
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
