"""``manage.py audit_sink``: point the audit trail's export at a SIEM, list sinks, deliver now.

    manage.py audit_sink add splunk --kind splunk --url https://splunk.example.com:8088 --secret-file hec.token
    manage.py audit_sink add elastic --kind elastic --url https://es.example.com:9200 --option index=tollgate-audit
    manage.py audit_sink list
    manage.py audit_sink deliver        # every sink, now, ignoring backoff
    manage.py audit_sink remove splunk
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditSink, SinkKind
from audit.sinks import sink_catch_up, sink_create, sink_delete, sink_health


class Command(BaseCommand):
    help = "Add, list, deliver to or remove the SIEM sinks the audit trail is exported to."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        add = sub.add_parser("add")
        add.add_argument("name")
        add.add_argument("--kind", required=True, choices=[k.value for k in SinkKind])
        add.add_argument("--url", required=True)
        add.add_argument("--secret-file", help="file holding the token, API key or HMAC secret")
        add.add_argument("--option", action="append", default=[], help="key=value (a JSON value is parsed)")
        add.add_argument("--from-seq", type=int, default=0, help="start after this seq (default: the whole trail)")
        sub.add_parser("list")
        deliver = sub.add_parser("deliver")
        deliver.add_argument("name", nargs="?")
        remove = sub.add_parser("remove")
        remove.add_argument("name")

    def handle(self, *args, **options):
        verb = options["verb"]
        if verb == "add":
            values = {}
            for item in options["option"]:
                key, _, raw = item.partition("=")
                try:
                    values[key] = json.loads(raw)
                except json.JSONDecodeError:
                    values[key] = raw
            secret = Path(options["secret_file"]).read_text().strip() if options["secret_file"] else ""
            try:
                sink = sink_create(
                    actor="manage.py", name=options["name"], kind=options["kind"], url=options["url"],
                    secret=secret, options=values, from_seq=options["from_seq"],
                )
            except ValidationError as exc:
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
            self.stdout.write(f"Sink {sink.name} ({sink.kind}) added; it starts after seq {sink.cursor_seq}.")
        elif verb == "list":
            for h in sink_health():
                state = "ok" if h.healthy else ("inactive" if not h.is_active else f"failing ×{h.failures}: {h.last_error}")
                self.stdout.write(f"{h.name:20} {h.kind:8} at seq {h.cursor_seq} of {h.head_seq} (lag {h.lag}) {state}")
        elif verb == "deliver":
            sinks = AuditSink.objects.filter(is_active=True)
            if options["name"]:
                sinks = sinks.filter(name=options["name"])
            for sink in sinks:
                sent = sink_catch_up(sink=sink, force=True)
                self.stdout.write(f"{sink.name}: {sent} event(s) delivered, now at seq {sink.cursor_seq}"
                                  + (f" ({sink.last_error})" if sink.failures else ""))
        elif verb == "remove":
            sink = AuditSink.objects.filter(name=options["name"]).first()
            if sink is None:
                raise CommandError(f"No sink named {options['name']}.")
            sink_delete(actor="manage.py", sink=sink)
            self.stdout.write(f"Sink {options['name']} removed.")
