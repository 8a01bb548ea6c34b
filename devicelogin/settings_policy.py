"""Managed settings: which policy a signed-in device gets, its checksum, and
what an admin may put in it.

The checksum is ``sha256:`` and the hex SHA-256 of the settings as JSON with
keys sorted at every level and no whitespace; the client sends it back in
``If-None-Match`` and gets 304 while it still matches.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from devicelogin.models import DeviceSignin, ManagedSettings
from governance import access
from governance.models import Organization, Team

# Top-level settings Claude Code reads from a managed source, and their JSON types.
KNOWN = {
    "availableModels": list, "model": str, "env": dict, "permissions": dict, "allowedMcpServers": list,
    "deniedMcpServers": list, "hooks": dict, "cleanupPeriodDays": int, "includeCoAuthoredBy": bool,
    "forceLoginMethod": str, "forceLoginGatewayUrl": str, "apiKeyHelper": str, "statusLine": dict,
    "disableAllHooks": bool, "enableAllProjectMcpServers": bool, "outputStyle": str, "spinnerTipsEnabled": bool,
}  # fmt: skip


def checksum(document: dict[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Policy:
    uuid: str
    settings: dict[str, Any]

    @property
    def checksum(self) -> str:
        return checksum(self.settings)

    def document(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "checksum": self.checksum, "settings": self.settings}


def settings_for(signin: DeviceSignin) -> Policy | None:
    """The team's policy when it has one, else the organization's, else none."""
    team_id = signin.key.team_id
    scope = Q(team=None) | Q(team_id=team_id) if team_id is not None else Q(team=None)
    rows = {row.team_id: row for row in ManagedSettings.objects.filter(scope, organization_id=signin.organization_id)}
    row = rows.get(team_id) if team_id is not None else None
    row = row or rows.get(None)
    return None if row is None else Policy(str(row.uuid), row.settings)


def _allowed(patterns: list[str], model: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(model, p) for p in patterns)


def settings_validate(document: Any, *, organization: Organization, team: Team | None) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ValidationError({"settings": "Managed settings are a JSON object."})
    errors = []
    for name, value in document.items():
        kind = KNOWN.get(name)
        if kind is not None and not isinstance(value, kind):
            errors.append(f"{name} must be a JSON {kind.__name__.replace('dict', 'object').replace('list', 'array')}.")
    models = document.get("availableModels")
    if isinstance(models, list):
        # What the client offers must be what the gateway lets through.
        for model in models:
            if not isinstance(model, str):
                errors.append("availableModels lists model ids (strings).")
                continue
            for label, patterns in (("organization", organization.allowed_models), ("team", team.allowed_models if team else [])):
                if not _allowed(list(patterns), model):
                    errors.append(f"availableModels: '{model}' is not allowed by the {label}'s model allowlist.")
    env = document.get("env")
    if isinstance(env, dict) and any(not isinstance(v, str) for v in env.values()):
        errors.append("env values are strings.")
    if errors:
        raise ValidationError({"settings": errors})
    return document


@transaction.atomic
def managed_settings_set(
    *, actor: Any, organization: Organization, team: Team | None, document: Any
) -> ManagedSettings:
    if not access.actor_manages(actor=actor, organization=organization):
        raise PermissionDenied("Only an admin of the organization sets its managed settings.")
    if team is not None and team.organization_id != organization.pk:
        raise ValidationError({"team": "The team belongs to another organization."})
    document = settings_validate(document, organization=organization, team=team)
    row = ManagedSettings.objects.select_for_update().filter(organization=organization, team=team).first()
    before = None if row is None else {"settings": row.settings}
    if row is None:
        row = ManagedSettings(uuid=uuid.uuid4(), organization=organization, team=team)
    row.settings, row.updated_at, row.updated_by = document, timezone.now(), getattr(actor, "pk", None) and actor
    row.save()
    audit_record(actor=actor, action="managed_settings.set", target=row, before=before, after={"settings": document})
    return row
