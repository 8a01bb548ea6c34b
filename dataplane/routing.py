"""Which provider, and which of its models, serves a request; and in what order
to try the others when it fails.

Routes come from the snapshot: the most specific scope wins (key, team,
organization, then the whole gateway), and within a scope the longest pattern.
A route's targets are tried tier by tier, weighted at random among the healthy
targets of a tier. A target that keeps failing cools down (30 s, doubling to
5 min) and is probed back by the first request after its cool-down. A Claude
Code session (``X-Claude-Code-Session-Id``) sticks to the target it first got,
so the provider's prompt cache keeps hitting. Health and stickiness are per
worker: a restart forgets them, which costs at most a probe and a cache miss.
"""

from __future__ import annotations

import random
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

from dataplane.providers.base import ProviderConfig, Target

COOL_AFTER = 3  # consecutive failures
COOL_BASE = 30.0
COOL_MAX = 300.0
MIN_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RouteTarget:
    provider: ProviderConfig
    model: str  # "" keeps the requested model
    weight: int
    tier: int

    def target(self, requested: str) -> Target:
        return Target(self.provider, self.model or requested)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    id: int
    pattern: re.Pattern[str]
    specificity: int
    tiers: tuple[tuple[RouteTarget, ...], ...]


@dataclass(slots=True)
class Routes:
    gateway: list[RouteEntry]
    by_org: dict[int, list[RouteEntry]]
    by_team: dict[int, list[RouteEntry]]
    by_key: dict[int, list[RouteEntry]]

    def match(self, key: Any, model: str) -> RouteEntry | None:
        for table, ident in (
            (self.by_key, key.id),
            (self.by_team, key.team_id),
            (self.by_org, key.organization_id),
        ):
            for route in table.get(ident, ()):
                if route.pattern.match(model):
                    return route
        for route in self.gateway:
            if route.pattern.match(model):
                return route
        return None


EMPTY_ROUTES = Routes([], {}, {}, {})


def parse_routes(docs: list[dict[str, Any]], variants: dict[int, list[tuple[ProviderConfig, int]]]) -> Routes:
    routes = Routes([], {}, {}, {})
    for r in docs:
        tiers: dict[int, list[RouteTarget]] = {}
        for t in r.get("targets", []):
            options = variants.get(t["provider_id"])
            if not options:  # inactive or gone
                continue
            # A provider with several credentials is several targets sharing its weight.
            total = sum(w for _, w in options)
            for provider, weight in options:
                share = max(1, round(max(1, t["weight"]) * 1000 * weight / total))
                tiers.setdefault(t["tier"], []).append(RouteTarget(provider, t.get("model", ""), share, t["tier"]))
        if not tiers:
            continue
        entry = RouteEntry(
            id=r["id"],
            pattern=re.compile(translate(r["model_pattern"])),
            specificity=len(r["model_pattern"].replace("*", "")),
            tiers=tuple(tuple(tiers[k]) for k in sorted(tiers)),
        )
        if r.get("key_id"):
            routes.by_key.setdefault(r["key_id"], []).append(entry)
        elif r.get("team_id"):
            routes.by_team.setdefault(r["team_id"], []).append(entry)
        elif r.get("organization_id"):
            routes.by_org.setdefault(r["organization_id"], []).append(entry)
        else:
            routes.gateway.append(entry)
    for table in (routes.by_key, routes.by_team, routes.by_org):
        for entries in table.values():
            entries.sort(key=lambda e: -e.specificity)
    routes.gateway.sort(key=lambda e: -e.specificity)
    return routes


class Health:
    """Consecutive failures per (provider, model); cool-down after a few."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[tuple[str, str, str], tuple[int, float]] = {}

    @staticmethod
    def _key(target: Target) -> tuple[str, str, str]:
        # The URL is part of the identity: a provider pointed elsewhere starts healthy.
        return (target.provider.uid, target.provider.base_url, target.model)

    def available(self, target: Target) -> bool:
        state = self._failures.get(self._key(target))
        return state is None or state[1] <= self.clock()

    def failed(self, target: Target) -> None:
        key = self._key(target)
        count, _ = self._failures.get(key, (0, 0.0))
        count += 1
        until = 0.0
        if count >= COOL_AFTER:
            until = self.clock() + min(COOL_MAX, COOL_BASE * 2 ** (count - COOL_AFTER))
        self._failures[key] = (count, until)

    def succeeded(self, target: Target) -> None:
        if self._failures:
            self._failures.pop(self._key(target), None)


class Stickiness:
    """Session → the target it was served by, most recent first out last."""

    def __init__(self, size: int = 20_000, ttl: float = 3600.0) -> None:
        self.size = size
        self.ttl = ttl
        self._map: OrderedDict[tuple[str, int], tuple[tuple[str, str], float]] = OrderedDict()

    def get(self, session: str, route_id: int) -> tuple[str, str] | None:
        hit = self._map.get((session, route_id))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def remember(self, session: str, route_id: int, target: Target) -> None:
        key = (session, route_id)
        self._map[key] = ((target.provider.uid, target.model), time.monotonic() + self.ttl)
        self._map.move_to_end(key)
        if len(self._map) > self.size:
            self._map.popitem(last=False)


def _weighted_order(targets: list[RouteTarget], rng: random.Random) -> list[RouteTarget]:
    """A random order in which heavier targets tend to come first."""
    keyed = [(rng.random() ** (1.0 / t.weight), t) for t in targets]
    keyed.sort(key=lambda kv: -kv[0])
    return [t for _, t in keyed]


@dataclass(slots=True)
class Plan:
    route: RouteEntry | None
    targets: list[Target]
    fallback_from: int  # index where targets from the request's fallback header start


class Router:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.health = Health()
        self.sticky = Stickiness()
        self.rng = rng or random.Random()

    def candidates(self, route: RouteEntry, model: str, session: str) -> list[Target]:
        healthy: list[Target] = []
        cooling: list[Target] = []
        pinned = self.sticky.get(session, route.id) if session else None
        for tier in route.tiers:
            ordered = _weighted_order(list(tier), self.rng)
            tier_targets = [t.target(model) for t in ordered]
            if pinned is not None:
                tier_targets.sort(key=lambda t: (t.provider.uid, t.model) != pinned)
            for target in tier_targets:
                (healthy if self.health.available(target) else cooling).append(target)
        # Cooling targets stay as a last resort: better a probe than a refusal.
        return healthy + cooling

    def _default(self, snapshot: Any, model: str) -> list[Target]:
        """No route: the first Anthropic provider, over its credentials by weight."""
        options = snapshot.variants.get(snapshot.anthropic.id) or [(snapshot.anthropic, 1)]
        if len(options) == 1:
            return [Target(options[0][0], model)]
        ordered = _weighted_order([RouteTarget(p, "", w, 0) for p, w in options], self.rng)
        targets = [t.target(model) for t in ordered]
        return [t for t in targets if self.health.available(t)] + [t for t in targets if not self.health.available(t)]

    def plan(self, snapshot: Any, key: Any, model: str, session: str, fallbacks: list[str]) -> Plan:
        route = snapshot.routes.match(key, model)
        if route is not None:
            targets = self.candidates(route, model, session)
        elif snapshot.anthropic is not None:
            targets = self._default(snapshot, model)
        else:
            targets = []
        # A single target still gets its retries.
        while targets and len(targets) < MIN_ATTEMPTS:
            targets.append(targets[-1])
        first_fallback = len(targets)
        for extra in fallbacks:
            extra_route = snapshot.routes.match(key, extra)
            if extra_route is not None:
                targets += self.candidates(extra_route, extra, "")
            elif snapshot.anthropic is not None:
                targets += self._default(snapshot, extra)
        return Plan(route, targets, first_fallback)
