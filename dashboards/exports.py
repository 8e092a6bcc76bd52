"""The monthly ranking as files: JSON for programs, CSV for any spreadsheet, XLSX to print;
and a ticket list (the search page's result) as XLSX.

Every output holds the same facts as the report page (``dashboards.ranking``): each unit's
counts, rates, score, place and red/black-list mark, the month-over-month change, the
settings the ranking was computed with, the definitions, the month's totals and every
exemption, and whether it is the frozen publication or live data that may still move.

Rates are fractions in [0, 1] in JSON and XLSX (the sheet formats them as percentages);
CSV writes them as percentages with two decimals ("83.33%"), which spreadsheets read back
as numbers. Times are UTC ISO 8601 in JSON and local time (``timezone``) on paper.
"""

import csv
import datetime as dt
import io
import itertools
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

from openpyxl import Workbook
from openpyxl.styles import Alignment, PatternFill
from openpyxl.utils import get_column_letter

from dashboards.ranking import COUNTS, DEFINITIONS, LABELS, RATES, parse_month
from dispatch.states import IN_HANDLING
from hotline import tabular
from hotline.config import DEFAULTS
from hotline.db import local_datetime
from hotline.enums import ListMark, RankingClass, TicketStatus

#: Chinese names of the settings (``Settings`` fields), in report order.
SETTING_LABELS = {
    "weight_response": "响应率权重",
    "weight_resolution": "解决率权重",
    "weight_satisfaction": "满意率权重",
    "partly_solved_percent": "部分解决折算系数",
    "basically_satisfied_percent": "基本满意折算系数",
    "min_sample": "最小样本量（派单件数）",
    "list_size": "红黑榜人数（每类）",
}
#: Chinese names of the month's totals: the counts, plus intake outcomes reaching no unit.
TOTAL_LABELS = {
    "received": "受理量",
    **{name: LABELS[name] for name in COUNTS},
    "resolved_at_intake": TicketStatus.resolved_at_intake.label,
    "transferred": TicketStatus.transferred.label,
    "merged": TicketStatus.merged.label,
}
EXEMPTION_HEADERS = ("工单编号", "单位", "豁免类型", "理由", "审核人", "时间")
SHEET_EXEMPTIONS = "豁免清单"
SHEET_DEFINITIONS = "口径说明"
SHEET_REFERRALS = "移送纪检监察"
REFERRAL_HEADERS = ("单位", "问题类型", "线索", "涉及工单", "移送理由", "移送人", "移送时间")

# Kinds of column: how a value is written and formatted.
_TEXT, _INT, _CHANGE, _SCORE, _SCORE_CHANGE, _RATE = (
    "text",
    "int",
    "change",
    "score",
    "score_change",
    "rate",
)
_FORMATS = {
    _INT: "0",
    _CHANGE: "+0;-0;0",
    _SCORE: "0.00",
    _SCORE_CHANGE: "+0.00;-0.00;0.00",
    _RATE: "0.00%",
}


def _row_columns():
    """(header, value of a Row, kind) of one unit's line, in report order."""
    columns = [
        ("单位编码", lambda r: r.unit_code, _TEXT),
        ("单位名称", lambda r: r.unit_name, _TEXT),
        ("名次", lambda r: r.rank, _INT),
        ("上月名次", lambda r: r.prev_rank, _INT),
        ("名次变化", lambda r: r.rank_change, _CHANGE),
        ("综合得分", lambda r: r.rates.get("composite"), _SCORE),
        ("得分变化", lambda r: r.composite_change, _SCORE_CHANGE),
        ("红黑榜", lambda r: r.list_mark.label if r.list_mark else None, _TEXT),
        ("未排名原因", lambda r: r.unranked_reason, _TEXT),
    ]
    columns += [
        (LABELS[name], lambda r, name=name: r.rates.get(name), _RATE)
        for name in RATES
        if name != "composite"
    ]
    columns += [(LABELS[name], lambda r, name=name: r.counts.get(name), _INT) for name in COUNTS]
    return columns


def _iso(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _month_title(ranking):
    year, number = parse_month(ranking.month)
    return f"{year}年{number}月 12345 热线考核排名"


def _status(ranking, timezone):
    """The publication's freeze time, or that the data is live (and as of when)."""
    if ranking.frozen_at is not None:
        return f"已冻结于 {local_datetime(ranking.frozen_at, timezone):%Y-%m-%d %H:%M}"
    return f"实时数据，未冻结（截至 {local_datetime(ranking.as_of, timezone):%Y-%m-%d %H:%M}）"


def _period_text(ranking, timezone):
    start = local_datetime(ranking.period_start, timezone).date()
    last = (local_datetime(ranking.period_end, timezone) - dt.timedelta(days=1)).date()
    return f"{start:%Y-%m-%d} 至 {last:%Y-%m-%d}（按受理时间）"


def _totals(ranking):
    """The month's totals in report order (a frozen snapshot's JSON may have lost it)."""
    totals = ranking.totals or {}
    known = [name for name in TOTAL_LABELS if name in totals]
    return {name: totals[name] for name in known + sorted(set(totals) - set(known))}


def _rows(ranking, ranking_class):
    return ranking.rows.get(ranking_class, [])


# -- JSON -----------------------------------------------------------------------------------------


def _row_dict(row):
    mark = row.list_mark
    return {
        "unit_code": row.unit_code,
        "unit_name": row.unit_name,
        "rank": row.rank,
        "unranked_reason": row.unranked_reason,
        "composite": row.rates.get("composite"),
        "list_mark": {"value": mark.value, "label": mark.label} if mark else None,
        "prev_rank": row.prev_rank,
        "prev_composite": row.prev_composite,
        "rank_change": row.rank_change,
        "composite_change": row.composite_change,
        "counts": {name: row.counts.get(name) for name in COUNTS},
        "rates": {name: row.rates.get(name) for name in RATES},
    }


def ranking_to_dict(ranking, referrals=None):
    """The ranking as a JSON-ready dict (rates as fractions, times as UTC ISO 8601), with
    ``referrals`` (rows of ``dashboards.accountability.referrals``) under "referrals" when
    given: a frozen month's as they stood at ``frozen_at``."""
    classes = {}
    for ranking_class in RankingClass:
        rows = _rows(ranking, ranking_class)
        classes[ranking_class.value] = {
            "label": ranking_class.label,
            "rows": [_row_dict(r) for r in rows],
            "red_list": [r.unit_code for r in rows if r.list_mark == ListMark.red],
            "black_list": [r.unit_code for r in rows if r.list_mark == ListMark.black],
        }
    data = {
        "month": ranking.month,
        "period": {"start": _iso(ranking.period_start), "end": _iso(ranking.period_end)},
        "as_of": _iso(ranking.as_of),
        "frozen": ranking.frozen_at is not None,
        "frozen_at": _iso(ranking.frozen_at),
        "settings": ranking.settings.as_dict(),
        "definitions": [{"term": term, "definition": text} for term, text in DEFINITIONS],
        "labels": dict(LABELS),
        "totals": _totals(ranking),
        "exemptions": [dict(e) for e in ranking.exemptions],
        "classes": classes,
    }
    if referrals is not None:
        data["referrals"] = list(referrals)
    return data


# -- CSV ------------------------------------------------------------------------------------------


def _decimal(value, scale=1):
    """A float as the decimal it prints as, times ``scale``, to 2 places (half up)."""
    exact = Decimal(repr(float(value))) * scale
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _csv_text(value):
    """Text as is, except that a leading = + - @ is quoted so no spreadsheet runs it."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_value(value, kind):
    if value is None:
        return ""
    if kind == _TEXT:
        return _csv_text(value)
    if kind in (_INT, _CHANGE):
        return str(int(value))
    if kind == _RATE:
        return percent_text(value)
    return str(_decimal(value))


def percent_text(value):
    """A rate in [0, 1] as a percentage with two decimals, half up ("83.33%")."""
    return f"{_decimal(value, 100)}%"


def csv_headers():
    return ["类别"] + [header for header, _, _ in _row_columns()]


def write_csv(ranking, stream):
    """One table, one line per (class, unit) in place order, Chinese headers, UTF-8 with a
    byte order mark (Excel then reads the Chinese right). ``stream`` is a binary stream or
    a text stream opened with ``encoding="utf-8", newline=""``."""
    text = stream if isinstance(stream, io.TextIOBase) else None
    if text is None:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
    try:
        text.write("\ufeff")
        writer = csv.writer(text)
        columns = _row_columns()
        writer.writerow(csv_headers())
        for ranking_class in RankingClass:
            for row in _rows(ranking, ranking_class):
                writer.writerow(
                    [ranking_class.label] + [_csv_value(get(row), kind) for _, get, kind in columns]
                )
        text.flush()
    finally:
        if text is not stream:
            text.detach()


# -- XLSX -----------------------------------------------------------------------------------------

_RED_FILL = PatternFill("solid", fgColor="FFC7CE")
_BLACK_FILL = PatternFill("solid", fgColor="D9D9D9")
_BORDER = tabular.BORDER
_BOLD = tabular.BOLD
#: Rows above a class table: title, status and settings line, headers.
_HEADER_ROWS = 3
_MAX_WIDTH = 48


def _display_width(text):
    """Columns a text takes: Chinese (wide) characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def _shown(value, kind):
    """Roughly what a cell shows, to size its column."""
    if value is None:
        return ""
    if kind == _RATE:
        return f"{float(value) * 100:.2f}%"
    if kind in (_SCORE, _SCORE_CHANGE):
        return f"{float(value):+.2f}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _put(ws, row, column, value, kind=_TEXT, number_format=None):
    """Write a cell (``tabular.sheet_cell``: text never becomes a formula) in its format."""
    cell = tabular.sheet_cell(ws, row, column, value)
    if number_format or kind in _FORMATS:
        cell.number_format = number_format or _FORMATS[kind]
    return cell


def _size_columns(ws, widths, minimum=6):
    for index, width in enumerate(widths, start=1):
        letter = get_column_letter(index)
        ws.column_dimensions[letter].width = min(max(width + 2, minimum), _MAX_WIDTH)


_title = tabular.sheet_title
_header = tabular.sheet_header
_print_setup = tabular.print_setup


def _class_sheet(ws, ranking, ranking_class, timezone):
    columns = _row_columns()
    title = f"{_month_title(ranking)} · {ranking_class.label}"
    settings = ranking.settings
    subtitle = (
        f"统计期间 {_period_text(ranking, timezone)}　"
        f"权重 响应 {settings.weight_response} / 解决 {settings.weight_resolution} / "
        f"满意 {settings.weight_satisfaction}　最小样本 {settings.min_sample} 件　"
        f"红榜、黑榜各 {settings.list_size} 名　底色：红榜浅红、黑榜浅灰"
    )
    _title(ws, f"{title}　{_status(ranking, timezone)}", subtitle, len(columns))
    _header(ws, _HEADER_ROWS, [header for header, _, _ in columns])
    widths = [_display_width(header) for header, _, _ in columns]
    rows = _rows(ranking, ranking_class)
    for offset, row in enumerate(rows):
        line = _HEADER_ROWS + 1 + offset
        mark = row.list_mark
        fill = {ListMark.red: _RED_FILL, ListMark.black: _BLACK_FILL}.get(mark)
        for index, (_, get, kind) in enumerate(columns, start=1):
            value = get(row)
            cell = _put(ws, line, index, value, kind)
            cell.border = _BORDER
            if fill is not None:
                cell.fill = fill
            widths[index - 1] = max(widths[index - 1], _display_width(_shown(value, kind)))
    if not rows:
        _put(ws, _HEADER_ROWS + 1, 1, "本月本类无参评单位")
    else:
        last = get_column_letter(len(columns))
        ws.auto_filter.ref = f"A{_HEADER_ROWS}:{last}{_HEADER_ROWS + len(rows)}"
    _size_columns(ws, widths)
    ws.freeze_panes = ws.cell(row=_HEADER_ROWS + 1, column=3)  # titles, headers, code, name
    _print_setup(ws, title, f"1:{_HEADER_ROWS}")


def _exemption_sheet(ws, ranking, timezone):
    title = f"{_month_title(ranking)} · {SHEET_EXEMPTIONS}"
    count = len(ranking.exemptions)
    subtitle = f"{_status(ranking, timezone)}　考核豁免工单 {count} 件，不计入任何比率"
    _title(ws, title, subtitle, len(EXEMPTION_HEADERS))
    _header(ws, _HEADER_ROWS, EXEMPTION_HEADERS)
    widths = [_display_width(h) for h in EXEMPTION_HEADERS]
    for offset, item in enumerate(ranking.exemptions):
        line = _HEADER_ROWS + 1 + offset
        values = [
            item.get("ticket"),
            item.get("unit_name") or item.get("unit_code"),
            item.get("kind_label") or item.get("kind"),
            item.get("reason"),
            item.get("by"),
            local_datetime(item.get("at"), timezone),
        ]
        for index, value in enumerate(values, start=1):
            cell = _put(ws, line, index, value)
            cell.border = _BORDER
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            if index == 4:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            widths[index - 1] = max(widths[index - 1], _display_width(_shown(value, _TEXT)))
    if not ranking.exemptions:
        _put(ws, _HEADER_ROWS + 1, 1, "本月无豁免工单")
    _size_columns(ws, widths, minimum=10)
    ws.freeze_panes = ws.cell(row=_HEADER_ROWS + 1, column=1)
    _print_setup(ws, title, f"1:{_HEADER_ROWS}")


def _referral_sheet(ws, ranking, referrals, timezone):
    """The month's referrals to discipline inspection (``dashboards.accountability``); None:
    the reader may not see them (the sheet says so). A frozen ranking's sheet says that it
    lists the referrals made up to the freeze (its rows were read so)."""
    title = f"{_month_title(ranking)} · {SHEET_REFERRALS}"
    hidden = referrals is None
    referrals = [] if hidden else list(referrals)
    subtitle = f"本月移送纪检监察 {len(referrals)} 起（四位一体督办 · 监察问责）"
    if hidden:
        subtitle = "移送纪检监察记录仅限督办审核员和领导查看（四位一体督办 · 监察问责）"
    elif ranking.frozen_at is not None:
        frozen = local_datetime(ranking.frozen_at, timezone)
        subtitle += f"，截至排名冻结时（{frozen:%Y-%m-%d %H:%M}）；此后的移送见监察问责页面"
    _title(ws, title, subtitle, len(REFERRAL_HEADERS))
    _header(ws, _HEADER_ROWS, REFERRAL_HEADERS)
    widths = [_display_width(h) for h in REFERRAL_HEADERS]
    for offset, item in enumerate(referrals):
        line = _HEADER_ROWS + 1 + offset
        values = [
            item["unit_name"],
            item["kind_label"],
            "；".join(item["summaries"]),
            "、".join(t for t in item["tickets"] if t),
            item["reason"],
            item["by"],
            item["at"],
        ]
        for index, value in enumerate(values, start=1):
            cell = _put(ws, line, index, value)
            cell.border = _BORDER
            if index in (3, 4, 5):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            widths[index - 1] = min(60, max(widths[index - 1], _display_width(str(value))))
    if hidden:
        _put(ws, _HEADER_ROWS + 1, 1, "您的角色无权查看移送纪检监察记录")
    elif not referrals:
        _put(ws, _HEADER_ROWS + 1, 1, "本月无移送纪检监察的单位")
    _size_columns(ws, widths, minimum=10)
    ws.freeze_panes = ws.cell(row=_HEADER_ROWS + 1, column=1)
    _print_setup(ws, title, f"1:{_HEADER_ROWS}")


def _definitions_sheet(ws, ranking, timezone):
    title = f"{_month_title(ranking)} · {SHEET_DEFINITIONS}"
    period = _period_text(ranking, timezone)
    _title(ws, title, f"{_status(ranking, timezone)}　统计期间 {period}", 2)
    line = _HEADER_ROWS

    def section(headers):
        nonlocal line
        _header(ws, line, headers)
        line += 1

    def entry(label, value, number_format=None, wrap=False):
        nonlocal line
        _put(ws, line, 1, label).border = _BORDER
        cell = _put(ws, line, 2, value, number_format=number_format)
        cell.border = _BORDER
        if wrap:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        line += 1

    section(["指标", "定义"])
    for term, text in DEFINITIONS:
        entry(term, text, wrap=True)
    line += 1
    section(["参数", "取值"])
    settings = ranking.settings.as_dict()
    for name, label in SETTING_LABELS.items():
        if name not in settings:
            continue
        value = settings[name]
        if name.endswith("_percent"):
            entry(label, value / 100, number_format="0.00")
        else:
            entry(label, value, number_format="0")
    line += 1
    section(["全市合计", "数量"])
    for name, value in _totals(ranking).items():
        entry(TOTAL_LABELS.get(name, name), value, number_format="0")
    line += 1
    section(["数据", "说明"])
    entry("状态", _status(ranking, timezone))
    entry("统计期间", period)
    entry("数据时点", local_datetime(ranking.as_of, timezone), number_format="yyyy-mm-dd hh:mm")
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["B"].width = 100
    _print_setup(ws, title, None)
    ws.page_setup.orientation = ws.ORIENTATION_PORTRAIT


def build_workbook(ranking, *, timezone=DEFAULTS["TIMEZONE"], referrals=()):
    """The workbook: a sheet per class, then 豁免清单, 移送纪检监察 (``referrals``: the rows
    of ``dashboards.accountability.referrals``, None when the reader may not see them) and
    口径说明."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    workbook.properties.title = _month_title(ranking)
    workbook.properties.creator = "12345 热线工单系统"
    for ranking_class in RankingClass:
        _class_sheet(workbook.create_sheet(ranking_class.label), ranking, ranking_class, timezone)
    _exemption_sheet(workbook.create_sheet(SHEET_EXEMPTIONS), ranking, timezone)
    _referral_sheet(workbook.create_sheet(SHEET_REFERRALS), ranking, referrals, timezone)
    _definitions_sheet(workbook.create_sheet(SHEET_DEFINITIONS), ranking, timezone)
    return workbook


def write_xlsx(ranking, target, *, timezone=DEFAULTS["TIMEZONE"], referrals=()):
    """Save the workbook to ``target`` (a path or a binary file object)."""
    build_workbook(ranking, timezone=timezone, referrals=referrals).save(target)


# -- a ticket list (工单查询) -------------------------------------------------------------------

#: The title of a ticket list's sheet.
TICKET_LIST_TITLE = "12345 热线工单查询结果"


def _ticket_columns(phone, now, timezone):
    def local(value):
        return local_datetime(value, timezone).replace(tzinfo=None) if value else None

    def overdue(ticket):
        if ticket.finish_due is None:
            return None
        if ticket.finished_at is not None:
            return "超期办结" if ticket.finished_at > ticket.finish_due else "按时办结"
        if ticket.status in IN_HANDLING and now > ticket.finish_due:
            return "已超期"
        return None

    def name(row):
        return row.name if row is not None else None

    return [
        ("工单编号", lambda t: t.number, 20),
        ("受理时间", lambda t: local(t.received_at), 17),
        ("渠道", lambda t: t.channel.label, 8),
        ("诉求类型", lambda t: t.request_type.label, 8),
        ("紧急程度", lambda t: t.urgency.label, 8),
        ("标题", lambda t: t.title, 30),
        ("诉求内容", lambda t: t.content, 60),
        ("事项分类", lambda t: name(t.category), 16),
        ("区域", lambda t: name(t.area), 14),
        ("地址", lambda t: t.address, 30),
        ("联系电话", phone, 14),
        ("主办单位", lambda t: name(t.lead_unit), 22),
        ("状态", lambda t: t.status.label, 10),
        ("办结时限", lambda t: local(t.finish_due), 17),
        ("办结时间", lambda t: local(t.finished_at), 17),
        ("超期", overdue, 10),
        ("办理结果", lambda t: t.result, 40),
    ]


def local_stamp(now, timezone):
    """A moment as a file name's stamp in local time: 20261130-0815."""
    return f"{local_datetime(now, timezone):%Y%m%d-%H%M}"


def build_ticket_list(tickets, *, phone, conditions, now, timezone=DEFAULTS["TIMEZONE"]):
    """One sheet of ``tickets`` in the order given, Chinese headers, times in local time.
    ``phone(ticket)`` is the number as the reader may see it (masked for some roles);
    ``conditions`` the search in words, [(label, value)], printed under the title."""
    columns = _ticket_columns(phone, now, timezone)
    workbook = Workbook()
    ws = workbook.active
    ws.title = "工单"
    workbook.properties.title = TICKET_LIST_TITLE
    workbook.properties.creator = "12345 热线工单系统"
    stamp = f"{local_datetime(now, timezone):%Y-%m-%d %H:%M}"
    terms = "；".join(f"{label}：{value}" for label, value in conditions) or "全部工单"
    subtitle = f"导出时间 {stamp}　共 {len(tickets)} 件　查询条件：{terms}"
    _title(ws, TICKET_LIST_TITLE, subtitle, len(columns))
    _header(ws, _HEADER_ROWS, [header for header, _, _ in columns])
    for offset, ticket in enumerate(tickets):
        line = _HEADER_ROWS + 1 + offset
        for index, (_, get, _) in enumerate(columns, start=1):
            value = get(ticket)
            cell = _put(ws, line, index, value)
            cell.border = _BORDER
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(value, str) and len(value) > 30:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    if not tickets:
        _put(ws, _HEADER_ROWS + 1, 1, "没有符合条件的工单")
    else:
        last = get_column_letter(len(columns))
        ws.auto_filter.ref = f"A{_HEADER_ROWS}:{last}{_HEADER_ROWS + len(tickets)}"
    for index, (_, _, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = ws.cell(row=_HEADER_ROWS + 1, column=2)  # titles, headers, number
    _print_setup(ws, TICKET_LIST_TITLE, f"1:{_HEADER_ROWS}")
    return workbook


def write_ticket_list(tickets, target, **kwargs):
    """Save ``build_ticket_list`` to ``target`` (a path or a binary file object)."""
    build_ticket_list(tickets, **kwargs).save(target)


# -- a 民情分析 report ----------------------------------------------------------------------------

#: The sheets of a 民情分析 workbook, in order.
ANALYSIS_SHEETS = (
    "概况",
    "趋势",
    "分类统计",
    "上升最快",
    "热点问题",
    "重复诉求",
    "解决率与满意率",
    "关键词",
)
#: The breakdowns of the volume, in report order, with their Chinese names.
ANALYSIS_BREAKDOWNS = (
    ("channel", "按渠道"),
    ("request_type", "按诉求类型"),
    ("category1", "按一级分类"),
    ("category2", "按二级分类"),
    ("area", "按区域"),
)
_COUNT_HEADERS = ("本期", "上期", "增减", "增减率", "占比")


def analysis_status(report, timezone):
    """Published when and by whom, or live as of when (what a reader must know first)."""
    if report.get("published"):
        at = local_datetime(report["published"]["at"], timezone)
        by = report["published"].get("by") or ""
        return f"已发布（{at:%Y-%m-%d %H:%M} {by}），数据已冻结"
    at = local_datetime(report["as_of"], timezone)
    return f"实时数据，未发布（截至 {at:%Y-%m-%d %H:%M}）"


def analysis_filename(report, fmt="xlsx"):
    scope = report["scope"]["code"] or "city"
    state = "published" if report.get("published") else "live"
    return f"analysis-{report['kind']}-{report['key']}-{scope}-{state}.{fmt}"


def _analysis_table(ws, line, caption, headers, rows, kinds):
    """A captioned table from ``line``; returns the line after it (and a blank one)."""
    ws.cell(row=line, column=1, value=caption).font = _BOLD
    _header(ws, line + 1, headers)
    line += 2
    for values in rows:
        for index, (value, kind) in enumerate(zip(values, kinds, strict=True), start=1):
            cell = _put(ws, line, index, value, kind)
            cell.border = _BORDER
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
        line += 1
    if not rows:
        _put(ws, line, 1, "无")
        line += 1
    return line + 1


def _count_rows(lines):
    return [
        [r["name"], r["count"], r["previous"], r["change"], r["change_rate"], r["share"]]
        for r in lines
    ]


_COUNT_KINDS = (_TEXT, _INT, _INT, _CHANGE, _RATE, _RATE)


def _widths(ws, widths):
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width


def _analysis_overview(ws, report, timezone):
    totals = report["totals"]
    quality = report["quality"]["total"]
    callers, repeats = report["repeat_callers"], report["repeats"]
    keywords = report["keywords"]
    _title(ws, report["title"], analysis_status(report, timezone), 6)
    ws.cell(row=3, column=1, value="摘要").font = _BOLD
    summary = _put(ws, 4, 1, report["summary"])
    summary.alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(start_row=4, start_column=1, end_row=4, end_column=6)
    ws.row_dimensions[4].height = max(60, 15 * (len(report["summary"]) // 50 + 1))
    previous = report["previous"]
    rows = [
        ["统计期间", f"{report['period']['first_day']} 至 {report['period']['last_day']}"],
        [f"对比期间（{previous['name']}）", f"{previous['first_day']} 至 {previous['last_day']}"],
        ["受理量", totals["received"]],
        [f"{previous['name']}受理量", totals["previous"]],
        ["增减", totals["change"]],
        ["增减率", totals["change_rate"]],
        ["派单量", quality["counts"]["dispatched"]],
        ["有效回访", quality["counts"]["rated"]],
        ["解决率", quality["rates"]["resolution_rate"]],
        ["满意率", quality["rates"]["satisfaction_rate"]],
        ["响应率", quality["rates"]["response_rate"]],
        ["热点问题", report["hot_issues"]["total"]],
        ["重复来电人数", callers["callers"]],
        ["重复来电件数", callers["tickets"]],
        ["并单", repeats["merged"]],
        ["重办", repeats["reopened"]],
        [
            "关键词统计",
            f"本期 {keywords['current']['tickets']} 件中读取 {keywords['current']['read']} 件"
            + ("（抽样估算）" if keywords["estimated"] else ""),
        ],
    ]
    kinds = {"增减": _CHANGE, "增减率": _RATE, "解决率": _RATE, "满意率": _RATE, "响应率": _RATE}
    line = 6
    _header(ws, line, ["指标", "数值"])
    for label, value in rows:
        line += 1
        _put(ws, line, 1, label).border = _BORDER
        _put(ws, line, 2, value, kinds.get(label, _INT if isinstance(value, int) else _TEXT))
        ws.cell(row=line, column=2).border = _BORDER
    _widths(ws, [22, 30, 14, 14, 14, 14])
    _print_setup(ws, report["title"], None)
    ws.page_setup.orientation = ws.ORIENTATION_PORTRAIT


def build_analysis_workbook(report, *, timezone=DEFAULTS["TIMEZONE"]):
    """The workbook of a 民情分析 report (the dict of ``dashboards.analysis``): one sheet per
    part, ``ANALYSIS_SHEETS``."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    workbook.properties.title = report["title"]
    workbook.properties.creator = "12345 热线工单系统"
    sheets = {name: workbook.create_sheet(name) for name in ANALYSIS_SHEETS}
    status = analysis_status(report, timezone)
    previous = report["previous"]["name"]
    _analysis_overview(sheets["概况"], report, timezone)

    ws = sheets["趋势"]
    series = report["series"]
    _title(ws, f"{report['title']} · 趋势", status, 3)
    # Day by day of the period; a longer previous period's last days follow, by their number.
    rows = [
        [label if label is not None else f"第{index + 1}天", now, before]
        for index, (label, now, before) in enumerate(
            itertools.zip_longest(series["labels"], series["current"], series["previous"])
        )
    ]
    head = "时段" if series["unit"] == "hour" else "日期"
    _analysis_table(ws, 3, "受理量", [head, "本期", previous], rows, (_TEXT, _INT, _INT))
    _widths(ws, [14, 10, 10])

    ws = sheets["分类统计"]
    _title(ws, f"{report['title']} · 分类统计", status, 6)
    line = 3
    for name, caption in ANALYSIS_BREAKDOWNS:
        line = _analysis_table(
            ws,
            line,
            caption,
            ["名称", *_COUNT_HEADERS],
            _count_rows(report["breakdowns"][name]),
            _COUNT_KINDS,
        )
    _widths(ws, [30, 10, 10, 10, 10, 10])

    ws = sheets["上升最快"]
    rising = report["rising"]
    _title(ws, f"{report['title']} · 上升最快", f"{status}　本期不少于 {rising['min_count']} 件", 5)
    kinds = (_TEXT, _INT, _INT, _CHANGE, _RATE)
    line = 3
    for key, caption in (("categories", "事项（二级分类）"), ("places", "地点（街道、社区）")):
        rows = [
            [r["name"], r["count"], r["previous"], r["change"], r["growth"]] for r in rising[key]
        ]
        line = _analysis_table(
            ws, line, caption, ["名称", "本期", "上期", "增加", "增长"], rows, kinds
        )
    _widths(ws, [30, 10, 10, 10, 10])

    ws = sheets["热点问题"]
    hot = report["hot_issues"]
    _title(ws, f"{report['title']} · 热点问题", f"{status}　本期涉及 {hot['total']} 个", 10)
    rows = [
        [
            h["title"],
            h["place"],
            h["category"],
            h["district"],
            h["state_label"],
            h["heat"],
            h["in_period"],
            h["size"],
            local_datetime(h["first_at"], timezone),
            local_datetime(h["last_at"], timezone),
        ]
        for h in hot["top"]
    ]
    _analysis_table(
        ws,
        3,
        "按热度排列",
        [
            "热点问题",
            "地点",
            "分类",
            "区县",
            "状态",
            "热度",
            "本期件数",
            "累计件数",
            "首次",
            "最近",
        ],
        rows,
        (_TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _SCORE, _INT, _INT, _TEXT, _TEXT),
    )
    _widths(ws, [30, 16, 16, 12, 10, 8, 10, 10, 17, 17])

    ws = sheets["重复诉求"]
    callers, repeats = report["repeat_callers"], report["repeats"]
    _title(
        ws,
        f"{report['title']} · 重复诉求",
        f"{status}　重复来电 {callers['callers']} 人 {callers['tickets']} 件，"
        f"并单 {repeats['merged']} 件，重办 {repeats['reopened']} 件",
        5,
    )
    rows = [
        [
            c["phone"],
            c["count"],
            local_datetime(c["first_at"], timezone),
            local_datetime(c["last_at"], timezone),
            "、".join(f"{x['name']}（{x['count']}）" for x in c["categories"]),
        ]
        for c in callers["top"]
    ]
    line = _analysis_table(
        ws,
        3,
        "重复来电（同一号码本期 2 件以上，号码已脱敏）",
        ["来电号码", "件数", "首次", "最近", "主要事项"],
        rows,
        (_TEXT, _INT, _TEXT, _TEXT, _TEXT),
    )
    rows = [[m["number"], m["title"], m["merged"]] for m in repeats["merged_into"]]
    line = _analysis_table(
        ws, line, "并单最多的工单", ["工单编号", "标题", "并入件数"], rows, (_TEXT, _TEXT, _INT)
    )
    rows = [
        [t["number"], t["title"], t["reopen_count"], t["unit"]] for t in repeats["reopened_tickets"]
    ]
    _analysis_table(
        ws,
        line,
        "重办工单",
        ["工单编号", "标题", "重办次数", "承办单位"],
        rows,
        (_TEXT, _TEXT, _INT, _TEXT),
    )
    _widths(ws, [22, 36, 10, 22, 40])

    ws = sheets["解决率与满意率"]
    quality = report["quality"]
    _title(ws, f"{report['title']} · 解决率与满意率", f"{status}　口径同月度考核排名", 10)
    headers = ["名称", "派单量", "有效回访", "解决", "部分解决", "满意", "基本满意"]
    headers += ["解决率", "满意率", "响应率"]
    kinds = (_TEXT, _INT, _INT, _INT, _INT, _INT, _INT, _RATE, _RATE, _RATE)

    def quality_rows(lines):
        return [
            [
                r["name"],
                *(r["counts"][k] for k in ("dispatched", "rated", "solved", "partly")),
                *(r["counts"][k] for k in ("satisfied", "basically")),
                *(r["rates"][k] for k in ("resolution_rate", "satisfaction_rate", "response_rate")),
            ]
            for r in lines
        ]

    line = _analysis_table(ws, 3, "合计", headers, quality_rows([quality["total"]]), kinds)
    for key, caption in (
        ("by_category1", "按一级分类"),
        ("by_category2", "按二级分类"),
        ("by_unit", "按承办单位"),
    ):
        line = _analysis_table(ws, line, caption, headers, quality_rows(quality[key]), kinds)
    _widths(ws, [30, 9, 9, 9, 9, 9, 9, 9, 9, 9])

    ws = sheets["关键词"]
    keywords = report["keywords"]
    note = "（抽样估算）" if keywords["estimated"] else ""
    _title(ws, f"{report['title']} · 关键词", f"{status}　按提及的工单件数{note}", 5)
    rows = [
        [k["word"], k["count"], k["previous"], k["change"], k["change_rate"]]
        for k in keywords["rows"]
    ]
    _analysis_table(
        ws,
        3,
        "本期前 20 个关键词",
        ["关键词", "本期", previous, "增减", "增减率"],
        rows,
        (_TEXT, _INT, _INT, _CHANGE, _RATE),
    )
    _widths(ws, [16, 10, 10, 10, 10])
    for name in ANALYSIS_SHEETS[1:]:
        _print_setup(sheets[name], report["title"], None)
    return workbook


def write_analysis_xlsx(report, target, *, timezone=DEFAULTS["TIMEZONE"]):
    """Save ``build_analysis_workbook`` to ``target`` (a path or a binary file object)."""
    build_analysis_workbook(report, timezone=timezone).save(target)


# -- 质检成绩 ------------------------------------------------------------------------------------

#: The title of the monthly inspection scores' sheet.
INSPECTION_SCORES_TITLE = "12345 热线话务质检成绩"


def build_inspection_scores(scores, *, month, checklist, now, timezone=DEFAULTS["TIMEZONE"]):
    """One sheet of every operator's month as the 质检成绩 page shows it
    (``dispatch.inspection.monthly_scores``): samples scored and pending, the average, each
    checklist item's average (out of its maximum) and the items to improve; averages are
    numbers (one decimal shown), an operator without scored samples has empty averages."""
    year, number = month
    title = f"{INSPECTION_SCORES_TITLE} {year}年{number}月"
    headers = [
        "话务员",
        "登录名",
        "已质检",
        "待质检",
        "平均分（满分 100）",
        *(f"{item.label}（满分 {item.maximum}）" for item in checklist),
        "待改进",
    ]
    kinds = [_TEXT, _TEXT, _INT, _INT, _SCORE, *(_SCORE for _ in checklist), _TEXT]
    workbook = Workbook()
    ws = workbook.active
    ws.title = "质检成绩"
    workbook.properties.title = title
    workbook.properties.creator = "12345 热线工单系统"
    stamp = f"{local_datetime(now, timezone):%Y-%m-%d %H:%M}"
    subtitle = (
        f"导出时间 {stamp}　按受理日期统计本月抽检样本　话务员 {len(scores)} 名　"
        "各项为平均得分；待改进为平均得分不足满分九成、与满分差距最大的项目"
    )
    _title(ws, title, subtitle, len(headers))
    _header(ws, _HEADER_ROWS, headers)
    widths = [_display_width(h) for h in headers]
    for offset, score in enumerate(scores):
        values = [
            score.operator.name,
            score.operator.username,
            score.count,
            score.pending,
            score.average,
            *(score.items.get(item.key) for item in checklist),
            "、".join(item.label for item in score.lowest) or None,
        ]
        for index, (value, kind) in enumerate(zip(values, kinds, strict=True), start=1):
            cell = _put(
                ws, _HEADER_ROWS + 1 + offset, index, value, kind, "0.0" if kind == _SCORE else None
            )
            cell.border = _BORDER
            widths[index - 1] = max(widths[index - 1], _display_width(_shown(value, kind)))
    _size_columns(ws, widths)
    ws.freeze_panes = ws.cell(row=_HEADER_ROWS + 1, column=2)
    _print_setup(ws, title, f"1:{_HEADER_ROWS}")
    return workbook


def inspection_scores_xlsx(scores, **kwargs):
    """``build_inspection_scores`` as bytes."""
    out = io.BytesIO()
    build_inspection_scores(scores, **kwargs).save(out)
    return out.getvalue()
