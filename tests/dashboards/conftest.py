"""The fixture month of the ranking tests: October 2026, 35 tickets driven through the real
operations with an injected clock (the plan is in the comments; the hand-computed numbers
are in test_ranking.py)."""

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboards import ranking
from dispatch import operations as ops
from hotline.config import DEFAULTS
from hotline.enums import (
    CallbackOutcome,
    ExemptionKind,
    IntakeOutcome,
    ReturnReason,
    Role,
    Satisfaction,
    Solved,
    TransferTarget,
)
from hotline.models import Unit, User
from tests.conftest import make_ticket

TZ = ZoneInfo("Asia/Shanghai")
STREETLIGHT = "010103"


def local(month, day, hour=9, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
#: Monday 12 October, 09:00: most tickets are dispatched then (sign ≤ 2 h, contact ≤ 24 h,
#: finish ≤ 5 working days → Monday 19 October 09:00).
OCT12 = local(10, 12)
#: The moment the ranking is computed: Monday 2 November, 10:00.
AS_OF = local(11, 2, 10)
CONFIG = {**DEFAULTS, "RANKING_MIN_SAMPLE": 3}
SETTINGS = ranking.Settings.from_config(CONFIG)

SOLVED_SATISFIED = (Solved.solved, Satisfaction.satisfied)
UNHAPPY = (Solved.unsolved, Satisfaction.dissatisfied)

SEEDED_HANDLERS = {
    "U-S-370705001": "dongguan",
    "U-CGJ": "cgj",
    "U-WATER": "water",
    "U-STHJ": "sthj",
    "U-D-370705": "kuiwen",
}


class City:
    """Drives tickets through the real operations for the fixture month."""

    def __init__(self, db, user):
        self.db = db
        self.staff = SimpleNamespace(
            **{n: user(n) for n in ["operator", "dispatcher", "callback", "supervisor"]}
        )
        self.user = user
        self.tickets = {}

    def unit(self, code):
        return self.db.scalars(sa.select(Unit).where(Unit.code == code)).one()

    def handler(self, code):
        if code in SEEDED_HANDLERS:
            return self.user(SEEDED_HANDLERS[code])
        name = f"handler-{code.lower()}"
        found = self.db.scalars(sa.select(User).where(User.username == name)).first()
        if found is None:
            found = User(
                username=name,
                name=name,
                role=Role.unit_handler,
                unit_id=self.unit(code).id,
                password_hash="-",
            )
            self.db.add(found)
            self.db.flush()
        return found

    def receive(self, no, *, at, phone=True):
        ticket = make_ticket(
            self.db,
            self.staff.operator,
            category=STREETLIGHT,
            area="370705001",
            requester_phone="13805360001" if phone else None,
            now=at,
        )
        self.tickets[no] = ticket
        return ticket

    def ticket(self, no, lead, *, at=OCT12, received=None, phone=True, assists=(), **handling):
        ticket = self.receive(no, at=received or at - HOUR, phone=phone)
        ops.dispatch(
            self.db,
            self.staff.dispatcher,
            ticket,
            lead=self.unit(lead),
            assists=[self.unit(a) for a in assists],
            now=at,
        )
        self.handle(ticket, lead, start=at, **handling)
        return ticket

    def handle(
        self, ticket, lead, *, start, sign=30 * MIN, contact=HOUR, finish=DAY, callback=None
    ):
        """Sign, contact, finish and call back at the given offsets from ``start``; None
        stops there."""
        handler = self.handler(lead)
        if sign is None:
            return
        ops.sign(self.db, handler, ticket, now=start + sign)
        if contact is not None:
            ops.contact(self.db, handler, ticket, note="已电话联系诉求人", now=start + contact)
        if finish is None:
            return
        ops.finish(self.db, handler, ticket, result="已现场处理完毕", now=start + finish)
        if callback is not None:
            self.call(ticket, callback, at=start + finish + DAY)

    def call(self, ticket, callback, *, at):
        if isinstance(callback, CallbackOutcome):
            ops.record_callback(self.db, self.staff.callback, ticket, outcome=callback, now=at)
        else:
            solved, satisfaction = callback
            ops.record_callback(
                self.db,
                self.staff.callback,
                ticket,
                outcome=CallbackOutcome.answered,
                solved=solved,
                satisfaction=satisfaction,
                comment="回访记录",
                now=at,
            )

    def accept(self, ticket, at):
        """A supervisor accepts an unhappy callback result (no reopen)."""
        ops.close(self.db, self.staff.supervisor, ticket, reason="诉求超出政策范围，已解释", now=at)


@pytest.fixture
def october(db, user):
    """The fixture month. Numbers are the tickets' names in the comments and assertions."""
    c = City(db, user)
    s = c.staff

    # 东关街道 U-S-370705001 (S1): 5 scored tickets + 1 exempt.
    c.ticket(1, "U-S-370705001", callback=SOLVED_SATISFIED)
    c.ticket(
        2,
        "U-S-370705001",
        sign=3 * HOUR,
        contact=4 * HOUR,
        callback=(Solved.partly, Satisfaction.basically),
    )
    three = c.ticket(3, "U-S-370705001", phone=False, contact=None)  # nothing to contact
    ops.close(db, s.callback, three, now=OCT12 + 2 * DAY)  # no phone: no callback
    four = c.ticket(4, "U-S-370705001")
    # 32: the same matter reported again, merged into 4 while it waits for its callback.
    merged = c.receive(32, at=local(10, 13, 10))
    ops.merge(
        db, s.operator, merged, into=four, reason="同一路灯重复反映", now=local(10, 13, 10, 5)
    )
    c.call(four, UNHAPPY, at=local(10, 14))
    ops.reopen(db, s.supervisor, four, reason="路灯仍不亮", now=local(10, 14, 10))
    c.handle(
        four,
        "U-S-370705001",
        start=local(10, 14, 10),
        callback=(Solved.solved, Satisfaction.basically),
    )
    c.ticket(5, "U-S-370705001", finish=None)  # not finished by 19 October: overdue
    six = c.ticket(6, "U-S-370705001", sign=3 * HOUR, contact=4 * HOUR, callback=UNHAPPY)
    ops.exempt(
        db,
        s.supervisor,
        six,
        kind=ExemptionKind.unreasonable,
        reason="要求拆除邻居合法建筑，属不合理诉求",
        now=local(10, 20),
    )

    # 大虞街道 U-S-370705002 (S2).
    c.ticket(7, "U-S-370705002", callback=SOLVED_SATISFIED)
    c.ticket(8, "U-S-370705002", callback=SOLVED_SATISFIED)
    nine = c.ticket(9, "U-S-370705002", sign=None)
    ops.request_return(
        db,
        c.handler("U-S-370705002"),
        nine,
        return_reason=ReturnReason.not_our_duty,
        note="应由物业处理",
        now=OCT12 + 20 * MIN,
    )
    ops.decide_return(
        db, s.dispatcher, nine, approve=False, note="属街道管辖", now=OCT12 + 40 * MIN
    )
    c.handle(
        nine,
        "U-S-370705002",
        start=OCT12,
        sign=50 * MIN,
        contact=90 * MIN,
        callback=SOLVED_SATISFIED,
    )
    # 10: received on Saturday night, dispatched Monday 2 November 09:30: sign due 11:30.
    c.ticket(10, "U-S-370705002", received=local(10, 31, 22), at=local(11, 2, 9, 30), sign=None)

    # 城关街道 U-S-370702001 (S3, 潍城区).
    c.ticket(11, "U-S-370702001", callback=SOLVED_SATISFIED)
    c.ticket(12, "U-S-370702001", contact=30 * HOUR, finish=2 * DAY, callback=SOLVED_SATISFIED)
    c.ticket(13, "U-S-370702001", at=local(10, 30), sign=None)  # never signed

    # 梨园街道 U-S-370705003 (S4): below the minimum sample.
    c.ticket(14, "U-S-370705003", callback=SOLVED_SATISFIED)
    # 15: 交通运输局 returns it; upheld, re-dispatched to 梨园.
    fifteen = c.ticket(15, "U-JTJ", sign=None)
    ops.request_return(
        db,
        c.handler("U-JTJ"),
        fifteen,
        return_reason=ReturnReason.wrong_territory,
        note="属街道管辖",
        now=OCT12 + 20 * MIN,
    )
    ops.decide_return(
        db,
        s.dispatcher,
        fifteen,
        approve=True,
        note="改派梨园街道",
        lead=c.unit("U-S-370705003"),
        now=OCT12 + 40 * MIN,
    )
    c.handle(fifteen, "U-S-370705003", start=OCT12 + 40 * MIN, callback=SOLVED_SATISFIED)

    # 奎文区人民政府 U-D-370705: one ticket, the requester refuses the callback.
    c.ticket(16, "U-D-370705", callback=CallbackOutcome.refused)

    # 城市管理局 U-CGJ.
    c.ticket(17, "U-CGJ", callback=SOLVED_SATISFIED)
    c.ticket(18, "U-CGJ", finish=15 * DAY, callback=SOLVED_SATISFIED)  # finished 27 Oct: late
    nineteen = c.ticket(19, "U-CGJ", callback=UNHAPPY)
    c.accept(nineteen, local(10, 15))

    # 住建局 U-ZJJ: like 城管局, but the late finish had an approved extension.
    c.ticket(20, "U-ZJJ", callback=SOLVED_SATISFIED)
    twenty_one = c.ticket(21, "U-ZJJ", finish=None)
    ops.request_extension(
        db, c.handler("U-ZJJ"), twenty_one, days=10, reason="需协调产权单位", now=local(10, 15)
    )
    ops.decide_extension(
        db, s.dispatcher, twenty_one, approve=True, note="同意", now=local(10, 15, 10)
    )
    ops.finish(db, c.handler("U-ZJJ"), twenty_one, result="已修复", now=local(10, 27))
    c.call(twenty_one, SOLVED_SATISFIED, at=local(10, 28))
    twenty_two = c.ticket(22, "U-ZJJ", callback=UNHAPPY)
    c.accept(twenty_two, local(10, 15))

    # 生态环境局 U-STHJ; 25 has 城管局 assisting (assisting units are not scored).
    twenty_three = c.ticket(23, "U-STHJ", callback=(Solved.partly, Satisfaction.dissatisfied))
    c.accept(twenty_three, local(10, 15))
    c.ticket(24, "U-STHJ", callback=(Solved.solved, Satisfaction.basically))
    c.ticket(25, "U-STHJ", assists=["U-CGJ"], callback=SOLVED_SATISFIED)

    # Utilities (24×7).
    c.ticket(26, "U-WATER", callback=SOLVED_SATISFIED)
    c.ticket(27, "U-WATER", callback=SOLVED_SATISFIED)
    c.ticket(28, "U-WATER", sign=3 * HOUR, contact=4 * HOUR, callback=SOLVED_SATISFIED)
    c.ticket(29, "U-POWER", callback=SOLVED_SATISFIED)
    thirty = c.ticket(30, "U-POWER", finish=None)
    power = c.handler("U-POWER")
    ops.request_termination(db, power, thirty, reason="诉求人撤回", now=OCT12 + 2 * HOUR)
    ops.review_termination(
        db, s.supervisor, thirty, approve=True, note="同意", now=OCT12 + 3 * HOUR
    )
    c.ticket(31, "U-POWER", callback=CallbackOutcome.no_answer)  # one unanswered call so far

    # Closed at intake: never reach a unit.
    transferred = c.receive(33, at=local(10, 14))
    ops.transfer(
        db,
        s.operator,
        transferred,
        target=TransferTarget.police_110,
        reason="正在发生的盗窃",
        now=local(10, 14, 0, 5),
    )
    answered = c.receive(34, at=local(10, 14))
    ops.resolve_at_intake(
        db,
        s.operator,
        answered,
        outcome=IntakeOutcome.answered,
        answer="已告知办理流程",
        now=local(10, 14, 0, 5),
    )
    # Outside the month: received 1 November, so no October count may include it.
    c.ticket(35, "U-WATER", at=local(11, 1, 9), callback=UNHAPPY)
    db.flush()
    return c
