"""The grid worker's pages: who may open them, what the lists show, and accept → check-in →
contact → finish, escalate and 主动发现 through the real forms (CSRF, versions, photos)."""

import io
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from classifier.geo import wgs84_to_gcj02
from dispatch import operations as ops
from hotline.enums import Channel
from hotline.models import Attachment, Ticket, TicketEvent
from tests.dispatch.common import MY_GRID, OTHER_GRID
from tests.helpers import FORM_TOKEN


@pytest.fixture
def u(user):
    names = ["operator", "dispatcher", "dongguan", "grid", "callback", "supervisor", "cgj"]
    return SimpleNamespace(**{name: user(name) for name in names})


def events(db, ticket, action=None):
    query = sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    if action:
        query = query.where(TicketEvent.action == action)
    return db.scalars(query.order_by(TicketEvent.id)).all()


def text(response):
    return response.get_data(as_text=True)


def token_of(page):
    return FORM_TOKEN.search(text(page)).group(1)


def post_form(client, path, data, photos=()):
    """Post ``data`` (plus the CSRF token of the page at ``path``'s ticket) as a browser does."""
    body = dict(data)
    body["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    return client.post(path, data=body, content_type="multipart/form-data")


@pytest.fixture
def worker(client, web_login):
    assert web_login(client, "grid").status_code == 302
    return client


def ticket_path(ticket):
    return f"/grid/tickets/{ticket.number}"


def action(worker, ticket, name, data=None, photos=(), version=None):
    """Submit the ticket page's form ``name`` with the token and version the page holds."""
    page = worker.get(ticket_path(ticket))
    shown = re.search(r'name="version" value="(\d+)"', text(page))
    body = {
        "csrf_token": token_of(page),
        "version": version or (shown.group(1) if shown else ""),
        **(data or {}),
    }
    return post_form(worker, f"{ticket_path(ticket)}/{name}", body, photos)


# -- who may open the pages -----------------------------------------------------------------------


def test_anonymous_goes_to_login(client, db):
    for path in ("/grid", "/grid/report", "/grid/tickets/WF1"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("username", ["dongguan", "operator", "dispatcher", "supervisor"])
def test_other_roles_are_refused(client, db, u, username, dispatched, web_login):
    ticket = dispatched()
    web_login(client, username)
    for path in ("/grid", "/grid/report", ticket_path(ticket)):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "您无权访问此页面或工单" in text(response)


def test_grid_worker_lands_on_the_grid_page(client, db, web_login):
    response = web_login(client, "grid")
    assert response.headers["Location"] == "/grid"
    page = client.get("/grid")
    assert page.status_code == 200
    assert "网格工作台" in text(page)
    assert "待接单" in text(page) and "我的工单" in text(page) and "最近办结" in text(page)


# -- the lists ----------------------------------------------------------------------------------


def test_lists_show_only_my_grids_tickets(worker, db, u, accepted, dispatched, second_worker):
    waiting = dispatched(title="我的网格路灯不亮")
    mine = accepted(title="我已接的井盖")
    elsewhere = dispatched(grid=OTHER_GRID, title="别人网格的垃圾")
    other_unit = dispatched(lead="U-CGJ", title="城管局主办的事")
    taken = dispatched(title="同事已接的工单")
    ops.accept(db, second_worker(), taken)
    db.flush()

    page = text(worker.get("/grid"))
    waiting_part = page.split('id="waiting"')[1].split('id="mine"')[0]
    mine_part = page.split('id="mine"')[1].split('id="done"')[0]
    assert waiting.number in waiting_part and "我的网格路灯不亮" in waiting_part
    assert mine.number in mine_part and mine.number not in waiting_part
    for ticket in (elsewhere, other_unit, taken):
        assert ticket.number not in page
    assert "签收时限" in waiting_part and "剩余" in waiting_part  # the deadline in words

    assert worker.get(ticket_path(elsewhere)).status_code == 403
    assert worker.get(ticket_path(waiting)).status_code == 200
    assert worker.get("/grid/tickets/WF-NO-SUCH").status_code == 404


def test_overdue_tickets_say_so(worker, db, u, dispatched):
    ticket = dispatched()
    ticket.sign_due = ticket.clock_started_at  # already past
    db.flush()
    part = text(worker.get("/grid")).split('id="waiting"')[1].split('id="mine"')[0]
    assert "签收时限" in part and "已超时" in part


def test_ticket_page_shows_the_full_phone_and_escapes_content(worker, db, u, dispatched):
    ticket = dispatched(title="<b>粗体</b>", content="<script>alert('x')</script>路灯坏了")
    page = text(worker.get(ticket_path(ticket)))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;路灯坏了" in page
    assert "<b>粗体</b>" not in page and "&lt;b&gt;粗体&lt;/b&gt;" in page
    assert 'href="tel:13805360001"' in page  # grid workers call the requester
    listing = text(worker.get("/grid"))
    assert "&lt;b&gt;粗体&lt;/b&gt;" in listing and "<b>粗体</b>" not in listing


# -- accept → check-in → contact → finish -------------------------------------------------------


def test_accept_check_in_contact_finish_through_the_forms(worker, db, u, centre, dispatched, png):
    ticket = dispatched()
    response = action(worker, ticket, "accept")
    assert response.status_code == 303
    assert response.headers["Location"] == ticket_path(ticket)
    assert "已接单，并已代表本单位签收" in text(worker.get(ticket_path(ticket)))
    db.expire_all()
    assert (ticket.status.value, ticket.grid_worker_id) == ("signed", u.grid.id)

    lng, lat = centre()
    response = action(
        worker,
        ticket,
        "check-in",
        {"lng": f"{lng}", "lat": f"{lat}", "position_source": "manual", "note": "现场确认"},
        photos=[("site.png", png())],
    )
    assert response.status_code == 303, text(response)
    db.expire_all()
    (check_in,) = events(db, ticket, "check_in")
    assert check_in.payload["distance_m"] == 0.0
    assert check_in.reason == "现场确认"
    (photo,) = db.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert (photo.purpose, photo.event_id, photo.content_type) == ("site", check_in.id, "image/png")
    page = text(worker.get(ticket_path(ticket)))
    assert f"/attachments/{photo.id}" in page and "距网格 0 米" in page

    response = action(worker, ticket, "contact", {"note": "已电话联系王先生"})
    assert response.status_code == 303, text(response)
    response = action(
        worker, ticket, "finish", {"result": "已更换灯泡"}, photos=[("done.png", png(b"2"))]
    )
    assert response.status_code == 303, text(response)
    assert response.headers["Location"] == "/grid"
    db.expire_all()
    assert ticket.status.value == "finished" and ticket.result == "已更换灯泡"
    (finish,) = events(db, ticket, "finish")
    result_photo = db.scalars(
        sa.select(Attachment).where(
            Attachment.purpose == "result", Attachment.ticket_id == ticket.id
        )
    ).one()
    assert result_photo.event_id == finish.id
    done = text(worker.get("/grid")).split('id="done"')[1]
    assert ticket.number in done


def test_finish_before_check_in_re_renders_with_the_result_kept(worker, db, u, accepted):
    ticket = accepted(requester_phone=None)
    response = action(worker, ticket, "finish", {"result": "我写的办理结果"})
    assert response.status_code == 409
    page = text(response)
    assert "请先到现场核查（上传现场照片和定位）后再办结" in page
    assert "我写的办理结果" in page
    db.expire_all()
    assert ticket.status.value == "signed"


def test_a_text_file_named_png_is_refused_and_nothing_written(worker, db, u, accepted, centre):
    ticket = accepted()
    lng, lat = centre()
    version = ticket.version
    response = action(
        worker,
        ticket,
        "check-in",
        {"lng": f"{lng}", "lat": f"{lat}", "note": "说明保留"},
        photos=[("fake.png", b"just some text, not an image")],
    )
    assert response.status_code == 422
    page = text(response)
    assert "“fake.png”不是 JPEG、PNG 或 WebP 图片" in page
    assert "照片需重新选择" in page
    assert "说明保留" in page and f'value="{lng}"' in page
    db.expire_all()
    assert ticket.version == version
    assert events(db, ticket, "check_in") == []
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0


@pytest.mark.parametrize(
    "data,message",
    [
        ({"lng": "", "lat": ""}, "请提供现场定位（经度和纬度）"),
        ({"lng": "119.1", "lat": ""}, "经度和纬度须同时填写"),
        ({"lng": "东经119", "lat": "36.7"}, "经度须为数字"),
        ({"lng": "2.35", "lat": "48.85"}, "定位不在中国境内"),
    ],
)
def test_check_in_position_errors(worker, db, u, data, message, accepted, png):
    ticket = accepted()
    response = action(worker, ticket, "check-in", data, photos=[("site.png", png())])
    assert response.status_code == 422
    assert message in text(response)
    assert events(db, ticket, "check_in") == []


def test_check_in_without_photo_is_refused(worker, db, u, accepted, centre):
    ticket = accepted()
    lng, lat = centre()
    response = action(worker, ticket, "check-in", {"lng": f"{lng}", "lat": f"{lat}"})
    assert response.status_code == 422
    assert "请至少上传一张照片" in text(response)
    assert events(db, ticket, "check_in") == []


def test_device_position_is_converted_to_gcj02(worker, db, u, accepted, centre, png):
    ticket = accepted()
    lng, lat = centre()
    shifted = wgs84_to_gcj02(lng, lat)
    # The offset in Weifang is a few hundred metres…
    assert 0.001 < abs(shifted[0] - lng) + abs(shifted[1] - lat) < 0.02
    # …so the WGS-84 point a phone reports at the grid's centre is about centre - offset.
    wgs = (lng - (shifted[0] - lng), lat - (shifted[1] - lat))
    response = action(
        worker,
        ticket,
        "check-in",
        {"lng": f"{wgs[0]:.6f}", "lat": f"{wgs[1]:.6f}", "position_source": "device"},
        photos=[("site.png", png())],
    )
    assert response.status_code == 303, text(response)
    (event,) = events(db, ticket, "check_in")
    assert event.payload["distance_m"] == 0.0
    assert abs(event.payload["lng"] - lng) < 0.0001 and abs(event.payload["lat"] - lat) < 0.0001


def test_a_large_photo_passes_the_csrf_check(worker, db, u, app, accepted, centre, png):
    ticket = accepted()
    lng, lat = centre()
    big = png(b"\x00" * (app.config["MAX_CONTENT_LENGTH"] + 100_000))
    response = action(
        worker, ticket, "check-in", {"lng": f"{lng}", "lat": f"{lat}"}, photos=[("big.png", big)]
    )
    assert response.status_code == 303, text(response)


def test_a_double_tap_is_refused_by_the_version(worker, db, u, dispatched):
    ticket = dispatched()
    version = ticket.version
    assert action(worker, ticket, "accept", version=version).status_code == 303
    again = action(worker, ticket, "accept", version=version)
    assert again.status_code == 409
    assert "工单已被他人更新，请刷新后重试" in text(again)
    assert len(events(db, ticket, "accept")) == 1


def test_escalate_through_the_form(worker, db, u, accepted):
    ticket = accepted()
    missing = action(worker, ticket, "escalate", {"reason": ""})
    assert missing.status_code == 422 and "请填写上报原因" in text(missing)
    response = action(worker, ticket, "escalate", {"reason": "需供电公司处理"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/grid"
    db.expire_all()
    assert ticket.grid_worker_id is None
    assert ticket.number in text(worker.get("/grid")).split('id="waiting"')[1]


def test_a_form_without_csrf_token_is_refused(worker, db, u, dispatched):
    ticket = dispatched()
    response = worker.post(f"{ticket_path(ticket)}/accept", data={"version": ticket.version})
    assert response.status_code == 400
    db.expire_all()
    assert ticket.grid_worker_id is None


def test_unknown_action_is_not_found(worker, db, u, dispatched, form_token):
    ticket = dispatched()
    token = form_token(worker, ticket_path(ticket))
    response = worker.post(f"{ticket_path(ticket)}/sign", data={"csrf_token": token})
    assert response.status_code == 404


# -- 主动发现 -------------------------------------------------------------------------------------


def report_form(worker, **overrides):
    page = worker.get("/grid/report")
    assert page.status_code == 200
    key = re.search(r'name="key" value="([0-9a-f]+)"', text(page)).group(1)
    data = {
        "csrf_token": token_of(page),
        "key": key,
        "content": "巡查发现胜利东街人行道井盖缺失，存在安全隐患",
        "grid": MY_GRID,
        "address": "胜利东街 120 号门前",
        "category": "010102",
        "request_type": "help",
        "urgency": "urgent",
        "lng": "",
        "lat": "",
        "position_source": "manual",
        "title": "",
    }
    data.update(overrides)
    return data


def my_reports(db, u):
    return db.scalars(
        sa.select(Ticket).where(Ticket.created_by_id == u.grid.id).order_by(Ticket.id)
    ).all()


def test_report_form_offers_categories_by_name_in_a_searchable_picker(worker):
    page = text(worker.get("/grid/report"))
    assert '<select name="category" id="rp-category" data-picker="category">' in page
    assert '<option value="">不确定，由派单员判断</option>' in page
    assert '<optgroup label="城乡建设 › 市政设施" data-py="cxjs szss">' in page
    assert re.search(r'<option value="010102" data-py="jgqsps"[^>]*>井盖缺失破损</option>', page)
    assert "/static/picker.js" in page


def test_report_creates_one_ticket_with_a_photo_even_when_sent_twice(
    worker, db, u, png, ticket_count
):
    data = report_form(worker)
    before = ticket_count()
    first = post_form(worker, "/grid/report", data, [("report.png", png())])
    assert first.status_code == 303, text(first)
    (ticket,) = my_reports(db, u)
    assert first.headers["Location"] == ticket_path(ticket)
    assert ticket.channel == Channel.grid and ticket.status.value == "received"
    assert ticket.area.code == MY_GRID
    assert ticket.category.code == "010102" and ticket.urgency.value == "urgent"
    assert ticket.title.startswith("巡查发现胜利东街")
    (receive,) = events(db, ticket, "receive")
    (photo,) = db.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)).all()
    assert (photo.purpose, photo.event_id) == ("report", receive.id)

    second = post_form(worker, "/grid/report", data, [("report.png", png())])
    assert second.status_code == 303
    assert second.headers["Location"] == ticket_path(ticket)
    assert ticket_count() == before + 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 1
    assert "未重复创建" in text(worker.get(ticket_path(ticket)))


def test_report_finds_the_grid_from_the_position(worker, db, u, centre, png):
    lng, lat = centre("370705001001002")
    data = report_form(worker, grid="", lng=f"{lng}", lat=f"{lat}")
    response = post_form(worker, "/grid/report", data, [("r.png", png())])
    assert response.status_code == 303, text(response)
    (ticket,) = my_reports(db, u)
    assert ticket.area.code == "370705001001002"
    assert (ticket.lng, ticket.lat) == (lng, lat)


def test_report_outside_my_grids_keeps_what_was_typed(worker, db, u, centre, png):
    lng, lat = centre(OTHER_GRID)
    data = report_form(worker, grid="", lng=f"{lng}", lat=f"{lat}", content="我写的问题描述")
    response = post_form(worker, "/grid/report", data, [("r.png", png())])
    assert response.status_code == 422
    page = text(response)
    assert "定位不在您负责的网格内" in page
    assert "我写的问题描述" in page and data["key"] in page
    assert re.search(r'<option value="010102"[^>]* selected>井盖缺失破损</option>', page)
    assert my_reports(db, u) == []

    chosen = report_form(worker, grid=OTHER_GRID)
    response = post_form(worker, "/grid/report", chosen, [("r.png", png())])
    assert response.status_code == 422
    assert "只能上报本人负责网格内的问题" in text(response)


def test_report_needs_a_photo_and_content(worker, db, u, png):
    no_photo = post_form(worker, "/grid/report", report_form(worker))
    assert no_photo.status_code == 422
    assert "请至少上传一张照片" in text(no_photo)
    no_text = post_form(
        worker, "/grid/report", report_form(worker, content=" "), [("r.png", png())]
    )
    assert no_text.status_code == 422
    assert "请填写问题描述" in text(no_text)
    assert my_reports(db, u) == []


def test_reported_ticket_shows_in_my_list(worker, db, u, make_ticket):
    ticket = make_ticket(
        u.grid, channel=Channel.grid, area=MY_GRID, title="<i>自己上报</i>", category=None
    )
    page = text(worker.get("/grid")).split('id="reported"')[1]
    assert ticket.number in page and "&lt;i&gt;自己上报&lt;/i&gt;" in page


def test_events_are_not_written_for_refused_reports(worker, db, u, png):
    before = db.scalar(sa.select(sa.func.count()).select_from(TicketEvent))
    post_form(worker, "/grid/report", report_form(worker, grid="999"), [("r.png", png())])
    assert db.scalar(sa.select(sa.func.count()).select_from(TicketEvent)) == before


# -- 办结审核 and 协办反馈 on the worker's finish form -------------------------------------------

POOR = "您反映的问题已收悉。"


def test_the_finish_form_asks_why_assists_have_not_reported(worker, db, u, checked_in):
    ticket = checked_in(requester_phone=None, assists=("U-CGJ",))
    page = text(worker.get(ticket_path(ticket)))
    assert 'data-testid="assists-missing"' in page and 'name="assists_note"' in page
    refused = action(worker, ticket, "finish", {"result": "已更换灯泡，路灯恢复照明"})
    assert refused.status_code == 409
    assert 'name="assists_note"' in text(refused) and "已更换灯泡，路灯恢复照明" in text(refused)
    response = action(
        worker,
        ticket,
        "finish",
        {"result": "已更换灯泡，路灯恢复照明", "assists_note": "城管局未反馈，路灯已修好"},
    )
    assert response.status_code == 303, text(response)
    db.expire_all()
    (finish,) = events(db, ticket, "finish")
    assert finish.payload["assists_note"] == "城管局未反馈，路灯已修好"


def test_a_returned_reply_shows_the_reason_and_is_kept_to_mend(
    worker, db, u, checked_in, shipped_review_default
):
    ticket = checked_in(requester_phone=None)
    page = text(worker.get(ticket_path(ticket)))
    # The live check: the box, the script and the check's URL on the reply.
    assert 'id="reply-check"' in page and "reply_check.js" in page
    assert f'data-reply-check="/api/v1/tickets/{ticket.number}/reply-check"' in page
    ops.finish(db, u.grid, ticket, result=POOR)
    ops.return_reply(db, u.supervisor, ticket, reason="请说明路灯是否修好<b>")
    db.flush()
    page = text(worker.get(ticket_path(ticket)))
    assert 'data-testid="reply-returned"' in page
    assert "请说明路灯是否修好&lt;b&gt;" in page
    # The kept reply in the textarea is checked in Chromium on committed data
    # (tests/browser/test_reply_review.py): here the page's request holds the ticket as it
    # loaded it before the operations above ran in the test's own transaction.
