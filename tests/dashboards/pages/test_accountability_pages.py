"""The 监察问责 pages over HTTP: who may read and refer, the refer form's CSRF, bad input
refused with a Chinese message (never a 500), a district leader reading only their district's
units, and 监察问责设置 for administrators only."""

import io
import json

import openpyxl
import pytest
import sqlalchemy as sa

from dashboards import accountability, ranking
from hotline.models import Referral
from tests.dashboards.month import HOUR, OCT12, local
from tests.dashboards.test_accountability import give_back
from tests.helpers import FORM_TOKEN

URL = "/reports/accountability?month=2026-10"


@pytest.fixture
def bounced(db, month_builder):
    """城管局 and 住建局 passed one ticket back and forth; 东关街道 returned two in minutes
    that were rejected (a district's unit, for the district leader)."""
    c = month_builder()
    ticket = c.ticket(1, "U-CGJ", sign=None)
    give_back(c, ticket, "U-CGJ", at=OCT12 + 2 * HOUR, approve=True, to="U-ZJJ")
    give_back(c, ticket, "U-ZJJ", at=OCT12 + 5 * HOUR, approve=True, to="U-CGJ")
    street = c.ticket(2, "U-S-370705001", sign=None)
    give_back(c, street, "U-S-370705001", at=OCT12 + HOUR, approve=False)
    give_back(c, street, "U-S-370705001", at=OCT12 + 3 * HOUR, approve=False)
    return c


def _token(client):
    return FORM_TOKEN.search(client.get(URL).get_data(as_text=True)).group(1)


def test_supervisors_see_cases_with_evidence_and_a_refer_form(client, web_login, bounced):
    web_login(client, "supervisor")
    page = client.get(URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-unit="U-CGJ" data-kind="shirking"' in text
    assert 'data-unit="U-ZJJ" data-kind="shirking"' in text
    assert "来回推诿" in text and bounced.tickets[1].number in text
    assert text.count('data-testid="refer-form"') == 3


def test_a_referral_through_the_page(client, db, web_login, bounced):
    web_login(client, "supervisor")
    data = {"csrf_token": _token(client), "unit": "U-CGJ", "kind": "shirking", "reason": "推诿"}
    response = client.post("/reports/accountability/2026-10/refer", data=data)
    assert response.status_code == 302
    assert "/reports/accountability/referrals?month=2026-10" in response.headers["Location"]
    listing = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已将潍坊市城市管理局的推诿扯皮问题移送纪检监察" in listing
    assert "潍坊市城市管理局" in listing and bounced.tickets[1].number in listing
    # The same again is a retry; another reason is refused, and says why.
    assert client.post("/reports/accountability/2026-10/refer", data=data).status_code == 302
    again = client.post(
        "/reports/accountability/2026-10/refer", data={**data, "reason": "另一个理由"}
    )
    assert again.status_code == 409
    assert "不能重复移送" in again.get_data(as_text=True)
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 1


def test_leaders_read_without_a_form_and_may_not_refer(client, web_login, bounced):
    web_login(client, "leader")
    text = client.get(URL).get_data(as_text=True)
    assert 'data-unit="U-CGJ"' in text and 'data-testid="refer-form"' not in text
    token = FORM_TOKEN.search(client.get("/reports/ranking").get_data(as_text=True))
    data = {"unit": "U-CGJ", "kind": "shirking", "reason": "推诿"}
    if token:
        data["csrf_token"] = token.group(1)
    response = client.post("/reports/accountability/2026-10/refer", data=data)
    assert response.status_code in (400, 403)


def test_a_district_leader_reads_only_their_districts_units(client, web_login, bounced):
    web_login(client, "kuiwen-leader")
    text = client.get(URL).get_data(as_text=True)
    assert 'data-unit="U-S-370705001"' in text
    assert 'data-unit="U-CGJ"' not in text


@pytest.mark.parametrize("username", ["cgj", "dispatcher", "operator", "callback"])
def test_other_roles_are_refused(client, web_login, username):
    web_login(client, username)
    assert client.get(URL).status_code == 403
    assert client.get("/reports/accountability/referrals").status_code == 403


def test_the_form_needs_its_csrf_token(client, db, web_login, bounced):
    web_login(client, "supervisor")
    data = {"unit": "U-CGJ", "kind": "shirking", "reason": "推诿"}
    assert client.post("/reports/accountability/2026-10/refer", data=data).status_code == 400
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


@pytest.mark.parametrize(
    ("path", "form", "status"),
    [
        ("/reports/accountability?month=2026-13", None, 422),
        ("/reports/accountability?month=1999-01", None, 422),
        ("/reports/accountability/referrals?month=abc", None, 422),
        ("/reports/accountability?month=9999-12", None, 422),
        ("/reports/accountability?month=1999-12", None, 422),
        ("/reports/accountability?month=2026-10%00", None, 422),
        ("/reports/accountability/referrals?month=9999-12", None, 422),
        ("/reports/accountability/9999-12/refer", {}, 422),
        ("/reports/accountability/2026-10/refer", {"unit": "U-CGJ\x00"}, 404),
        ("/reports/accountability/2026-13/refer", {}, 422),
        ("/reports/accountability/2026-10/refer", {"unit": "X" * 5000}, 404),
        ("/reports/accountability/2026-10/refer", {"kind": "bribery"}, 422),
        ("/reports/accountability/2026-10/refer", {"reason": "a\x00b"}, 422),
        ("/reports/accountability/2026-10/refer", {"reason": "x" * 3000}, 422),
        ("/reports/accountability/2026-10/refer", {"unit": "U-WATER"}, 409),
    ],
)
def test_bad_input_is_refused_in_chinese(client, web_login, bounced, path, form, status):
    web_login(client, "supervisor")
    if form is None:
        response = client.get(path)
    else:
        data = {"csrf_token": _token(client), "unit": "U-CGJ", "kind": "shirking", "reason": "推诿"}
        response = client.post(path, data={**data, **form})
    assert response.status_code == status
    assert "Traceback" not in response.get_data(as_text=True)


def test_the_settings_page_is_for_administrators(client, web_login):
    web_login(client, "admin")
    text = client.get("/admin/accountability-settings").get_data(as_text=True)
    assert "退单被驳回件数" in text and 'name="accountability.quick_return_minutes"' in text
    client.get("/logout")
    web_login(client, "supervisor")
    assert client.get("/admin/accountability-settings").status_code == 403


@pytest.fixture
def referred(db, user, bounced):
    """城管局's and 东关街道's cases referred on 3 November (住建局's is not)."""
    supervisor = user("supervisor")
    for code, reason in (("U-CGJ", "一单多退"), ("U-S-370705001", "退单屡被驳回")):
        accountability.refer(
            db,
            supervisor,
            month="2026-10",
            unit=accountability.unit_by_code(db, code),
            kind="shirking",
            reason=reason,
            now=local(11, 3),
        )
    return bounced


def _referral_sheet(client):
    response = client.get("/reports/ranking/2026-10.xlsx")
    assert response.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(response.data))["移送纪检监察"]
    units = [row[0] for row in ws.iter_rows(min_row=4, values_only=True)]
    return ws["A2"].value, units


def _json_referrals(client):
    data = json.loads(client.get("/reports/ranking/2026-10.json").data)
    return None if "referrals" not in data else [r["unit_code"] for r in data["referrals"]]


def test_the_ranking_export_lists_only_the_referrals_the_reader_may_see(
    client, web_login, referred
):
    web_login(client, "supervisor")
    assert _referral_sheet(client)[1] == ["潍坊市城市管理局", "东关街道办事处"]
    assert _json_referrals(client) == ["U-CGJ", "U-S-370705001"]
    client.get("/logout")
    web_login(client, "kuiwen-leader")  # 奎文区: 东关街道 only
    assert _referral_sheet(client)[1] == ["东关街道办事处"]
    assert _json_referrals(client) == ["U-S-370705001"]
    client.get("/logout")
    web_login(client, "admin")  # may download the ranking, not read referrals
    subtitle, units = _referral_sheet(client)
    assert "仅限督办审核员和领导查看" in subtitle
    assert units == ["您的角色无权查看移送纪检监察记录"]
    assert _json_referrals(client) is None


def test_a_frozen_months_export_lists_the_referrals_made_before_the_freeze(
    app, client, db, user, web_login, referred
):
    ranking.freeze(db, None, "2026-10", now=local(11, 5), config=app.config)
    accountability.refer(
        db,
        user("supervisor"),
        month="2026-10",
        unit=accountability.unit_by_code(db, "U-ZJJ"),
        kind="shirking",
        reason="一单多退",
        now=local(11, 10),
    )
    web_login(client, "supervisor")
    subtitle, units = _referral_sheet(client)
    assert "截至排名冻结时（2026-11-05 09:00）" in subtitle
    assert units == ["潍坊市城市管理局", "东关街道办事处"]
    assert _json_referrals(client) == ["U-CGJ", "U-S-370705001"]
    # The referral page lists all three.
    listing = client.get("/reports/accountability/referrals?month=2026-10").get_data(as_text=True)
    assert "潍坊市住房和城乡建设局" in listing
