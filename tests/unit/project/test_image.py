"""The Dockerfile against the code: pinned base images, the hashed lock, what it copies, a
non-root user and the API as its default command."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from tests.unit.compose_files import (
    DIGEST,
    DOCKERIGNORE,
    ROOT,
    SCRIPT,
    compose_services,
    copied,
    image_and_tag,
    instructions,
    pyproject,
)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return compose_services()


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
