"""Reading docker-compose.yml, the Dockerfile and pyproject.toml for the tests that check them
against the code (test_compose, test_compose_ha, test_compose_ha_acls, test_image)."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from services.config import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

#: the ledger's services and the subcommand each runs
LEDGER_COMMANDS = {
    "init": "init",
    "api": "api",
    "projector": "projector",
    "webhooks": "webhooks-dispatcher",
}
LEDGER = tuple(LEDGER_COMMANDS)
ALL_SERVICES = ("kafka", "postgres", *LEDGER)
SCRIPT = "consent-ledger"
PINNED_TAG = re.compile(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$")


def default(var: str) -> str:
    return ENVIRONMENT[var][1]


def compose_services() -> dict[str, dict[str, Any]]:
    """docker-compose.yml's services, every profile's."""
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    found = doc.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def as_argv(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def healthcheck_text(service: dict[str, Any]) -> str:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return ""
    test = as_argv(check.get("test") or [])
    return " ".join(test[1:] if test[:1] in (["CMD"], ["CMD-SHELL"]) else test)


#: `@sha256:` and 64 hex digits: an image pinned by digest, which a re-pushed tag cannot change
DIGEST: Final = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_and_tag(image: str) -> tuple[str, str]:
    name = image.split("@", 1)[0]
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    return repo, tag


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` as {NAME: (host, port)}."""
    out = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, _, address = entry.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def published_ports(service: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """(published, target) for each entry of `ports`, short or long syntax."""
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            yield str(entry.get("published", "")), int(entry["target"])
        else:
            parts = str(entry).split("/", 1)[0].split(":")
            yield (parts[-2] if len(parts) > 1 else ""), int(parts[-1])


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    joined: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    out = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def copied() -> set[str]:
    """What the Dockerfile copies from the build context (not from other stages)."""
    return {
        word.rstrip("/")
        for keyword, args in instructions()
        if keyword == "COPY" and "--from" not in args
        for word in args.split()[:-1]
        if not word.startswith("--")
    }


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def writer_keys_mount(init: dict[str, Any], projector: dict[str, Any]) -> tuple[str, str]:
    """Where init writes the writer keys and the projector reads them: (volume, path)."""
    cli = pytest.importorskip("services.cli.main")
    args = cli._parser().parse_args(as_argv(init["command"])[1:])
    path = str(args.writer_keys_file)
    assert projector["environment"]["LEDGER_SECRETS_FILE"] == path
    mount = str(Path(path).parent)
    (read,) = projector["volumes"]
    volume, _, rest = read.partition(":")
    assert rest == f"{mount}:ro"
    assert f"{volume}:{mount}" in init["volumes"]
    return volume, path


# --- profile `ha` ---

HA_PROFILE = "ha"
HA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")
HA_POSTGRES = "postgres-ha"
HA_KAFKA_INIT = "kafka-init-ha"
HA_LEDGER = {
    "init-ha": "init",
    "api-ha": "api",
    "projector-ha": "projector",
    "webhooks-ha": "webhooks-dispatcher",
    "operator-ha": "checkpoint-verify",
}
HA_SERVICES = (*HA_BROKERS, HA_POSTGRES, HA_KAFKA_INIT, *HA_LEDGER)


def env(services: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    """A service's environment (the `ha` tests' shorthand)."""
    return environment(services[name])
