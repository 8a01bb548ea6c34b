import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from ledger.writer import StreamDrain, drain_spool


class Command(BaseCommand):
    help = "Drain usage events (Redis stream or spool files) into the request log until stopped."

    def handle(self, *args, **options):
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        stream = None
        while not stopping:
            try:
                if settings.REDIS_URL and stream is None:
                    stream = StreamDrain()
                stored = drain_spool()
                if stream is not None:
                    stored += stream.drain(block_ms=500)
                elif not stored:
                    time.sleep(0.2)
            except Exception as exc:
                # The database or Redis is briefly down: events stay queued; retry.
                self.stderr.write(f"ledger writer: {exc}; retrying in 1 s")
                close_old_connections()
                stream = None
                time.sleep(1)
        # Last pass so a clean stop leaves nothing behind.
        try:
            drain_spool()
            while stream is not None and stream.drain():
                continue
        except Exception as exc:
            self.stderr.write(f"ledger writer: final drain failed: {exc}")
