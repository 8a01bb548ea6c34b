"""Run the real OpenID Connect provider (tests/identity/oidc_provider.mjs, the certified
`oidc-provider` npm package) on 127.0.0.1 for a test, with accounts the test can change."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, free_port

MODULES = ROOT / ".cache" / "oidc-provider" / "node_modules"
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


class LocalOidcProvider:
    def __init__(
        self, *, directory: Path, client_id: str, client_secret: str, redirect_uri: str
    ) -> None:
        assert (MODULES / "oidc-provider").exists(), (
            "run `make test`: it installs the oidc-provider package"
        )
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id, self.client_secret = client_id, client_secret
        self.accounts_file = directory / f"accounts-{self.port}.json"
        self.accounts({})
        clients = [
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [redirect_uri],
            }
        ]
        self.process = subprocess.Popen(
            ["node", str(SCRIPT)],
            env={
                **os.environ,
                "PORT": str(self.port),
                "CLIENTS": json.dumps(clients),
                "ACCOUNTS_FILE": str(self.accounts_file),
                "OIDC_PROVIDER_MODULES": str(MODULES),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"the OIDC provider did not start: {line!r}")

    def accounts(self, accounts: dict[str, dict[str, Any]]) -> None:
        """Who may sign in (login name → claims); read again at every sign-in."""
        self.accounts_file.write_text(json.dumps(accounts))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
