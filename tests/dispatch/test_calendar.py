"""The working-day calendar: chinese-calendar's official 2026 data, weekends, administrators'
overrides, years nobody has published, and the process-wide cache.

2026 around National Day, as chinese-calendar has it (W = working day, - = day off):

    Sep 19 Sat -   Sep 20 Sun W (调休)   Sep 21–24 Mon–Thu W
    Sep 25–27 Fri–Sun - (中秋)           Sep 28–30 Mon–Wed W
    Oct 1–7 Thu–Wed - (国庆节)           Oct 8–9 Thu–Fri W   Oct 10 Sat W (调休)
    Oct 11 Sun -   Oct 12–16 Mon–Fri W
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from dispatch import calendar as work_calendar
from dispatch.calendar import WorkCalendar
from hotline.models import CalendarDay, CalendarYear

TZ = "Asia/Shanghai"
SHANGHAI = ZoneInfo(TZ)
UTC = dt.UTC


def local(*args):
    return dt.datetime(*args, tzinfo=SHANGHAI)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def cal():
    return WorkCalendar(TZ)


# -- is_workday, year_source ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "workday"),
    [
        (dt.date(2026, 9, 19), False),  # Saturday
        (dt.date(2026, 9, 20), True),  # Sunday made a working day for National Day
        (dt.date(2026, 9, 25), False),  # 中秋 (a Friday)
        (dt.date(2026, 9, 30), True),
        (dt.date(2026, 10, 1), False),
        (dt.date(2026, 10, 5), False),  # a Monday inside National Day
        (dt.date(2026, 10, 7), False),
        (dt.date(2026, 10, 8), True),
        (dt.date(2026, 10, 10), True),  # Saturday made a working day
        (dt.date(2026, 10, 11), False),
        (dt.date(2026, 11, 21), False),  # an ordinary Saturday
        (dt.date(2026, 11, 23), True),
    ],
)
def test_official_2026(cal, day, workday):
    assert cal.is_workday(day) == (workday, False)


def test_year_sources():
    cal = WorkCalendar(TZ, defined_years=[2028])
    first, last = work_calendar.official_years()
    assert last >= 2026 >= first
    assert cal.year_source(2026) == "official"
    assert cal.year_source(2027) == "undefined"
    assert cal.year_source(2028) == "table"
    assert cal.year_source(first - 1) == "undefined"


def test_undefined_year_is_a_flagged_guess(cal):
    assert cal.is_workday(dt.date(2027, 1, 1)) == (True, True)  # Friday: guessed a working day
    assert cal.is_workday(dt.date(2027, 1, 2)) == (False, True)  # Saturday


def test_defined_year_is_not_a_guess():
    cal = WorkCalendar(TZ, {dt.date(2027, 1, 1): False}, defined_years=[2027])
    assert cal.is_workday(dt.date(2027, 1, 1)) == (False, False)
    assert cal.is_workday(dt.date(2027, 1, 4)) == (True, False)
    assert cal.is_workday(dt.date(2027, 1, 9)) == (False, False)


def test_table_entry_in_undefined_year_is_not_a_guess():
    cal = WorkCalendar(TZ, {dt.date(2027, 1, 1): False})
    assert cal.is_workday(dt.date(2027, 1, 1)) == (False, False)
    assert cal.is_workday(dt.date(2027, 1, 4)) == (True, True)


def test_overrides_win_over_chinese_calendar():
    cal = WorkCalendar(
        TZ,
        {
            dt.date(2026, 10, 8): False,  # official working day made a holiday
            dt.date(2026, 10, 5): True,  # official holiday made a working day
            dt.date(2026, 11, 21): True,  # Saturday made a working day
            dt.date(2026, 11, 23): False,  # Monday made a holiday
        },
    )
    assert cal.is_workday(dt.date(2026, 10, 8)) == (False, False)
    assert cal.is_workday(dt.date(2026, 10, 5)) == (True, False)
    assert cal.is_workday(dt.date(2026, 11, 21)) == (True, False)
    assert cal.is_workday(dt.date(2026, 11, 23)) == (False, False)


# -- add_working_days -------------------------------------------------------------------------


def test_five_working_days_across_national_day(cal):
    # Counting starts the day after the start: Oct 1–7 off; Oct 8 (1), Oct 9 (2),
    # Oct 10 Sat 调休 (3), Oct 11 Sun off, Oct 12 (4), Oct 13 (5) → Oct 13, same time of day.
    due, guessed = cal.add_working_days(local(2026, 9, 30, 10, 0), 5)
    assert due == utc(2026, 10, 13, 2, 0)
    assert due == local(2026, 10, 13, 10, 0)
    assert due.tzinfo == UTC
    assert guessed == []


def test_three_working_days_across_mid_autumn(cal):
    # Sep 25–27 off; Sep 28 (1), Sep 29 (2), Sep 30 (3).
    due, guessed = cal.add_working_days(local(2026, 9, 24, 15, 30), 3)
    assert due == local(2026, 9, 30, 15, 30)
    assert guessed == []


def test_swapped_sunday_counts(cal):
    # Sat Sep 19 off; Sun Sep 20 is a 调休 working day (1).
    assert cal.add_working_days(local(2026, 9, 18, 9, 0), 1)[0] == local(2026, 9, 20, 9, 0)


def test_start_on_a_holiday(cal):
    # Oct 4–7 off; Oct 8 (1).
    assert cal.add_working_days(local(2026, 10, 3, 12, 0), 1)[0] == local(2026, 10, 8, 12, 0)


def test_weekend(cal):
    # Friday Nov 20: Sat, Sun off; Mon Nov 23 (1), Tue Nov 24 (2).
    friday = local(2026, 11, 20, 16, 45)
    assert cal.add_working_days(friday, 1)[0] == local(2026, 11, 23, 16, 45)
    assert cal.add_working_days(friday, 2)[0] == local(2026, 11, 24, 16, 45)


def test_local_date_not_utc_date(cal):
    # 17:00 UTC on Friday Nov 20 is already Saturday 01:00 in Shanghai: Sun off, Mon (1).
    assert cal.add_working_days(utc(2026, 11, 20, 17, 0), 1)[0] == local(2026, 11, 23, 1, 0)


def test_overrides_move_deadlines():
    made_holiday = WorkCalendar(TZ, {dt.date(2026, 10, 8): False})
    # Oct 8 now off: Oct 9 (1), Oct 10 (2), Oct 12 (3), Oct 13 (4), Oct 14 (5).
    due, guessed = made_holiday.add_working_days(local(2026, 9, 30, 10, 0), 5)
    assert due == local(2026, 10, 14, 10, 0)
    assert guessed == []

    made_workday = WorkCalendar(TZ, {dt.date(2026, 10, 7): True})
    # Oct 7 (1), Oct 8 (2), Oct 9 (3), Oct 10 (4), Oct 12 (5).
    assert made_workday.add_working_days(local(2026, 9, 30, 10, 0), 5)[0] == local(
        2026, 10, 12, 10, 0
    )

    saturday = WorkCalendar(TZ, {dt.date(2026, 11, 21): True, dt.date(2026, 11, 23): False})
    friday = local(2026, 11, 20, 16, 0)
    # Sat Nov 21 made a working day (1); Mon Nov 23 made a holiday, Tue Nov 24 (2).
    assert saturday.add_working_days(friday, 1)[0] == local(2026, 11, 21, 16, 0)
    assert saturday.add_working_days(friday, 2)[0] == local(2026, 11, 24, 16, 0)


def test_undefined_year_reports_the_guess(cal):
    # Dec 31 2026 (1, official); 2027 unknown → Monday–Friday: Fri Jan 1 (2), Jan 2–3 off,
    # Jan 4 (3), Jan 5 (4), Jan 6 (5). 2027 is reported as guessed.
    due, guessed = cal.add_working_days(local(2026, 12, 30, 10, 0), 5)
    assert due == local(2027, 1, 6, 10, 0)
    assert guessed == [2027]
    # Entirely inside 2026: nothing guessed.
    assert cal.add_working_days(local(2026, 12, 28, 10, 0), 3)[1] == []


def test_defined_year_reports_no_guess():
    cal = WorkCalendar(TZ, {dt.date(2027, 1, 1): False}, defined_years=[2027])
    # Dec 31 (1); Jan 1 holiday by the table; Jan 4 (2), 5 (3), 6 (4), 7 (5).
    due, guessed = cal.add_working_days(local(2026, 12, 30, 10, 0), 5)
    assert due == local(2027, 1, 7, 10, 0)
    assert guessed == []


# -- next_working_day_at ----------------------------------------------------------------------


def test_next_working_day_across_a_weekend(cal):
    assert cal.next_working_day_at(local(2026, 11, 20, 18, 0), 9) == utc(2026, 11, 23, 1, 0)
    assert cal.next_working_day_at(local(2026, 11, 21, 10, 0), 9) == local(2026, 11, 23, 9, 0)


def test_next_working_day_across_national_day(cal):
    assert cal.next_working_day_at(local(2026, 9, 30, 18, 0), 9) == local(2026, 10, 8, 9, 0)
    assert cal.next_working_day_at(local(2026, 10, 9, 18, 0), 9) == local(2026, 10, 10, 9, 0)
    # Saturday Sep 19 → the 调休 Sunday.
    assert cal.next_working_day_at(local(2026, 9, 19, 8, 0), 9) == local(2026, 9, 20, 9, 0)


def test_next_working_day_uses_the_local_date(cal):
    # 17:00 UTC Wednesday is Thursday 01:00 in Shanghai: the next working day is Friday.
    assert cal.next_working_day_at(utc(2026, 11, 18, 17, 0), 9) == local(2026, 11, 20, 9, 0)


# -- working_point ----------------------------------------------------------------------------


def test_working_point_across_a_weekend(cal):
    # Working time: Fri 10:00–24:00 (14 h) + Mon 00:00–10:00 (10 h) = 24 h; 80 % = 19 h 12 min:
    # 14 h on Friday, 5 h 12 min into Monday. (Wall time would give Sunday 15:36.)
    point = cal.working_point(local(2026, 11, 20, 10, 0), local(2026, 11, 23, 10, 0), 0.8)
    assert point == local(2026, 11, 23, 5, 12)
    assert point == utc(2026, 11, 22, 21, 12)


def test_working_point_across_national_day(cal):
    # Sep 30 10:00–24:00 (14 h) + Oct 8 (24 h) + Oct 9 00:00–10:00 (10 h) = 48 h;
    # 80 % = 38 h 24 min: 14 h + 24 h, then 24 min into Oct 9.
    point = cal.working_point(local(2026, 9, 30, 10, 0), local(2026, 10, 9, 10, 0), 0.8)
    assert point == local(2026, 10, 9, 0, 24)


def test_working_point_within_one_day(cal):
    point = cal.working_point(local(2026, 11, 23, 9, 0), local(2026, 11, 23, 11, 0), 0.8)
    assert point == local(2026, 11, 23, 10, 36)


def test_working_point_without_working_time_is_wall_time(cal):
    # Oct 2 10:00 → Oct 4 10:00 is all holiday: 80 % of 48 h wall time = 38 h 24 min.
    start, due = local(2026, 10, 2, 10, 0), local(2026, 10, 4, 10, 0)
    assert cal.working_point(start, due, 0.8) == local(2026, 10, 4, 0, 24)


def test_working_point_due_before_start(cal):
    start = local(2026, 11, 23, 10, 0)
    assert cal.working_point(start, start, 0.8) == start
    earlier = local(2026, 11, 20, 10, 0)
    assert cal.working_point(start, earlier, 0.8) == earlier


# -- load() and its cache ---------------------------------------------------------------------


def test_load_reads_the_tables(db):
    work_calendar.invalidate()
    db.add(CalendarDay(day=dt.date(2027, 1, 1), workday=False, name="元旦"))
    db.add(CalendarYear(year=2027, note="测试"))
    db.flush()
    cal = work_calendar.load(db, TZ)
    assert cal.is_workday(dt.date(2027, 1, 1)) == (False, False)
    assert cal.is_workday(dt.date(2027, 1, 4)) == (True, False)
    assert cal.year_source(2027) == "table"


def test_load_is_cached_until_invalidated(db):
    work_calendar.invalidate()
    first = work_calendar.load(db, TZ)
    assert work_calendar.load(db, TZ) is first
    db.add(CalendarDay(day=dt.date(2026, 11, 23), workday=False, name="临时休假"))
    db.flush()
    # Still the cached calendar: the entry is not seen yet.
    assert work_calendar.load(db, TZ).is_workday(dt.date(2026, 11, 23)) == (True, False)
    work_calendar.invalidate()
    fresh = work_calendar.load(db, TZ)
    assert fresh is not first
    assert fresh.is_workday(dt.date(2026, 11, 23)) == (False, False)


def test_load_cache_expires(db, monkeypatch):
    work_calendar.invalidate()
    monkeypatch.setattr(work_calendar, "CACHE_SECONDS", -1)
    first = work_calendar.load(db, TZ)
    db.add(CalendarDay(day=dt.date(2026, 11, 21), workday=True, name="临时上班"))
    db.flush()
    second = work_calendar.load(db, TZ)
    assert second is not first
    assert second.is_workday(dt.date(2026, 11, 21)) == (True, False)


def test_load_is_per_timezone(db):
    work_calendar.invalidate()
    shanghai = work_calendar.load(db, TZ)
    urumqi = work_calendar.load(db, "Asia/Urumqi")
    assert urumqi is not shanghai
    assert urumqi.tz == ZoneInfo("Asia/Urumqi")
    assert work_calendar.load(db, TZ) is shanghai
