"""Builds the data plane's configuration snapshot and publishes it."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dataplane.snapshot import CHANGE_GROUP, store_from_settings
from governance.models import ModelPrice, Provider, VirtualKey

log = logging.getLogger(__name__)


def snapshot_build() -> dict[str, Any]:
    """The document the data plane reads; the store adds its version when publishing."""
    with transaction.atomic():
        keys = [
            {
                "id": k.id,
                "digest": k.digest,
                "prefix": k.prefix,
                "name": k.name,
                "status": k.status,
                "expires_at": k.expires_at.timestamp() if k.expires_at else None,
                "allowed_models": list(k.allowed_models),
                "user_id": k.user_id,
                "team_id": k.team_id,
                "organization_id": k.organization_id,
            }
            for k in VirtualKey.objects.all().order_by("id")
        ]
        providers = [
            {
                "id": p.id,
                "name": p.name,
                "kind": p.kind,
                "base_url": p.base_url,
                "credential_sealed": p.credential_sealed,
                "is_active": p.is_active,
            }
            for p in Provider.objects.all().order_by("id")
        ]
        prices = {
            p.model: [
                str(p.input_per_mtok),
                str(p.output_per_mtok),
                str(p.cache_write_per_mtok),
                str(p.cache_read_per_mtok),
            ]
            for p in ModelPrice.objects.all()
        }
    return {
        "built_at": timezone.now().isoformat(),
        "keys": keys,
        "providers": providers,
        "prices": prices,
    }


def snapshot_publish() -> int:
    """Publish the current configuration; nudge the workers. Returns the version."""
    version = store_from_settings(settings).publish(snapshot_build)
    layer = get_channel_layer()
    if layer is not None and settings.REDIS_URL:
        # A nudge only: workers also poll the version, so a lost message costs
        # at most one poll interval.
        try:
            async_to_sync(layer.group_send)(
                CHANGE_GROUP, {"type": "snapshot.changed", "version": version}
            )
        except Exception:
            log.warning("snapshot change notice not sent", exc_info=True)
    return version
