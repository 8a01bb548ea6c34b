"""The data plane never reaches for the ORM.

Every data-plane process in this suite runs with a database URL that refuses
connections, so any query on the hot path fails the request that made it;
this test adds the static half: no data-plane module imports the ORM or the
governance models.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import FORBIDDEN_DATABASE_URL

DATAPLANE = Path(__file__).resolve().parents[2] / "dataplane"
FORBIDDEN = ("django.db", "governance.models", "governance.services", "governance.selectors", "ledger", "audit")


@pytest.mark.parametrize("path", sorted(DATAPLANE.rglob("*.py")), ids=lambda p: str(p.relative_to(DATAPLANE)))
def test_it_keeps_the_orm_out_of_the_data_plane(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_it_runs_the_data_plane_without_a_database(gateway):
    # The fixture's process is the one every end-to-end test talks to.
    assert gateway.proc.poll() is None
    assert FORBIDDEN_DATABASE_URL.startswith("postgres://forbidden@127.0.0.1:9/")
