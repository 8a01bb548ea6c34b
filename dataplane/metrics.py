"""Prometheus counters for the data plane, rendered at ``/metrics``.

Plain dicts: an increment is one dict update, cheap enough for the hot path.
Each worker process reports its own figures (scrape every worker, or sum).
"""

from __future__ import annotations

from collections import defaultdict

_HELP = {
    "tollgate_requests_total": "Requests handled, by endpoint and status code.",
    "tollgate_counter_store_errors_total": "Admissions or settlements that could not reach the counter store.",
    "tollgate_admitted_without_counters_total": "Requests admitted with the counter store unreachable (fail-open policy).",
    "tollgate_refusals_total": "Requests refused by a budget (402) or a rate limit (429).",
}


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(lambda: defaultdict(float))

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.counters[name][tuple(sorted(labels.items()))] += value

    def render(self, gauges: dict[str, float]) -> bytes:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines.append(f"# HELP {name} {_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(series.items()):
                text = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")
        for name, value in sorted(gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value:g}")
        return ("\n".join(lines) + "\n").encode()
