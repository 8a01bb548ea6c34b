"""``make run``: the whole gateway in one terminal on the embedded default.

Starts the control plane (daphne), the data plane (uvicorn), the log writer and
the scheduler (the beat schedule's tasks, run in-process) as child processes,
with the command lines of the process set (controlplane/processes.py) that
deploy/ starts one by one through ``manage.py process <name>``; prints how
to sign in and how to point Claude Code at the gateway, and stops them all on
Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from controlplane.processes import EMBEDDED, Binding, shape_processes
from governance.services import admin_bootstrap
from governance.snapshot import snapshot_publish


class Command(BaseCommand):
    help = "Run control plane, data plane and log writer together (embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("TOLLGATE_BIND", "127.0.0.1"))
        parser.add_argument("--control-port", type=int, default=int(os.environ.get("TOLLGATE_CONTROL_PORT", "8000")))
        parser.add_argument("--data-port", type=int, default=int(os.environ.get("TOLLGATE_DATA_PORT", "8080")))
        parser.add_argument("--data-workers", type=int, default=int(os.environ.get("TOLLGATE_DATA_WORKERS", "1")))

    def handle(self, *args, host, control_port, data_port, data_workers, **options):
        if data_workers < 1:
            raise CommandError("TOLLGATE_DATA_WORKERS must be at least 1.")
        if data_workers > 1 and not settings.COUNTERS_REDIS_URL:
            # Without Redis each worker counts budgets and rate limits in its own
            # memory: two workers would each admit a full budget.
            raise CommandError(
                f"TOLLGATE_DATA_WORKERS={data_workers} needs shared counters: the embedded default keeps "
                "budget and rate-limit counters inside the one data-plane process. Set REDIS_URL "
                "(or TOLLGATE_COUNTERS_REDIS_URL) to run more than one worker, or run one."
            )
        created = admin_bootstrap()
        snapshot_publish()
        binding = Binding(
            host=host,
            control_port=control_port,
            data_port=data_port,
            data_workers=data_workers,
            forwarded_allow_ips=Binding.from_env().forwarded_allow_ips,
            behind_proxy=settings.BEHIND_PROXY,
        )
        # The embedded shape of the process set (controlplane/processes.py): the
        # same command lines production runs, with the in-process scheduler in
        # place of Celery worker and beat. Jobs (migrations) ran before this.
        commands = {
            name: list(process.argv)
            for name, process in shape_processes(EMBEDDED, binding).items()
            if process.kind == "service"
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, cmd in commands.items():
            # Children ignore the terminal's Ctrl-C; this process stops them in order.
            children[name] = subprocess.Popen(cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        self._wait_until_up(children, host, control_port, data_port)
        self._banner(created, host, control_port, data_port)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with status {child.returncode}; stopping everything.")
                    exit_code = 1
                    stopping = True
                    break
            time.sleep(0.2)
        self.stdout.write("\nStopping Tollgate…")
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 30
        for name, child in children.items():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it.")
                child.kill()
        self.stdout.write("Stopped.")
        sys.exit(exit_code)

    def _wait_until_up(self, children, host, control_port, data_port) -> None:
        """Print the banner only once both servers answer, so its URLs work when read."""
        import urllib.error
        import urllib.request

        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        pending = [f"http://{shown}:{data_port}/healthz", f"http://{shown}:{control_port}/accounts/login/"]
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            if any(child.poll() is not None for child in children.values()):
                return  # the supervision loop reports which one died
            try:
                with urllib.request.urlopen(pending[0], timeout=1):
                    pending.pop(0)
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)

    def _banner(self, created, host, control_port, data_port) -> None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        control = os.environ.get("TOLLGATE_CONTROL_PLANE_URL") or f"http://{shown}:{control_port}"
        gateway = os.environ.get("TOLLGATE_GATEWAY_URL") or f"http://{shown}:{data_port}"
        database = urlparse(settings.DATABASE_URL).scheme or "sqlite"
        lines = [
            "",
            "Tollgate is running.",
            f"  console        {control}/   (REST API: {control}/api/v1/, Django admin: {control}/admin/)",
            f"  data plane     {gateway}",
            f"  state          {database}, {'Redis' if settings.REDIS_URL else 'in-process counters, no Redis'}; data in {settings.DATA_DIR}",
            "",
        ]
        if created:
            user, password = created
            lines += [
                "First start: an admin account was created. Its password is shown only this once:",
                f"  username  {user.get_username()}",
                f"  password  {password}",
                "",
            ]
        lines += [
            "Point Claude Code at the gateway (a virtual key comes from the console's Keys page or the API; see README.md):",
            f"  export ANTHROPIC_BASE_URL={gateway}/anthropic",
            "  export ANTHROPIC_AUTH_TOKEN=tg-…   # your Tollgate virtual key",
            "  claude",
            "",
            "Press Ctrl-C to stop.",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
