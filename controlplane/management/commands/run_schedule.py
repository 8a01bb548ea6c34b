"""The beat schedule without Celery beat: ``make run`` runs this beside the data
plane, so snapshot republishing, budget spend persistence, budget warnings and
the usage roll-up happen on the embedded default as they do in production."""

from __future__ import annotations

import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

log = logging.getLogger("tollgate.schedule")


class Command(BaseCommand):
    help = "Run the Celery beat schedule's tasks in this process, on their intervals, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every task once and exit")

    def handle(self, *args, once: bool = False, **options):
        from controlplane.celery import app

        app.loader.import_default_modules()
        entries = [(name, entry["task"], float(entry["schedule"])) for name, entry in app.conf.beat_schedule.items()]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        due = {name: 0.0 for name, _, _ in entries}
        while not stopping:
            for name, task, every in entries:
                now = time.monotonic()
                if now < due[name] or stopping:
                    continue
                due[name] = now + every
                try:
                    app.tasks[task]()
                except Exception as exc:
                    # A database or store briefly away: the next interval tries again.
                    self.stderr.write(f"schedule: {name} failed: {exc!r}")
                    close_old_connections()
            if once:
                return
            time.sleep(max(0.05, min(due.values()) - time.monotonic()))
