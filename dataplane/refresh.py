"""Keeps a worker's snapshot fresh: polls the version, and listens for nudges.

Polling alone bounds staleness by the poll interval (250 ms by default, so a
revoked key stops working everywhere within a second). The channel-layer
notice makes it faster still; channel layers deliver at most once, so it is
only ever a nudge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from dataplane import snapshot as snap
from dataplane.config import GatewayConfig

log = logging.getLogger("tollgate.snapshot")


class SnapshotHolder:
    """The one mutable reference the hot path reads: ``holder.current``."""

    def __init__(
        self,
        config: GatewayConfig,
        unseal: Callable[[str], str],
        redis: Any = None,
        on_swap: Callable[[snap.Snapshot], None] | None = None,
    ) -> None:
        self.config = config
        self.on_swap = on_swap
        self.unseal = unseal
        self.redis = redis
        self.current: snap.Snapshot = snap.EMPTY
        self.loaded = False
        self._wake = asyncio.Event()
        self._file_stamp: tuple[int, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        if redis is not None:
            self.store: Any = snap.RedisSnapshotStore(config.redis_url, config.redis_prefix)
        else:
            self.store = snap.FileSnapshotStore(config.snapshot_file)

    async def refresh(self) -> bool:
        """Load the published snapshot if it is newer than ours. True when swapped."""
        if self.redis is not None:
            version = await self.store.version(self.redis)
            if version == self.current.version and self.loaded:
                return False
            doc = await self.store.load(self.redis)
        else:
            stamp = self.store.stamp()
            if stamp is None or stamp == self._file_stamp:
                return False
            doc = await asyncio.to_thread(self.store.read)
            self._file_stamp = stamp
        if doc is None:
            return False
        parsed = await asyncio.to_thread(snap.parse, doc, self.unseal)
        self.current = parsed
        if self.on_swap is not None:
            self.on_swap(parsed)
        if not self.loaded:
            log.info("snapshot %d loaded: %d keys", parsed.version, len(parsed.keys))
        self.loaded = True
        return True

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll()))
        if self.redis is not None:
            self._tasks.append(loop.create_task(self._listen()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _poll(self) -> None:
        interval = self.config.snapshot_poll_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            try:
                await self.refresh()
            except Exception as exc:
                # Keep serving from the snapshot we hold: the store being down
                # must not take the gateway down.
                log.warning("snapshot refresh failed, serving version %d: %s", self.current.version, exc)

    async def _listen(self) -> None:
        from channels.layers import get_channel_layer
        from redis.exceptions import TimeoutError as RedisTimeout

        layer = get_channel_layer()
        while True:
            try:
                channel = await layer.new_channel()
                await layer.group_add(snap.CHANGE_GROUP, channel)
                renew_at = time.monotonic() + 3600
                while True:
                    try:
                        message = await layer.receive(channel)
                    except RedisTimeout:
                        # channels_redis' blocking pop gives up after a few quiet
                        # seconds with a socket timeout: that is idleness, not a fault.
                        message = {}
                    if time.monotonic() > renew_at:
                        # Group membership expires in the channel layer; renew it.
                        await layer.group_add(snap.CHANGE_GROUP, channel)
                        renew_at = time.monotonic() + 3600
                    if message.get("type") == "snapshot.changed":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("snapshot change listener restarting: %s", exc)
                await asyncio.sleep(1)
