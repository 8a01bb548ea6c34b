"""Data-plane entry point: ``uvicorn dataplane.asgi:application``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

from channels.routing import ProtocolTypeRouter  # noqa: E402

from dataplane.app import Gateway  # noqa: E402

gateway = Gateway()
application = ProtocolTypeRouter({"http": gateway, "lifespan": gateway.lifespan})
