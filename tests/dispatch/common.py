"""Constants and pure helpers shared by several dispatch test modules (the scenario builders
that use them are fixtures in tests/dispatch/conftest.py)."""

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from hotline.attachments import Photo

TZ = ZoneInfo("Asia/Shanghai")
DONGGUAN = "U-S-370705001"  # 东关街道办事处
STREETLIGHT = "010103"
PHONE = "13805360001"  # the requester's phone of ``make_ticket``

# -- grid workers ---------------------------------------------------------------------------------

MY_GRID = "370705001001001"  # one of the seeded worker "grid"'s two grids
OTHER_GRID = "370705001001003"  # same community, not theirs


def photo(name, fill=b""):
    """A checked photo (``attachments.check``'s output): PNG bytes, stored by the operation."""
    data = b"\x89PNG\r\n\x1a\n" + fill.ljust(16, b"\0")
    return Photo(name, "image/png", data, hashlib.sha256(data).hexdigest())


PHOTOS = [photo("现场.png")]

# -- callbacks: the week of Monday 2026-11-16 (no holidays) ---------------------------------------

#: The seeded users of the callback tests.
NAMES = ["operator", "dispatcher", "dongguan", "callback", "supervisor", "admin"]


def local(day, hour=9, minute=0, second=0):
    """A moment of November 2026 in Asia/Shanghai wall-clock time, as aware UTC."""
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=TZ).astimezone(dt.UTC)


TUE_0900 = local(17, 9)
