"""Working days of the official Chinese calendar (法定节假日 and 调休 swapped workdays).

``chinese-calendar`` knows the years the State Council has published. For a later year we fall
back to Monday–Friday and say so: the caller gets the years that were guessed, so a deadline in
an unpublished year is flagged on the ticket instead of silently trusted.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import chinese_calendar


def is_workday(day):
    """(is it a working day, was the answer a Monday–Friday guess)."""
    try:
        return chinese_calendar.is_workday(day), False
    except NotImplementedError:
        return day.weekday() < 5, True


def add_working_days(start, days, timezone):
    """The moment ``days`` working days after ``start``, at the same local time of day.

    Counting starts on the day after ``start``; a start on a holiday therefore ends on the
    ``days``-th working day after it. Returns (deadline in UTC, sorted years that were guessed).
    """
    tz = ZoneInfo(timezone)
    local = start.astimezone(tz)
    day = local.date()
    guessed = set()
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        workday, guess = is_workday(day)
        if guess:
            guessed.add(day.year)
        if workday:
            counted += 1
    deadline = dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=tz)
    return deadline.astimezone(dt.UTC), sorted(guessed)
