"""Builds the data plane's configuration snapshot and publishes it."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from dataplane.limits import period_bounds
from dataplane.snapshot import CHANGE_GROUP, store_from_settings
from devicelogin.models import DeviceSignin
from governance.models import (
    Budget,
    BudgetSpend,
    Level,
    McpBundle,
    McpServer,
    McpToolPolicy,
    ModelPrice,
    Organization,
    Provider,
    RateLimit,
    Route,
    Team,
    VirtualKey,
)
from ledger.models import RequestLog

log = logging.getLogger(__name__)


def budget_floor(budget: Budget, start: float) -> Decimal:
    """What a budget's period has spent so far, as PostgreSQL knows it: the larger
    of the last persisted counter and the request log's sum."""
    from datetime import UTC, datetime

    since = datetime.fromtimestamp(start, tz=UTC)
    rows = RequestLog.objects.filter(organization_id=budget.organization_id, created_at__gte=since)
    if budget.level == Level.TEAM:
        rows = rows.filter(team_id=budget.team_id)
    elif budget.level == Level.USER:
        rows = rows.filter(user_id=budget.user_id)
    elif budget.level == Level.KEY:
        rows = rows.filter(key_id=budget.key_id)
    logged = rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
    persisted = (
        BudgetSpend.objects.filter(budget=budget, period_start=since).values_list("spent_usd", flat=True).first()
        or Decimal(0)
    )
    return max(logged, persisted)


def price_row(p: ModelPrice) -> list[Any]:
    """A price as the data plane reads it (dataplane.snapshot.parse_price): the
    four figures every version has first, then the newer ones."""
    return [
        str(p.input_per_mtok),
        str(p.output_per_mtok),
        str(p.cache_write_per_mtok),
        str(p.cache_read_per_mtok),
        str(p.cache_write_1h_per_mtok),
        str(p.web_search_per_1k),
        p.long_context_threshold,
        str(p.long_input_per_mtok),
        str(p.long_output_per_mtok),
        str(p.long_cache_write_per_mtok),
        str(p.long_cache_read_per_mtok),
        str(p.long_cache_write_1h_per_mtok),
    ]


def snapshot_build() -> dict[str, Any]:
    """The document the data plane reads; the store adds its version when publishing."""
    now = timezone.now().timestamp()
    with transaction.atomic():
        keys = [
            {
                "id": k.id,
                "digest": k.digest,
                "previous_digest": k.previous_digest,
                "previous_valid_until": k.previous_valid_until.timestamp() if k.previous_valid_until else None,
                "prefix": k.prefix,
                "name": k.name,
                "status": k.status,
                "expires_at": k.expires_at.timestamp() if k.expires_at else None,
                "allowed_models": list(k.allowed_models),
                "user_id": k.user_id,
                "team_id": k.team_id,
                "organization_id": k.organization_id,
                "signin": k.signin,
            }
            # Keys of devices signed in through the gateway (devicelogin/) say so.
            for k in VirtualKey.objects.annotate(signin=Exists(DeviceSignin.objects.filter(key=OuterRef("pk")))).order_by("id")
        ]
        providers = [
            {
                "id": p.id,
                "name": p.name,
                "kind": p.kind,
                "base_url": p.base_url,
                "credential_sealed": p.credential_sealed,
                "credential_weight": p.credential_weight,
                "credentials": [
                    {"id": c.id, "credential_sealed": c.credential_sealed, "weight": c.weight} for c in p.credentials.all()
                ],
                "settings": p.settings,
                "created_at": p.created_at.timestamp(),
                "is_active": p.is_active,
                "price_multiplier": str(p.price_multiplier),
            }
            for p in Provider.objects.prefetch_related("credentials").order_by("id")
        ]
        routes = [
            {
                "id": r.id,
                "organization_id": r.organization_id,
                "team_id": r.team_id,
                "key_id": r.key_id,
                "model_pattern": r.model_pattern,
                "targets": [
                    {"provider_id": t.provider_id, "model": t.model, "weight": t.weight, "tier": t.tier}
                    for t in r.targets.all()
                ],
            }
            for r in Route.objects.prefetch_related("targets").order_by("id")
        ]
        prices: dict[str, list[Any]] = {}
        provider_prices: dict[str, dict[str, list[Any]]] = {}
        for p in ModelPrice.objects.all():
            row = price_row(p)
            if p.provider_id is None:
                prices[p.model] = row
            else:
                provider_prices.setdefault(str(p.provider_id), {})[p.model] = row
        organizations = [
            {"id": o.id, "name": o.name, "allowed_models": list(o.allowed_models), "created_at": o.created_at.timestamp()}
            for o in Organization.objects.all()
        ]
        teams = [{"id": t.id, "name": t.name, "allowed_models": list(t.allowed_models)} for t in Team.objects.all()]
        budgets = []
        for b in Budget.objects.all().order_by("id"):
            start, _ = period_bounds(b.period, b.rolling, b.anchor.timestamp(), now)
            budgets.append(
                {
                    "id": b.id,
                    "level": b.level,
                    "organization_id": b.organization_id,
                    "team_id": b.team_id,
                    "user_id": b.user_id,
                    "key_id": b.key_id,
                    "created_at": b.created_at.timestamp(),
                    "amount_usd": str(b.amount_usd),
                    "period": b.period,
                    "rolling": b.rolling,
                    "anchor": b.anchor.timestamp(),
                    "floor_usd": str(budget_floor(b, start)),
                    "floor_period_start": start,
                }
            )
        limits = [
            {
                "id": r.id,
                "level": r.level,
                "organization_id": r.organization_id,
                "team_id": r.team_id,
                "user_id": r.user_id,
                "key_id": r.key_id,
                "created_at": r.created_at.timestamp(),
                "metric": r.metric,
                "limit": r.limit,
                "window_seconds": r.window_seconds,
                "model_pattern": r.model_pattern,
                "provider_id": r.provider_id,
            }
            for r in RateLimit.objects.all().order_by("id")
        ]
        user_ids = {k["user_id"] for k in keys if k["user_id"]}
        users = {}
        inactive = set()
        for pk, username, is_active in (
            get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username", "is_active")
        ):
            users[str(pk)] = username
            if not is_active:
                inactive.add(pk)
        # A deactivated user's keys stop with them; the data plane folds this into each key's state.
        for k in keys:
            k["user_active"] = k["user_id"] not in inactive
        mcp = mcp_document()
    return {
        "built_at": timezone.now().isoformat(),
        "keys": keys,
        "providers": providers,
        "prices": prices,
        "provider_prices": provider_prices,
        "organizations": organizations,
        "teams": teams,
        "users": users,
        "budgets": budgets,
        "limits": limits,
        "routes": routes,
        "mcp": mcp,
    }


def mcp_document() -> dict[str, Any]:
    """The MCP gateway's part of the snapshot; secrets stay sealed until a worker opens them."""
    servers = [mcp_server_document(s) for s in McpServer.objects.filter(is_active=True).order_by("name")]
    policies = [
        {
            "level": p.level,
            "organization_id": p.organization_id,
            "team_id": p.team_id,
            "user_id": p.user_id,
            "key_id": p.key_id,
            "allowed": list(p.allowed),
            "denied": list(p.denied),
        }
        for p in McpToolPolicy.objects.all().order_by("id")
    ]
    bundles = {b.name: list(b.tools) for b in McpBundle.objects.all()}
    return {"servers": servers, "policies": policies, "bundles": bundles}


def snapshot_publish() -> int:
    """Publish the current configuration; nudge the workers. Returns the version."""
    version = store_from_settings(settings).publish(snapshot_build)
    layer = get_channel_layer()
    if layer is not None and settings.REDIS_URL:
        # A nudge only: workers also poll the version, so a lost message costs
        # at most one poll interval.
        try:
            async_to_sync(layer.group_send)(CHANGE_GROUP, {"type": "snapshot.changed", "version": version})
        except Exception:
            log.warning("snapshot change notice not sent", exc_info=True)
    return version


def mcp_server_document(s: McpServer) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "transport": s.transport,
        "url": s.url,
        "auth": s.auth,
        "token_url": s.token_url,
        "client_id": s.client_id,
        "scope": s.scope,
        "command": list(s.command),
        "cwd": s.cwd,
        "secrets_sealed": s.secrets_sealed,
        "timeout_seconds": s.timeout_seconds,
    }
