"""The monthly ranking as JSON, CSV and XLSX, and the ``hotline rank`` command.

The export tests use a ranking built by hand (real ``compute_rates`` and ``place``, so ties,
lists and unranked units are the real thing) with awkward text in it; the command tests
drive a small month of real tickets through the operations and run the command on the
test's own transaction (``app.test_cli_runner``), so they work on SQLite and PostgreSQL.
"""

import csv
import datetime as dt
import io
import itertools
import json
import zipfile
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from dashboards import exports, ranking
from dispatch import operations as ops
from hotline import settings
from hotline.enums import (
    CallbackOutcome,
    ExemptionKind,
    ListMark,
    RankingClass,
    ReferralKind,
    Satisfaction,
    Solved,
)
from hotline.models import AuditLog, RankingSnapshot, Referral, Unit
from server.cli import main

TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
NASTY = '<script>alert("x")</script> & "引号" 不合理诉求'
FORMULA = '=HYPERLINK("http://example.com","点我")'
RED = "FFC7CE"
GREY = "D9D9D9"


def local(year, month, day, hour=9, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


# -- a ranking built by hand ----------------------------------------------------------------------


def counts(dispatched=12, *, solved=None, satisfied=None, rated=None, overdue=0, **extra):
    """Counts where every ticket was answered on time and rated unless told otherwise."""
    rated = dispatched if rated is None else rated
    solved = rated if solved is None else solved
    satisfied = rated if satisfied is None else satisfied
    values = dict.fromkeys(ranking.COUNTS, 0)
    values.update(
        dispatched=dispatched,
        responded=dispatched,
        rated=rated,
        solved=solved,
        unsolved=rated - solved,
        satisfied=satisfied,
        dissatisfied=rated - satisfied,
        overdue=overdue,
        return_base=dispatched,
    )
    values.update(extra)
    return values


UNIT_IDS = itertools.count(1)


def make_row(ranking_class, code, name, values, settings, **extra):
    row = ranking.Row(ranking_class, next(UNIT_IDS), code, name, values, **extra)
    row.rates = ranking.compute_rates(values, settings)
    return row


def hand_ranking(frozen_at=None):
    settings = ranking.Settings()
    district = RankingClass.district
    street = RankingClass.street
    rows = {
        district: [
            make_row(district, "D1", "甲区人民政府", counts(overdue=4, returned=1), settings),
            make_row(
                district,
                "D2",
                "乙区人民政府",
                counts(solved=9, overdue=8),
                settings,
                prev_rank=1,
                prev_composite=99.0,
            ),
            make_row(district, "D3", "丙区人民政府", counts(solved=9), settings, prev_rank=2),
            make_row(district, "D4", "丁区人民政府", counts(solved=6, satisfied=7), settings),
            make_row(district, "D5", "戊区人民政府", counts(1), settings),
        ],
        street: [
            make_row(street, "S1", "东关街道办事处", counts(exempt=2), settings),
            make_row(street, "S2", "=1+1 街道", counts(satisfied=8), settings),
            make_row(street, "S3", "北海街道办事处", counts(10, rated=0), settings),
        ],
        RankingClass.department: [
            make_row(RankingClass.department, "U-CGJ", "潍坊市城市管理局", counts(0), settings)
        ],
        RankingClass.utility: [],
    }
    for ranking_class, class_rows in rows.items():
        rows[ranking_class] = ranking.place(class_rows, settings)
    start, end = ranking.month_bounds("2026-10")
    totals = {name: 0 for name in ranking.COUNTS}
    totals.update(received=70, dispatched=60, exempt=2, resolved_at_intake=5, merged=3)
    totals["transferred"] = 2
    exemptions = [
        {
            "ticket": "202610150001",
            "unit_code": "D1",
            "unit_name": "甲区人民政府",
            "kind": "unreasonable",
            "kind_label": "不合理诉求",
            "reason": NASTY,
            "by": "督办审核员",
            "at": "2026-10-20T02:30:00+00:00",
        },
        {
            "ticket": "202610150002",
            "unit_code": None,
            "unit_name": None,
            "kind": "other",
            "kind_label": "其他",
            "reason": FORMULA,
            "by": None,
            "at": None,
        },
    ]
    return ranking.Ranking(
        month="2026-10",
        period_start=start,
        period_end=end,
        as_of=dt.datetime(2026, 11, 1, 1, 0, tzinfo=UTC),
        settings=settings,
        rows=rows,
        totals=totals,
        exemptions=exemptions,
        frozen_at=frozen_at,
    )


FROZEN_AT = dt.datetime(2026, 11, 2, 1, 30, tzinfo=UTC)  # 09:30 in Beijing


def test_the_hand_ranking_has_ties_lists_and_unranked_units():
    rows = {r.unit_code: r for rs in hand_ranking().rows.values() for r in rs}
    assert [rows[c].rank for c in ("D1", "D2", "D3", "D4", "D5")] == [1, 2, 2, 4, None]
    assert [rows[c].list_mark for c in ("D1", "D2", "D3", "D4")] == [ListMark.red] * 3 + [
        ListMark.black
    ]
    assert rows["S1"].list_mark == ListMark.red and rows["S2"].list_mark == ListMark.black
    assert rows["S3"].rates["composite"] is None and rows["S3"].unranked_reason == "无有效回访"
    assert rows["U-CGJ"].rates["response_rate"] is None


# -- JSON -----------------------------------------------------------------------------------------


def test_json_holds_everything_and_survives_a_round_trip():
    data = exports.ranking_to_dict(hand_ranking())
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data

    assert data["month"] == "2026-10"
    assert data["period"] == {
        "start": "2026-09-30T16:00:00+00:00",
        "end": "2026-10-31T16:00:00+00:00",
    }
    assert data["as_of"] == "2026-11-01T01:00:00+00:00"
    assert data["frozen"] is False and data["frozen_at"] is None
    assert data["settings"] == ranking.Settings().as_dict()
    assert [d["term"] for d in data["definitions"]] == [t for t, _ in ranking.DEFINITIONS]
    assert data["labels"]["composite"] == "综合得分"
    assert data["totals"]["received"] == 70 and data["totals"]["transferred"] == 2
    assert data["exemptions"][0]["reason"] == NASTY
    assert data["exemptions"][1]["reason"] == FORMULA

    assert list(data["classes"]) == ["district", "street", "department", "utility"]
    assert [c["label"] for c in data["classes"].values()] == [c.label for c in RankingClass]
    district = data["classes"]["district"]
    assert [r["unit_code"] for r in district["rows"]] == ["D1", "D2", "D3", "D4", "D5"]
    assert [r["rank"] for r in district["rows"]] == [1, 2, 2, 4, None]
    assert district["red_list"] == ["D1", "D2", "D3"]
    assert district["black_list"] == ["D4"]
    d1, d2, _, _, d5 = district["rows"]
    assert d1["list_mark"] == {"value": "red", "label": "红榜"}
    assert d1["composite"] == 100.0 and d1["rates"]["composite"] == 100.0
    assert d1["rates"]["overdue_rate"] == pytest.approx(1 / 3)
    assert d1["rates"]["return_rate"] == pytest.approx(1 / 12)
    assert d1["counts"] == counts(overdue=4, returned=1)
    assert set(d1["rates"]) == set(ranking.RATES)
    assert d1["prev_rank"] is None and d1["rank_change"] is None
    assert d2["prev_rank"] == 1 and d2["rank_change"] == -1
    assert d2["prev_composite"] == 99.0
    assert d2["composite_change"] == round(d2["composite"] - 99.0, 2)
    assert d5["rank"] is None and d5["list_mark"] is None
    assert d5["unranked_reason"].startswith("样本量不足")

    street = data["classes"]["street"]
    assert street["red_list"] == ["S1"] and street["black_list"] == ["S2"]
    s3 = street["rows"][2]
    assert s3["rates"]["resolution_rate"] is None and s3["composite"] is None
    assert data["classes"]["utility"] == {
        "label": "公共服务企业",
        "rows": [],
        "red_list": [],
        "black_list": [],
    }


def test_json_of_a_frozen_ranking_says_when():
    data = exports.ranking_to_dict(hand_ranking(frozen_at=FROZEN_AT))
    assert data["frozen"] is True
    assert data["frozen_at"] == "2026-11-02T01:30:00+00:00"


# -- CSV ------------------------------------------------------------------------------------------

HEADERS = (
    ["类别", "单位编码", "单位名称", "名次", "上月名次", "名次变化", "综合得分", "得分变化"]
    + ["红黑榜", "未排名原因", "响应率", "解决率", "满意率", "退单率", "重办率", "超期率"]
    + ["重复来电率", "审核退回率", "报到及时率", "派单量", "豁免量", "响应未到期", "按时响应"]
    + ["有效回访", "解决", "部分解决", "未解决", "满意", "基本满意", "不满意", "超期", "重办"]
    + ["重复来电", "曾承办", "退单", "审核退回", "吹哨被召", "报到及时"]
)


def read_csv(data):
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    return lines[0], [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


def test_csv_is_one_table_excel_reads():
    buffer = io.BytesIO()
    exports.write_csv(hand_ranking(), buffer)
    data = buffer.getvalue()
    assert b"\r\n" in data  # Excel's line ends
    headers, lines = read_csv(data)
    assert headers == HEADERS
    assert [(line["类别"], line["单位编码"]) for line in lines] == [
        ("区县", "D1"),
        ("区县", "D2"),
        ("区县", "D3"),
        ("区县", "D4"),
        ("区县", "D5"),
        ("街道乡镇", "S1"),
        ("街道乡镇", "S2"),
        ("街道乡镇", "S3"),
        ("市直部门", "U-CGJ"),
    ]
    d1, d2, d3, d4, d5, s1, s2, s3, cgj = lines
    assert d1["单位名称"] == "甲区人民政府"
    assert (d1["名次"], d2["名次"], d3["名次"], d4["名次"], d5["名次"]) == ("1", "2", "2", "4", "")
    assert (d1["红黑榜"], d2["红黑榜"], d4["红黑榜"], d5["红黑榜"]) == ("红榜", "红榜", "黑榜", "")
    assert d1["综合得分"] == "100.00"
    assert d1["响应率"] == "100.00%"
    assert d1["超期率"] == "33.33%"
    assert d2["超期率"] == "66.67%"
    assert d1["退单率"] == "8.33%"
    assert d2["解决率"] == "75.00%"  # (9 + 0 × 0.5) / 12
    assert d2["上月名次"] == "1" and d2["名次变化"] == "-1"
    assert float(d2["得分变化"]) == pytest.approx(float(d2["综合得分"]) - 99.0)
    assert d1["上月名次"] == "" and d1["名次变化"] == "" and d1["得分变化"] == ""
    assert d5["未排名原因"].startswith("样本量不足")
    assert d1["派单量"] == "12" and d1["超期"] == "4" and s1["豁免量"] == "2"
    # No rate without a denominator: empty cells, not 0.
    assert s3["综合得分"] == "" and s3["解决率"] == "" and s3["响应率"] == "100.00%"
    assert cgj["响应率"] == "" and cgj["派单量"] == "0"
    # Text a spreadsheet would run as a formula is quoted.
    assert s2["单位名称"] == "'=1+1 街道"


def test_csv_to_a_text_stream_also_starts_with_the_bom():
    stream = io.StringIO(newline="")
    exports.write_csv(hand_ranking(), stream)
    assert stream.getvalue().startswith("\ufeff类别,单位编码,单位名称,名次")


# -- XLSX -----------------------------------------------------------------------------------------

SHEETS = ["区县", "街道乡镇", "市直部门", "公共服务企业", "豁免清单", "移送纪检监察", "口径说明"]


def workbook(ranking_, tmp_path):
    path = tmp_path / "排名.xlsx"
    exports.write_xlsx(ranking_, path)
    return load_workbook(path), path


def by_header(ws, header_row=3):
    return {cell.value: cell.column for cell in ws[header_row] if cell.value}


def fill(cell):
    return cell.fill.fgColor.rgb[-6:] if cell.fill.fill_type == "solid" else None


def test_xlsx_sheets_titles_headers_and_formats(tmp_path):
    wb, _ = workbook(hand_ranking(), tmp_path)
    assert wb.sheetnames == SHEETS
    ws = wb["区县"]
    assert ws["A1"].value.startswith("2026年10月 12345 热线考核排名 · 区县")
    assert "实时数据，未冻结" in ws["A1"].value and "2026-11-01 09:00" in ws["A1"].value
    assert "统计期间 2026-10-01 至 2026-10-31" in ws["A2"].value
    assert [c.value for c in ws[3]] == HEADERS[1:]
    column = by_header(ws)
    d1 = {h: ws.cell(row=4, column=c) for h, c in column.items()}
    assert d1["单位编码"].value == "D1" and d1["名次"].value == 1
    assert d1["综合得分"].value == 100.0 and d1["综合得分"].number_format == "0.00"
    assert d1["超期率"].value == pytest.approx(1 / 3)
    rates = ("响应率", "解决率", "满意率", "退单率", "重办率", "超期率", "重复来电率")
    for name in (*rates, "审核退回率"):
        assert d1[name].number_format == "0.00%"
    assert d1["派单量"].value == 12
    d2_change = ws.cell(row=5, column=column["得分变化"])
    assert d2_change.number_format.startswith("+0.00") and d2_change.value < 0
    d5 = {h: ws.cell(row=8, column=c).value for h, c in column.items()}
    assert d5["名次"] is None and d5["综合得分"] is not None
    assert d5["未排名原因"].startswith("样本量不足")
    street = wb["街道乡镇"]
    s3 = {h: street.cell(row=6, column=c).value for h, c in by_header(street).items()}
    assert s3["综合得分"] is None and s3["解决率"] is None and s3["响应率"] == 1.0
    # A unit name that looks like a formula stays text.
    name = street.cell(row=5, column=by_header(street)["单位名称"])
    assert name.value == "=1+1 街道" and name.data_type == "s"
    assert wb["公共服务企业"]["A4"].value == "本月本类无参评单位"


def test_xlsx_marks_the_lists_in_colour_and_in_words(tmp_path):
    wb, _ = workbook(hand_ranking(), tmp_path)
    ws = wb["区县"]
    mark = by_header(ws)["红黑榜"]
    rows = {ws.cell(row=r, column=1).value: r for r in range(4, ws.max_row + 1)}
    for code, colour, label in [
        ("D1", RED, "红榜"),
        ("D2", RED, "红榜"),
        ("D3", RED, "红榜"),
        ("D4", GREY, "黑榜"),
        ("D5", None, None),
    ]:
        line = ws[rows[code]]
        assert {fill(cell) for cell in line} == {colour}, code
        assert ws.cell(row=rows[code], column=mark).value == label


def test_xlsx_prints_on_a4_landscape_one_page_wide(tmp_path):
    wb, _ = workbook(hand_ranking(), tmp_path)
    for name in SHEETS[:5]:
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape", name
        assert int(ws.page_setup.paperSize) == 9  # A4
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        assert ws.print_title_rows == "$1:$3"
        assert ws.oddFooter.center.text == "第 &P 页，共 &N 页"
    ws = wb["区县"]
    assert ws.freeze_panes == "C4"
    # Wide enough for the longest Chinese name (two columns a character).
    name_width = ws.column_dimensions["B"].width
    assert name_width >= 2 * len("甲区人民政府")
    assert ws.column_dimensions["A"].width < name_width
    assert wb["口径说明"].page_setup.fitToWidth == 1


def test_xlsx_frozen_title(tmp_path):
    wb, _ = workbook(hand_ranking(frozen_at=FROZEN_AT), tmp_path)
    for name in SHEETS[:4]:
        assert "已冻结于 2026-11-02 09:30" in wb[name]["A1"].value
        assert "实时数据" not in wb[name]["A1"].value


def test_xlsx_exemptions_sheet_keeps_awkward_text_as_text(tmp_path):
    wb, path = workbook(hand_ranking(), tmp_path)
    ws = wb["豁免清单"]
    assert [c.value for c in ws[3]] == ["工单编号", "单位", "豁免类型", "理由", "审核人", "时间"]
    assert [c.value for c in ws[4]] == [
        "202610150001",
        "甲区人民政府",
        "不合理诉求",
        NASTY,
        "督办审核员",
        dt.datetime(2026, 10, 20, 10, 30),  # local time
    ]
    assert ws["F4"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["D5"].value == FORMULA and ws["D5"].data_type == "s"
    assert ws["C5"].value == "其他" and ws["F5"].value is None
    with zipfile.ZipFile(path) as archive:
        xml = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".xml"))
    assert b"&lt;script&gt;alert(" in xml and b"<script>" not in xml
    assert b"<f>" not in xml  # no formula anywhere


def test_xlsx_definitions_sheet(tmp_path):
    wb, _ = workbook(hand_ranking(), tmp_path)
    ws = wb["口径说明"]
    pairs = {}
    for row in ws.iter_rows(min_row=3, values_only=True):
        if row[0] is not None:
            pairs.setdefault(row[0], row[1])
    for term, text in ranking.DEFINITIONS:
        assert pairs[term] == text
    assert pairs["响应率权重"] == 10 and pairs["解决率权重"] == 45 and pairs["满意率权重"] == 45
    assert pairs["部分解决折算系数"] == 0.5 and pairs["基本满意折算系数"] == 0.8
    assert pairs["最小样本量（派单件数）"] == 10 and pairs["红黑榜人数（每类）"] == 5
    assert pairs["受理量"] == 70 and pairs["派单量"] == 60 and pairs["直接办结"] == 5
    assert pairs["已转办"] == 2 and pairs["已并单"] == 3
    assert pairs["状态"].startswith("实时数据，未冻结")
    assert pairs["统计期间"] == "2026-10-01 至 2026-10-31（按受理时间）"
    assert pairs["数据时点"] == dt.datetime(2026, 11, 1, 9, 0)


def test_writes_to_a_file_object_too():
    buffer = io.BytesIO()
    exports.write_xlsx(hand_ranking(), buffer)
    assert load_workbook(io.BytesIO(buffer.getvalue())).sheetnames == SHEETS


# -- a real month and the command -----------------------------------------------------------------

MONTH = "2025-03"
MAR10 = local(2025, 3, 10)


@pytest.fixture
def march(db, user, make_ticket):
    """Two tickets for 城管局 in March 2025: one handled and rated, one exempted."""
    cgj = db.scalars(sa.select(Unit).where(Unit.code == "U-CGJ")).one()
    handler = user("cgj")
    rated = make_ticket(user("operator"), category="010103", now=MAR10)
    ops.dispatch(db, user("dispatcher"), rated, lead=cgj, now=MAR10)
    ops.sign(db, handler, rated, now=MAR10 + dt.timedelta(minutes=30))
    ops.contact(db, handler, rated, note="已联系", now=MAR10 + dt.timedelta(hours=1))
    ops.finish(db, handler, rated, result="已修复", now=MAR10 + dt.timedelta(days=1))
    ops.record_callback(
        db,
        user("callback"),
        rated,
        outcome=CallbackOutcome.answered,
        solved=Solved.solved,
        satisfaction=Satisfaction.satisfied,
        now=MAR10 + dt.timedelta(days=2),
    )
    exempted = make_ticket(user("operator"), category="010103", now=MAR10)
    ops.dispatch(db, user("dispatcher"), exempted, lead=cgj, now=MAR10)
    ops.exempt(
        db,
        user("supervisor"),
        exempted,
        kind=ExemptionKind.unreasonable,
        reason=NASTY,
        now=MAR10 + dt.timedelta(days=3),
    )
    db.flush()
    return {"rated": rated, "exempted": exempted}


@pytest.fixture
def hotline(app, db):
    """``hotline("rank", …)`` → the click Result, run inside the test's transaction."""
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(main, list(args))

    return invoke


def cgj_row(data):
    rows = data["classes"]["department"]["rows"]
    return next(r for r in rows if r["unit_code"] == "U-CGJ")


def test_a_real_month_exports(db, app, march, tmp_path):
    result = ranking.load(db, MONTH, now=local(2025, 4, 2), config=app.config)
    data = exports.ranking_to_dict(result)
    row = cgj_row(data)
    assert row["counts"]["dispatched"] == 1 and row["counts"]["exempt"] == 1
    assert row["rates"]["satisfaction_rate"] == 1.0
    assert [e["ticket"] for e in data["exemptions"]] == [march["exempted"].number]
    assert data["exemptions"][0]["reason"] == NASTY
    assert data["exemptions"][0]["by"]
    buffer = io.BytesIO()
    exports.write_csv(result, buffer)
    _, lines = read_csv(buffer.getvalue())
    assert {line["类别"] for line in lines} == {c.label for c in RankingClass}
    wb, _ = workbook(result, tmp_path)
    assert wb["豁免清单"]["A4"].value == march["exempted"].number
    assert wb["豁免清单"]["D4"].value == NASTY


def test_rank_exports_every_referral_up_to_the_freeze(hotline, db, user, march, tmp_path):
    """The operator's tool lists every district's referrals (no reader to filter for); a
    frozen month's those made before it was frozen."""

    def referral(code, at):
        unit = db.scalars(sa.select(Unit).where(Unit.code == code)).one()
        db.add(
            Referral(
                month=MONTH,
                unit_id=unit.id,
                kind=ReferralKind.shirking,
                evidence=[{"rule": "bounced", "label": "来回推诿", "summary": "来回退单"}],
                ticket_ids=[march["rated"].id],
                reason="推诿",
                referred_by_id=user("supervisor").id,
                referred_at=at,
            )
        )
        db.flush()

    referral("U-CGJ", local(2025, 4, 3))
    referral("U-S-370705001", local(2025, 4, 3))
    result = hotline("rank", "--month", MONTH, "--format", "json", "--freeze")
    assert result.exit_code == 0, result.output
    referral("U-ZJJ", dt.datetime.now(dt.UTC))  # after the freeze
    data = json.loads(hotline("rank", "--month", MONTH, "--format", "json").stdout)
    assert [r["unit_code"] for r in data["referrals"]] == ["U-CGJ", "U-S-370705001"]
    path = tmp_path / "rank.xlsx"
    assert hotline("rank", "--month", MONTH, "--output", str(path)).exit_code == 0
    ws = load_workbook(path)["移送纪检监察"]
    assert "截至排名冻结时" in ws["A2"].value
    assert [row[0] for row in ws.iter_rows(min_row=4, values_only=True)] == [
        "潍坊市城市管理局",
        "东关街道办事处",
    ]


def test_rank_json_to_stdout(hotline, march):
    result = hotline("rank", "--month", MONTH, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["month"] == MONTH and data["frozen"] is False
    assert cgj_row(data)["counts"]["dispatched"] == 1
    assert data["exemptions"][0]["reason"] == NASTY
    assert "实时数据，未冻结" in result.stderr


def test_rank_uses_the_settings_in_force(hotline, db, march, user):
    settings.update(db, user("admin"), {"ranking.weight_response": 0, "ranking.list_size": 3})
    result = hotline("rank", "--month", MONTH, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["settings"]["weight_response"] == 0 and data["settings"]["list_size"] == 3


def test_rank_csv_to_stdout(hotline, march):
    result = hotline("rank", "--month", MONTH, "--format", "csv")
    assert result.exit_code == 0, result.output
    headers, lines = read_csv(result.stdout_bytes)
    assert headers == HEADERS
    cgj = next(line for line in lines if line["单位编码"] == "U-CGJ")
    assert cgj["满意率"] == "100.00%" and cgj["豁免量"] == "1"
    assert "实时数据" in result.stderr


@pytest.mark.parametrize("output_format", ["xlsx", "csv", "json"])
def test_rank_to_a_file(hotline, march, tmp_path, output_format):
    path = tmp_path / f"排名.{output_format}"
    result = hotline("rank", "--month", MONTH, "--format", output_format, "--output", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"已写入 {path}" in result.stderr
    data = path.read_bytes()
    if output_format == "xlsx":
        assert load_workbook(path).sheetnames == SHEETS
    elif output_format == "csv":
        assert read_csv(data)[0] == HEADERS
    else:
        assert json.loads(data)["month"] == MONTH


def test_rank_format_follows_the_output_suffix(hotline, march, tmp_path):
    path = tmp_path / "排名.xlsx"
    result = hotline("rank", "--month", MONTH, "--output", str(path))
    assert result.exit_code == 0, result.output
    assert load_workbook(path)["区县"]["A1"].value.startswith("2025年3月 12345 热线考核排名")


def test_rank_xlsx_needs_an_output_file(hotline):
    result = hotline("rank", "--month", MONTH, "--format", "xlsx")
    assert result.exit_code == 2
    assert "--output" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("month", ["2026-13", "abc", "2026-1", "9999-12", "1999-12"])
def test_rank_refuses_a_bad_month(hotline, db, month):
    for extra in ([], ["--freeze"]):
        result = hotline("rank", "--month", month, "--format", "json", *extra)
        assert result.exit_code == 1
        assert isinstance(result.exception, SystemExit)  # a message, no traceback
        assert "月份格式应为 YYYY-MM" in result.stderr
        assert "Traceback" not in result.output
    assert db.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 0


def test_rank_freeze_refuses_a_month_not_over(hotline, db):
    result = hotline("rank", "--month", "2100-12", "--format", "json", "--freeze")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "2100-12 尚未结束，不能冻结排名" in result.stderr
    assert result.stdout == ""
    assert db.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 0


def test_rank_freeze_publishes_once(hotline, db, march):
    result = hotline("rank", "--month", MONTH, "--format", "json", "--freeze")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["frozen"] is True and data["frozen_at"]
    assert f"已冻结 {MONTH} 排名" in result.stderr
    assert cgj_row(data)["counts"]["dispatched"] == 1
    snapshot = db.scalars(sa.select(RankingSnapshot)).one()
    assert snapshot.month == MONTH and snapshot.frozen_by_id is None
    logged = db.scalars(sa.select(AuditLog).where(AuditLog.action == "ranking.freeze")).one()
    assert logged.actor_id is None and logged.target == MONTH

    again = hotline("rank", "--month", MONTH, "--format", "json", "--freeze")
    assert again.exit_code == 1
    assert f"{MONTH} 的排名已冻结发布，不能重复冻结" in again.stderr

    # Without --freeze the published snapshot is what comes out, and says so.
    published = hotline("rank", "--month", MONTH, "--format", "csv")
    assert published.exit_code == 0, published.output
    assert "已冻结发布的快照（冻结于" in published.stderr
    cgj = next(line for line in read_csv(published.stdout_bytes)[1] if line["单位编码"] == "U-CGJ")
    assert cgj["派单量"] == "1"


def test_rank_dash_is_stdout_and_a_missing_folder_is_refused(hotline, tmp_path):
    dash = hotline("rank", "--month", MONTH, "--output", "-")
    assert dash.exit_code == 0, dash.output
    assert json.loads(dash.stdout)["month"] == MONTH
    missing = hotline("rank", "--month", MONTH, "--output", str(tmp_path / "无此目录" / "a.csv"))
    assert missing.exit_code == 2
    assert "输出目录不存在" in missing.stderr
