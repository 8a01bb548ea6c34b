"""Create the benchmark's world in a throwaway database and publish the snapshot.

Run by bench/run.py with DJANGO_SETTINGS_MODULE, TOLLGATE_DATA_DIR,
DATABASE_URL and TOLLGATE_SECRET_KEY set (after ``manage.py migrate``):

    python bench/seed.py UPSTREAM_URL PROVIDER_KEY

Prints one JSON line: the virtual key's secret and the snapshot version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from governance import services  # noqa: E402
from governance.models import Role  # noqa: E402
from governance.snapshot import snapshot_publish  # noqa: E402


def main() -> None:
    upstream, provider_key = sys.argv[1], sys.argv[2]
    admin = get_user_model().objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-password-1"
    )
    org = services.organization_create(actor=admin, name="Bench", slug="bench")
    team = services.team_create(actor=admin, organization=org, name="Load")
    user = services.user_create(
        actor=admin,
        username="bench-dev",
        email="dev@example.com",
        organization=org,
        role=Role.DEVELOPER,
        team=team,
    )
    services.provider_create(
        actor=admin, name="anthropic", kind="anthropic", base_url=upstream, credential=provider_key
    )
    _, secret = services.key_create(
        actor=admin, organization=org, team=team, user=user, name="bench"
    )
    version = snapshot_publish()
    print(json.dumps({"secret": secret, "version": version}))


if __name__ == "__main__":
    main()
