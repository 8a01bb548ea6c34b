"""The MCP part of the snapshot as the data plane holds it: servers, tool
policies along the key's chain, and named bundles, compiled once per snapshot."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any

import orjson

SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    id: int
    name: str
    description: str
    transport: str  # "http" or "stdio"
    url: str
    auth: str
    token_url: str
    client_id: str
    scope: str
    command: tuple[str, ...]
    cwd: str
    headers: dict[str, str]
    client_secret: str
    env: dict[str, str]
    timeout_seconds: float
    # Changes whenever anything about the server changes, secrets included, so
    # a worker reconnects exactly when it must.
    fingerprint: str


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    # A pattern without "__" names a whole server: "github" is "github__*".
    full = [p if SEPARATOR in p else f"{p}{SEPARATOR}*" for p in patterns]
    if not full:
        return None
    return re.compile("|".join(translate(p) for p in full))


@dataclass(frozen=True, slots=True)
class Level:
    """One level's say: a tool must match ``allow`` (None: any) and not ``deny``."""

    label: str
    allow: re.Pattern[str] | None
    deny: re.Pattern[str] | None

    def permits(self, tool: str) -> bool:
        if self.allow is not None and self.allow.match(tool) is None:
            return False
        return self.deny is None or self.deny.match(tool) is None


@dataclass(frozen=True, slots=True)
class ToolFilter:
    levels: tuple[Level, ...]

    def permits(self, tool: str) -> bool:
        return all(level.permits(tool) for level in self.levels)

    def refusal(self, tool: str) -> str | None:
        """Which level keeps the tool from this caller, in words, or None."""
        for level in self.levels:
            if not level.permits(tool):
                return level.label
        return None


def header_level(label: str, include: str | None, exclude: str | None) -> Level | None:
    """The per-request narrowing from the include/exclude headers (comma-separated patterns)."""
    allow = [p.strip() for p in (include or "").split(",") if p.strip()]
    deny = [p.strip() for p in (exclude or "").split(",") if p.strip()]
    if not allow and not deny:
        return None
    return Level(label, _compile(allow), _compile(deny))


@dataclass(slots=True)
class McpConfig:
    servers: dict[str, ServerConfig] = field(default_factory=dict)
    # (level, target id) -> that level's policy.
    policies: dict[tuple[str, Any], Level] = field(default_factory=dict)
    bundles: dict[str, Level] = field(default_factory=dict)
    _filters: dict[tuple[Any, ...], ToolFilter] = field(default_factory=dict)

    def filter_for(
        self, key_id: int, user_id: int | None, team_id: int | None, organization_id: int, bundle: str | None
    ) -> ToolFilter:
        cache_key = (key_id, bundle)
        cached = self._filters.get(cache_key)
        if cached is not None:
            return cached
        chain: list[tuple[str, Any]] = [("key", key_id)]
        if user_id:
            chain.append(("user", (organization_id, user_id)))
        if team_id:
            chain.append(("team", team_id))
        chain.append(("organization", organization_id))
        levels = [self.policies[t] for t in chain if t in self.policies]
        if bundle is not None and bundle in self.bundles:
            levels.append(self.bundles[bundle])
        built = ToolFilter(tuple(levels))
        if len(self._filters) < 100_000:
            self._filters[cache_key] = built
        return built


EMPTY_MCP = McpConfig()

_LABELS = {"key": "this key's", "user": "your user's", "team": "your team's", "organization": "your organization's"}


def parse_mcp(doc: dict[str, Any], unseal: Callable[[str], str]) -> McpConfig:
    servers: dict[str, ServerConfig] = {}
    for s in doc.get("servers", []):
        secrets = orjson.loads(unseal(s.get("secrets_sealed", "")) or "{}")
        fingerprint = hashlib.sha256(orjson.dumps({**s, "secrets": secrets}, option=orjson.OPT_SORT_KEYS)).hexdigest()
        servers[s["name"]] = ServerConfig(
            id=s["id"],
            name=s["name"],
            description=s.get("description", ""),
            transport=s["transport"],
            url=s.get("url", ""),
            auth=s.get("auth", "none"),
            token_url=s.get("token_url", ""),
            client_id=s.get("client_id", ""),
            scope=s.get("scope", ""),
            command=tuple(s.get("command") or ()),
            cwd=s.get("cwd", ""),
            headers=dict(secrets.get("headers") or {}),
            client_secret=secrets.get("client_secret", ""),
            env=dict(secrets.get("env") or {}),
            timeout_seconds=float(s.get("timeout_seconds") or 60),
            fingerprint=fingerprint[:16],
        )
    policies: dict[tuple[str, Any], Level] = {}
    for p in doc.get("policies", []):
        level = p["level"]
        target: Any = {
            "key": p.get("key_id"),
            "user": (p["organization_id"], p.get("user_id")),
            "team": p.get("team_id"),
            "organization": p["organization_id"],
        }[level]
        policies[(level, target)] = Level(
            f"{_LABELS[level]} MCP tool policy", _compile(p.get("allowed") or []), _compile(p.get("denied") or [])
        )
    bundles = {
        name: Level(f"the '{name}' bundle", _compile(tools), None) for name, tools in (doc.get("bundles") or {}).items()
    }
    return McpConfig(servers=servers, policies=policies, bundles=bundles)
