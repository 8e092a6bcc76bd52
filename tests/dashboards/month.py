"""The fixture month of the ranking tests, October 2026: its moments and settings (the tickets
are built by the ``october`` fixture of tests/dashboards/conftest.py)."""

import datetime as dt
from zoneinfo import ZoneInfo

from dashboards import ranking
from hotline import settings
from hotline.config import DEFAULTS
from hotline.enums import Satisfaction, Solved

TZ = ZoneInfo("Asia/Shanghai")
STREETLIGHT = "010103"


def local(month, day, hour=9, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
#: Monday 12 October, 09:00: most tickets are dispatched then (sign ≤ 2 h, contact ≤ 24 h,
#: finish ≤ 5 working days → Monday 19 October 09:00).
OCT12 = local(10, 12)
#: The moment the ranking is computed: Monday 2 November, 10:00.
AS_OF = local(11, 2, 10)
CONFIG = DEFAULTS
#: The fixture month is small: units with 3 dispatched tickets are ranked.
SETTINGS = ranking.Settings(min_sample=3)


def use_settings(db, **values):
    """Set the ranking's settings as an administrator does (``ranking.load`` and
    ``ranking.freeze`` read them from the settings table)."""
    settings.update(db, None, {f"ranking.{name}": value for name, value in values.items()})


SOLVED_SATISFIED = (Solved.solved, Satisfaction.satisfied)
UNHAPPY = (Solved.unsolved, Satisfaction.dissatisfied)

SEEDED_HANDLERS = {
    "U-S-370705001": "dongguan",
    "U-CGJ": "cgj",
    "U-WATER": "water",
    "U-STHJ": "sthj",
    "U-D-370705": "kuiwen",
}

# -- the live boards' tickets (the ``city`` fixture) ----------------------------------------------

#: Wednesday 14 October 2026, 15:00 local: "now" of the hand-computed board.
NOW = local(10, 14, 15)
PHONE_TITLE = "电话13805361234，身份证370705199001011234，<script>alert(1)</script>"
