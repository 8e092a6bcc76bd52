"""The export of a ticket search (dashboards/ticket_export.py): the filters it keeps, the
conditions in words (names, never codes), and the workbook written (read back)."""

import datetime as dt
import io

import openpyxl
import pytest

from dashboards import exports, ticket_export
from hotline.errors import Forbidden, ValidationFailed

NOW = dt.datetime(2026, 12, 5, 0, 30, tzinfo=dt.UTC)


def test_filters_leave_out_blanks_pages_and_unknown_arguments():
    args = {"q": "路灯", "status": "", "page": "2", "per_page": "50", "bogus": "1", "area": "37"}
    assert ticket_export.filters_of(args) == {"q": "路灯", "area": "37"}


def test_conditions_name_what_was_chosen(db):
    args = {
        "q": "路灯 不亮",
        "received_from": "2026-11-01",
        "status": "dispatched,signed",
        "category": "010103",
        "area": "370705001",
        "unit": "U-WATER",
        "overdue": "1",
    }
    assert ticket_export.conditions(db, args) == [
        ("关键词", "路灯 不亮"),
        ("受理日期", "2026-11-01 至 不限"),
        ("状态", "已派单、已签收"),
        ("事项分类", "路灯故障"),
        ("区域", "东关街道"),
        ("主办单位", "潍坊市自来水有限公司"),
        ("超期", "仅超期未办结"),
    ]


def test_other_roles_and_bad_filters_are_refused_before_anything_is_read(db, user):
    with pytest.raises(Forbidden):
        ticket_export.export_tickets(db, user("operator"), {}, now=NOW, timezone="Asia/Shanghai")
    with pytest.raises(ValidationFailed) as refused:
        ticket_export.export_tickets(
            db, user("supervisor"), {"status": "bogus"}, now=NOW, timezone="Asia/Shanghai"
        )
    assert refused.value.details == {"status": "状态取值无效"}


def test_workbook_of_tickets(db, user, make_ticket):
    ticket = make_ticket(
        user("operator"),
        title='=HYPERLINK("http://x")',  # text stays text, never a formula
        content="路灯不亮\x07",  # a character XML cannot hold is dropped
        now=dt.datetime(2026, 12, 4, 16, 30, tzinfo=dt.UTC),
    )
    data = io.BytesIO()
    exports.write_ticket_list(
        [ticket],
        data,
        phone=lambda t: "138****0001",
        conditions=[("关键词", "路灯")],
        now=NOW,
        timezone="Asia/Shanghai",
    )
    ws = openpyxl.load_workbook(io.BytesIO(data.getvalue())).active
    assert ws.title == "工单"
    assert ws.cell(2, 1).value == "导出时间 2026-12-05 08:30　共 1 件　查询条件：关键词：路灯"
    headers = [c.value for c in ws[3]]
    row = dict(zip(headers, (c.value for c in ws[4]), strict=True))
    assert row["工单编号"] == ticket.number
    assert row["受理时间"] == dt.datetime(2026, 12, 5, 0, 30)  # local time
    assert row["标题"] == '=HYPERLINK("http://x")' and ws.cell(4, 6).data_type == "s"
    assert row["诉求内容"] == "路灯不亮"
    assert row["联系电话"] == "138****0001"
    assert row["状态"] == "已受理" and row["渠道"] == "电话"
    last = ws.cell(3, len(headers)).column_letter
    assert ws.freeze_panes == "B4" and ws.auto_filter.ref == f"A3:{last}4"


def test_an_empty_result_says_so():
    data = io.BytesIO()
    exports.write_ticket_list([], data, phone=str, conditions=[], now=NOW)
    ws = openpyxl.load_workbook(io.BytesIO(data.getvalue())).active
    assert "共 0 件　查询条件：全部工单" in ws.cell(2, 1).value
    assert ws.cell(4, 1).value == "没有符合条件的工单"
