"""deploy/Dockerfile, checked without Docker: its stages, its user, what reaches
the run stage, and hadolint's reading of it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from controlplane.processes import DRAIN_SECONDS, process_set

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DATA_DIR = "/var/lib/tollgate"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cc", "python3-dev", "libpq-dev")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        result.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            image, _, name = args.partition(" AS ")
            current = found.setdefault(name.strip(), [("FROM", image.strip())])
        elif current is not None:
            current.append((keyword, args))
    return found


def args_of(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for k, args in stage if k == keyword]


def test_it_builds_in_one_stage_and_runs_in_another_from_the_same_python():
    build, run = stages()["build"], stages()["run"]
    assert list(stages()) == ["build", "run"]
    assert build[0] == run[0] == ("FROM", "${PYTHON_IMAGE}")
    (default,) = [
        a
        for k, a in instructions(DOCKERFILE.read_text())
        if k == "ARG" and a.startswith("PYTHON_IMAGE=")
    ]
    image = default.removeprefix("PYTHON_IMAGE=")
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image), image
    # The lock was resolved for the Python the image runs.
    assert "with Python 3.11" in (ROOT / "requirements" / "run.txt").read_text()


def test_it_installs_the_run_lock_by_hash_and_nothing_else():
    build = stages()["build"]
    assert "requirements/run.txt /tmp/run.txt" in args_of(build, "COPY")
    everywhere = [
        a for k, a in instructions(DOCKERFILE.read_text()) if k == "RUN" and "pip install" in a
    ]
    (install,) = [a for a in args_of(build, "RUN") if "pip install" in a]
    assert everywhere == [install]
    assert "pip install --require-hashes --no-deps -r /tmp/run.txt" in install
    assert "pip check" in install


def test_it_leaves_build_tools_out_of_the_run_stage():
    build, run = stages()["build"], stages()["run"]
    assert any("build-essential" in shlex.split(a) for a in args_of(build, "RUN"))
    for command in args_of(run, "RUN"):
        words = shlex.split(command)
        assert "apt-get" not in words and "pip" not in words, command
        assert not set(COMPILERS) & set(words), command
    assert args_of(run, "COPY") == ["--from=build /opt/venv /opt/venv", "--from=build /app /app"]
    assert "PATH=/opt/venv/bin:$PATH" in " ".join(args_of(run, "ENV"))


def test_it_runs_as_a_non_root_user_who_owns_its_data_directory():
    run = stages()["run"]
    (user,) = args_of(run, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    setup = " ".join(args_of(run, "RUN"))
    assert f"--uid {uid}" in setup and f"--gid {gid}" in setup
    assert f"install -d -o tollgate -g tollgate -m 0750 {DATA_DIR}" in setup
    assert [k for k, _ in run].index("USER") > max(i for i, (k, _) in enumerate(run) if k == "RUN")
    assert f"TOLLGATE_DATA_DIR={DATA_DIR}" in " ".join(args_of(run, "ENV"))
    assert args_of(run, "VOLUME") == [DATA_DIR]
    # The orchestrators run it as that user, with the volume where it writes.
    pods = yaml.safe_load(
        (ROOT / "deploy" / "kubernetes" / "base" / "pod-defaults.yaml").read_text()
    )
    assert pods["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert f"tollgate-data:{DATA_DIR}" in compose["x-tollgate"]["volumes"]


def test_it_checks_health_and_stops_gracefully():
    run = stages()["run"]
    (check,) = args_of(run, "HEALTHCHECK")
    assert 'manage.py process \\"$TOLLGATE_PROCESS\\" --check' in check
    (command,) = args_of(run, "CMD")
    assert 'exec python manage.py process \\"$TOLLGATE_PROCESS\\"' in command
    assert "TOLLGATE_PROCESS=controlplane" in " ".join(args_of(run, "ENV"))
    assert args_of(run, "STOPSIGNAL") == ["SIGTERM"]
    dataplane = process_set()["dataplane"].argv
    assert dataplane[dataplane.index("--timeout-graceful-shutdown") + 1] == str(DRAIN_SECONDS)


def test_it_copies_every_package_the_project_ships():
    build = stages()["build"]
    copied = {a.split()[0] for a in args_of(build, "COPY")}
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    # Every top-level package, packaged in pyproject.toml or only imported from the checkout.
    packages = {p.rstrip("*") for p in include} | {
        i.parent.name for i in ROOT.glob("*/__init__.py")
    }
    for package in packages - {"tests", "bench"}:
        assert package in copied, (
            f"{package} is a package of the project but not copied into the image"
        )
    assert {"templates", "static"} <= copied
    assert not {"tests", "bench", "deploy", ".venv", "var"} & copied


def test_it_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
