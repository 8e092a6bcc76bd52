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
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from dashboards.ranking import COUNTS, DEFINITIONS, LABELS, RATES, parse_month
from dispatch.states import IN_HANDLING
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


def ranking_to_dict(ranking):
    """The ranking as a JSON-ready dict (rates as fractions, times as UTC ISO 8601)."""
    classes = {}
    for ranking_class in RankingClass:
        rows = _rows(ranking, ranking_class)
        classes[ranking_class.value] = {
            "label": ranking_class.label,
            "rows": [_row_dict(r) for r in rows],
            "red_list": [r.unit_code for r in rows if r.list_mark == ListMark.red],
            "black_list": [r.unit_code for r in rows if r.list_mark == ListMark.black],
        }
    return {
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
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_THIN = Side(style="thin", color="A6A6A6")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_TITLE_FONT = Font(bold=True, size=14)
_BOLD = Font(bold=True)
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
    """Write a cell; text never becomes a formula and loses the characters XML can't hold."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"
    if number_format or kind in _FORMATS:
        cell.number_format = number_format or _FORMATS[kind]
    return cell


def _size_columns(ws, widths, minimum=6):
    for index, width in enumerate(widths, start=1):
        letter = get_column_letter(index)
        ws.column_dimensions[letter].width = min(max(width + 2, minimum), _MAX_WIDTH)


def _title(ws, text, subtitle, width):
    ws.cell(row=1, column=1, value=text).font = _TITLE_FONT
    ws.cell(row=2, column=1, value=subtitle)
    if width > 1:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
        ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    ws.row_dimensions[1].height = 24


def _header(ws, row, headers):
    for index, header in enumerate(headers, start=1):
        cell = ws.cell(row=row, column=index, value=header)
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _print_setup(ws, footer, title_rows):
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    if title_rows:
        ws.print_title_rows = title_rows
    ws.oddFooter.left.text = footer.replace("&", "&&")
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddFooter.left.size = ws.oddFooter.center.size = 9


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


def build_workbook(ranking, *, timezone=DEFAULTS["TIMEZONE"]):
    """The workbook: a sheet per class, then 豁免清单 and 口径说明."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    workbook.properties.title = _month_title(ranking)
    workbook.properties.creator = "12345 热线工单系统"
    for ranking_class in RankingClass:
        _class_sheet(workbook.create_sheet(ranking_class.label), ranking, ranking_class, timezone)
    _exemption_sheet(workbook.create_sheet(SHEET_EXEMPTIONS), ranking, timezone)
    _definitions_sheet(workbook.create_sheet(SHEET_DEFINITIONS), ranking, timezone)
    return workbook


def write_xlsx(ranking, target, *, timezone=DEFAULTS["TIMEZONE"]):
    """Save the workbook to ``target`` (a path or a binary file object)."""
    build_workbook(ranking, timezone=timezone).save(target)


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
