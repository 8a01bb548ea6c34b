"""Default prices, checked on 2026-12-03 against the providers' published pages:
https://platform.claude.com/docs/en/about-claude/pricing and the model overview
pages it links (Opus 5.5, Sonnet 5.5, Haiku 5.5), Anthropic's web search tool
($10 per 1,000 searches), and Google's Gemini API pricing page for the Gemini
2.5 Pro long-context tier. OpenAI rows were carried over, not re-checked.

USD per million tokens, web search per 1,000 calls. Columns: input, output,
5-minute cache write (1.25x input on Claude), 1-hour cache write (2x), cache
read, web search, long-context threshold, and the long tier's input, output,
5m write, 1h write, read. Above the threshold (prompt = input + cache reads +
cache writes) every token of the request is billed at the long tier. Claude
models from the 4.6 generation on bill their whole 1M window at the standard
rate; Sonnet 4 and 4.5 with the 1M window charge 2x input, 1.5x output above
200k; Haiku 5.5 is 5x above 100k. Sonnet 5.5 cache reads were cut from $0.20
to $0.10 on 2026-10-07. Bedrock and Vertex deployments that bill differently
get a per-provider price row or multiplier (regional endpoints: 1.1).

A list price still at the figures first shipped (migration 0002) is brought to
the checked table; one an admin changed keeps its rates and only gains the new
columns (1-hour cache write, web search, long-context tier) from the table. A
model outside the table keeps billing 1-hour cache writes as it did: at its
5-minute rate.
"""

from decimal import Decimal

from django.db import migrations

# The checked table, frozen as of this migration.
CHECKED = {
    "claude-fable-5-1": ("10", "50", "12.50", "20", "0.25", "10", 0, None),
    "claude-mythos-5-1": ("10", "50", "12.50", "20", "0.25", "10", 0, None),
    "claude-fable-5": ("10", "50", "12.50", "20", "1", "10", 0, None),
    "claude-mythos-5": ("10", "50", "12.50", "20", "1", "10", 0, None),
    "claude-opus-5-5": ("4", "20", "5", "8", "0.20", "10", 0, None),
    "claude-opus-5": ("5", "25", "6.25", "10", "0.50", "10", 0, None),
    "claude-opus-4-8": ("5", "25", "6.25", "10", "0.50", "10", 0, None),
    "claude-opus-4-7": ("5", "25", "6.25", "10", "0.50", "10", 0, None),
    "claude-opus-4-6": ("5", "25", "6.25", "10", "0.50", "10", 0, None),
    "claude-opus-4-5": ("5", "25", "6.25", "10", "0.50", "10", 0, None),
    "claude-opus-4-1": ("15", "75", "18.75", "30", "1.50", "10", 0, None),
    "claude-opus-4": ("15", "75", "18.75", "30", "1.50", "10", 0, None),
    "claude-sonnet-5-5": ("2", "10", "2.50", "4", "0.10", "10", 0, None),
    "claude-sonnet-5": ("2", "10", "2.50", "4", "0.20", "10", 0, None),
    "claude-sonnet-4-6": ("3", "15", "3.75", "6", "0.30", "10", 0, None),
    "claude-sonnet-4-5": ("3", "15", "3.75", "6", "0.30", "10", 200_000, ("6", "22.50", "7.50", "12", "0.60")),
    "claude-sonnet-4": ("3", "15", "3.75", "6", "0.30", "10", 200_000, ("6", "22.50", "7.50", "12", "0.60")),
    "claude-3-7-sonnet": ("3", "15", "3.75", "6", "0.30", "10", 0, None),
    "claude-haiku-5-5": ("0.10", "0.50", "0.125", "0.20", "0.01", "10", 100_000, ("0.50", "2.50", "0.625", "1", "0.05")),
    "claude-haiku-4-5": ("1", "5", "1.25", "2", "0.10", "10", 0, None),
    "claude-3-5-haiku": ("0.80", "4", "1", "1.60", "0.08", "10", 0, None),
    "claude-3-haiku": ("0.25", "1.25", "0.30", "0.50", "0.03", "10", 0, None),
    "gpt-5": ("1.25", "10", "0", "0", "0.125", "0", 0, None),
    "gpt-5-mini": ("0.25", "2", "0", "0", "0.025", "0", 0, None),
    "gpt-5-nano": ("0.05", "0.40", "0", "0", "0.005", "0", 0, None),
    "gpt-4.1": ("2", "8", "0", "0", "0.50", "0", 0, None),
    "gpt-4.1-mini": ("0.40", "1.60", "0", "0", "0.10", "0", 0, None),
    "gpt-4.1-nano": ("0.10", "0.40", "0", "0", "0.025", "0", 0, None),
    "gpt-4o": ("2.50", "10", "0", "0", "1.25", "0", 0, None),
    "gpt-4o-mini": ("0.15", "0.60", "0", "0", "0.075", "0", 0, None),
    "o3": ("2", "8", "0", "0", "0.50", "0", 0, None),
    "o4-mini": ("1.10", "4.40", "0", "0", "0.275", "0", 0, None),
    "gemini-2.5-pro": ("1.25", "10", "0", "0", "0.31", "0", 200_000, ("2.50", "15", "0", "0", "0.625")),
    "gemini-2.5-flash": ("0.30", "2.50", "0", "0", "0.075", "0", 0, None),
    "gemini-2.5-flash-lite": ("0.10", "0.40", "0", "0", "0.025", "0", 0, None),
    "gemini-2.0-flash": ("0.10", "0.40", "0", "0", "0.025", "0", 0, None),
}


def _d(value):
    return Decimal(value)


def forward(apps, schema_editor):
    from importlib import import_module

    shipped = import_module("governance.migrations.0002_default_prices").DEFAULT_PRICES
    ModelPrice = apps.get_model("governance", "ModelPrice")
    for row in ModelPrice.objects.filter(provider__isnull=True):
        checked = CHECKED.get(row.model)
        if checked is None:
            row.cache_write_1h_per_mtok = row.cache_write_per_mtok
            row.save(update_fields=["cache_write_1h_per_mtok"])
            continue
        inp, out, cw, cw1h, cr, search, threshold, long = checked
        current = (row.input_per_mtok, row.output_per_mtok, row.cache_write_per_mtok, row.cache_read_per_mtok)
        first = shipped.get(row.model)
        if first is not None and current == tuple(_d(v) for v in first):
            row.input_per_mtok, row.output_per_mtok = _d(inp), _d(out)
            row.cache_write_per_mtok, row.cache_read_per_mtok = _d(cw), _d(cr)
        row.cache_write_1h_per_mtok = _d(cw1h)
        row.web_search_per_1k = _d(search)
        row.long_context_threshold = threshold
        if long:
            (
                row.long_input_per_mtok,
                row.long_output_per_mtok,
                row.long_cache_write_per_mtok,
                row.long_cache_write_1h_per_mtok,
                row.long_cache_read_per_mtok,
            ) = (_d(v) for v in long)
        row.save()
    for model, (inp, out, cw, cw1h, cr, search, threshold, long) in CHECKED.items():
        if ModelPrice.objects.filter(provider__isnull=True, model=model).exists():
            continue
        long = long or ("0", "0", "0", "0", "0")
        ModelPrice.objects.create(
            model=model,
            input_per_mtok=_d(inp),
            output_per_mtok=_d(out),
            cache_write_per_mtok=_d(cw),
            cache_write_1h_per_mtok=_d(cw1h),
            cache_read_per_mtok=_d(cr),
            web_search_per_1k=_d(search),
            long_context_threshold=threshold,
            long_input_per_mtok=_d(long[0]),
            long_output_per_mtok=_d(long[1]),
            long_cache_write_per_mtok=_d(long[2]),
            long_cache_write_1h_per_mtok=_d(long[3]),
            long_cache_read_per_mtok=_d(long[4]),
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0010_price_tiers_and_overrides")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
