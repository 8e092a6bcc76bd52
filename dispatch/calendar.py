"""Working days of the official Chinese calendar (法定节假日 and 调休 swapped workdays).

Three sources, first match wins:

1. the administrators' table (``calendar_days``): single days, for corrections and for years
   ``chinese-calendar`` does not know yet;
2. ``chinese-calendar``, which knows the years the State Council has published (to 2026);
3. Monday–Friday. For a year an administrator has declared complete (``calendar_years``) that
   is the rule; for any other year it is a guess, and every answer built on it carries the
   guessed year, so a deadline in an unpublished year is flagged instead of silently trusted.

Units working 24×7 do not use this module: their days are calendar days.
"""

import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

import chinese_calendar
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline.models import CalendarDay, CalendarYear

DAY = dt.timedelta(days=1)
#: Seconds a loaded calendar is reused; edits show in other processes within this time.
CACHE_SECONDS = 10


def official_years():
    """The first and last year ``chinese-calendar`` knows."""
    years = [day.year for day in chinese_calendar.holidays]
    return min(years), max(years)


class WorkCalendar:
    def __init__(self, timezone, overrides=None, defined_years=()):
        self.tz = ZoneInfo(timezone)
        #: date → is a working day (the administrators' entries)
        self.overrides = dict(overrides or {})
        self.defined_years = frozenset(defined_years)
        self._first, self._last = official_years()
        self._days = {}

    def year_source(self, year):
        """``official`` (chinese-calendar), ``table`` (declared complete) or ``undefined``."""
        if self._first <= year <= self._last:
            return "official"
        if year in self.defined_years:
            return "table"
        return "undefined"

    def is_workday(self, day):
        """(is it a working day, was the answer a Monday–Friday guess)."""
        answer = self._days.get(day)
        if answer is None:
            answer = self._days[day] = self._lookup(day)
        return answer

    def _lookup(self, day):
        if day in self.overrides:
            return self.overrides[day], False
        if self._first <= day.year <= self._last:
            return chinese_calendar.is_workday(day), False
        return day.weekday() < 5, day.year not in self.defined_years

    def add_working_days(self, start, days):
        """The moment ``days`` working days after ``start``, at the same local time of day.

        Counting starts on the day after ``start``; a start on a holiday therefore ends on the
        ``days``-th working day after it. Returns (deadline in UTC, sorted guessed years).
        """
        local = start.astimezone(self.tz)
        day = local.date()
        guessed = set()
        counted = 0
        while counted < days:
            day += DAY
            workday, guess = self.is_workday(day)
            if guess:
                guessed.add(day.year)
            if workday:
                counted += 1
        deadline = dt.datetime.combine(day, local.time(), tzinfo=self.tz)
        return deadline.astimezone(dt.UTC), sorted(guessed)

    def next_working_day_at(self, moment, hour):
        """``hour`` o'clock local on the first working day after ``moment``'s local date."""
        day = moment.astimezone(self.tz).date() + DAY
        while not self.is_workday(day)[0]:
            day += DAY
        return dt.datetime.combine(day, dt.time(hour), tzinfo=self.tz).astimezone(dt.UTC)

    def working_point(self, start, due, fraction):
        """The moment at which ``fraction`` of the working time from ``start`` to ``due`` is
        used. Only working days count, so a warning at 80 % does not fall in a holiday when
        the clock was mostly stopped by it. Without any working time in between, wall time.
        """
        if due <= start:
            return due
        start_local, due_local = start.astimezone(self.tz), due.astimezone(self.tz)
        first, last = start_local.date(), due_local.date()
        # Seconds of working time on each day from the first to the last (partial at ends).
        head = 86400 - _seconds_of_day(start_local)
        seconds = []
        day = first
        while day <= last:
            if not self.is_workday(day)[0]:
                seconds.append(0)
            elif first == last:
                seconds.append((due_local - start_local).total_seconds())
            elif day == first:
                seconds.append(head)
            elif day == last:
                seconds.append(_seconds_of_day(due_local))
            else:
                seconds.append(86400)
            day += DAY
        total = sum(seconds)
        if not total:
            return start + (due - start) * fraction
        remaining = total * fraction
        for index, available in enumerate(seconds):
            if available and remaining <= available:
                if index == 0:
                    return start + dt.timedelta(seconds=remaining)
                midnight = dt.datetime.combine(first + index * DAY, dt.time(), tzinfo=self.tz)
                return (midnight + dt.timedelta(seconds=remaining)).astimezone(dt.UTC)
            remaining -= available
        return due


def _seconds_of_day(local):
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


_lock = threading.Lock()
_loaded = {}


def load(session, timezone):
    """The calendar with the administrators' entries, reused for ``CACHE_SECONDS``."""
    entry = _loaded.get(timezone)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    overrides = dict(session.execute(sa.select(CalendarDay.day, CalendarDay.workday)).all())
    years = session.scalars(sa.select(CalendarYear.year)).all()
    calendar = WorkCalendar(timezone, overrides, years)
    with _lock:
        _loaded[timezone] = (time.monotonic() + CACHE_SECONDS, calendar)
    return calendar


def invalidate():
    """Forget loaded calendars (after an edit, so this process uses it at once)."""
    with _lock:
        _loaded.clear()


def changed(session):
    """Note that ``session`` changed the calendar: this process forgets its loaded calendars
    once the change commits (other processes within ``CACHE_SECONDS``)."""
    session.info["calendar_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_after_commit(session):
    if session.info.pop("calendar_changed", False):
        invalidate()


@event.listens_for(Session, "after_soft_rollback")
def _keep_after_rollback(session, _previous_transaction):
    session.info.pop("calendar_changed", None)
