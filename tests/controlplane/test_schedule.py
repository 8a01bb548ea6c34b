"""Every periodic job names a task that exists: a misspelt or unlanded name
fails only in production's beat, or silently under make run."""

from __future__ import annotations


def test_every_scheduled_job_names_a_registered_task() -> None:
    from controlplane.celery import app

    app.loader.import_default_modules()
    missing = {name: entry["task"] for name, entry in app.conf.beat_schedule.items() if entry["task"] not in app.tasks}
    assert not missing, missing
