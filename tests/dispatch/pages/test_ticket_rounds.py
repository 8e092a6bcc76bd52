"""The ticket page after a reopen: every round keeps its units, deadlines, result and callback;
units by name (codes small beside); an assisting unit that never signed is not 承办中; system
events read as sentences."""

import datetime as dt

import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import timers
from hotline.enums import Satisfaction, Solved
from hotline.models import Unit
from tests.dispatch.common import DONGGUAN, local


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


def page(client, ticket):
    response = client.get(f"/tickets/{ticket.number}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def reopened(db, user, finished, answer):
    """A ticket finished ("路灯已修复"), called back unhappy and reopened Wednesday 10:00."""
    ticket = finished()
    answer(ticket, local(17, 15), solved=Solved.unsolved, satisfaction=Satisfaction.dissatisfied)
    ops.reopen(db, user("supervisor"), ticket, reason="路灯仍不亮", now=local(18, 10))
    db.flush()
    return ticket


def test_reopened_ticket_shows_both_rounds(client, db, user, finished, answer, web_login):
    ticket = reopened(db, user, finished, answer)
    web_login(client, "supervisor")
    html = page(client, ticket)
    assert 'id="rounds"' in html
    first = html[html.index('id="round-1"') : html.index('id="round-2"')]
    second = html[html.index('id="round-2"') :]
    # Round 1 keeps its result, callback and deadlines (done, in words).
    assert "路灯已修复" in first
    assert "不满意" in first and "未解决" in first
    assert "东关街道办事处" in first and "U-S-370705001" in first
    assert "办结 2026-11-23 09:00｜已按时完成" in first
    assert "签收 2026-11-16 11:00｜已按时完成" in first
    assert "已结束" in first
    # Round 2: the reopen's reason, a new clock, nothing done yet.
    assert "第 2 轮（当前）" in second and "重办理由：路灯仍不亮" in second
    assert "尚未办结" in second and "尚未回访" in second
    assert "待签收" in second
    assert "已重办 1 次" in html
    # The history tells the reopen as a sentence.
    assert "第 1 次重办，主办：东关街道办事处" in html


def test_a_single_round_has_no_rounds_section(client, db, user, finished, web_login):
    ticket = finished()
    web_login(client, "supervisor")
    assert 'id="rounds"' not in page(client, ticket)


def test_assisting_unit_that_never_signed_is_not_in_handling(
    client, db, user, make_ticket, web_login
):
    ticket = make_ticket(user("operator"), category="010103", area="370705001")
    ops.dispatch(
        db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), assists=[unit(db, "U-CGJ")]
    )
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    web_login(client, "dispatcher")
    html = page(client, ticket)
    table = html[html.index('id="assignments"') : html.index('id="history"')]
    assert "承办中" not in table
    assert "办理中" in table  # the lead, signed
    assert "待签收" in table  # the assisting 城管局, not signed
    assert "抄送（无需签收）" in table  # the district government
    assert "U-CGJ" in table


def test_timer_events_read_as_sentences(client, db, user, make_ticket, web_login):
    start = local(16, 9)
    ticket = make_ticket(user("operator"), category="010103", area="370705001", now=start)
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=start)
    db.flush()
    timers.tick(db, start + dt.timedelta(hours=2, minutes=1), timers.Settings())
    db.flush()
    web_login(client, "dispatcher")
    html = page(client, ticket)
    assert "签收时限即将到期，系统已向承办单位发出预警" in html
    assert "已超过签收时限（2026-11-16 11:00），系统已通知承办单位" in html
    assert "派单，主办：东关街道办事处；抄送：奎文区人民政府" in html
