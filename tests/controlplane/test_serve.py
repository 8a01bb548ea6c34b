"""`make run` refuses a worker count its counters cannot keep honest."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


@pytest.mark.django_db
def test_it_refuses_two_data_workers_on_in_process_counters(settings):
    settings.COUNTERS_REDIS_URL = ""
    with pytest.raises(CommandError, match="TOLLGATE_DATA_WORKERS=2 needs shared counters.*REDIS_URL"):
        call_command("serve", data_workers=2)


@pytest.mark.django_db
def test_it_refuses_zero_data_workers(settings):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("serve", data_workers=0)
