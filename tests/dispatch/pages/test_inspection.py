"""The 质检 pages (``dispatch.pages.inspection``): the inspectors' queue and its filters, the
sample's page (the ticket as taken, the phone masked, text escaped) and its form (CSRF,
refusals re-rendered with what was typed, once only), the monthly scores and an operator's
own results; every page refuses the roles it is not for."""

import datetime as dt
import io
import re

import openpyxl
import pytest
import sqlalchemy as sa

from dispatch import calls, inspection
from dispatch import operations as ops
from hotline.enums import InspectionState, IntakeOutcome, Role
from hotline.models import AuditLog, Inspection, User
from tests.dispatch.common import PHONE, STREETLIGHT, TZ
from tests.helpers import PASSWORD

DAY = dt.date(2026, 3, 11)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XSS = '<script>alert("x")</script>'


def at(day, hour, minute=0):
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


@pytest.fixture
def samples(db, user, make_ticket):
    """Each operator's one ticket of ``DAY``, sampled: ``{username: Inspection}``. The
    operator's was answered at intake, from a recorded call, with a script in its content."""
    calls.announce(
        db,
        user("operator"),
        call_id="SW-20260311-0001",
        caller_phone=PHONE,
        agent="operator",
        recording_ref="rec/2026/03/11/0001.wav",
        now=at(DAY, 9),
    )
    mine = make_ticket(
        user("operator"),
        now=at(DAY, 9),
        category=STREETLIGHT,
        area="370705001",
        title="路灯不亮质检样本",
        content=f"胜利东街路灯不亮{XSS}",
        call_id="SW-20260311-0001",
    )
    ops.resolve_at_intake(
        db, user("operator"), mine, outcome=IntakeOutcome.answered, answer="已告知报修渠道"
    )
    make_ticket(user("operator2"), now=at(DAY, 10), title="另一名话务员的工单")
    rows = inspection.sample_day(db, DAY, "Asia/Shanghai")
    return {row.operator.username: row for row in rows}


def full_form(token, **overrides):
    data = {"csrf_token": token, "comment": "总体规范"}
    for item in inspection.CHECKLIST:
        data[f"{item.key}_points"] = str(item.maximum)
        data[f"{item.key}_comment"] = ""
    data.update(overrides)
    return data


def test_the_queue_lists_pending_samples_with_operator_names(client, web_login, samples):
    web_login(client, "inspector")
    page = client.get("/inspection").get_data(as_text=True)
    assert '<a href="/inspection" aria-current="page">待质检</a>' in page
    for username, name in (("operator", "王晓丽"), ("operator2", "刘婷婷")):
        row = page[page.index(f'id="i-{samples[username].id}"') :]
        assert name in row[: row.index("</tr>")]
    # The operator picker shows names, its values are the login names.
    assert '<option value="operator2">刘婷婷</option>' in page
    only = client.get("/inspection", query_string={"operator": "operator2"}).get_data(as_text=True)
    assert f'id="i-{samples["operator2"].id}"' in only
    assert f'id="i-{samples["operator"].id}"' not in only
    other_day = client.get("/inspection", query_string={"day": "2026-03-12"})
    assert f'id="i-{samples["operator"].id}"' not in other_day.get_data(as_text=True)


@pytest.mark.parametrize(
    "query, message",
    [
        ({"day": "2026-13-01"}, "日期格式应为 YYYY-MM-DD"),
        ({"day": "1999-01-01"}, "日期超出范围"),
        ({"operator": "dispatcher"}, "没有这名话务员"),
        ({"page": "0"}, "须为正整数"),
    ],
)
def test_bad_filters_are_refused_in_chinese(client, web_login, query, message):
    web_login(client, "inspector")
    response = client.get("/inspection", query_string=query)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_the_sample_page_shows_the_ticket_as_taken(client, web_login, samples, db):
    web_login(client, "inspector")
    row = samples["operator"]
    page = client.get(f"/inspection/{row.id}").get_data(as_text=True)
    assert "路灯不亮质检样本" in page
    # The switch's recording reference is no web address: a code beside its label.
    recording = page[page.index('data-testid="recording"') :]
    recording = recording[: recording.index("</dd>")]
    assert "录音编号" in recording and "rec/2026/03/11/0001.wav" in recording
    assert "请在话务系统中调听" in recording and "<a " not in recording
    assert "王晓丽" in page  # the operator
    assert "东关街道" in page  # the area's name
    assert "直接办结（首问即答）" in page and "已告知报修渠道" in page
    # The requester's phone masked; no personal-data view to record.
    assert "138****0001" in page and PHONE not in page
    # Text typed by people stays text.
    assert XSS not in page and "&lt;script&gt;" in page
    assert 'name="csrf_token"' in page
    # Unclaimed: the form waits until the inspector claims the sample.
    assert "尚未领取" in page and "领取并评分" in page
    assert 'data-testid="inspection-form"' not in page
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "pii.view")).all() == []


@pytest.mark.parametrize(
    "ref, link",
    [
        ("https://pbx.example.cn/rec/2026/03/11/0002.wav", True),
        ("http://10.1.2.3/play?id=0002", True),
        ("javascript:alert(1)", False),
        (None, False),
    ],
)
def test_the_recording_is_a_link_when_the_phone_system_gives_an_address(
    client, web_login, db, user, make_ticket, ref, link
):
    calls.announce(
        db,
        user("operator"),
        call_id="SW-20260311-0002",
        caller_phone=PHONE,
        agent="operator",
        recording_ref=ref,
        now=at(DAY, 9),
    )
    ticket = make_ticket(user("operator"), now=at(DAY, 9), call_id="SW-20260311-0002")
    (row,) = inspection.sample_day(db, DAY, "Asia/Shanghai")
    web_login(client, "inspector")
    page = client.get(f"/inspection/{row.id}").get_data(as_text=True)
    recording = page[page.index('data-testid="recording"') :]
    recording = recording[: recording.index("</dd>")]
    assert ticket.recording_ref == ref
    if link:
        assert f'<a href="{ref}" target="_blank"' in recording and "收听通话录音" in recording
    elif ref:
        assert "<a " not in recording and "录音编号" in recording and "alert(1)" in recording
    else:
        assert "无录音" in recording


def claimed(client, form_token, row):
    """Claim ``row`` through its page as the logged-in inspector; the form's CSRF token."""
    token = form_token(client, f"/inspection/{row.id}")
    response = client.post(f"/inspection/{row.id}/claim", data={"csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(f"/inspection/{row.id}").get_data(as_text=True)
    assert "已由您领取" in page and 'data-testid="inspection-form"' in page
    for item in inspection.CHECKLIST:
        assert f'name="{item.key}_points"' in page
    return token


def test_an_inspector_scores_through_the_form(client, web_login, form_token, samples, db):
    web_login(client, "inspector")
    row = samples["operator"]
    token = claimed(client, form_token, row)
    response = client.post(
        f"/inspection/{row.id}",
        data=full_form(token, address_points="14", address_comment="缺门牌号"),
    )
    assert response.status_code == 302
    # On with the next pending sample.
    assert response.headers["Location"] == f"/inspection/{samples['operator2'].id}"
    db.refresh(row)
    assert (row.state, row.score) == (InspectionState.done, 94)
    assert row.checks["address"] == {"points": 14, "comment": "缺门牌号"}
    shown = client.get(f"/inspection/{row.id}").get_data(as_text=True)
    assert "总分 <strong>94</strong> 分" in shown and "缺门牌号" in shown
    assert 'data-testid="inspection-form"' not in shown
    # A second submission is refused.
    again = client.post(f"/inspection/{row.id}", data=full_form(token))
    assert again.status_code == 409
    assert "该工单已质检评分，不能重复提交" in again.get_data(as_text=True)


def test_a_refused_score_is_shown_with_what_was_typed(client, web_login, form_token, samples, db):
    web_login(client, "inspector")
    row = samples["operator"]
    token = claimed(client, form_token, row)
    response = client.post(
        f"/inspection/{row.id}",
        data=full_form(token, category_points="25", content_points="20", comment="写了评语"),
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "“分类准确”得分须在 0–20 之间" in page
    assert "“内容完整”扣了 5 分，请填写扣分说明" in page
    assert 'name="category_points" min="0" max="20" step="1" required value="25"' in page
    assert ">写了评语</textarea>" in page
    db.refresh(row)
    assert row.state == InspectionState.pending


@pytest.fixture
def second_inspector(db, user):
    other = User(
        username="inspector2",
        name="孙质检",
        role=Role.inspector,
        unit_id=user("inspector").unit_id,
    )
    other.set_password(PASSWORD)
    db.add(other)
    db.flush()
    return other


def test_a_claimed_sample_is_the_holders_alone(
    client, web_login, form_token, samples, second_inspector, db
):
    row = samples["operator"]
    web_login(client, "inspector")
    claimed(client, form_token, row)
    queue = client.get("/inspection").get_data(as_text=True)
    line = queue[queue.index(f'id="i-{row.id}"') :]
    assert "郑雅琴" in line[: line.index("</tr>")]  # the holder, by name

    web_login(client, "inspector2")
    page = client.get(f"/inspection/{row.id}").get_data(as_text=True)
    assert "已由 <strong>郑雅琴</strong> 领取" in page
    assert 'data-testid="inspection-form"' not in page and "领取并评分" not in page
    token = form_token(client, "/account/password")
    refused = client.post(f"/inspection/{row.id}/claim", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "该质检样本已由郑雅琴领取" in refused.get_data(as_text=True)
    scored = client.post(f"/inspection/{row.id}", data=full_form(token))
    assert scored.status_code == 409
    db.refresh(row)
    assert (row.state, row.inspector_id) == (InspectionState.pending, user_id(db, "inspector"))

    # A supervisor gives it back to the queue (the holder away); audited.
    web_login(client, "supervisor")
    token = form_token(client, "/account/password")
    assert (
        client.post(f"/inspection/{row.id}/release", data={"csrf_token": token}).status_code == 302
    )
    db.refresh(row)
    assert row.inspector_id is None
    actions = db.scalars(
        sa.select(AuditLog.action).where(AuditLog.action.like("inspection.%")).order_by(AuditLog.id)
    ).all()
    assert actions == ["inspection.claim", "inspection.release"]
    web_login(client, "inspector2")
    claimed(client, form_token, row)


def user_id(db, username):
    return db.scalar(sa.select(User.id).where(User.username == username))


def test_the_form_needs_its_csrf_token(client, web_login, samples):
    web_login(client, "inspector")
    row = samples["operator"]
    response = client.post(f"/inspection/{row.id}", data=full_form(""))
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/inspection/999999999999", "/inspection/99999999999999999999"])
def test_unknown_samples_are_404(client, web_login, path):
    web_login(client, "inspector")
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("username", ["operator", "dispatcher", "dongguan", "leader", "admin"])
def test_other_roles_cannot_open_the_queue_or_a_sample(
    client, web_login, form_token, samples, username
):
    web_login(client, username)
    row = samples["operator"]
    assert client.get("/inspection").status_code == 403
    assert client.get(f"/inspection/{row.id}").status_code == 403
    assert client.get("/inspection/scores").status_code == 403
    token = form_token(client, "/account/password")
    assert client.post(f"/inspection/{row.id}", data=full_form(token)).status_code == 403


def test_a_supervisor_reads_a_sample_but_cannot_score_it(client, web_login, form_token, samples):
    web_login(client, "supervisor")
    row = samples["operator"]
    page = client.get(f"/inspection/{row.id}").get_data(as_text=True)
    assert "路灯不亮质检样本" in page and 'data-testid="inspection-form"' not in page
    token = form_token(client, "/account/password")
    assert client.post(f"/inspection/{row.id}", data=full_form(token)).status_code == 403


@pytest.fixture
def scored(db, user, samples):
    inspector = user("inspector")
    checks = {i.key: {"points": i.maximum} for i in inspection.CHECKLIST}
    inspection.inspect(
        db,
        inspector,
        samples["operator"],
        checks={**checks, "courtesy": {"points": 9, "comment": "未使用规范结束语"}},
        comment="整体不错，注意结束语",
    )
    inspection.inspect(
        db,
        inspector,
        samples["operator2"],
        checks={**checks, "category": {"points": 5, "comment": "刘婷婷的分类问题"}},
        comment="刘婷婷的评语",
    )
    return samples


@pytest.mark.parametrize("username", ["inspector", "supervisor"])
def test_monthly_scores_table(client, web_login, scored, username):
    web_login(client, username)
    page = client.get("/inspection/scores", query_string={"month": "2026-03"}).get_data(
        as_text=True
    )
    assert "质检成绩 · 2026年3月" in page
    assert '<option value="2026-03" selected>2026年3月</option>' in page
    rows = re.findall(r"<tr>\s*<td class=\"text\">(.*?)</td>(.*?)</tr>", page, re.S)
    cells = {name: re.findall(r'<td class="(?:num|text)">(.*?)</td>', rest) for name, rest in rows}
    assert cells["王晓丽"] == ["1", "0", "94.0", "20.0", "20.0", "25.0", "9.0", "20.0", "服务规范"]
    assert cells["刘婷婷"] == ["1", "0", "85.0", "5.0", "20.0", "25.0", "15.0", "20.0", "分类准确"]
    empty = client.get("/inspection/scores", query_string={"month": "2026-02"})
    assert "本月没有质检样本" in empty.get_data(as_text=True)
    bad = client.get("/inspection/scores", query_string={"month": "2026-3"})
    assert bad.status_code == 422 and "月份格式应为 YYYY-MM" in bad.get_data(as_text=True)


@pytest.mark.parametrize("username", ["inspector", "supervisor"])
def test_monthly_scores_export_to_xlsx(client, web_login, scored, db, username):
    web_login(client, username)
    page = client.get("/inspection/scores", query_string={"month": "2026-03"}).get_data(
        as_text=True
    )
    assert 'href="/inspection/scores.xlsx?month=2026-03"' in page and "导出 Excel" in page
    response = client.get("/inspection/scores.xlsx", query_string={"month": "2026-03"})
    assert response.status_code == 200
    assert response.mimetype == XLSX
    assert "attachment" in response.headers["Content-Disposition"]
    assert "2026-03.xlsx" in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    assert sheet.title == "质检成绩" and sheet["A1"].value == "12345 热线话务质检成绩 2026年3月"
    assert [c.value for c in sheet[3]] == [
        "话务员",
        "登录名",
        "已质检",
        "待质检",
        "平均分（满分 100）",
        "分类准确（满分 20）",
        "地址准确（满分 20）",
        "内容完整（满分 25）",
        "服务规范（满分 15）",
        "转办正确（满分 20）",
        "待改进",
    ]
    rows = {row[0]: row for row in sheet.iter_rows(min_row=4, values_only=True)}
    assert rows["王晓丽"] == ("王晓丽", "operator", 1, 0, 94, 20, 20, 25, 9, 20, "服务规范")
    assert rows["刘婷婷"] == ("刘婷婷", "operator2", 1, 0, 85, 5, 20, 25, 15, 20, "分类准确")
    assert sheet["E4"].number_format == "0.0"
    [log] = db.scalars(sa.select(AuditLog).where(AuditLog.action == "inspection.export")).all()
    assert log.payload == {"month": "2026-03", "operators": 2}
    bad = client.get("/inspection/scores.xlsx", query_string={"month": "2026-3"})
    assert bad.status_code == 422 and "月份格式应为 YYYY-MM" in bad.get_data(as_text=True)


@pytest.mark.parametrize("username", ["operator", "dispatcher", "leader"])
def test_only_score_readers_export_the_scores(client, web_login, scored, username):
    web_login(client, username)
    assert client.get("/inspection/scores.xlsx").status_code == 403


def test_an_operator_reads_only_their_own_results(client, web_login, scored):
    web_login(client, "operator")
    home = client.get("/console").get_data(as_text=True)
    assert '<a href="/inspection/mine">我的质检</a>' in home
    page = client.get("/inspection/mine", query_string={"month": "2026-03"}).get_data(as_text=True)
    assert "本月已质检 1 件，平均 <strong>94.0</strong> 分；待改进：服务规范" in page
    assert "未使用规范结束语" in page and "整体不错，注意结束语" in page
    assert "9 / 15" in page
    assert "刘婷婷" not in page and "另一名话务员的工单" not in page
    # No argument names another operator: whatever is asked, the page is one's own.
    other = client.get(
        "/inspection/mine", query_string={"month": "2026-03", "operator": "operator2"}
    )
    assert "刘婷婷的评语" not in other.get_data(as_text=True)


@pytest.mark.parametrize("username", ["inspector", "supervisor", "dispatcher"])
def test_only_operators_have_an_own_results_page(client, web_login, username):
    web_login(client, username)
    assert client.get("/inspection/mine").status_code == 403


def test_pending_samples_are_not_shown_to_the_operator(client, web_login, samples, db):
    web_login(client, "operator")
    page = client.get("/inspection/mine", query_string={"month": "2026-03"}).get_data(as_text=True)
    assert "本月还没有质检结果" in page and "另有 1 件待质检" in page
    assert "路灯不亮质检样本" not in page
    assert db.scalar(sa.select(sa.func.count()).select_from(Inspection)) == 2
