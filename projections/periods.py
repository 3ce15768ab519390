"""Calendar periods: months added to a date, ISO 8601 durations, rights-request deadlines.

A period in months ends on the same day of the month, or on the month's last day when that
month is shorter (31 January + 1 month = 28 or 29 February), as EU Regulation 1182/71 Art.
3(2)(c) counts periods. Months are always counted from the start date, never chained, so
31 January + 3 months is 30 April, not 28 April.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

#: an ISO 8601 duration: P, then years, months, weeks, days; T, then hours, minutes, seconds
DURATION_RE: Final = re.compile(
    r"P(?=\d|T\d)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?"
    r"(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?"
)

#: GDPR Art. 12(3): one month to answer a request, extendable by two further months
ANSWER_MONTHS: Final = 1
MAX_EXTENSION_MONTHS: Final = 2


class DurationError(ValueError):
    """Not an ISO 8601 duration this ledger reads; the message says what is accepted."""


def add_months(start: date, months: int) -> date:
    """`start` plus whole months; the month's last day when it has no such day."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


@dataclass(frozen=True, slots=True)
class Duration:
    """Calendar parts (years and months, added by `add_months`) and an exact remainder."""

    months: int = 0
    exact: timedelta = timedelta()

    def after(self, instant: datetime) -> datetime:
        """The instant this long after `instant` (months first, then the exact part)."""
        moved = add_months(instant.date(), self.months)
        return datetime.combine(moved, instant.timetz()) + self.exact


def parse_duration(text: str) -> Duration:
    """`P3Y`, `P13M`, `P1Y6M`, `P30D`, `P2W`, `PT12H`... (no fractions, no negatives)."""
    match = DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise DurationError(f"{text!r} is not an ISO 8601 duration; e.g. P3Y, P13M, P30D")
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    return Duration(
        months=12 * parts.get("years", 0) + parts.get("months", 0),
        exact=timedelta(
            weeks=parts.get("weeks", 0),
            days=parts.get("days", 0),
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        ),
    )


def due_on(received: datetime, extended_months: int = 0) -> date:
    """The last day to answer a request received at `received` (its UTC date counts as the
    start), with `extended_months` of extension (Art. 12(3)). East of UTC this can only be
    earlier than the local reading, never later."""
    return add_months(received.astimezone(UTC).date(), ANSWER_MONTHS + extended_months)
