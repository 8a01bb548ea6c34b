"""requirements/: the lock files every install comes from (make, the image, CI)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
RUN_LOCK = ROOT / "requirements" / "run.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"
PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", re.M
)


def pins(lock: Path) -> dict[str, tuple[Version, int]]:
    """Each pinned package: its version and how many hashes it may match."""
    text = lock.read_text()
    found = {
        canonicalize_name(n): (Version(v), hashes.count("--hash="))
        for n, v, hashes in PIN.findall(text)
    }
    requirement_lines = [
        line for line in text.splitlines() if line and not line.startswith((" ", "#"))
    ]
    assert len(found) == len(requirement_lines), "a line of the lock is not a pin with hashes"
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (RUN_LOCK, lambda p: p["dependencies"]),
        (TEST_LOCK, lambda p: [*p["dependencies"], *p["optional-dependencies"]["test"]]),
    ],
    ids=["run", "test"],
)
def test_it_pins_every_dependency_of_pyproject_within_its_range(lock, requirements):
    locked = pins(lock)
    for line in requirements(project()):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, (
            f"{name} is in pyproject.toml but not in {lock.name}: run `make lock`"
        )
        version, hashes = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            name,
            str(version),
            str(requirement),
        )
        assert hashes >= 1


def test_it_keeps_running_and_testing_on_the_same_versions():
    run, test = pins(RUN_LOCK), pins(TEST_LOCK)
    assert set(run) <= set(test)
    assert {name: run[name][0] for name in run} == {name: test[name][0] for name in run}
    # The test extras stay out of what running installs.
    for line in project()["optional-dependencies"]["test"]:
        assert canonicalize_name(Requirement(line).name) not in run, line


def test_it_installs_from_the_locks_by_hash_and_only_the_run_lock_for_make_run():
    makefile = (ROOT / "Makefile").read_text()
    rules = dict(re.findall(r"^(\S+):[^=\n]*\n((?:\t.*\n)+)", makefile, re.M))
    assert "--require-hashes --no-deps -r $(RUN_LOCK)" in rules["$(RUN_STAMP)"]
    assert "--require-hashes --no-deps -r $(TEST_LOCK)" in rules["$(STAMP)"]
    for recipe in rules.values():
        for command in recipe.splitlines():
            if "pip install" in command and "pip-tools" not in command:
                assert "-r $(" in command or "--no-deps" in command, (
                    f"an install outside the lock: {command}"
                )
    run_prerequisites = re.search(r"^run: (.*)$", makefile, re.M).group(1).split()
    assert run_prerequisites == ["$(RUN_STAMP)"]
    assert re.search(r"^\$\(STAMP\): \$\(TEST_LOCK\) \$\(RUN_STAMP\)$", makefile, re.M)
