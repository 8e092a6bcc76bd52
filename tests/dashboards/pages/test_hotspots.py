"""The hot-issue pages and API (dashboards/pages/hotspots.py, dashboards/api/hotspots.py):
who sees them, the filters by name, a hot issue's page, the supervisor's forms with CSRF
and their refusals, the same decisions through the API."""

import re

import pytest
import sqlalchemy as sa

from hotline.enums import HotIssueState
from hotline.models import AuditLog, HotIssue
from tests.dashboards import hotspot_city
from tests.dashboards.hotspot_city import City
from tests.helpers import assert_error


@pytest.fixture
def issues(db, user, make_ticket):
    return hotspot_city.two_issues(db, City(db, user, make_ticket))


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("leader", True),
        ("kuiwen-leader", True),
        ("supervisor", True),
        ("dispatcher", True),
        ("admin", True),
        ("operator", False),
        ("dongguan", False),
        ("callback", False),
    ],
)
def test_who_sees_the_list(client, web_login, issues, username, allowed):
    web_login(client, username)
    response = client.get("/hotspots")
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert 'href="/hotspots"' in response.get_data(as_text=True)  # in the menu


def test_list_shows_names_hottest_first_and_filters(client, web_login, issues):
    noise, light, _, _ = issues
    web_login(client, "supervisor")
    page = client.get("/hotspots").get_data(as_text=True)
    rows = re.findall(r'<tr data-id="(\d+)">', page)
    expected = sorted([noise, light], key=lambda i: (-i.heat, -i.id))
    assert rows == [str(i.id) for i in expected]
    assert "奎文区" in page and "潍城区" in page
    assert '<option value="370705">奎文区</option>' in page  # names, codes as values
    assert "城乡建设 › 市政设施 › 路灯故障" in page
    filtered = client.get("/hotspots?district=370702").get_data(as_text=True)
    assert re.findall(r'<tr data-id="(\d+)">', filtered) == [str(light.id)]
    bad = client.get("/hotspots?from=2026-02-31")
    assert bad.status_code == 400 and "日期格式应为" in bad.get_data(as_text=True)


def test_district_leader_sees_only_their_district(client, web_login, issues):
    noise, light, _, _ = issues
    web_login(client, "kuiwen-leader")
    page = client.get("/hotspots?district=370702").get_data(as_text=True)
    assert re.findall(r'<tr data-id="(\d+)">', page) == [str(noise.id)]
    assert client.get(f"/hotspots/{light.id}").status_code == 403
    assert client.get(f"/hotspots/{noise.id}").status_code == 200


def test_issue_page_and_escaping(client, web_login, issues, db, user):
    from dashboards import hotspots

    noise, _, tickets, _ = issues
    hotspots.rename(db, user("supervisor"), noise, "<script>alert(1)</script>噪音")
    web_login(client, "dispatcher")
    page = client.get(f"/hotspots/{noise.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;噪音" in page
    assert "<script>alert(1)" not in page
    for ticket in tickets:
        assert f'href="/tickets/{ticket.number}"' in page
    assert 'data-testid="heat-parts"' in page and 'id="timeline-data"' in page
    assert 'data-testid="decisions"' not in page  # a dispatcher does not decide
    assert client.get("/hotspots/999999").status_code == 404


def test_supervisor_forms(client, web_login, form_token, issues, db):
    noise, light, tickets, _ = issues
    web_login(client, "supervisor")
    path = f"/hotspots/{noise.id}"
    page = client.get(path).get_data(as_text=True)
    assert 'data-testid="decisions"' in page and f'<option value="{light.id}">' in page
    # No CSRF token: refused.
    assert client.post(f"{path}/handle", data={"note": "x"}).status_code == 400
    token = form_token(client, path)
    # A refusal shows the page again with the reason and what was typed.
    refused = client.post(
        f"{path}/merge", data={"csrf_token": token, "into": str(noise.id), "reason": "同一事项"}
    )
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "不能把热点问题合并到它自己" in text and 'value="同一事项"' in text
    split = client.post(
        f"{path}/split",
        data={"csrf_token": token, "tickets": [str(tickets[0].id)], "title": "拆出来的"},
    )
    assert split.status_code == 302
    new_id = int(split.headers["Location"].rsplit("/", 1)[1])
    assert db.get(HotIssue, new_id).title == "拆出来的"
    handled = client.post(f"{path}/handle", data={"csrf_token": token, "note": "已联合整治"})
    assert handled.status_code == 302
    db.expire_all()
    assert db.get(HotIssue, noise.id).state == HotIssueState.handled
    merged = client.post(
        f"/hotspots/{new_id}/merge",
        data={"csrf_token": token, "into": str(light.id), "reason": "测试合并"},
    )
    assert merged.headers["Location"].endswith(f"/hotspots/{light.id}")
    actions = db.scalars(
        sa.select(AuditLog.action)
        .where(AuditLog.action.startswith("hotspot."))
        .order_by(AuditLog.id)
    ).all()
    assert actions == ["hotspot.split", "hotspot.handle", "hotspot.merge"]


@pytest.mark.parametrize("username", ["dispatcher", "admin"])
def test_only_a_supervisor_may_post_a_decision(client, web_login, form_token, issues, username):
    noise, _, _, _ = issues
    web_login(client, username)
    page = client.get(f"/hotspots/{noise.id}").get_data(as_text=True)
    assert "split-form" not in page and f"/hotspots/{noise.id}/rename" not in page
    token = form_token(client, f"/hotspots/{noise.id}")
    response = client.post(f"/hotspots/{noise.id}/rename", data={"csrf_token": token, "title": "x"})
    assert response.status_code == 403
    assert "只有督办审核员可以" in response.get_data(as_text=True)


def test_api_list_get_and_decisions(api, issues, db):
    noise, light, tickets, _ = issues
    listed = api("leader").get("/hotspots?per_page=1")
    assert listed.status_code == 200
    body = listed.get_json()["data"]
    assert body["total"] == 2 and len(body["items"]) == 1
    item = body["items"][0]
    assert {"id", "title", "size", "heat", "heat_parts", "state", "district"} <= set(item)
    one = api("dispatcher").get(f"/hotspots/{noise.id}").get_json()["data"]
    assert [t["number"] for t in one["tickets"]] == [t.number for t in tickets]
    assert one["issue"]["district"] == {"code": "370705", "name": "奎文区"}
    assert_error(api("kuiwen-leader").get(f"/hotspots/{light.id}"), 403, "HOTSPOT_OUT_OF_SCOPE")
    assert_error(api("operator").get("/hotspots"), 403, "HOTSPOT_VIEW_FORBIDDEN")
    assert_error(
        api("dispatcher").post(f"/hotspots/{noise.id}/rename", json={"title": "x"}),
        403,
        "HOTSPOT_FORBIDDEN",
    )
    supervisor = api("supervisor")
    assert_error(
        supervisor.post(f"/hotspots/{noise.id}/split", json={"tickets": []}),
        422,
        "HOTSPOT_SPLIT_NONE",
    )
    renamed = supervisor.post(f"/hotspots/{noise.id}/rename", json={"title": "搅拌站噪音"})
    assert renamed.get_json()["data"]["issue"]["title"] == "搅拌站噪音"
    split = supervisor.post(
        f"/hotspots/{noise.id}/split", json={"tickets": [tickets[0].id, tickets[1].id]}
    )
    assert split.status_code == 201
    new = split.get_json()["data"]
    assert new["issue"]["size"] == 2 and new["issue"]["id"] != noise.id
    merged = supervisor.post(
        f"/hotspots/{new['issue']['id']}/merge", json={"into": noise.id, "reason": "误拆"}
    )
    assert merged.get_json()["data"]["issue"]["size"] == 4
    assert_error(
        supervisor.post(
            f"/hotspots/{noise.id}/merge", json={"into": new["issue"]["id"], "reason": "x"}
        ),
        409,
        "HOTSPOT_MERGE_INTO_MERGED",
    )
    handled = supervisor.post(f"/hotspots/{noise.id}/handle", json={"note": "已整治"})
    assert handled.get_json()["data"]["issue"]["state"]["code"] == "handled"
    reopened = supervisor.post(f"/hotspots/{noise.id}/reopen", json={})
    assert reopened.get_json()["data"]["issue"]["state"]["code"] == "open"


def test_the_dispatcher_sees_the_hot_issue_on_a_ticket_and_in_the_queue(
    client, web_login, issues, make_ticket, user, db
):
    noise, _, tickets, _ = issues
    web_login(client, "dispatcher")
    page = client.get(f"/tickets/{tickets[0].number}").get_data(as_text=True)
    line = f'属于<a href="/hotspots/{noise.id}">热点问题 #{noise.id} {noise.title}（共 4 件）</a>'
    assert line in page
    queue = client.get("/dispatch").get_data(as_text=True)
    assert f'<a class="hot-issue-tag" href="/hotspots/{noise.id}"' in queue
    # A ticket in no hot issue says nothing.
    lone = make_ticket(user("operator"), title="孤立的一件", content="与其他工单无关的诉求")
    assert 'data-testid="hot-issue"' not in client.get(f"/tickets/{lone.number}").get_data(
        as_text=True
    )


def test_roles_without_the_hot_issue_pages_do_not_get_the_link(client, web_login, issues):
    _, _, tickets, _ = issues
    web_login(client, "operator")
    page = client.get(f"/tickets/{tickets[0].number}")
    assert page.status_code == 200
    assert 'data-testid="hot-issue"' not in page.get_data(as_text=True)


def test_callers_personal_data_is_hidden_from_leaders_and_administrators(
    client, web_login, api, issues, db
):
    from hotline.privacy import PHONE_REMOVED

    noise, _, tickets, _ = issues
    tickets[0].title = "搅拌站噪音 联系我13905361234"
    tickets[0].result = "已联系来电人 13905361234，施工已停止"
    db.flush()
    for username in ("leader", "admin"):
        body = api(username).get(f"/hotspots/{noise.id}").get_json()["data"]
        first = next(t for t in body["tickets"] if t["id"] == tickets[0].id)
        assert first["title"] == f"搅拌站噪音 联系我{PHONE_REMOVED}"
        assert "13905361234" not in first["result"] and PHONE_REMOVED in first["result"]
        web_login(client, username)
        page = client.get(f"/hotspots/{noise.id}").get_data(as_text=True)
        assert "13905361234" not in page and PHONE_REMOVED in page
    # Who calls requesters back sees their words as written.
    for username in ("supervisor", "dispatcher"):
        body = api(username).get(f"/hotspots/{noise.id}").get_json()["data"]
        first = next(t for t in body["tickets"] if t["id"] == tickets[0].id)
        assert first["title"] == "搅拌站噪音 联系我13905361234"


def test_the_page_and_api_list_the_newest_tickets_with_the_total(
    client, web_login, api, issues, monkeypatch
):
    from dashboards import hotspots

    noise, _, tickets, _ = issues
    monkeypatch.setattr(hotspots, "TICKETS_SHOWN", 2)
    body = api("supervisor").get(f"/hotspots/{noise.id}").get_json()["data"]
    assert [t["number"] for t in body["tickets"]] == [t.number for t in tickets[-2:]]
    assert body["tickets_total"] == 4
    assert sum(d["count"] for d in body["timeline"]["days"]) == 4  # the timeline: all of them
    # Moments carry their local date: the first call, 21:00 UTC on the 19th, is the 20th in
    # the city (TIMEZONE Asia/Shanghai).
    first = body["timeline"]["moments"][0]
    assert first["at"].startswith("2026-11-19T21:00")
    assert first["label"] == "首件工单" and first["day"] == "2026-11-20"
    web_login(client, "supervisor")
    page = client.get(f"/hotspots/{noise.id}").get_data(as_text=True)
    assert "列出最新的 2 件，共 4 件" in page
    assert f'data-ticket="{tickets[0].number}"' not in page
    assert f'data-ticket="{tickets[-1].number}"' in page
