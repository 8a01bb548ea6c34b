"""The configuration snapshot: the data plane's only view of governance state.

The control plane builds a JSON document (governance/snapshot.py) and publishes
it here; every data-plane worker holds the parsed form in memory and swaps it
whole when a newer version appears. Two stores share one contract:

- Redis: the document and its version under ``<prefix>snapshot``; a Lua script
  refuses to replace a newer version with an older one.
- File (embedded default): ``<data dir>/snapshot.json``, replaced atomically by
  rename under a lock.
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import translate
from pathlib import Path
from collections.abc import Callable
from typing import Any

import orjson

_DATED = re.compile(r"^(.*?)(?:-\d{8}|@\d{8}|-v\d+(?::\d+)?)$")


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: int
    prefix: str
    name: str
    active: bool
    expires_at: float | None
    allowed_models: tuple[str, ...]
    allowed: re.Pattern[str] | None
    user_id: int | None
    team_id: int | None
    organization_id: int

    def allows(self, model: str) -> bool:
        return self.allowed is None or self.allowed.match(model) is not None


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    id: int
    name: str
    kind: str
    base_url: str
    credential: str


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token (the stored figures are per million)."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal


@dataclass(slots=True)
class Snapshot:
    version: int
    keys: dict[str, KeyEntry]
    providers: dict[int, ProviderEntry]
    anthropic: ProviderEntry | None
    prices: dict[str, Price]
    _price_cache: dict[str, Price | None] = field(default_factory=dict)

    def price_for(self, model: str) -> Price | None:
        """Exact model id first, then the id without its date or version suffix."""
        try:
            return self._price_cache[model]
        except KeyError:
            pass
        price = self.prices.get(model)
        if price is None:
            dated = _DATED.match(model)
            if dated:
                price = self.prices.get(dated.group(1))
        if len(self._price_cache) < 10_000:
            self._price_cache[model] = price
        return price


EMPTY = Snapshot(version=0, keys={}, providers={}, anthropic=None, prices={})
_MTOK = Decimal(1_000_000)


def parse(doc: dict[str, Any], unseal: Any) -> Snapshot:
    """Turn a published document into lookup tables; ``unseal`` opens credentials."""
    keys: dict[str, KeyEntry] = {}
    for k in doc.get("keys", []):
        patterns = tuple(k.get("allowed_models") or ())
        allowed = re.compile("|".join(translate(p) for p in patterns)) if patterns else None
        keys[k["digest"]] = KeyEntry(
            id=k["id"],
            prefix=k["prefix"],
            name=k["name"],
            active=k["status"] == "active",
            expires_at=k.get("expires_at"),
            allowed_models=patterns,
            allowed=allowed,
            user_id=k.get("user_id"),
            team_id=k.get("team_id"),
            organization_id=k["organization_id"],
        )
    providers: dict[int, ProviderEntry] = {}
    anthropic = None
    for p in doc.get("providers", []):
        if not p.get("is_active", True):
            continue
        entry = ProviderEntry(
            id=p["id"],
            name=p["name"],
            kind=p["kind"],
            base_url=p["base_url"].rstrip("/"),
            credential=unseal(p.get("credential_sealed", "")),
        )
        providers[entry.id] = entry
        if entry.kind == "anthropic" and anthropic is None:
            anthropic = entry
    prices = {
        model: Price(*(Decimal(v) / _MTOK for v in values))
        for model, values in doc.get("prices", {}).items()
    }
    return Snapshot(
        version=int(doc["version"]), keys=keys, providers=providers, anthropic=anthropic, prices=prices
    )


# --- stores ------------------------------------------------------------------
#
# Publishing holds a lock while it builds and writes, so the last document
# written is always the freshest build: a build that starts after a commit
# sees that commit. The version is the store's own counter (not a database
# sequence), so it only ever rises, even across a database restore.


class RedisSnapshotStore:
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.doc_key = f"{prefix}snapshot"
        self.version_key = f"{prefix}snapshot:version"
        self.lock_key = f"{prefix}snapshot:lock"

    def publish(self, build: Callable[[], dict[str, Any]]) -> int:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=10)
        try:
            with client.lock(self.lock_key, timeout=60, blocking_timeout=60):
                doc = build()
                doc["version"] = int(client.incr(self.version_key))
                pipe = client.pipeline(transaction=True)
                pipe.set(self.doc_key, orjson.dumps(doc))
                pipe.set(self.version_key, doc["version"])
                pipe.execute()
        finally:
            client.close()
        return int(doc["version"])

    async def version(self, client: Any) -> int:
        raw = await client.get(self.version_key)
        return int(raw) if raw else 0

    async def load(self, client: Any) -> dict[str, Any] | None:
        raw = await client.get(self.doc_key)
        return orjson.loads(raw) if raw else None


class FileSnapshotStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, build: Callable[[], dict[str, Any]]) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read()
            doc = build()
            doc["version"] = (int(current["version"]) if current else 0) + 1
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(orjson.dumps(doc))
            os.replace(tmp, self.path)
        return int(doc["version"])

    def stamp(self) -> tuple[int, int] | None:
        """A cheap change marker (inode, mtime) without reading the file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def read(self) -> dict[str, Any] | None:
        try:
            return orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None


def store_from_settings(settings: Any) -> RedisSnapshotStore | FileSnapshotStore:
    if settings.REDIS_URL:
        return RedisSnapshotStore(settings.REDIS_URL, settings.REDIS_PREFIX)
    return FileSnapshotStore(Path(settings.SNAPSHOT_FILE))


CHANGE_GROUP = "tollgate.snapshot"

