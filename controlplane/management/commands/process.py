"""``manage.py process <name>``: become one process of the set in controlplane/processes.py.

Every deployment artifact starts its processes this way, so they run the exact
command line ``make run`` runs. ``--check`` is the process's health check (used
by the image, compose, systemd and Kubernetes probes); without a name the
command lists the set and each command line.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from controlplane.processes import EMBEDDED, PRODUCTION, Process, process_set


def dependencies_reachable() -> None:
    """Raise unless the database (and Redis, when configured) answer."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=3).ping()


def process_check(process: Process, *, ready: bool) -> None:
    if process.port is not None:
        path = process.ready_path if ready else process.health_path
        url = f"http://127.0.0.1:{process.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status != 200:
                    raise CommandError(f"{process.name}: {url} answered {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(f"{process.name}: {url}: {exc}") from None
        return
    if process.name == "migrate":
        # Done when nothing is left to apply.
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise CommandError(f"migrate: {len(pending)} migrations not applied")
        return
    if process.name == "bootstrap-admin":
        from django.contrib.auth import get_user_model

        if not get_user_model().objects.filter(is_superuser=True).exists():
            raise CommandError("bootstrap-admin: no admin exists yet")
        return
    if process.name == "celery-worker":
        from controlplane.celery import app

        node = f"celery@{socket.gethostname()}"
        if not app.control.ping(destination=[node], timeout=5):
            raise CommandError(f"celery-worker: {node} did not answer a ping")
        return
    try:
        dependencies_reachable()
    except Exception as exc:
        raise CommandError(f"{process.name}: a dependency is unreachable: {exc}") from None


class Command(BaseCommand):
    help = "Run one process of Tollgate's process set (exec), check its health, or list the set."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="process to run; omit to list the set")
        parser.add_argument("--check", action="store_true", help="exit 0 if the process is healthy (liveness)")
        parser.add_argument("--ready", action="store_true", help="with --check: readiness (dependencies too)")
        parser.add_argument("--shape", choices=[EMBEDDED, PRODUCTION], help="list only this shape's processes")

    def handle(self, *args, name: str | None, check: bool, ready: bool, shape: str | None, **options):
        processes = process_set()
        if name is None:
            for process in processes.values():
                if shape and shape not in process.shapes:
                    continue
                shapes = ",".join(sorted(process.shapes))
                self.stdout.write(f"{process.name}\t{process.kind}\t{shapes}\t{process.command_line()}")
            return
        if name not in processes:
            raise CommandError(f"Unknown process '{name}'; the set is: {', '.join(processes)}.")
        process = processes[name]
        if check:
            process_check(process, ready=ready)
            self.stdout.write(f"{name}: ok")
            return
        # exec, not a child: the process receives the orchestrator's signals
        # directly, so SIGTERM drains streams instead of killing a wrapper.
        os.execv(process.argv[0], list(process.argv))
