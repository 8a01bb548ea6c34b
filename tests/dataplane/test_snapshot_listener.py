"""The change listener on a healthy Redis stays put through quiet spells."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dataplane import snapshot as snap
from dataplane.config import GatewayConfig
from dataplane.refresh import SnapshotHolder
from tests.conftest import REDIS

pytestmark = pytest.mark.skipif(not REDIS, reason="the channel layer on Redis")


def test_it_listens_through_quiet_spells_without_restarting(caplog):
    from channels.layers import get_channel_layer

    async def scenario() -> bool:
        holder = SnapshotHolder(GatewayConfig.from_settings(), unseal=str, redis=object())
        task = asyncio.get_running_loop().create_task(holder._listen())
        # channels_redis' blocking pop times out after 5 quiet seconds.
        await asyncio.sleep(6.5)
        await get_channel_layer().group_send(snap.CHANGE_GROUP, {"type": "snapshot.changed"})
        try:
            await asyncio.wait_for(holder._wake.wait(), timeout=3)
            return True
        except TimeoutError:
            return False
        finally:
            task.cancel()

    with caplog.at_level(logging.WARNING, logger="tollgate.snapshot"):
        woken = asyncio.run(scenario())
    assert woken
    assert "restarting" not in caplog.text
