"""Epoch seconds and aware datetimes: the one conversion between the two.

extra_data stores times as UTC epoch seconds (JSON has no datetime); the database columns,
the admin and the pages use aware datetimes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def at(epoch: float) -> datetime:
    """Return the aware UTC datetime of `epoch` seconds."""
    return datetime.fromtimestamp(float(epoch), tz=UTC)


def to_datetime(epoch: float | None) -> datetime | None:
    """Return the aware UTC datetime of `epoch` seconds; None stays None."""
    return at(epoch) if epoch is not None else None


def to_epoch(moment: datetime) -> float:
    """Return the epoch seconds of an aware datetime."""
    return moment.timestamp()


def now_datetime() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return at(time.time())
