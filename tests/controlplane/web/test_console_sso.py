"""Console single sign-on against a real OpenID Connect provider (the certified
`oidc-provider` npm package on 127.0.0.1), driven through Debian's chromium: the
authorization code flow with PKCE, the ID token's signature checked against the
provider's JWKS, group claims mapped to roles and teams, a second provider, a
refused domain, a replayed state, Entra's group overage, and deprovisioning that
disables the person's keys on the data plane within a second."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from governance import services as governance
from governance.models import KeyStatus, Membership, Role
from identity import services
from identity.discovery import provider_metadata
from identity.models import IdentityLink
from identity.oidc import SsoBackend
from tests.identity.provider import LocalOidcProvider

User = get_user_model()
GROUPS_SCOPES = "openid email profile groups"
BODY = b'{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
ADA = {
    "email": "ada@acme.example",
    "email_verified": True,
    "name": "Ada Lovelace",
    "groups": ["eng-platform"],
}
ACCOUNTS = {
    "ada": ADA,
    "bea": {
        "email": "bea@acme.example",
        "email_verified": True,
        "groups": ["eng-platform", "acme-admins"],
    },
    "mallory": {
        "email": "mallory@evil.example",
        "email_verified": True,
        "groups": ["eng-platform"],
    },
    # More groups than Entra puts in a token: a pointer to Microsoft Graph instead.
    "olga": {
        "email": "olga@acme.example",
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {
            "src1": {"endpoint": "https://graph.windows.net/t/users/olga/getMemberObjects"}
        },
    },
}


@pytest.fixture
def _state_in_tmp(settings: Any) -> None:
    """Keep the session's snapshot and spool, where the gateway process reads (the
    control-plane default moves them into each test's own directory)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def providers(
    live_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any]]:
    directory = tmp_path_factory.mktemp("oidc")
    callback = f"{live_server.url}/sso/callback/"
    okta = LocalOidcProvider(
        directory=directory,
        client_id="tollgate-okta",
        client_secret="okta-s3cret",
        redirect_uri=callback,
    )
    keycloak = LocalOidcProvider(
        directory=directory,
        client_id="tollgate-kc",
        client_secret="kc-s3cret",
        redirect_uri=callback,
    )
    yield okta, keycloak
    okta.stop()
    keycloak.stop()


@pytest.fixture
def sso(providers: tuple[Any, Any], bob: Any, acme: Any, globex: Any, eve: Any) -> dict[str, Any]:
    okta, keycloak = providers
    okta.accounts(ACCOUNTS)
    keycloak.accounts(
        {
            "grace": {
                "email": "grace@globex.example",
                "email_verified": True,
                "groups": ["developers"],
            }
        }
    )
    platform = governance.team_create(
        actor=bob, organization=acme, name="Platform", slug="platform"
    )
    acme_idp = services.identity_provider_create(
        actor=bob,
        organization=acme,
        name="Okta",
        preset="okta",
        issuer=okta.issuer,
        client_id=okta.client_id,
        client_secret=okta.client_secret,
        allowed_domains=["acme.example"],
    )
    services.group_mapping_set(
        actor=bob, idp=acme_idp, group="eng-platform", role=Role.DEVELOPER, team=platform
    )
    services.group_mapping_set(actor=bob, idp=acme_idp, group="acme-admins", role=Role.ADMIN)
    globex_idp = services.identity_provider_create(
        actor=eve,
        organization=globex,
        name="Keycloak",
        preset="keycloak",
        issuer=keycloak.issuer,
        client_id=keycloak.client_id,
        client_secret=keycloak.client_secret,
        # Keycloak sends groups through a client mapper; the local provider under a groups scope.
        scopes=GROUPS_SCOPES,
    )
    services.group_mapping_set(actor=eve, idp=globex_idp, group="developers", role=Role.VIEWER)
    return {"okta": acme_idp, "keycloak": globex_idp, "platform": platform, "issuer": okta.issuer}


class Browser:
    """A fresh browser profile: nothing signed in at the console or at the provider."""

    def __init__(self, chromium: Any, base_url: str) -> None:
        self.base_url = base_url
        self.context = chromium.new_context(
            viewport={"width": 1280, "height": 860}, base_url=base_url
        )
        # The provider's login page asks for a web font; the machine has no internet.
        self.context.route(
            "https://fonts.googleapis.com/**",
            lambda r: r.fulfill(status=200, content_type="text/css", body=""),
        )
        self.page = self.context.new_page()
        self.callbacks: list[str] = []
        self.page.on(
            "request", lambda req: "/sso/callback/" in req.url and self.callbacks.append(req.url)
        )

    def sign_in(self, *, button: str, login: str) -> str:
        """Through the console's button and the provider's own login form; the page we end on."""
        self.page.goto("/accounts/login/")
        self.page.get_by_role("link", name=f"Sign in with {button}").click()
        self.page.wait_for_selector('input[name="login"]')
        self.page.fill('input[name="login"]', login)
        self.page.fill('input[name="password"]', "any password")
        self.page.click('button[type="submit"]')
        self.page.wait_for_url(
            re.compile(rf"^{re.escape(self.base_url)}/(accounts/login/)?(\?.*)?$")
        )
        return self.page.url.removeprefix(self.base_url)

    def message(self) -> str:
        return self.page.locator(".message").inner_text()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browser(chromium: Any, live_server: Any) -> Iterator[Any]:
    opened: list[Browser] = []

    def open_one() -> Browser:
        opened.append(Browser(chromium, live_server.url))
        return opened[-1]

    yield open_one
    for b in opened:
        b.close()


def _actions(**filters: Any) -> list[str]:
    return list(
        AuditEvent.objects.filter(**filters).order_by("seq").values_list("action", flat=True)
    )


def test_it_shows_a_button_for_each_provider_on_the_login_page(
    sso, browser, screenshots: Path
) -> None:
    tab = browser()
    tab.page.goto("/accounts/login/")
    buttons = tab.page.locator("#sso a").all_inner_texts()
    assert buttons == ["Sign in with Keycloak", "Sign in with Okta"]
    tab.page.screenshot(path=str(screenshots / "sso-login.png"), full_page=True)


def test_it_signs_in_through_the_provider_creating_the_user_with_the_mapped_role_and_team(
    sso, browser
) -> None:
    tab = browser()
    assert tab.sign_in(button="Okta", login="ada") == "/"
    assert "ada@acme.example" in tab.page.locator("body").inner_text()
    ada = User.objects.get(email="ada@acme.example")
    assert (ada.username, ada.first_name, ada.has_usable_password()) == (
        "ada@acme.example",
        "Ada",
        False,
    )
    membership = Membership.objects.get(user=ada)
    assert (membership.organization.slug, membership.role, membership.team.slug) == (
        "acme",
        Role.DEVELOPER,
        "platform",
    )
    link = IdentityLink.objects.get(user=ada)
    assert (link.identity_provider.slug, link.subject, link.groups) == (
        "acme-okta",
        "ada",
        ["eng-platform"],
    )
    # The callback carried a code and the state; PKCE's verifier went to the token endpoint only.
    assert len(tab.callbacks) == 1 and "code=" in tab.callbacks[0] and "state=" in tab.callbacks[0]
    signin = AuditEvent.objects.get(action="auth.signin", actor=ada)
    assert signin.after == {"method": "sso", "identity_provider": "acme-okta"}
    assert _actions(actor_label="idp:acme-okta") == [
        "user.create",
        "sso.link",
        "sso.groups_change",
        "membership.set",
    ]

    # Someone in the admins group gets the higher role; their team comes from the mapping that names one.
    tab = browser()
    assert tab.sign_in(button="Okta", login="bea") == "/"
    bea = Membership.objects.get(user__email="bea@acme.example")
    assert (bea.role, bea.team.slug) == (Role.ADMIN, "platform")


def test_it_signs_in_at_a_second_provider_into_its_own_organization(sso, browser) -> None:
    tab = browser()
    assert tab.sign_in(button="Keycloak", login="grace") == "/"
    grace = Membership.objects.get(user__email="grace@globex.example")
    assert (grace.organization.slug, grace.role, grace.team) == ("globex", Role.VIEWER, None)
    assert (
        AuditEvent.objects.get(action="auth.signin", actor=grace.user).after["identity_provider"]
        == "globex-keycloak"
    )


def test_it_refuses_an_address_outside_the_allowed_domains(sso, browser) -> None:
    tab = browser()
    assert tab.sign_in(button="Okta", login="mallory") == "/accounts/login/"
    assert (
        "mallory@evil.example is not an address of a domain Okta may sign in (acme.example)"
        in tab.message()
    )
    assert not User.objects.filter(email="mallory@evil.example").exists()
    refused = AuditEvent.objects.get(action="auth.sso_failed")
    assert (refused.target_id, refused.after["reason"], refused.after["email"]) == (
        str(sso["okta"].pk),
        "domain",
        "mallory@evil.example",
    )


def test_it_refuses_a_replayed_callback(sso, browser) -> None:
    tab = browser()
    assert tab.sign_in(button="Okta", login="ada") == "/"
    # Signed in already, the console's login page sends ada on home, where the refusal shows.
    tab.page.goto(tab.callbacks[0])
    assert "expired or was already used" in tab.message()
    assert AuditEvent.objects.get(action="auth.sso_failed").after == {"reason": "state"}


def test_it_refuses_an_id_token_the_provider_did_not_sign(sso, providers) -> None:
    # Same claims and key id as the provider's own key, signed by another key: the
    # signature is checked against the provider's published JWKS and fails.
    okta, _ = providers
    idp = sso["okta"]
    backend = SsoBackend()
    backend._configure(idp, provider_metadata(idp))
    kid = httpx.get(f"{okta.issuer}/jwks").json()["keys"][0]["kid"]
    now = int(time.time())
    claims = {
        "iss": okta.issuer,
        "aud": okta.client_id,
        "sub": "ada",
        "iat": now,
        "exp": now + 300,
        "nonce": "n",
    }
    forged = jwt.encode(
        claims,
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RS256",
        {"kid": kid},
    )
    with pytest.raises(jwt.InvalidSignatureError):
        backend.verify_token(forged, nonce="n")


def test_it_refuses_an_entra_group_overage_unless_graph_lookup_is_on(
    sso, browser, bob, settings
) -> None:
    entra = services.identity_provider_create(
        actor=bob,
        organization=sso["okta"].organization,
        name="Entra",
        slug="acme-entra",
        preset="entra",
        issuer=sso["issuer"],
        client_id="tollgate-okta",
        client_secret="okta-s3cret",
        scopes=GROUPS_SCOPES,
    )
    services.group_mapping_set(actor=bob, idp=entra, group="0b1c-eng", role=Role.DEVELOPER)
    tab = browser()
    assert tab.sign_in(button="Entra", login="olga") == "/accounts/login/"
    assert (
        "too many groups" in tab.message()
        and "group lookup through Microsoft Graph is off" in tab.message()
    )
    assert AuditEvent.objects.get(action="auth.sso_failed").after["reason"] == "group_overage"
    assert not User.objects.filter(email="olga@acme.example").exists()

    # With lookup on, the groups come from Graph (here a local stand-in answering its API).
    seen: list[str] = []

    class Graph(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(f"{self.path} {self.headers.get('Authorization', '')[:7]}")
            body = json.dumps({"value": ["0b1c-eng", "9f9f-other"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    graph = ThreadingHTTPServer(("127.0.0.1", 0), Graph)
    threading.Thread(target=graph.serve_forever, daemon=True).start()
    try:
        settings.SSO_GRAPH_URL = f"http://127.0.0.1:{graph.server_port}"
        services.identity_provider_update(actor=bob, idp=entra, groups_from_graph=True)
        tab = browser()
        assert tab.sign_in(button="Entra", login="olga") == "/"
    finally:
        graph.shutdown()
    assert seen == ["/v1.0/me/getMemberObjects Bearer "]
    olga = IdentityLink.objects.get(user__email="olga@acme.example")
    assert olga.groups == ["0b1c-eng", "9f9f-other"]


def test_it_takes_away_access_and_disables_keys_when_no_group_maps_any_more(
    sso, browser, providers, bob, gateway, publish, anthropic_upstream
) -> None:
    okta, _ = providers
    first = browser()
    assert first.sign_in(button="Okta", login="ada") == "/"
    ada = User.objects.get(email="ada@acme.example")
    governance.provider_create(
        actor=None,
        name="anthropic",
        kind="anthropic",
        base_url=anthropic_upstream.url,
        credential=anthropic_upstream.api_key,
    )
    key, secret = governance.key_create(
        actor=bob,
        organization=sso["okta"].organization,
        name="ada laptop",
        user=ada,
        team=sso["platform"],
    )
    publish()

    def gateway_status() -> int:
        return httpx.post(
            f"{gateway.url}/v1/messages",
            content=BODY,
            headers={"x-api-key": secret, "content-type": "application/json"},
            timeout=5,
        ).status_code

    assert gateway_status() == 200

    # Moved to marketing at the provider: no mapped group any more.
    okta.accounts(ACCOUNTS | {"ada": ADA | {"groups": ["marketing"]}})
    second = browser()
    assert second.sign_in(button="Okta", login="ada") == "/accounts/login/"
    refused_at = time.monotonic()
    assert "None of your groups at Okta gives access to Acme" in second.message()
    refused_after = None
    while time.monotonic() - refused_at < 3:
        if gateway_status() == 401:
            refused_after = time.monotonic() - refused_at
            break
        time.sleep(0.01)
    assert refused_after is not None and refused_after < 1.0, refused_after

    ada.refresh_from_db()
    key.refresh_from_db()
    assert (ada.is_active, key.status, key.disabled_by_admin) == (False, KeyStatus.DISABLED, True)
    assert not Membership.objects.filter(user=ada).exists()
    assert _actions(
        actor_label="idp:acme-okta", seq__gt=AuditEvent.objects.get(action="auth.signin").seq
    ) == [
        "sso.groups_change",
        "key.disable",
        "membership.remove",
        "user.deactivate",
        "sso.deprovision",
    ]
    assert AuditEvent.objects.get(
        action="sso.groups_change", after__groups=["marketing"]
    ).before == {"groups": ["eng-platform"]}
    # The session ada still had in the first browser is over.
    first.page.goto("/")
    assert first.page.url.endswith("/accounts/login/?next=/")

    # Back in a mapped group: the provider that deprovisioned them brings them back; the keys stay off.
    okta.accounts(ACCOUNTS)
    assert browser().sign_in(button="Okta", login="ada") == "/"
    ada.refresh_from_db()
    key.refresh_from_db()
    assert ada.is_active and key.status == KeyStatus.DISABLED
    assert Membership.objects.get(user=ada).role == Role.DEVELOPER
