"""Providers, routes and prices, for platform admins: credentials write-only, every route
with its tiers and weights, an explainer of where a key's request for a model goes, and
prices that can be edited."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dataplane.snapshot import parse
from governance import access, services
from governance.models import ModelPrice, Provider, Route, VirtualKey
from governance.sealing import unseal
from governance.snapshot import snapshot_build

PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_write_per_mtok", "cache_read_per_mtok")


def route_explained(*, key: VirtualKey, model: str) -> dict[str, Any]:
    """Where the data plane would send ``key``'s request for ``model``: the snapshot it
    would load, read by its own route matching (tiers in order, weights within a tier)."""
    # Through JSON and with a version, exactly as a worker reads the published document.
    snapshot = parse(orjson.loads(orjson.dumps({**snapshot_build(), "version": 0})), unseal)
    entry = next((e for e in snapshot.keys.values() if e.id == key.pk), None)
    if entry is None or not entry.active:
        return {"refused": "the key is disabled, expired or its owner deactivated"}
    if not entry.allows(model):
        return {
            "refused": f"the model is outside the key's allowlist ({'; '.join(entry.allowed_models)})"
        }
    route = snapshot.routes.match(entry, model)
    if route is not None:
        scope = Route.objects.select_related("organization", "team", "key").get(pk=route.id)
        # Weights are relative within a tier (the snapshot scales them by each
        # provider's credentials): shown as the share of the tier's traffic.
        tiers = [
            [
                {
                    "provider": t.provider.name,
                    "model": t.model or model,
                    "share": round(100 * t.weight / sum(x.weight for x in tier)),
                }
                for t in tier
            ]
            for tier in route.tiers
        ]
        return {"route": scope, "tiers": tiers, "price": snapshot.price_for(model)}
    if snapshot.anthropic is not None:
        return {
            "route": None,
            "tiers": [[{"provider": snapshot.anthropic.name, "model": model, "share": 100}]],
            "price": snapshot.price_for(model),
        }
    return {"refused": "no route matches and there is no Anthropic provider to fall back on"}


@login_required
def provider_page(request: HttpRequest) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    routes = list(
        Route.objects.select_related("organization", "team", "key")
        .prefetch_related("targets__provider")
        .order_by("id")
    )
    keys = list(
        VirtualKey.objects.select_related("organization").order_by("organization__name", "name")
    )
    explained = None
    key_id, model = request.GET.get("key", ""), request.GET.get("model", "").strip()
    if key_id.isdigit() and model:
        key = next((k for k in keys if k.pk == int(key_id)), None)
        if key is not None:
            explained = {"key": key, "model": model, **route_explained(key=key, model=model)}
    context = {
        "title": "Providers, routes and prices",
        "providers": Provider.objects.order_by("name").prefetch_related("credentials"),
        "routes": routes,
        "prices": ModelPrice.objects.select_related("provider").order_by("provider__name", "model"),
        "keys": keys,
        "explained": explained,
        "asked": {"key": key_id, "model": model},
    }
    return render(request, "console/providers.html", context)


@login_required
@require_POST
def provider_credential(request: HttpRequest, provider_id: int) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    provider = Provider.objects.filter(pk=provider_id).first()
    secret = request.POST.get("credential", "")
    if provider is None or not secret:
        messages.error(request, "Give the new credential.")
    else:
        services.provider_update(actor=request.user, provider=provider, credential=secret)
        messages.success(
            request,
            f"Credential of {provider.name} replaced; it is stored encrypted and never shown.",
        )
    return redirect(reverse("providers"))


@login_required
@require_POST
def price_edit(request: HttpRequest, price_id: int) -> HttpResponse:
    access.platform_admin_require(user=request.user)
    price = ModelPrice.objects.filter(pk=price_id).first()
    if price is None:
        messages.error(request, "No such price.")
        return redirect(reverse("providers"))
    try:
        given = {f: Decimal(request.POST.get(f, "")) for f in PRICE_FIELDS}
    except InvalidOperation:
        messages.error(request, "Prices are numbers of USD per million tokens.")
        return redirect(reverse("providers"))
    # Only the four rates shown change; every other column keeps its value.
    kept = {
        f.name: getattr(price, f.name)
        for f in ModelPrice._meta.concrete_fields
        if f.name not in (*PRICE_FIELDS, "id", "model", "provider", "updated_at")
    }
    try:
        services.price_set(
            actor=request.user, model=price.model, provider=price.provider, **kept, **given
        )
    except ValidationError as exc:
        messages.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
        return redirect(reverse("providers"))
    messages.success(request, f"Price of {price.model} saved.")
    return redirect(reverse("providers"))
