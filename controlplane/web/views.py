from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.models import Membership


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("organization", "team")
        .order_by("organization__name")
    )
    return render(
        request,
        "console/home.html",
        {
            "title": "Overview",
            "memberships": memberships,
            "gateway_url": settings.GATEWAY_PUBLIC_URL.rstrip("/"),
        },
    )
