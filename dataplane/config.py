"""The data plane's settings, read once per worker from the one settings file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    max_body_bytes: int
    body_read_timeout: float
    redis_url: str
    redis_prefix: str
    snapshot_file: Path
    spool_dir: Path
    snapshot_poll_seconds: float
    upstream_connect_timeout: float
    upstream_first_byte_timeout: float
    upstream_response_timeout: float
    upstream_idle_timeout: float
    upstream_max_concurrency: int
    stream_ping_seconds: float
    event_flush_seconds: float
    key_pepper: bytes
    counters_url: str
    counters_fail_open: bool
    control_plane_url: str = ""
    # The control plane's public origin, sent as Host and X-Forwarded-Proto when
    # sign-in calls go to an internal address, so its host check and HTTPS
    # redirect see the name they expect.
    control_plane_public_url: str = ""

    @classmethod
    def from_settings(cls) -> GatewayConfig:
        from django.conf import settings

        return cls(
            max_body_bytes=settings.GATEWAY_MAX_BODY_BYTES,
            body_read_timeout=settings.GATEWAY_BODY_READ_TIMEOUT,
            redis_url=settings.REDIS_URL,
            redis_prefix=settings.REDIS_PREFIX,
            snapshot_file=Path(settings.SNAPSHOT_FILE),
            spool_dir=Path(settings.SPOOL_DIR),
            snapshot_poll_seconds=settings.GATEWAY_SNAPSHOT_POLL_SECONDS,
            upstream_connect_timeout=settings.GATEWAY_UPSTREAM_CONNECT_TIMEOUT,
            upstream_first_byte_timeout=settings.GATEWAY_UPSTREAM_FIRST_BYTE_TIMEOUT,
            upstream_response_timeout=settings.GATEWAY_UPSTREAM_RESPONSE_TIMEOUT,
            upstream_idle_timeout=settings.GATEWAY_UPSTREAM_IDLE_TIMEOUT,
            upstream_max_concurrency=settings.GATEWAY_UPSTREAM_MAX_CONCURRENCY,
            stream_ping_seconds=settings.GATEWAY_STREAM_PING_SECONDS,
            event_flush_seconds=settings.GATEWAY_EVENT_FLUSH_SECONDS,
            key_pepper=settings.KEY_PEPPER,
            counters_url=settings.COUNTERS_REDIS_URL,
            counters_fail_open=settings.COUNTERS_FAIL_OPEN,
            control_plane_url=settings.CONTROL_PLANE_INTERNAL_URL.rstrip("/"),
            control_plane_public_url=settings.CONTROL_PLANE_PUBLIC_URL.rstrip("/"),
        )
