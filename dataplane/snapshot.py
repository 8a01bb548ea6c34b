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
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fnmatch import translate
from pathlib import Path
from typing import Any

import orjson

from dataplane.limits import NANO, BudgetRule, LimitRule, policy_uid
from dataplane.mcp.config import McpConfig, parse_mcp
from dataplane.providers.base import ProviderConfig
from dataplane.routing import EMPTY_ROUTES, Routes, parse_routes

_DATED = re.compile(r"^(.*?)(?:-\d{8}|@\d{8}|-\d{4}-\d{2}-\d{2}|-v\d+(?::\d+)?)$")
_VENDOR = re.compile(r"^(?:(?:us|eu|apac|jp|au|global)\.)?(?:anthropic|openai|meta|mistral|amazon)\.")


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: int
    prefix: str
    name: str
    active: bool
    expires_at: float | None
    # Each level's patterns, as "Key: a, b" lines for messages, and compiled:
    # a model must match at every level that has a list (key ∩ team ∩ org).
    allowed_models: tuple[str, ...]
    allowed: tuple[re.Pattern[str], ...]
    user_id: int | None
    team_id: int | None
    organization_id: int
    budgets: tuple[BudgetRule, ...] = ()
    limits: tuple[LimitRule, ...] = ()
    # False when the key's user was deactivated (``active`` is then False too,
    # so the hot path checks one flag; this one only picks the message).
    owner_active: bool = True
    # "<id>.<created ms>": ids can be reused (SQLite); what is learned per organization must not be.
    organization_uid: str = ""
    # A key a device signed in through the gateway stands on (devicelogin/):
    # only its bearer uses it, and refusals take Claude Code's sign-in shapes.
    signin: bool = False

    def allows(self, model: str) -> bool:
        return all(pattern.match(model) is not None for pattern in self.allowed)

    @property
    def governed(self) -> bool:
        return bool(self.budgets or self.limits)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token (the stored figures are per million), per web search call.
    The float nano-USD figures serve reservations, which are estimates; costs
    use the Decimals. Above ``long_threshold`` prompt tokens the request is
    billed at ``long`` instead, every token of it."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_read: Decimal
    # None: 1-hour cache writes cost the 5-minute rate.
    cache_write_1h: Decimal | None = None
    web_search: Decimal = Decimal(0)
    long_threshold: int = 0
    long: Price | None = None
    reserve_input_nano: float = 0.0
    output_nano: float = 0.0

    def __post_init__(self) -> None:
        if self.cache_write_1h is None:
            object.__setattr__(self, "cache_write_1h", self.cache_write)
        object.__setattr__(self, "reserve_input_nano", float(max(self.input, self.cache_write) * NANO))
        object.__setattr__(self, "output_nano", float(self.output * NANO))

    def scaled(self, factor: Decimal) -> Price:
        """The same price times ``factor`` (a deployment billing a premium)."""
        return Price(
            self.input * factor,
            self.output * factor,
            self.cache_write * factor,
            self.cache_read * factor,
            self.cache_write_1h * factor if self.cache_write_1h is not None else None,
            self.web_search * factor,
            self.long_threshold,
            self.long.scaled(factor) if self.long is not None else None,
        )


def lookup_price(prices: dict[str, Price], model: str) -> Price | None:
    """Exact model id first, then the id without its vendor prefix, date or version suffix."""
    price = prices.get(model)
    if price is None:
        # Bedrock and Vertex ids: "us.anthropic.claude-opus-4-5-20251101-v1:0",
        # "claude-opus-4-5@20251101"; and "provider/model" names.
        bare = _VENDOR.sub("", model.rsplit("/", 1)[-1])
        price = prices.get(bare)
        while price is None:
            dated = _DATED.match(bare)
            if not dated:
                break
            bare = dated.group(1)
            price = prices.get(bare)
    return price


@dataclass(slots=True)
class ProviderPrices:
    """What one provider bills where it differs from list prices: its own rows,
    and a multiplier on the list price of every other model."""

    own: dict[str, Price]
    multiplier: Decimal
    cache: dict[str, Price | None] = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    version: int
    keys: dict[str, KeyEntry]
    providers: dict[int, ProviderConfig]
    anthropic: ProviderConfig | None
    prices: dict[str, Price]
    routes: Routes = field(default_factory=lambda: EMPTY_ROUTES)
    providers_by_name: dict[str, ProviderConfig] = field(default_factory=dict)
    variants: dict[int, list[tuple[ProviderConfig, int]]] = field(default_factory=dict)
    mcp: McpConfig = field(default_factory=McpConfig)
    # Providers that bill other than list price, by provider id.
    provider_prices: dict[int, ProviderPrices] = field(default_factory=dict)
    _price_cache: dict[str, Price | None] = field(default_factory=dict)
    # Every key by its prefix: how a signed-in device's bearer names its key (signin.py).
    by_prefix: dict[str, KeyEntry] = field(default_factory=dict)

    def price_for(self, model: str, provider_id: int | None = None) -> Price | None:
        """The price of ``model`` as ``provider_id`` bills it (list price without one)."""
        if provider_id is not None and provider_id in self.provider_prices:
            return self._provider_price(model, self.provider_prices[provider_id])
        if model in self._price_cache:
            return self._price_cache[model]
        price = lookup_price(self.prices, model)
        if len(self._price_cache) < 10_000:
            self._price_cache[model] = price
        return price

    def _provider_price(self, model: str, billing: ProviderPrices) -> Price | None:
        if model in billing.cache:
            return billing.cache[model]
        price = lookup_price(billing.own, model)
        if price is None:
            listed = self.price_for(model)
            price = listed.scaled(billing.multiplier) if listed is not None and billing.multiplier != 1 else listed
        if len(billing.cache) < 10_000:
            billing.cache[model] = price
        return price


EMPTY = Snapshot(version=0, keys={}, providers={}, anthropic=None, prices={})
_MTOK = Decimal(1_000_000)


def parse_price(values: list[Any]) -> Price:
    """A price row of the document: input, output, 5-minute cache write, cache
    read (USD per million; the four every version has), then 1-hour cache write,
    web search per 1,000 calls, the long-context threshold and that tier's input,
    output, 5-minute write, read and 1-hour write."""
    i, o, cw, cr = (Decimal(v) / _MTOK for v in values[:4])
    if len(values) < 12:
        return Price(i, o, cw, cr)
    threshold = int(values[6])
    long = None
    if threshold:
        long_in, long_out, long_cw, long_cr, long_cw1h = (Decimal(v) / _MTOK for v in values[7:12])
        long = Price(long_in, long_out, long_cw, long_cr, long_cw1h, Decimal(values[5]) / 1000)
    return Price(i, o, cw, cr, Decimal(values[4]) / _MTOK, Decimal(values[5]) / 1000, threshold, long)


def _compile(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(translate(p) for p in patterns))


def _rules(doc: dict[str, Any]) -> tuple[dict[tuple[str, Any], list[BudgetRule]], dict[tuple[str, Any], list[LimitRule]], dict[str, Any]]:
    orgs = {o["id"]: o for o in doc.get("organizations", [])}
    teams = {t["id"]: t for t in doc.get("teams", [])}
    users = doc.get("users", {})

    def target(r: dict[str, Any]) -> tuple[str, Any]:
        level = r["level"]
        if level == "team":
            return level, r["team_id"]
        if level == "user":
            return level, (r["organization_id"], r["user_id"])
        if level == "key":
            return level, r["key_id"]
        return level, r["organization_id"]

    def label(r: dict[str, Any]) -> str:
        level = r["level"]
        if level == "team":
            return f"Team '{teams.get(r['team_id'], {}).get('name', r['team_id'])}'"
        if level == "user":
            return f"User '{users.get(str(r['user_id']), r['user_id'])}'"
        if level == "key":
            return "This key's"
        return f"Organization '{orgs.get(r['organization_id'], {}).get('name', r['organization_id'])}'"

    budgets: dict[tuple[str, Any], list[BudgetRule]] = {}
    for b in doc.get("budgets", []):
        budgets.setdefault(target(b), []).append(
            BudgetRule(
                uid=policy_uid(b["id"], b["created_at"]),
                id=b["id"],
                organization_id=b["organization_id"],
                label=label(b),
                amount_nano=int(Decimal(b["amount_usd"]) * NANO),
                amount_usd=b["amount_usd"],
                period=b["period"],
                rolling=b["rolling"],
                anchor=b["anchor"],
                floor_nano=int(Decimal(b.get("floor_usd") or "0") * NANO),
                floor_period_start=b.get("floor_period_start") or 0.0,
                level=b["level"],
            )
        )
    limits: dict[tuple[str, Any], list[LimitRule]] = {}
    for r in doc.get("limits", []):
        text = label(r)
        limits.setdefault(target(r), []).append(
            LimitRule(
                uid=policy_uid(r["id"], r["created_at"]),
                id=r["id"],
                organization_id=r["organization_id"],
                label="This key" if text == "This key's" else text,
                metric=r["metric"],
                limit=r["limit"],
                window=r["window_seconds"],
                model=_compile([r["model_pattern"]]) if r.get("model_pattern") else None,
                provider_id=r.get("provider_id"),
            )
        )
    return budgets, limits, {"orgs": orgs, "teams": teams}


def parse(doc: dict[str, Any], unseal: Any) -> Snapshot:
    """Turn a published document into lookup tables; ``unseal`` opens credentials."""
    budgets, limits, names = _rules(doc)
    orgs, teams = names["orgs"], names["teams"]
    keys: dict[str, KeyEntry] = {}
    by_prefix: dict[str, KeyEntry] = {}
    now = time.time()
    for k in doc.get("keys", []):
        org_id = k["organization_id"]
        levels = [("Key", k.get("allowed_models") or [])]
        if k.get("team_id") in teams:
            levels.append(("Team", teams[k["team_id"]].get("allowed_models") or []))
        if org_id in orgs:
            levels.append(("Organization", orgs[org_id].get("allowed_models") or []))
        chain = [("key", k["id"])]
        if k.get("user_id"):
            chain.append(("user", (org_id, k["user_id"])))
        if k.get("team_id"):
            chain.append(("team", k["team_id"]))
        chain.append(("organization", org_id))
        entry = KeyEntry(
            id=k["id"],
            prefix=k["prefix"],
            name=k["name"],
            active=k["status"] == "active" and k.get("user_active", True),
            expires_at=k.get("expires_at"),
            allowed_models=tuple(f"{name}: {', '.join(p)}" for name, p in levels if p),
            allowed=tuple(_compile(p) for _, p in levels if p),
            user_id=k.get("user_id"),
            team_id=k.get("team_id"),
            organization_id=org_id,
            budgets=tuple(r for t in chain for r in budgets.get(t, ())),
            limits=tuple(r for t in chain for r in limits.get(t, ())),
            owner_active=k.get("user_active", True),
            organization_uid=f"{org_id}.{int(orgs.get(org_id, {}).get('created_at', 0) * 1000)}",
            signin=bool(k.get("signin")),
        )
        keys[k["digest"]] = entry
        by_prefix[entry.prefix] = entry
        previous = k.get("previous_digest")
        grace = k.get("previous_valid_until")
        if previous and grace and grace > now:
            # The rotated-out secret keeps working, as the same key, until its grace ends.
            keys[previous] = replace(entry, expires_at=min(grace, entry.expires_at or grace))
    providers: dict[int, ProviderConfig] = {}
    # Each provider as many times as it has credentials, with their weights.
    variants: dict[int, list[tuple[ProviderConfig, int]]] = {}
    anthropic = None
    for p in doc.get("providers", []):
        if not p.get("is_active", True):
            continue
        uid = f"{p['id']}.{int(p.get('created_at', 0) * 1000)}"
        provider = ProviderConfig(
            id=p["id"],
            name=p["name"],
            kind=p["kind"],
            base_url=p["base_url"].rstrip("/"),
            credential=unseal(p.get("credential_sealed", "")),
            settings=p.get("settings") or {},
            uid=uid,
        )
        providers[provider.id] = provider
        variants[provider.id] = [(provider, max(1, int(p.get("credential_weight", 1))))]
        for extra in p.get("credentials", []):
            variants[provider.id].append(
                (replace(provider, credential=unseal(extra["credential_sealed"]), uid=f"{uid}#{extra['id']}"), max(1, int(extra["weight"])))
            )
        if provider.kind == "anthropic" and anthropic is None:
            anthropic = provider
    prices = {model: parse_price(values) for model, values in doc.get("prices", {}).items()}
    multipliers = {
        p["id"]: Decimal(p.get("price_multiplier") or 1) for p in doc.get("providers", []) if p["id"] in providers
    }
    own = {int(pid): rows for pid, rows in (doc.get("provider_prices") or {}).items() if int(pid) in providers}
    provider_prices = {
        pid: ProviderPrices(
            own={model: parse_price(values) for model, values in own.get(pid, {}).items()},
            multiplier=multipliers.get(pid, Decimal(1)),
        )
        for pid in providers
        if pid in own or multipliers.get(pid, Decimal(1)) != 1
    }
    return Snapshot(
        version=int(doc["version"]),
        keys=keys,
        providers=providers,
        anthropic=anthropic,
        prices=prices,
        provider_prices=provider_prices,
        routes=parse_routes(doc.get("routes", []), variants),
        providers_by_name={p.name: p for p in providers.values()},
        variants=variants,
        mcp=parse_mcp(doc.get("mcp") or {}, unseal),
        by_prefix=by_prefix,
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

