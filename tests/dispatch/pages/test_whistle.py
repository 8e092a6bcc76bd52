"""吹哨报到's pages (dispatch/pages/whistle.py): the street's 吹哨 form on the ticket page, a
refused form keeping what was typed, the summoned department's inbox group, 报到 and opinion
with a photo, scope, the supervisors' list and the settings page."""

import io

import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import whistle
from hotline import settings
from hotline.models import Attachment, Category, Summons, Unit

DONGGUAN = "U-S-370705001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def signed(db, user, make_ticket):
    ticket = make_ticket(user("operator"), title="商铺占道经营堵塞通道")
    category = db.scalars(sa.select(Category).where(Category.code == "010103")).one()
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), category=category)
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    return ticket


def form_post(client, form_token, ticket, slug, data, **kwargs):
    token = form_token(client, "/inbox")
    body = {"csrf_token": token, "version": ticket.version, **data}
    return client.post(f"/tickets/{ticket.number}/whistle/{slug}", data=body, **kwargs)


def test_street_blows_the_whistle_from_the_ticket_page(
    client, db, user, make_ticket, web_login, form_token
):
    ticket = signed(db, user, make_ticket)
    web_login(client, "dongguan")
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "<h3>吹哨</h3>" in html
    assert "市城市管理局" in html and 'value="U-CGJ"' in html
    assert 'name="units" value="U-S-370705001"' not in html  # streets are not summoned

    # Refused (no department): the page says why and keeps the reason typed.
    response = form_post(client, form_token, ticket, "whistle", {"reason": "占道严重"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "请选择被吹哨的部门" in html and "占道严重" in html

    response = form_post(
        client, form_token, ticket, "whistle", {"units": ["U-CGJ", "U-WATER"], "reason": "占道严重"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.expire_all()
    assert (
        db.scalar(
            sa.select(sa.func.count()).select_from(Summons).where(Summons.ticket_id == ticket.id)
        )
        == 2
    )
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "待报到" in html and "撤回" in html
    assert "向潍坊市城市管理局吹哨" in html  # the history's sentence


def test_summoned_department_reports_and_gives_opinion(
    client, db, user, make_ticket, web_login, form_token
):
    ticket = signed(db, user, make_ticket)
    whistle.whistle(db, user("dongguan"), ticket, units=[unit(db, "U-CGJ")], reason="占道严重")
    db.flush()
    web_login(client, "water")
    assert client.get(f"/tickets/{ticket.number}").status_code == 403
    web_login(client, "cgj")
    inbox = client.get("/inbox").get_data(as_text=True)
    section = inbox[inbox.index('<section id="whistle">') :]
    assert ticket.number in section and "被吹哨" in section
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "<h3>报到</h3>" in html and "<h3>吹哨</h3>" not in html

    assert form_post(client, form_token, ticket, "summons-report", {}).status_code == 302
    db.expire_all()
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "<h3>反馈处理意见</h3>" in html
    response = form_post(
        client,
        form_token,
        ticket,
        "summons-opinion",
        {"opinion": "执法中队已到场清理", "photos": [(io.BytesIO(PNG), "现场.png")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.expire_all()
    summons = db.scalars(sa.select(Summons).where(Summons.ticket_id == ticket.id)).one()
    assert summons.opinion == "执法中队已到场清理"
    photo = db.scalars(sa.select(Attachment).where(Attachment.ticket_id == ticket.id)).one()
    assert photo.purpose == "opinion"
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "已反馈" in html and "执法中队已到场清理" in html


def test_supervisors_list_and_settings(client, db, user, make_ticket, web_login, form_token):
    ticket = signed(db, user, make_ticket)
    whistle.whistle(db, user("dongguan"), ticket, units=[unit(db, "U-CGJ")], reason="占道严重")
    db.flush()
    web_login(client, "dongguan")
    assert client.get("/whistle").status_code == 403
    web_login(client, "supervisor")
    html = client.get("/whistle").get_data(as_text=True)
    assert ticket.number in html and "市城市管理局" in html
    assert client.get("/whistle?which=late").status_code == 200

    web_login(client, "admin")
    html = client.get("/admin/whistle-settings").get_data(as_text=True)
    assert "报到时限（小时）" in html
    token = form_token(client, "/admin/whistle-settings")
    response = client.post(
        "/admin/whistle-settings",
        data={
            "csrf_token": token,
            "report_hours": "2",
            "opinion_hours": "48",
            "escalate_hours": "24",
        },
    )
    assert response.status_code == 302
    assert settings.get(db, "whistle.report_hours") == 2
    response = client.post(
        "/admin/whistle-settings",
        data={
            "csrf_token": token,
            "report_hours": "0",
            "opinion_hours": "48",
            "escalate_hours": "24",
        },
    )
    assert response.status_code == 422
    assert settings.get(db, "whistle.report_hours") == 2


def test_inbox_lists_open_summonses_and_assists_not_ended_summonses(
    client, db, user, make_ticket, web_login, monkeypatch
):
    from dispatch.pages import desk

    water = unit(db, "U-WATER")
    # An older ticket whose summons of the water company was withdrawn: no work left there.
    ended = signed(db, user, make_ticket)
    whistle.whistle(db, user("dongguan"), ended, units=[water], reason="需供水配合")
    whistle.withdraw_summons(db, user("dongguan"), ended, unit=water, reason="已自行处理")
    # A newer one where the water company assists and is summoned as well.
    both = make_ticket(user("operator"), title="供水管道破裂路面塌陷")
    category = db.scalars(sa.select(Category).where(Category.code == "010103")).one()
    ops.dispatch(
        db, user("dispatcher"), both, lead=unit(db, DONGGUAN), assists=[water], category=category
    )
    ops.sign(db, user("dongguan"), both)
    whistle.whistle(db, user("dongguan"), both, units=[water], reason="需供水抢修")
    db.flush()
    # Room for one ticket: the ended summons must not take it.
    monkeypatch.setattr(desk, "INBOX_LIMIT", 1)
    web_login(client, "water")
    html = client.get("/inbox").get_data(as_text=True)
    assert "工单过多" not in html
    assert ended.number not in html
    summoned = html[html.index('<section id="whistle">') :]
    assert both.number in summoned
    assisting = html[: html.index('<section id="whistle">')]
    assert both.number in assisting  # its 协办 row too


def test_leaders_list_shows_their_district_only(client, db, user, make_ticket, web_login):
    category = db.scalars(sa.select(Category).where(Category.code == "010103")).one()
    mine = make_ticket(user("operator"), title="东关街道占道经营", area="370705001")
    elsewhere = make_ticket(user("operator"), title="潍城区路灯不亮", area="370702001")
    for ticket in (mine, elsewhere):
        ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), category=category)
        ops.sign(db, user("dongguan"), ticket)
    for ticket in (mine, elsewhere):
        whistle.whistle(db, user("dongguan"), ticket, units=[unit(db, "U-CGJ")], reason="占道")
    db.flush()
    web_login(client, "kuiwen-leader")
    html = client.get("/whistle?which=all").get_data(as_text=True)
    assert mine.number in html and elsewhere.number not in html
    web_login(client, "supervisor")
    html = client.get("/whistle?which=all").get_data(as_text=True)
    assert mine.number in html and elsewhere.number in html


def test_settings_refuse_a_report_limit_longer_than_the_opinion_limit(
    client, db, web_login, form_token
):
    web_login(client, "admin")
    token = form_token(client, "/admin/whistle-settings")
    response = client.post(
        "/admin/whistle-settings",
        data={
            "csrf_token": token,
            "report_hours": "48",
            "opinion_hours": "24",
            "escalate_hours": "24",
        },
    )
    assert response.status_code == 422
    assert "报到时限（48 小时）不能长于反馈时限（24 小时）" in response.get_data(as_text=True)
    assert settings.get(db, "whistle.report_hours") == 1


def test_deactivation_preview_counts_open_summonses(client, db, user, make_ticket, web_login):
    ticket = signed(db, user, make_ticket)
    whistle.whistle(db, user("dongguan"), ticket, units=[unit(db, "U-CGJ")], reason="占道")
    db.flush()
    web_login(client, "admin")
    html = client.get("/admin/units/U-CGJ/deactivate").get_data(as_text=True)
    assert 'data-testid="open-summonses">该单位被吹哨、尚未反馈的吹哨报到有 1 项' in html
