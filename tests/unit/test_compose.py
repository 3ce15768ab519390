"""docker-compose.yml and the Dockerfile against the code, so names, ports and topics agree."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest
import yaml

from services.config import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

LEDGER = ("init", "api", "projector")
ALL_SERVICES = ("kafka", "postgres", *LEDGER)
SCRIPT = "consent-ledger"
PINNED_TAG = re.compile(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$")


def default(var: str) -> str:
    return ENVIRONMENT[var][1]


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
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


# --- the services and their images ---------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_service_exists(services: dict[str, dict[str, Any]], name: str) -> None:
    assert name in services


@pytest.mark.parametrize(
    ("name", "repository"), [("kafka", "apache/kafka"), ("postgres", "postgres")]
)
def test_image_is_pinned(services: dict[str, dict[str, Any]], name: str, repository: str) -> None:
    repo, tag = image_and_tag(services[name]["image"])
    assert repo == repository
    assert tag != "latest"
    assert PINNED_TAG.match(tag), f"{name}: tag {tag!r} is not a version like 4.1.1 or 18.1"


@pytest.mark.parametrize("name", LEDGER)
def test_ledger_services_build_from_the_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]
    spec = {"context": build} if isinstance(build, str) else build
    context = (COMPOSE.parent / spec["context"]).resolve()
    assert context == ROOT
    assert (context / spec.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


# --- environment against services.config ----------------------------------------------------


@pytest.mark.parametrize("name", LEDGER)
def test_every_variable_is_a_setting(services: dict[str, dict[str, Any]], name: str) -> None:
    unknown = sorted(set(environment(services[name])) - set(ENVIRONMENT))
    assert not unknown, f"{name} sets variables services.config does not read: {unknown}"


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_environment_values_are_quoted(services: dict[str, dict[str, Any]], name: str) -> None:
    """YAML reads bare true/1 as bool/int; quoting keeps the text the settings parse."""
    raw = services[name].get("environment") or {}
    pairs = raw.items() if isinstance(raw, dict) else []
    assert {key: value for key, value in pairs if not isinstance(value, str)} == {}


@pytest.mark.parametrize("name", LEDGER)
def test_bootstrap_servers_are_the_advertised_listener(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    kafka = environment(services["kafka"])
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kafka["KAFKA_LISTENERS"])
    servers = environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    assert servers
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        matching = [lst for lst, address in advertised.items() if address == (host, int(port))]
        assert matching, f"{name}: {server} is not among {kafka['KAFKA_ADVERTISED_LISTENERS']}"
        assert host in ("kafka", services["kafka"].get("hostname"))
        assert bound[matching[0]][1] == int(port), f"listener {matching[0]} binds another port"


@pytest.mark.parametrize("name", LEDGER)
def test_database_url_matches_postgres(services: dict[str, dict[str, Any]], name: str) -> None:
    postgres = environment(services["postgres"])
    url = urlsplit(environment(services[name])["DATABASE_URL"])
    assert url.scheme in ("postgresql", "postgres")
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert url.hostname == "postgres"
    assert url.port in (None, 5432)


# --- the api's address -----------------------------------------------------------------------


def test_api_listens_on_all_interfaces(services: dict[str, dict[str, Any]]) -> None:
    assert environment(services["api"])["LEDGER_HOST"] == "0.0.0.0"


def test_api_publishes_its_port(services: dict[str, dict[str, Any]]) -> None:
    port = int(environment(services["api"])["LEDGER_PORT"])
    published = [host for host, target in published_ports(services["api"]) if target == port]
    assert published and all(published), f"container port {port} is not published"
    exposed = {args for keyword, args in instructions() if keyword == "EXPOSE"}
    assert str(port) in " ".join(exposed).split()


def test_api_healthcheck_asks_readyz_on_its_port(services: dict[str, dict[str, Any]]) -> None:
    port = environment(services["api"])["LEDGER_PORT"]
    assert f"127.0.0.1:{port}/readyz" in healthcheck_text(services["api"])


# --- the topic -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEDGER)
def test_topic_is_the_default(services: dict[str, dict[str, Any]], name: str) -> None:
    assert environment(services[name])["LEDGER_TOPIC"] == default("LEDGER_TOPIC")


def test_init_creates_the_default_partition_count(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["init"])
    assert env["LEDGER_TOPIC_PARTITIONS"] == default("LEDGER_TOPIC_PARTITIONS")


def test_topic_replication_fits_the_cluster(services: dict[str, dict[str, Any]]) -> None:
    brokers = sum(
        "broker" in environment(svc).get("KAFKA_PROCESS_ROLES", "").split(",")
        for svc in services.values()
        if not svc.get("profiles")  # the default stack; test_compose_ha.py checks profile `ha`
    )
    env = environment(services["init"])
    replication = int(env["LEDGER_TOPIC_REPLICATION"])
    assert 1 <= int(env["LEDGER_TOPIC_MIN_INSYNC_REPLICAS"]) <= replication <= brokers


def test_brokers_never_create_topics(services: dict[str, dict[str, Any]]) -> None:
    assert environment(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# --- start order, health and restarts --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dependency", "condition"),
    [
        ("init", "kafka", "service_healthy"),
        ("init", "postgres", "service_healthy"),
        ("api", "init", "service_completed_successfully"),
        ("projector", "init", "service_completed_successfully"),
    ],
)
def test_start_order(
    services: dict[str, dict[str, Any]], name: str, dependency: str, condition: str
) -> None:
    assert depends_on(services[name]).get(dependency) == condition


def test_awaited_health_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    awaited = {
        dependency
        for svc in services.values()
        for dependency, condition in depends_on(svc).items()
        if condition == "service_healthy"
    }
    assert awaited
    assert [name for name in sorted(awaited) if not healthcheck_text(services[name])] == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kafka", ["kafka-broker-api-versions.sh", "--bootstrap-server localhost:9092"]),
        ("postgres", ["pg_isready", "-U ledger", "-d ledger"]),
        ("api", ["urllib.request", "/readyz"]),
    ],
)
def test_healthcheck(services: dict[str, dict[str, Any]], name: str, expected: list[str]) -> None:
    text = healthcheck_text(services[name])
    assert [part for part in expected if part not in text] == [], text


@pytest.mark.parametrize(
    ("name", "policy"),
    [("init", "no"), ("api", "unless-stopped"), ("projector", "unless-stopped")],
)
def test_restart_policy(services: dict[str, dict[str, Any]], name: str, policy: str) -> None:
    assert services[name].get("restart") == policy


# --- commands against the CLI ----------------------------------------------------------------


@pytest.mark.parametrize("name", LEDGER)
def test_command_runs_its_subcommand(services: dict[str, dict[str, Any]], name: str) -> None:
    assert as_argv(services[name]["command"])[:2] == [SCRIPT, name]


def test_init_writes_the_secrets_the_api_reads(services: dict[str, dict[str, Any]]) -> None:
    init, api = services["init"], services["api"]
    assert "--generate-secrets" in as_argv(init["command"])
    path = init["environment"]["LEDGER_SECRETS_FILE"]
    assert api["environment"]["LEDGER_SECRETS_FILE"] == path
    mount = str(Path(path).parent)
    assert f"ledger-secrets:{mount}" in init["volumes"]
    assert f"ledger-secrets:{mount}:ro" in api["volumes"]
    # the projector never sees the master, blind-index, link or receipt keys
    assert not [v for v in services["projector"]["volumes"] if v.startswith("ledger-secrets:")]
    assert f"mkdir -p {mount} && chown 10001:10001 {mount}" in DOCKERFILE.read_text()


def writer_keys_mount(init: dict[str, Any], projector: dict[str, Any]) -> tuple[str, str]:
    """Where init writes the writer keys and the projector reads them: (volume, path)."""
    cli = pytest.importorskip("services.cli")
    args = cli._parser().parse_args(as_argv(init["command"])[1:])
    path = str(args.writer_keys_file)
    assert projector["environment"]["LEDGER_SECRETS_FILE"] == path
    mount = str(Path(path).parent)
    (read,) = projector["volumes"]
    volume, _, rest = read.partition(":")
    assert rest == f"{mount}:ro"
    assert f"{volume}:{mount}" in init["volumes"]
    return volume, path


def test_the_projector_gets_only_the_writer_keys(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """It checks every event's MAC and MACs what it writes: init copies the writer keys, and
    nothing else, into a volume of their own that the projector mounts read-only."""
    volume, path = writer_keys_mount(services["init"], services["projector"])
    assert volume != "ledger-secrets"
    assert not [v for v in services["api"]["volumes"] if v.startswith(f"{volume}:")]
    assert f"mkdir -p {Path(path).parent} && chown 10001:10001" in DOCKERFILE.read_text()
    # the file init writes there is enough for the projector, and holds nothing more
    from services.config import Settings
    from services.secrets import (
        SecretsError,
        ensure_secrets_file,
        load_secrets,
        write_writer_keys_file,
    )

    everything = tmp_path / "secrets.toml"
    ensure_secrets_file(everything)
    written = tmp_path / Path(path).name
    write_writer_keys_file(written, load_secrets({"LEDGER_SECRETS_FILE": str(everything)}).writers)
    projector = Settings.from_env(
        {**environment(services["projector"]), "LEDGER_SECRETS_FILE": str(written)}
    )
    assert projector.writer_key_ring().current_id == "w1"
    with pytest.raises(SecretsError):
        projector.secrets()


def test_script_is_the_cli() -> None:
    assert pyproject()["project"]["scripts"][SCRIPT] == "services.cli:main"


@pytest.mark.parametrize("name", LEDGER)
def test_subcommand_exists_in_the_cli(name: str) -> None:
    cli = pytest.importorskip("services.cli")
    assert name in cli.COMMANDS


# --- the image -------------------------------------------------------------------------------


def test_base_images_are_pinned_python() -> None:
    stages: set[str] = set()
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    for keyword, args in instructions():
        if keyword != "FROM":
            continue
        words = [word for word in args.split() if not word.startswith("--")]
        if words[0] in stages:
            continue
        repo, tag = image_and_tag(words[0])
        assert repo == "python"
        assert re.fullmatch(rf"{re.escape(minimum)}\.\d+-slim(-[a-z]+)?", tag), tag
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])


def test_image_installs_the_project() -> None:
    setuptools = pyproject()["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]]
    needed = {"pyproject.toml", pyproject()["project"]["readme"], *packages}
    assert needed <= copied()
    assert sorted(path for path in needed if not (ROOT / path).exists()) == []
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    # the dependencies come from the hashed lock; the project itself adds none of its own
    assert any(re.search(r"\bpip install\b.*\s\.$", args) for args in runs)
    project = [args for args in runs if re.search(r"\bpip install\b.*\s\.$", args)]
    assert all("--no-deps" in args and "--no-build-isolation" in args for args in project)


def test_image_installs_its_dependencies_from_the_lock_with_hash_checking() -> None:
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    locked = [args for args in runs if "-r requirements.lock" in args]
    assert locked, "the Dockerfile never installs requirements.lock"
    assert all("--require-hashes" in args and "--only-binary :all:" in args for args in locked)
    assert "requirements.lock" in copied()
    # every pip install that is not the lock's installs nothing but the project
    for args in runs:
        if "pip install" in args and args not in locked:
            assert "--no-deps" in args, args


def test_base_images_are_pinned_by_digest() -> None:
    for keyword, args in instructions():
        if keyword == "FROM":
            image = args.split()[0]
            assert DIGEST.search(image), f"FROM {image} is not pinned by digest"


@pytest.mark.parametrize("name", ["kafka", "postgres"])
def test_compose_images_are_pinned_by_digest(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    assert DIGEST.search(services[name]["image"]), services[name]["image"]


def test_image_keeps_what_it_copies() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for path in sorted(copied()):
        assert [p for p in patterns if fnmatch.fnmatch(path, p)] == [], path
    assert {".git", ".venv", "tests"} <= set(patterns)


def test_image_runs_as_non_root() -> None:
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users, "the Dockerfile never leaves root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_image_defaults_to_the_api() -> None:
    commands = [args for keyword, args in instructions() if keyword == "CMD"]
    assert json.loads(commands[-1]) == [SCRIPT, "api"]
