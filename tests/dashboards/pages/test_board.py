"""The live board pages: who sees which board, the server-rendered first snapshot, escaping,
and the allow-listed front-end files from node_modules."""

import json
import re

import pytest

from dashboards.pages.board import NODE_MODULES, VENDOR_FILES
from hotline.enums import Channel


def shown(html, name):
    match = re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', html)
    assert match, f"no {name} on the page"
    return match.group(1)


@pytest.fixture
def tickets(db, user, make_ticket):
    operator = user("operator")
    kuiwen = make_ticket(operator, area="370705001")
    weicheng = make_ticket(
        operator,
        area="370702001",
        channel=Channel.web,
        title="<script>alert(1)</script>请回电13805367788",
    )
    db.flush()
    return kuiwen, weicheng


def test_board_needs_login_and_a_board_role(client, web_login):
    response = client.get("/boards")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    web_login(client, "operator")
    assert client.get("/boards").status_code == 403
    assert client.get("/boards/district/370705").status_code == 403


@pytest.mark.parametrize("username", ["leader", "dispatcher", "supervisor", "admin"])
def test_city_board_for_city_roles(client, tickets, username, web_login):
    web_login(client, username)
    response = client.get("/boards")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "全市实时大屏" in html
    assert shown(html, "intake-today") == "2"
    for ticket in tickets:
        assert f'data-ticket="{ticket.number}"' in html
        assert f'<a class="title" href="/tickets/{ticket.number}">' in html  # opens the ticket
    assert shown(html, "status").startswith("未连接")  # board.js says 实时连接中 once live
    # Every district is one click away.
    assert 'href="/boards/district/370705"' in html


def test_district_leader_lands_on_their_district(client, tickets, web_login):
    kuiwen, weicheng = tickets
    web_login(client, "kuiwen-leader")
    response = client.get("/boards")
    assert response.status_code == 302
    assert response.headers["Location"] == "/boards/district/370705"
    html = client.get("/boards/district/370705").get_data(as_text=True)
    assert "奎文区实时大屏" in html
    assert shown(html, "intake-today") == "1"
    assert f'data-ticket="{kuiwen.number}"' in html
    assert weicheng.number not in html
    # No links to boards they may not watch.
    assert 'href="/boards/district/370702"' not in html


def test_district_leader_refused_other_district(client, web_login):
    web_login(client, "kuiwen-leader")
    response = client.get("/boards/district/370702")
    assert response.status_code == 403
    assert "无权访问" in response.get_data(as_text=True)


def test_unknown_district_is_404(client, web_login):
    web_login(client, "leader")
    assert client.get("/boards/district/999999").status_code == 404
    assert client.get("/boards/district/37070").status_code == 404
    assert client.get("/boards/district/370705001").status_code == 404  # a street


def test_user_text_is_escaped_and_phones_masked(client, tickets, web_login):
    web_login(client, "leader")
    html = client.get("/boards/district/370702").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;请回电138****7788" in html
    assert "13805367788" not in html
    # The embedded snapshot is JSON that cannot close its script element.
    embedded = re.search(
        r'<script type="application/json" id="snapshot-data">(.*?)</script>', html, re.S
    ).group(1)
    assert "<" not in embedded
    snapshot = json.loads(embedded)
    assert snapshot["room"] == "district:370702"
    assert snapshot["today"]["received"] == 1


def test_page_loads_scripts_from_this_site_only(client, web_login):
    web_login(client, "leader")
    html = client.get("/boards").get_data(as_text=True)
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources == [
        "/static/picker.js",  # every page's searchable selects (base.html)
        "/vendor/socket.io.min.js",
        "/vendor/echarts.min.js",
        "/boards/static/board.js",
        # The header's message centre (the leader reads the mayor's office's inbox).
        "/boards/static/inbox_live.js",
        "/static/messages.js",
    ]
    assert client.get("/boards/static/board.js").status_code == 200
    assert client.get("/boards/static/board.css").status_code == 200


@pytest.mark.skipif(
    not (NODE_MODULES / "echarts").is_dir(),
    reason="front-end assets not installed: run make assets",
)
def test_vendor_files_come_from_node_modules(client):
    for name, relative in VENDOR_FILES.items():
        response = client.get(f"/vendor/{name}")
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
        assert response.data == (NODE_MODULES / relative).read_bytes()
    lock = json.loads((NODE_MODULES.parent / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/echarts"]["version"] == "6.1.0"
    # The client speaks the Socket.IO protocol of python-socketio 5 (JS client 4.x).
    assert lock["packages"]["node_modules/socket.io-client"]["version"].startswith("4.")


@pytest.mark.parametrize(
    "name", ["package.json", "..%2Fpackage.json", "echarts.js", "socket.io.js.map"]
)
def test_only_allow_listed_vendor_files(client, name):
    assert client.get(f"/vendor/{name}").status_code == 404
