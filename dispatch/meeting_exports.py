"""A joint meeting (联席会议) on paper: its agenda and its minutes with the decisions as one
XLSX workbook (two sheets, 议程 and 会议纪要), laid out to print on A4 like the ranking's
(``dashboards.exports``; both through ``hotline.tabular``'s sheet layout: a title row, a
bold shaded header repeated on every page, page numbers in the footer, and its one guard
against text becoming a formula). Times are the city's local time.
"""

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter

from hotline import tabular
from hotline.db import local_datetime

SHEET_AGENDA = "议程"
SHEET_MINUTES = "会议纪要"
AGENDA_HEADERS = ("序号", "工单编号", "标题", "当前状态", "主办单位", "疑难原因", "提请时间")
DECISION_HEADERS = ("序号", "工单编号", "标题", "责任单位", "办结时限", "决定事项", "记录时间")

_WRAP = Alignment(wrap_text=True, vertical="top")


def _local(moment, tz):
    return f"{local_datetime(moment, tz):%Y-%m-%d %H:%M}" if moment else ""


def _put(ws, row, column, value, *, wrap=False):
    """A bordered cell (``tabular.sheet_cell``: text never becomes a formula)."""
    cell = tabular.sheet_cell(ws, row, column, value)
    cell.border = tabular.BORDER
    if wrap:
        cell.alignment = _WRAP
    return cell


def _header(ws, row, headers, widths):
    tabular.sheet_header(ws, row, headers)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width


def reasons_text(item):
    """An agenda item's reasons as one line per rule: 多次退单：退单申请 2 次：…"""
    return "\n".join(f"{r.get('label', r.get('rule'))}：{r.get('text', '')}" for r in item.reasons)


def _subtitle(meeting, tz):
    parts = [f"时间：{_local(meeting.scheduled_at, tz)}"]
    if meeting.place:
        parts.append(f"地点：{meeting.place}")
    if meeting.chair:
        parts.append(f"主持：{meeting.chair}")
    parts.append(f"状态：{meeting.state.label}")
    return "　".join(parts)


def build_workbook(meeting, *, tz):
    """The meeting's workbook: the agenda, then the minutes with every decision."""
    book = Workbook()
    agenda = book.active
    agenda.title = SHEET_AGENDA
    tabular.sheet_title(
        agenda, f"{meeting.title} · 议程", _subtitle(meeting, tz), len(AGENDA_HEADERS)
    )
    _header(agenda, 3, AGENDA_HEADERS, (6, 22, 30, 10, 20, 60, 17))
    for n, item in enumerate(meeting.items, start=1):
        t = item.ticket
        row = 3 + n
        values = (
            n,
            t.number,
            t.title,
            t.status.label,
            t.lead_unit.name if t.lead_unit else "",
            reasons_text(item),
            _local(item.added_at, tz),
        )
        for column, value in enumerate(values, start=1):
            _put(agenda, row, column, value, wrap=column in (3, 6))
    agenda.freeze_panes = "A4"
    tabular.print_setup(agenda, meeting.title, "1:3")

    minutes = book.create_sheet(SHEET_MINUTES)
    tabular.sheet_title(
        minutes, f"{meeting.title} · 会议纪要", _subtitle(meeting, tz), len(DECISION_HEADERS)
    )
    facts = [
        ("召开时间", _local(meeting.held_at, tz) or "尚未召开"),
        ("参会单位和人员", meeting.attendees or ""),
        ("会议纪要", meeting.minutes or ""),
    ]
    row = 3
    for label, value in facts:
        minutes.cell(row=row, column=1, value=label).font = tabular.BOLD
        minutes.merge_cells(start_row=row, start_column=2, end_row=row, end_column=7)
        _put(minutes, row, 2, value, wrap=True)
        row += 1
    row += 1
    minutes.cell(row=row, column=1, value="会议决定").font = tabular.BOLD
    row += 1
    header_row = row
    _header(minutes, header_row, DECISION_HEADERS, (12, 22, 30, 20, 17, 60, 17))
    for n, item in enumerate(meeting.items, start=1):
        t = item.ticket
        decided = item.decided_at is not None
        values = (
            n,
            t.number,
            t.title,
            item.decision_unit.name if decided else "未决定",
            _local(item.decision_due, tz),
            item.decision_notes or "",
            _local(item.decided_at, tz),
        )
        for column, value in enumerate(values, start=1):
            _put(minutes, header_row + n, column, value, wrap=column in (3, 6))
    tabular.print_setup(minutes, meeting.title, f"{header_row}:{header_row}")
    return book


def write_xlsx(meeting, *, tz):
    """The workbook as bytes."""
    out = io.BytesIO()
    build_workbook(meeting, tz=tz).save(out)
    return out.getvalue()


def filename(meeting):
    return f"联席会议-{meeting.id}.xlsx"
