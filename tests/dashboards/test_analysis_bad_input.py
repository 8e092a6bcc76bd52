"""Bad input to the hot issues', warnings' and 民情分析 pages and API is refused with a clear
answer, never a 500: dates outside the calendar, ids beyond any row, text fields sent as
numbers or lists, NUL characters."""

import datetime as dt

import pytest

from hotline.models import HotIssue

DATES = ["0001-01-01", "9999-12-31"]


@pytest.mark.parametrize("day", DATES)
@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("path", ["/hotspots", "/warnings"])
def test_a_date_outside_the_calendar_is_refused(api, client, web_login, path, name, day):
    response = api("supervisor").get(f"{path}?{name}={day}")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "日期超出范围" in response.get_json()["error"]["details"][name]
    web_login(client, "supervisor")
    page = client.get(f"{path}?{name}={day}")
    assert page.status_code in (400, 422)
    assert "日期超出范围" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/hotspots/99999999999999999999", "/warnings/3000000000", "/hotspots/3000000000"]
)
def test_an_id_beyond_any_row_is_not_found(api, client, web_login, path):
    assert api("supervisor").get(path).status_code == 404
    web_login(client, "supervisor")
    assert client.get(path).status_code == 404


@pytest.fixture
def issue(db):
    now = dt.datetime.now(dt.UTC)
    row = HotIssue(title="凤凰嘉苑搅拌站夜间噪音", first_at=now, last_at=now, size=3)
    db.add(row)
    db.commit()
    return row.id


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("handle", {"note": 5}),
        ("handle", {"note": ["x"]}),
        ("rename", {"title": 5}),
        ("merge", {"into": 1, "reason": {"a": 1}}),
        ("merge", {"into": 10**20, "reason": "同一事项"}),
    ],
)
def test_a_decision_with_a_field_of_the_wrong_kind_is_refused(api, issue, action, body):
    response = api("supervisor").post(f"/hotspots/{issue}/{action}", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)


def test_a_nul_in_the_hot_issues_search_is_refused(client, web_login):
    web_login(client, "supervisor")
    page = client.get("/hotspots?q=a%00b")
    assert page.status_code in (400, 422)
    assert "标题关键词含有无效字符" in page.get_data(as_text=True)
