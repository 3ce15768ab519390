"""The served OpenAPI document against the running API.

schemathesis reads GET /openapi.json from the real app (with a projector) over a socket and
sends each operation generated requests: valid ones, and invalid ones that must get a 4xx.
Every answer must be documented: no 5xx, a documented status code and media type, and a body
that matches the documented schema. The examples are bounded and derandomized, so a run sends
the same requests every time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_HEADERS

pytestmark = pytest.mark.integration

#: examples per operation and generation mode: about a minute for the whole document
MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: operations left out, with the reason; every other operation of the document is fuzzed
EXCLUDED: dict[str, str] = {}

Outcome = tuple[list[str], Counter[str]]


def _config() -> schemathesis.Config:
    # The test clients send the admin key with every request; negating it (a request without
    # a key must get a 401) is the access-control tests' job, not this one's.
    return schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})


def _fuzz(document: dict[str, Any], base_url: str) -> Outcome:
    """Every operation in both modes; the failures (one per operation and mode) and the
    statuses answered. Runs in a thread: requests blocks, and the API serves on the loop."""
    schema = schemathesis.openapi.from_dict(document, config=_config())
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                failures.append(f"an operation schemathesis cannot read: {result.err()}")
                continue
            operation = result.ok()
            if operation.label in EXCLUDED:
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                found = _fuzz_operation(operation, mode, session, base_url, statuses)
                if found:
                    failures.append(f"{operation.label} ({mode.value}): {found}")
    return failures, statuses


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    base_url: str,
    statuses: Counter[str],
) -> str | None:
    """The first failure of `operation` in `mode`, or None. Failures are collected, not
    raised, so hypothesis never replays a request whose answer depends on earlier ones."""
    first: list[str] = []

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        if first:
            return
        try:
            response = case.call_and_validate(
                base_url=base_url, session=session, headers=ADMIN_HEADERS, checks=CHECKS
            )
        except FailureGroup as failed:  # its message has the answer and a curl command
            first.append(failed.message)
            return
        statuses[f"{operation.label} {response.status_code}"] += 1

    try:
        send()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        return None  # nothing in the operation can be made invalid (no body, free strings)
    return first[0] if first else None


# schemathesis' strategies draw from `random`, which hypothesis seeds for each example
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
async def test_every_answer_matches_the_served_openapi_document(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    failures, statuses = await asyncio.to_thread(_fuzz, document, str(api.base_url))
    assert not failures, "\n\n".join(failures)
    answered = {label.rsplit(" ", 1)[0] for label in statuses}
    operations = {f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops}
    assert answered == operations - set(EXCLUDED)
