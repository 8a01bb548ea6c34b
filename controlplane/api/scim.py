"""SCIM 2.0 (RFC 7643/7644) for an identity provider's provisioning client: Users and
Groups under /scim/v2/, with the bearer token issued for that provider. Okta and
Entra ID create, update and deactivate people here; a deactivation disables their
keys (the data plane refuses them within a second) and their sign-ins."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from identity import services
from identity.models import IdentityLink, IdentityProvider, ScimGroup, ScimToken

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# The one filter form provisioning clients send: attribute eq "value".
FILTER = re.compile(r'^\s*(\w+(?:\.\w+)?)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.I)
MEMBER_PATH = re.compile(r'^members\[value eq "([^"]+)"\]$', re.I)


class ScimJsonParser(JSONParser):
    media_type = "application/scim+json"


class ScimJsonRenderer(JSONRenderer):
    media_type = "application/scim+json"


class ScimTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ScimToken] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        token = services.scim_token_for_secret(parts[1].decode("ascii", "replace"))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid SCIM token.")
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="scim"'


class HasScimToken(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ScimToken)


def _bool(value: Any) -> bool:
    # Entra ID sends "True"/"False" as strings.
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def _error(status_code: int, detail: str, scim_type: str = "") -> Response:
    body = {"schemas": [ERROR], "status": str(status_code), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return Response(body, status=status_code)


@extend_schema(exclude=True)
class ScimView(APIView):
    authentication_classes = [ScimTokenAuthentication]
    permission_classes = [HasScimToken]
    parser_classes = [ScimJsonParser, JSONParser]
    renderer_classes = [ScimJsonRenderer, JSONRenderer]

    @property
    def idp(self) -> IdentityProvider:
        return self.request.auth.identity_provider

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response = _error(401, str(exc.detail))
            response["WWW-Authenticate"] = 'Bearer realm="scim"'
            return response
        if isinstance(exc, Http404):
            return _error(404, str(exc) or "Not found.")
        if isinstance(exc, ValidationError):
            uniqueness = (
                any(getattr(e, "code", "") == "uniqueness" for e in exc.error_list)
                if not hasattr(exc, "error_dict")
                else any(
                    e.code == "uniqueness" for errors in exc.error_dict.values() for e in errors
                )
            )
            text = " ".join(exc.messages)
            return (
                _error(409, text, "uniqueness") if uniqueness else _error(400, text, "invalidValue")
            )
        if isinstance(exc, exceptions.APIException):
            return _error(exc.status_code, str(exc.detail))
        return super().handle_exception(exc)

    def page(self, request: Request, rows: list[dict[str, Any]]) -> Response:
        start = max(1, int(request.query_params.get("startIndex") or 1))
        count = max(0, min(200, int(request.query_params.get("count") or 100)))
        chosen = rows[start - 1 : start - 1 + count]
        return Response(
            {
                "schemas": [LIST],
                "totalResults": len(rows),
                "startIndex": start,
                "itemsPerPage": len(chosen),
                "Resources": chosen,
            }
        )

    def filtered(self, request: Request, fields: dict[str, str]) -> dict[str, str]:
        raw = request.query_params.get("filter")
        if not raw:
            return {}
        match = FILTER.match(raw)
        if not match or match.group(1).lower() not in fields:
            raise exceptions.ValidationError(
                f'Only filters of the form {" or ".join(fields)} eq "…" are supported.'
            )
        return {fields[match.group(1).lower()]: match.group(2).replace('\\"', '"')}


def _user_resource(request: Request, link: IdentityLink) -> dict[str, Any]:
    user = link.user
    return {
        "schemas": [USER],
        "id": str(link.pk),
        "externalId": link.subject.removeprefix("scim:"),
        "userName": user.email,
        "name": {
            "givenName": user.first_name,
            "familyName": user.last_name,
            "formatted": user.get_full_name(),
        },
        "displayName": user.get_full_name() or user.email,
        "emails": [{"value": user.email, "primary": True, "type": "work"}],
        "active": not link.suspended,
        "meta": {
            "resourceType": "User",
            "created": link.created_at.isoformat(),
            "location": request.build_absolute_uri(f"/scim/v2/Users/{link.pk}"),
        },
    }


def _user_fields(data: dict[str, Any]) -> dict[str, Any]:
    emails = data.get("emails") or []
    primary = next(
        (e.get("value") for e in emails if isinstance(e, dict) and e.get("primary")), None
    )
    email = (
        primary
        or next((e.get("value") for e in emails if isinstance(e, dict)), None)
        or data.get("userName", "")
    )
    name = data.get("name") or {}
    full = name.get("formatted") or " ".join(
        p for p in (name.get("givenName"), name.get("familyName")) if p
    )
    return {"email": str(email), "name": str(full or data.get("displayName") or "")}


class ScimUsersApi(ScimView):
    def _links(self) -> QuerySet[IdentityLink]:
        return services.scim_links(self.idp).order_by("pk")

    def get(self, request: Request) -> Response:
        links = self._links()
        wanted = self.filtered(
            request,
            {
                "username": "user__email__iexact",
                "externalid": "subject",
                "emails.value": "user__email__iexact",
            },
        )
        if "subject" in wanted:
            wanted["subject"] = f"scim:{wanted['subject']}"
        return self.page(
            request, [_user_resource(request, link) for link in links.filter(**wanted)]
        )

    def post(self, request: Request) -> Response:
        data = request.data
        fields = _user_fields(data)
        link = services.scim_user_create(
            idp=self.idp,
            user_name=str(data.get("userName") or ""),
            email=fields["email"],
            external_id=str(data.get("externalId") or ""),
            name=fields["name"],
            active=_bool(data.get("active", True)),
        )
        link.refresh_from_db()
        return Response(_user_resource(request, link), status=status.HTTP_201_CREATED)


class ScimUserApi(ScimView):
    def _link(self, user_id: str) -> IdentityLink:
        link = (
            services.scim_links(self.idp)
            .filter(pk=int(user_id) if user_id.isdigit() else -1)
            .first()
        )
        if link is None:
            raise Http404("No such user.")
        return link

    def get(self, request: Request, user_id: str) -> Response:
        return Response(_user_resource(request, self._link(user_id)))

    def put(self, request: Request, user_id: str) -> Response:
        link = self._link(user_id)
        services.scim_user_update(idp=self.idp, link=link, **_user_fields(request.data))
        if "active" in request.data:
            link = services.scim_user_set_active(
                idp=self.idp, link=link, active=_bool(request.data["active"])
            )
        return Response(_user_resource(request, self._link(user_id)))

    def patch(self, request: Request, user_id: str) -> Response:
        link = self._link(user_id)
        for op in request.data.get("Operations") or []:
            kind, path, value = (
                str(op.get("op", "")).lower(),
                str(op.get("path") or ""),
                op.get("value"),
            )
            if kind not in ("replace", "add"):
                raise exceptions.ValidationError(
                    f"Users take replace and add operations, not {kind!r}."
                )
            changes = value if not path and isinstance(value, dict) else {path: value}
            for attribute, new in changes.items():
                attribute = attribute.removeprefix(f"{USER}:")
                if attribute == "active":
                    link = services.scim_user_set_active(idp=self.idp, link=link, active=_bool(new))
                elif attribute in ("userName", 'emails[type eq "work"].value'):
                    services.scim_user_update(idp=self.idp, link=link, email=str(new))
                elif attribute in ("displayName", "name.formatted"):
                    services.scim_user_update(idp=self.idp, link=link, name=str(new))
                # Other attributes (title, phone numbers…) Tollgate does not keep.
        return Response(_user_resource(request, self._link(user_id)))

    def delete(self, request: Request, user_id: str) -> Response:
        services.scim_user_delete(idp=self.idp, link=self._link(user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _group_resource(request: Request, group: ScimGroup, links: dict[int, int]) -> dict[str, Any]:
    return {
        "schemas": [GROUP],
        "id": str(group.pk),
        "externalId": group.external_id,
        "displayName": group.display_name,
        "members": [
            {"value": str(links[u.pk]), "display": u.email}
            for u in group.members.all()
            if u.pk in links
        ],
        "meta": {
            "resourceType": "Group",
            "created": group.created_at.isoformat(),
            "location": request.build_absolute_uri(f"/scim/v2/Groups/{group.pk}"),
        },
    }


class ScimGroupsBase(ScimView):
    def link_ids(self) -> dict[int, int]:
        return dict(services.scim_links(self.idp).values_list("user_id", "pk"))

    def group(self, group_id: str) -> ScimGroup:
        group = ScimGroup.objects.filter(
            identity_provider=self.idp, pk=int(group_id) if group_id.isdigit() else -1
        ).first()
        if group is None:
            raise Http404("No such group.")
        return group


class ScimGroupsApi(ScimGroupsBase):
    def get(self, request: Request) -> Response:
        groups = (
            ScimGroup.objects.filter(identity_provider=self.idp)
            .prefetch_related("members")
            .order_by("pk")
        )
        groups = groups.filter(
            **self.filtered(request, {"displayname": "display_name", "externalid": "external_id"})
        )
        links = self.link_ids()
        return self.page(request, [_group_resource(request, g, links) for g in groups])

    def post(self, request: Request) -> Response:
        group = services.scim_group_create(
            idp=self.idp,
            display_name=str(request.data.get("displayName") or ""),
            external_id=str(request.data.get("externalId") or ""),
            member_ids=[str(m.get("value")) for m in request.data.get("members") or []],
        )
        return Response(
            _group_resource(request, group, self.link_ids()), status=status.HTTP_201_CREATED
        )


class ScimGroupApi(ScimGroupsBase):
    def get(self, request: Request, group_id: str) -> Response:
        return Response(_group_resource(request, self.group(group_id), self.link_ids()))

    def put(self, request: Request, group_id: str) -> Response:
        group = services.scim_group_update(
            idp=self.idp,
            group=self.group(group_id),
            display_name=str(request.data.get("displayName") or ""),
            replace=[str(m.get("value")) for m in request.data.get("members") or []],
        )
        return Response(_group_resource(request, group, self.link_ids()))

    def patch(self, request: Request, group_id: str) -> Response:
        group = self.group(group_id)
        for op in request.data.get("Operations") or []:
            kind, path, value = (
                str(op.get("op", "")).lower(),
                str(op.get("path") or ""),
                op.get("value"),
            )
            members = [str(m.get("value")) for m in value] if isinstance(value, list) else []
            named = MEMBER_PATH.match(path)
            if kind == "add" and path == "members":
                services.scim_group_update(idp=self.idp, group=group, add=members)
            elif kind == "remove" and named:
                services.scim_group_update(idp=self.idp, group=group, remove=[named.group(1)])
            elif kind == "remove" and path == "members":
                services.scim_group_update(idp=self.idp, group=group, remove=members)
            elif kind == "replace" and path == "members":
                services.scim_group_update(idp=self.idp, group=group, replace=members)
            elif kind == "replace" and (
                path == "displayName" or (not path and isinstance(value, dict))
            ):
                name = value if path else value.get("displayName")
                services.scim_group_update(idp=self.idp, group=group, display_name=str(name or ""))
            else:
                raise exceptions.ValidationError(f"Unsupported group operation {kind} {path!r}.")
        return Response(_group_resource(request, self.group(group_id), self.link_ids()))

    def delete(self, request: Request, group_id: str) -> Response:
        services.scim_group_delete(idp=self.idp, group=self.group(group_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScimServiceProviderConfigApi(ScimView):
    def get(self, request: Request) -> Response:
        return Response(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 200},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "Bearer token",
                        "description": "Issued per identity provider in the console or API.",
                    }
                ],
            }
        )
