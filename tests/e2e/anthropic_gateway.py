"""Anthropic's own gateway (``claude gateway --config FILE``, inside the CLI
binary) on 127.0.0.1, for tests that hold Tollgate to the same contract.

What it needs to start, learnt from its config checks: ``listen``,
``upstreams`` (a loopback ``base_url`` only with CLAUDE_GATEWAY_ALLOW_LOOPBACK=1),
``session.jwt_secret`` (32+ characters), ``store.postgres_url`` (a real
PostgreSQL: it runs its migrations there) and ``oidc`` — there is no mode
without an identity provider, so it signs users in at the suite's local OIDC
provider, whose redirect comes back to ``{gateway}/oauth/callback``. Its
verification page is ``{gateway}/device``: "This matches my device — continue",
then the IdP's login form.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.signin import CLAUDE

POSTGRES = "postgres://postgres@127.0.0.1:5432"


def postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


class AnthropicGateway:
    def __init__(
        self, directory: Path, *, upstream_url: str, upstream_key: str, idp: Any, port: int
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.database = f"claude_gateway_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{self.database}"')
        config = {
            "listen": {"host": "127.0.0.1", "port": port},
            "upstreams": [
                {
                    "provider": "anthropic",
                    "base_url": upstream_url,
                    "auth": {"api_key": upstream_key},
                }
            ],
            "session": {"jwt_secret": secrets.token_hex(24)},
            "store": {"postgres_url": f"{POSTGRES}/{self.database}"},
            "oidc": {
                "issuer": idp.issuer,
                "client_id": idp.client_id,
                "client_secret": idp.client_secret,
                "token_endpoint_auth_method": "client_secret_post",
                # The local IdP offers no offline_access (the gateway's default asks for it).
                "scopes": ["openid", "email", "profile", "groups"],
            },
        }
        self.config = directory / f"claude-gateway-{port}.json"  # YAML is a superset of JSON
        self.config.write_text(json.dumps(config))
        self.log_path = directory / f"claude-gateway-{port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open for the process's lifetime)
        self.proc = subprocess.Popen(
            [str(CLAUDE), "gateway", "--config", str(self.config)],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(directory),
                "CLAUDE_GATEWAY_ALLOW_LOOPBACK": "1",
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"claude gateway exited: {self.log()}")
            try:
                if (
                    httpx.get(
                        f"{self.url}/.well-known/oauth-authorization-server", timeout=1
                    ).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"claude gateway did not start: {self.log()}")

    @staticmethod
    def _admin(sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, evt: str) -> list[dict[str, Any]]:
        """Its JSON audit lines of one kind (device.authorize, session.mint, inference…)."""
        found = []
        for line in self.log().splitlines():
            if line.startswith("{") and f'"evt":"{evt}"' in line:
                found.append(json.loads(line))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
