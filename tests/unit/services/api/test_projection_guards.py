"""The projection guards' answers against the app in-process: decisions, the suppression list and
the audience fail closed with a 503 problem while the projector is stopped, and commands write
nothing while a projector would dead-letter what this API writes. Stopping a real projector is
in tests/integration/test_staleness_guard.py and test_writer_key_guard.py."""

from __future__ import annotations

from projections.log_loss import AHEAD_OF_LOG, LogLoss
from tests.unit.services.api.in_process import InProcess, problem_of


async def test_a_stopped_projector_refuses_decisions_with_a_503(served: InProcess) -> None:
    served.fake.health.stops.append(LogLoss(2, AHEAD_OF_LOG, 10, 0, 4))
    decision = {"subject_id": "s-1", "purpose": "newsletter", "channel": "email"}
    for answer in (
        await served.api.get("/v1/decision", params=decision),
        await served.api.get("/v1/suppressions", params={"channel": "email"}),
        await served.api.get("/v1/audiences", params={"purpose": "newsletter", "channel": "email"}),
    ):
        detail = problem_of(answer, 503, "projection-stale")["detail"]
        assert "the projector stopped" in detail and detail.endswith("do not send, retry later")
        assert answer.headers["retry-after"] == "5"
    # bad input is still a 4xx: the guard comes after validation
    bad = await served.api.get("/v1/decision", params={**decision, "channel": "pigeon"})
    assert bad.status_code == 422


async def test_a_writer_key_the_projector_lacks_refuses_commands_before_writing(
    served: InProcess,
) -> None:
    served.fake.health.known_writer_keys = ("w0",)
    answer = await served.api.post("/v1/subjects/s-1/consents", json={"purpose": "newsletter"})
    detail = problem_of(answer, 503, "writer-key-unknown")["detail"]
    assert detail.startswith("nothing was recorded: the projector of partition")
    assert answer.headers["retry-after"] == "5"
    assert served.fake.publisher.sent == []
