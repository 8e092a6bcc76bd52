"""The 预警 pages and the JSON API (/api/v1/warnings): who sees which warnings, the
evidence tickets, the filters, acknowledging once (form with CSRF, and JSON)."""

import pytest

from dashboards import warnings
from tests.dashboards.test_warnings import MIN, POWER, local


@pytest.fixture
def raised(db, user, make_ticket):
    """Two sudden events on Monday 16 November 2026 at 19:30: 中学街社区 (奎文区) and
    曹家巷社区 (潍城区)."""
    operator = user("operator")
    for community in ("370705001001", "370702001001"):
        for i in range(5):
            make_ticket(
                operator,
                category=POWER,
                area=community,
                title="小区大面积停电",
                content=f"市民来电反映，小区从晚上七点开始停电，电梯也停了（{i + 1}）。",
                requester_phone=f"1390536{i:04d}",
                now=local(11, 16, 19) + i * 5 * MIN,
            )
    weicheng, kuiwen = warnings.run(db, local(11, 16, 19, 30)).raised
    db.flush()
    return {"kuiwen": kuiwen, "weicheng": weicheng}


def page(client, path):
    response = client.get(path)
    return response.status_code, response.get_data(as_text=True)


def test_supervisor_lists_opens_and_acknowledges(client, web_login, form_token, raised):
    web_login(client, "supervisor")
    status, html = page(client, "/warnings")
    assert status == 200
    assert 'href="/warnings"' in html  # the header menu
    assert "待确认 2 条" in html
    kuiwen = raised["kuiwen"]
    assert kuiwen.title in html and raised["weicheng"].title in html
    status, html = page(client, f"/warnings/{kuiwen.id}")
    assert status == 200
    assert "确认预警" in html and "证据工单（5 件）" in html
    assert html.count('href="/tickets/') == 5
    path = f"/warnings/{kuiwen.id}"
    token = form_token(client, path)
    done = client.post(
        f"{path}/acknowledge", data={"csrf_token": token, "note": "已通知供电公司抢修"}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(path)
    status, html = page(client, path)
    assert "已确认：郑国栋于" in html and "已通知供电公司抢修" in html
    assert "确认预警</button>" not in html
    # Again (a second tab): refused with the reason, nothing changes.
    again = client.post(f"{path}/acknowledge", data={"csrf_token": token})
    assert again.status_code == 409
    assert "无需重复确认" in again.get_data(as_text=True)
    # Without the CSRF token: refused.
    other = raised["weicheng"].id
    assert client.post(f"/warnings/{other}/acknowledge", data={}).status_code == 400
    status, html = page(client, "/warnings?state=open")
    assert raised["weicheng"].title in html and kuiwen.title not in html


def test_district_leader_sees_only_their_district(client, web_login, raised):
    web_login(client, "kuiwen-leader")
    status, html = page(client, "/warnings")
    assert status == 200
    assert raised["kuiwen"].title in html and raised["weicheng"].title not in html
    # Asking for another district does not widen the scope.
    status, html = page(client, "/warnings?district=370702")
    assert raised["weicheng"].title not in html
    assert page(client, f"/warnings/{raised['weicheng'].id}")[0] == 404
    assert page(client, f"/warnings/{raised['kuiwen'].id}")[0] == 200


@pytest.mark.parametrize("username", ["dispatcher", "admin"])
def test_dispatchers_and_administrators_read_only(client, web_login, form_token, raised, username):
    web_login(client, username)
    path = f"/warnings/{raised['kuiwen'].id}"
    status, html = page(client, path)
    assert status == 200 and "证据工单" in html and "确认预警</button>" not in html
    token = form_token(client, "/warnings")  # the header's forms carry the token too
    refused = client.post(f"{path}/acknowledge", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "只有督办审核员和领导可以确认预警" in refused.get_data(as_text=True)


def test_other_roles_are_refused(client, web_login, raised):
    web_login(client, "operator")
    assert client.get("/warnings").status_code == 403


def test_bad_filters_are_named(client, web_login, raised):
    web_login(client, "supervisor")
    status, html = page(client, "/warnings?kind=flood&from=2026-13-01")
    assert status == 422
    assert "surge" in html and "YYYY-MM-DD" in html


def test_api(api, raised):
    supervisor = api("supervisor")
    listed = supervisor.get("/warnings?kind=sudden&state=open").get_json()["data"]
    assert listed["total"] == 2
    first = listed["warnings"][0]
    assert first["kind"] == {"value": "sudden", "label": "突发事件"}
    assert first["level"] == "red" and first["may_acknowledge"] is True
    assert first["ticket_count"] == 5 and first["observed"] == 5
    kuiwen = raised["kuiwen"].id
    one = supervisor.get(f"/warnings/{kuiwen}").get_json()["data"]
    assert one["district"] == {"code": "370705", "name": "奎文区"}
    assert [t["openable"] for t in one["tickets"]] == [True] * 5
    bad = supervisor.get("/warnings?kind=flood&per_page=0").get_json()
    assert bad["error"]["code"] == "VALIDATION_FAILED"
    assert set(bad["error"]["details"]) == {"kind", "per_page"}
    # District leaders: their district's only.
    leader = api("kuiwen-leader")
    assert leader.get("/warnings").get_json()["data"]["total"] == 1
    hidden = leader.get(f"/warnings/{raised['weicheng'].id}")
    assert hidden.status_code == 404 and hidden.get_json()["error"]["code"] == "WARNING_NOT_FOUND"
    # Dispatchers read, do not acknowledge; operators do not read.
    refused = api("dispatcher").post(f"/warnings/{kuiwen}/acknowledge", json={})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "WARNING_ACK_FORBIDDEN"
    assert api("operator").get("/warnings").status_code == 403
    done = leader.post(f"/warnings/{kuiwen}/acknowledge", json={"note": "已到场处置"})
    assert done.status_code == 200
    body = done.get_json()["data"]
    assert body["state"]["value"] == "acknowledged"
    assert body["acknowledged"]["by"] == "孙志刚" and body["acknowledged"]["note"] == "已到场处置"
    again = supervisor.post(f"/warnings/{kuiwen}/acknowledge")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "WARNING_ALREADY_ACKNOWLEDGED"
    # The body is checked before the state: an unknown field is named.
    unknown = supervisor.post(f"/warnings/{kuiwen}/acknowledge", json={"remark": "x"})
    assert unknown.status_code == 422
    assert unknown.get_json()["error"]["details"] == {"remark": "未知字段“remark”"}


@pytest.fixture
def spanning(db, user, make_ticket):
    """A sudden event placed by its text (丽发新城) with 3 calls from 潍城区 and 2 from 奎文区:
    its district is 潍城区, the most common."""
    texts = [
        (
            "370702001",
            "丽发新城燃气味很大",
            "丽发新城3号楼楼道里燃气味很浓，请马上来看看。",
        ),
        ("370705001", "燃气泄漏", "丽发新城2号楼楼下一直有很浓的煤气味，已经打开窗户了。"),
        ("370702001", "丽发新城闻到燃气味", "丽发新城小区东门附近闻到刺鼻的燃气味。"),
        ("370705001", "煤气味", "丽发新城5号楼有煤气味，老人孩子不敢在家，请尽快处理。"),
        ("370702001", "丽发新城疑似燃气泄漏", "丽发新城靠近幼儿园的那栋楼燃气味很重。"),
    ]
    for i, (area, title, content) in enumerate(texts):
        make_ticket(
            user("operator"),
            category="010401",
            area=area,
            address=None,
            title=title,
            content=content,
            requester_phone=f"1360536{i:04d}",
            now=local(11, 16, 21) + i * 6 * MIN,
        )
    (warning,) = warnings.run(db, local(11, 16, 21, 30)).raised
    assert warning.district.code == "370702" and warning.area_id is None
    db.flush()
    return warning


def test_a_district_leader_sees_a_spanning_warning_with_their_evidence_only(
    client, web_login, api, spanning
):
    web_login(client, "kuiwen-leader")
    status, html = page(client, "/warnings")
    assert status == 200 and spanning.title in html and "待确认 1 条" in html
    status, html = page(client, f"/warnings/{spanning.id}")
    assert status == 200
    assert "证据工单（2 件）" in html and "另有 3 件证据工单在您的管辖范围之外" in html
    assert "燃气泄漏" in html and "煤气味" in html
    assert "丽发新城燃气味很大" not in html and "城关街道" not in html
    assert "确认预警</button>" not in html  # 潍城区's warning: its leaders acknowledge
    leader = api("kuiwen-leader")
    assert leader.get("/warnings").get_json()["data"]["total"] == 1
    one = leader.get(f"/warnings/{spanning.id}").get_json()["data"]
    assert [t["title"] for t in one["tickets"]] == ["燃气泄漏", "煤气味"]
    assert one["tickets_hidden"] == 3 and one["may_acknowledge"] is False
    refused = leader.post(f"/warnings/{spanning.id}/acknowledge", json={})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "WARNING_NOT_IN_SCOPE"
    # The city sees all five.
    everything = api("supervisor").get(f"/warnings/{spanning.id}").get_json()["data"]
    assert len(everything["tickets"]) == 5 and everything["tickets_hidden"] == 0


@pytest.mark.parametrize(
    ("username", "masked"),
    [("supervisor", False), ("dispatcher", False), ("leader", True), ("admin", True)],
)
def test_evidence_titles_lose_personal_data_for_readers_who_do_not_call(
    db, api, raised, username, masked
):
    from hotline.models import Ticket

    kuiwen = raised["kuiwen"]
    ticket = db.get(Ticket, kuiwen.ticket_ids[0])
    ticket.title = "停电请回电13805361234，身份证370705198001011234"
    db.flush()
    one = api(username).get(f"/warnings/{kuiwen.id}").get_json()["data"]
    (title,) = [t["title"] for t in one["tickets"] if t["number"] == ticket.number]
    if masked:
        assert "13805361234" not in title and "370705198001011234" not in title
        assert title.startswith("停电请回电")
    else:
        assert title == ticket.title
