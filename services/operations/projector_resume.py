"""`consent-ledger resume-projector`: the operator's clearing of a stop by loss detection.

The projectors never clear a stop themselves: the log and the projection disagree, and only an
operator can tell whether the log was restored, the projection rebuilt, or the loss accepted.
Once cleared, each projector reads its stored offsets again and checks them against the log
before applying anything, so a loss that is still there stops it again at once.
"""

from __future__ import annotations

from projections import projector_health
from services.bootstrap import operator_database
from services.config import Settings


async def run_resume_projector(settings: Settings) -> int:
    async with operator_database(settings) as conn:
        cleared = await projector_health.clear_stops(conn, settings.topic)
    if not cleared:
        print(
            f"consent-ledger resume-projector: the projectors of {settings.topic} are not stopped"
        )
        return 0
    for loss in cleared:
        print(f"cleared: {loss.describe()}")
    print(
        f"consent-ledger resume-projector: cleared {len(cleared)} stop(s) on {settings.topic};"
        " the projectors check the log again within a second and resume, or stop again"
    )
    return 0
