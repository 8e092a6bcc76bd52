"""The message centre (hotline/pages.py, base.html): the bell in every page's header counts
the user's own inbox (``notify.inbox_unit_of``), the full list at /messages pages through it,
and marking read (one, all) is a CSRF-checked form that touches nothing of other units."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from hotline.models import Notification, Unit
from hotline.notify import Message, deliver
from tests.helpers import FORM_TOKEN

NOW = dt.datetime(2026, 11, 16, 4, 0, tzinfo=dt.UTC)
DONGGUAN = "U-S-370705001"


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def put(db, code, n, *, level="yellow", ticket=None):
    """``n`` items in ``code``'s inbox, a minute apart; returns them, oldest first."""
    target = unit(db, code)
    for i in range(n):
        deliver(
            db,
            [
                Message(
                    unit_id=target.id,
                    unit_code=code,
                    kind="finish_warning",
                    level=level,
                    title=f"【办结预警】{code} 第 {i + 1} 条",
                    body="办结时限已用去 80%，请尽快办结。",
                    ticket_id=ticket.id if ticket else None,
                    ticket_number=ticket.number if ticket else None,
                )
            ],
            NOW + dt.timedelta(minutes=i),
        )
    db.flush()
    return db.scalars(
        sa.select(Notification).where(Notification.unit_id == target.id).order_by(Notification.id)
    ).all()


def bell(html):
    """The header's unread count as shown (None: no message centre on the page)."""
    if 'id="message-centre"' not in html:
        return None
    match = re.search(r'data-testid="unread-count"( hidden)?>([^<]*)<', html)
    return 0 if match.group(1) else match.group(2)


def unread(db, code):
    db.expire_all()
    return db.scalar(
        sa.select(sa.func.count()).where(
            Notification.unit_id == unit(db, code).id, Notification.read_at.is_(None)
        )
    )


# -- the bell in the header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "path", "code"),
    [
        ("dongguan", "/inbox", DONGGUAN),
        ("grid", "/grid", DONGGUAN),
        ("supervisor", "/supervision", "U-HOTLINE"),
        ("operator", "/console", "U-HOTLINE"),
        ("leader", "/boards", "U-SZFB"),
    ],
)
def test_every_page_shows_the_own_inboxs_unread_count(client, db, web_login, username, path, code):
    put(db, code, 3)
    put(db, "U-CGJ", 5)
    web_login(client, username)
    html = client.get(path).get_data(as_text=True)
    assert bell(html) == "3"
    # The centre names its unit, never by code alone.
    assert f"消息中心：{unit(db, code).name}" in html
    assert "/static/messages.js" in html and "/boards/static/inbox_live.js" in html


def test_the_count_says_99_plus_beyond_99(client, db, web_login):
    put(db, DONGGUAN, 100)
    web_login(client, "dongguan")
    assert bell(client.get("/inbox").get_data(as_text=True)) == "99+"


def test_no_unread_hides_the_count(client, web_login):
    web_login(client, "cgj")
    assert bell(client.get("/inbox").get_data(as_text=True)) == 0


def test_an_administrator_has_no_centre(client, web_login):
    web_login(client, "admin")
    html = client.get("/boards").get_data(as_text=True)
    assert "退出" in html
    assert bell(html) is None
    assert "messages.js" not in html


def test_login_and_error_pages_are_chinese_without_a_centre(client, web_login):
    login = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in login
    assert "login-card" in login and bell(login) is None
    web_login(client, "dongguan")
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert '<html lang="zh-CN">' in missing.get_data(as_text=True)


# -- the full list -----------------------------------------------------------------------------


def test_the_list_shows_only_the_own_units_items_newest_first(
    client, db, web_login, make_ticket, user
):
    ticket = make_ticket(user("operator"))
    put(db, DONGGUAN, 2, level="red", ticket=ticket)
    put(db, "U-CGJ", 1)
    web_login(client, "dongguan")
    html = client.get("/messages").get_data(as_text=True)
    titles = re.findall(r"<strong>(【办结预警】[^<]*)</strong>", html)
    assert titles == [f"【办结预警】{DONGGUAN} 第 2 条", f"【办结预警】{DONGGUAN} 第 1 条"]
    assert unit(db, DONGGUAN).name in html
    assert html.count(f'<a href="/tickets/{ticket.number}">{ticket.number}</a>') == 2
    assert html.count('class="level-badge level-red">红色超时<') == 2
    assert "2026-11-16 12:01" in html  # local time (UTC+8)


def test_the_list_pages_and_filters(client, db, web_login):
    items = put(db, DONGGUAN, 25)
    put(db, DONGGUAN, 1, level="red")
    web_login(client, "dongguan")
    first = client.get("/messages").get_data(as_text=True)
    assert first.count('<tr class="unread"') == 20
    assert "第 1 / 2 页，共 26 条" in first
    second = client.get("/messages?page=2").get_data(as_text=True)
    assert second.count('<tr class="unread"') == 6
    assert f'data-id="{items[0].id}"' in second
    red = client.get("/messages?level=red").get_data(as_text=True)
    assert red.count('<tr class="unread"') == 1
    bad = client.get("/messages?level=purple")
    assert bad.status_code == 422
    assert "级别应为" in bad.get_data(as_text=True)


def test_admin_is_told_there_is_no_own_inbox(client, web_login):
    web_login(client, "admin")
    html = client.get("/messages").get_data(as_text=True)
    assert "没有本单位的消息" in html


# -- marking read -----------------------------------------------------------------------------


def test_marking_one_read_needs_the_form_token_and_the_own_unit(client, db, web_login):
    mine = put(db, DONGGUAN, 2)
    theirs = put(db, "U-CGJ", 1)
    web_login(client, "dongguan")
    token = FORM_TOKEN.search(client.get("/messages").get_data(as_text=True)).group(1)

    forged = client.post(f"/messages/{mine[0].id}/read")
    assert forged.status_code == 400
    assert unread(db, DONGGUAN) == 2

    other = client.post(f"/messages/{theirs[0].id}/read", data={"csrf_token": token})
    assert other.status_code == 403
    assert "只能处理本单位的消息" in other.get_data(as_text=True)
    assert unread(db, "U-CGJ") == 1

    done = client.post(
        f"/messages/{mine[0].id}/read", data={"csrf_token": token, "next": "/messages?page=1"}
    )
    assert done.status_code == 302 and done.headers["Location"] == "/messages?page=1"
    assert unread(db, DONGGUAN) == 1
    assert bell(client.get("/inbox").get_data(as_text=True)) == "1"
    # Off-site ``next`` is ignored.
    again = client.post(
        f"/messages/{mine[0].id}/read", data={"csrf_token": token, "next": "//evil.example"}
    )
    assert again.headers["Location"] == "/messages"


def test_mark_all_read_stops_at_the_newest_item_shown(client, db, web_login):
    put(db, DONGGUAN, 3)
    put(db, "U-CGJ", 2)
    web_login(client, "dongguan")
    page = client.get("/messages").get_data(as_text=True)
    token = FORM_TOKEN.search(page).group(1)
    up_to = re.search(r'name="up_to" value="(\d+)"', page).group(1)
    late = put(db, DONGGUAN, 1)[-1]  # arrives after the page was drawn

    assert client.post("/messages/read-all", data={"up_to": up_to}).status_code == 400
    assert unread(db, DONGGUAN) == 4

    done = client.post("/messages/read-all", data={"csrf_token": token, "up_to": up_to})
    assert done.status_code == 302
    assert unread(db, DONGGUAN) == 1
    assert db.get(Notification, late.id).read_at is None
    assert unread(db, "U-CGJ") == 2
    assert "已将 3 条消息标为已读" in client.get("/messages").get_data(as_text=True)

    bad = client.post("/messages/read-all", data={"csrf_token": token, "up_to": "x"})
    assert bad.status_code == 422
    assert unread(db, DONGGUAN) == 1


def test_an_early_warning_is_badged_by_its_kind_not_as_overdue(client, db, web_login, api):
    """A sudden event is red like an overdue ticket, but its badge says 突发事件 (a surge's
    诉求激增), in the list and in the header's centre alike."""
    centre = unit(db, "U-HOTLINE")
    for kind, level, title in [
        ("warning.sudden", "red", "【突发事件预警】中学街社区突发"),
        ("warning.surge", "yellow", "【诉求激增预警】东关街道供水类诉求激增"),
        ("sign_overdue", "red", "【签收超时】一件工单"),
    ]:
        deliver(
            db,
            [
                Message(
                    unit_id=centre.id,
                    unit_code=centre.code,
                    kind=kind,
                    level=level,
                    title=title,
                    body="…",
                )
            ],
            NOW,
        )
    db.flush()
    web_login(client, "supervisor")
    html = client.get("/messages").get_data(as_text=True)
    assert html.count('class="level-badge level-red">突发事件<') == 1
    assert html.count('class="level-badge level-yellow">诉求激增<') == 1
    assert html.count('class="level-badge level-red">红色超时<') == 1
    items = api("supervisor").get("/inbox/summary").get_json()["data"]["items"]
    assert [(i["kind"], i["badge"]) for i in items[:3]] == [
        ("sign_overdue", "红色超时"),
        ("warning.surge", "诉求激增"),
        ("warning.sudden", "突发事件"),
    ]
