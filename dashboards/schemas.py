"""The query arguments of the ranking, the rates and the 民情分析 reports, as the JSON API and
the report pages read them."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from dashboards import access, analysis
from hotline.enums import ReportPeriod
from hotline.errors import ValidationFailed

#: Longest period the rates may be asked for.
MAX_PERIOD_DAYS = 366
GROUPINGS = ("unit", "district", "street")
_DISTRICT = re.compile(r"^\d{6}$")


def local_today(now, timezone):
    return now.astimezone(ZoneInfo(timezone)).date()


def rates_period(args, *, today, timezone):
    """The period and grouping of a rates request (``from``, ``to``, ``by``), checked:
    {"from", "to" (local dates), "by", "start", "end" (UTC moments, end excluded)}. The
    default is this month so far."""
    start_day = _date_arg(args, "from", today.replace(day=1))
    end_day = _date_arg(args, "to", today)
    if end_day < start_day:
        raise ValidationFailed("结束日期不能早于开始日期", details={"to": "不能早于开始日期"})
    if (end_day - start_day).days > MAX_PERIOD_DAYS:
        raise ValidationFailed("统计区间不能超过一年", details={"to": "区间不能超过一年"})
    by = args.get("by", "unit")
    if by not in GROUPINGS:
        raise ValidationFailed("分组方式须为 unit、district 或 street", details={"by": "取值无效"})
    zone = ZoneInfo(timezone)
    return {
        "from": start_day,
        "to": end_day,
        "by": by,
        "start": dt.datetime.combine(start_day, dt.time(), zone).astimezone(dt.UTC),
        "end": dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), zone).astimezone(
            dt.UTC
        ),
    }


def _date_arg(args, name, default):
    raw = args.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            f"日期“{name}”格式应为 YYYY-MM-DD", details={name: "格式应为 YYYY-MM-DD"}
        ) from None


def analysis_request(user, args, *, kind=None, key=None, now, timezone):
    """The period and scope of a 民情分析 report request, as the pages and the API read it:
    ``kind`` (``daily`` … ``quarterly``, default quarterly) and ``key`` (default: the last
    period that has ended) from the path or ``args``; ``district`` (6 digits; none: the
    city's) from ``args``, which a district leader cannot leave (``access.analysis_scope``).
    Returns (Period, district code or None)."""
    kind = analysis.parse_kind(kind or args.get("kind") or ReportPeriod.quarterly.value)
    key = key or args.get("key")
    if key:
        period = analysis.parse_period(kind, key, timezone)
    else:
        period = analysis.default_period(kind, now, timezone)
    district = (args.get("district") or "").strip() or None
    if district is not None and not _DISTRICT.match(district):
        raise ValidationFailed("区县编码应为 6 位数字", details={"district": "格式无效"})
    return period, access.analysis_scope(user, district)
