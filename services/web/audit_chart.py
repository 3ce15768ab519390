"""The geometry of the auditor's decision chart: one horizontal band per purpose and channel,
a rectangle per segment on a linear time axis, and tick marks at round instants.

Pure: bands in, numbers and labels out; the template (audit_subject.html) only draws them as
inline SVG, so the page needs no script. A segment narrower than a pixel is drawn a pixel
wide so it stays visible; the text table beside the chart has the exact instants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from schemas.events import rfc3339
from services.proof.decision_history import Band
from services.web.pages import channel_phrase

WIDTH: Final = 1000
LABEL_WIDTH: Final = 190
RIGHT_MARGIN: Final = 16
TOP: Final = 8
ROW_HEIGHT: Final = 22
HEADING_HEIGHT: Final = 20
AXIS_HEIGHT: Final = 40
MIN_BAR: Final = 1.0
MAX_TICKS: Final = 6

_MINUTE, _HOUR, _DAY = 60, 3600, 86400
#: candidate tick steps in seconds, smallest first
TICK_STEPS: Final = (
    1, 2, 5, 10, 15, 30,
    _MINUTE, 2 * _MINUTE, 5 * _MINUTE, 10 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE,
    _HOUR, 2 * _HOUR, 3 * _HOUR, 6 * _HOUR, 12 * _HOUR,
    _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY, 30 * _DAY, 91 * _DAY, 182 * _DAY, 365 * _DAY,
    2 * 365 * _DAY, 5 * 365 * _DAY, 10 * 365 * _DAY,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    allowed: bool
    #: the tooltip: outcome, reason and the instants
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    """A purpose's heading (no bars, its title spans the row), or one of its channels."""

    label: str
    y: float
    bars: tuple[Bar, ...]
    heading: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    label_width: int
    plot_width: int
    axis_y: float
    rows: tuple[Row, ...]
    ticks: tuple[Tick, ...]
    start: datetime
    end: datetime


def band_label(band: Band) -> str:
    return f"{band.purpose.title}: {channel_phrase(band.channel)}"


def tick_step(span: timedelta) -> int:
    """The smallest round step that leaves at most MAX_TICKS ticks on the span."""
    seconds = max(span.total_seconds(), 1.0)
    for step in TICK_STEPS:
        if seconds / step <= MAX_TICKS:
            return step
    return TICK_STEPS[-1] * math.ceil(seconds / (TICK_STEPS[-1] * MAX_TICKS))


def tick_label(moment: datetime, step: int, span: timedelta) -> str:
    """Seconds for short spans, minutes within days, dates beyond; the date is added to a time
    when the span crosses midnight (UTC)."""
    if step >= _DAY:
        return moment.strftime("%Y-%m-%d")
    clock = moment.strftime("%H:%M:%S" if step < _MINUTE else "%H:%M")
    return f"{moment.strftime('%m-%d')} {clock}" if span >= timedelta(days=1) else clock


def ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Round instants (multiples of the step since the epoch, UTC) within [start, end]."""
    span = end - start
    step = tick_step(span)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = math.ceil((start - epoch).total_seconds() / step)
    out = []
    n = first
    while (moment := epoch + timedelta(seconds=n * step)) <= end:
        out.append((moment, tick_label(moment, step, span)))
        n += 1
    return out


def chart(found: Sequence[Band], end: datetime) -> Chart | None:
    """The chart of the bands up to `end`; None when there is nothing to draw."""
    if not found or not found[0].segments:
        return None
    start = found[0].segments[0].start
    plot = WIDTH - LABEL_WIDTH - RIGHT_MARGIN
    span = max((end - start).total_seconds(), 1e-6)

    def x(moment: datetime) -> float:
        return round(LABEL_WIDTH + plot * (moment - start).total_seconds() / span, 2)

    rows: list[Row] = []
    y: float = TOP
    purpose = None
    for band in found:
        if band.purpose.id != purpose:
            purpose = band.purpose.id
            rows.append(Row(band.purpose.title, y, (), heading=True))
            y += HEADING_HEIGHT
        bars = []
        for s in band.segments:
            left = min(x(s.start), WIDTH - RIGHT_MARGIN - MIN_BAR)
            width = max(x(s.end) - left, MIN_BAR)
            outcome = "allowed" if s.allowed else "denied"
            title = (
                f"{band_label(band)}: {outcome} ({s.reason})"
                f" from {rfc3339(s.start)} until {rfc3339(s.end)}"
            )
            bars.append(Bar(left, round(width, 2), s.allowed, title))
        rows.append(Row(channel_phrase(band.channel), y, tuple(bars)))
        y += ROW_HEIGHT
    axis_y = y + 4
    return Chart(
        width=WIDTH,
        height=int(axis_y + AXIS_HEIGHT),
        label_width=LABEL_WIDTH,
        plot_width=plot,
        axis_y=axis_y,
        rows=tuple(rows),
        ticks=tuple(Tick(x(m), label) for m, label in ticks(start, end)),
        start=start,
        end=end,
    )
