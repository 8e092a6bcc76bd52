"""The fixture month of the ranking tests: October 2026, 35 tickets driven through the real
operations with an injected clock (the plan is in the comments; the hand-computed numbers
are in test_ranking.py; moments and settings in month.py). Also the live boards' six tickets
and the Socket.IO fixtures shared by test_snapshots.py, test_socket.py and test_publisher.py."""

import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from dashboards import publisher as board_publisher
from dashboards import socket as board_socket
from dispatch import operations as ops
from hotline.enums import (
    CallbackOutcome,
    Channel,
    ExemptionKind,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Role,
    Satisfaction,
    Solved,
    TransferTarget,
)
from hotline.models import Summons, TicketEvent, Unit, User
from tests.dashboards.month import (
    DAY,
    HOUR,
    MIN,
    OCT12,
    PHONE_TITLE,
    SEEDED_HANDLERS,
    SOLVED_SATISFIED,
    STREETLIGHT,
    UNHAPPY,
    local,
)

NS = board_socket.NAMESPACE


class City:
    """Drives tickets through the real operations for the fixture month."""

    def __init__(self, db, user, make_ticket):
        self.db = db
        self.make_ticket = make_ticket
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
        ticket = self.make_ticket(
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
        # An assisting unit's report (协办反馈) is not part of these figures: the lead says why.
        note = "协办部分已由主办单位一并处理"
        ops.finish(
            self.db, handler, ticket, result="已现场处理完毕", assists_note=note, now=start + finish
        )
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

    def review_return(self, ticket, unit_code, at):
        """审核退回: the reviewer sends the unit's reply back. The event is written as the
        review operation (``return_reply``) writes it, directly, so the fixture month does
        not depend on that operation's flow."""
        self.db.add(
            TicketEvent(
                ticket_id=ticket.id,
                action="return_reply",
                actor_id=self.staff.supervisor.id,
                actor_role=Role.supervisor.value,
                unit_id=self.unit(unit_code).id,
                from_status="reviewing",
                to_status="contacted",
                reason="答复未说明办理结果",
                payload={},
                created_at=at,
            )
        )
        self.db.flush()

    def summon(self, ticket, unit_code, *, at, reported=None, opinion=None, cancelled=None):
        """吹哨报到: the ticket's lead summons ``unit_code`` at ``at`` (report due in 1 h,
        opinion in 24 h); ``reported`` / ``opinion`` / ``cancelled`` are offsets from
        ``at`` (None: not yet). Written as a Summons row, like the whistle's operations."""
        summons = Summons(
            ticket_id=ticket.id,
            unit_id=self.unit(unit_code).id,
            summoning_unit_id=ticket.lead_unit_id,
            summoned_by_id=self.handler(ticket.lead_unit.code).id,
            summoned_at=at,
            reason="需要职能部门到场",
            report_due=at + HOUR,
            opinion_due=at + DAY,
            reported_at=None if reported is None else at + reported,
            opinion_at=None if opinion is None else at + opinion,
            opinion=None if opinion is None else "已到场处置",
            cancelled_at=None if cancelled is None else at + cancelled,
        )
        self.db.add(summons)
        self.db.flush()
        return summons

    def accept(self, ticket, at):
        """A supervisor accepts an unhappy callback result (no reopen)."""
        ops.close(self.db, self.staff.supervisor, ticket, reason="诉求超出政策范围，已解释", now=at)


@pytest.fixture
def month_builder(db, user, make_ticket):
    """``month_builder()`` → a new City builder (``ticket``, ``handle``, ``call``, …) on the
    test's session."""

    def make():
        return City(db, user, make_ticket)

    return make


@pytest.fixture
def october(db, month_builder):
    """The fixture month. Numbers are the tickets' names in the comments and assertions."""
    c = month_builder()
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

    # 审核退回 (review_returned): the reviewer sent replies back.
    c.review_return(c.tickets[7], "U-S-370705002", OCT12 + DAY)  # 大虞: counted …
    c.review_return(c.tickets[7], "U-S-370705002", OCT12 + 2 * DAY)  # … once per ticket
    c.review_return(c.tickets[17], "U-CGJ", OCT12 + DAY)  # 城管局
    c.review_return(c.tickets[15], "U-JTJ", OCT12 + 30 * MIN)  # JTJ no longer leads 15
    c.review_return(c.tickets[25], "U-CGJ", OCT12 + DAY)  # 城管局 only assists 25
    c.review_return(c.tickets[6], "U-S-370705001", OCT12 + DAY)  # exempt ticket
    c.review_return(c.tickets[35], "U-WATER", local(11, 1, 12))  # November's ticket

    # 吹哨报到 (summoned, summons_on_time): 东关 summons departments to its tickets.
    one, at = c.tickets[1], OCT12 + 2 * HOUR
    c.summon(one, "U-CGJ", at=at, reported=30 * MIN, opinion=20 * HOUR)  # on time
    c.summon(one, "U-ZJJ", at=at, reported=2 * HOUR, opinion=20 * HOUR)  # reported late
    c.summon(one, "U-STHJ", at=at, reported=30 * MIN)  # opinion due 13 Oct, never given
    c.summon(c.tickets[2], "U-JTJ", at=at, cancelled=30 * MIN)  # withdrawn in time: no count
    c.summon(four, "U-JTJ", at=at, cancelled=3 * HOUR)  # withdrawn after missing the report
    c.summon(six, "U-CGJ", at=at, reported=MIN, opinion=HOUR)  # exempt ticket: no count
    # 31 October 23:30 local: an October summons answered on 1 November, on time.
    c.summon(c.tickets[11], "U-ZJJ", at=local(10, 31, 23, 30), reported=20 * MIN, opinion=10 * HOUR)
    # 31 October 22:00, reported; the opinion is due 2 November 22:00 (after AS_OF): open.
    late_due = c.summon(c.tickets[12], "U-STHJ", at=local(10, 31, 22), reported=20 * MIN)
    late_due.opinion_due = local(11, 2, 22)
    # November's summons: no October count.
    c.summon(c.tickets[13], "U-WATER", at=local(11, 2, 9, 30), reported=10 * MIN)
    db.flush()
    return c


# -- the live boards (test_snapshots.py, test_socket.py, test_publisher.py) ----------------------


def unit(db, code):
    return db.scalars(sa.select(Unit).where(Unit.code == code)).one()


@pytest.fixture
def city(db, user, make_ticket):
    """Six tickets around NOW (the plan is in the comments; numbers in the tests)."""
    operator, dispatcher, dongguan = user("operator"), user("dispatcher"), user("dongguan")
    street = unit(db, "U-S-370705001")
    t = {}
    # A: today, 奎文区 东关街道, phone complaint; dispatched and signed today, not contacted
    # yet (contact due tomorrow: response pending).
    t["A"] = make_ticket(operator, area="370705001", category=STREETLIGHT, now=local(10, 14, 9))
    ops.dispatch(db, dispatcher, t["A"], lead=street, now=local(10, 14, 9, 10))
    ops.sign(db, dongguan, t["A"], now=local(10, 14, 9, 20))
    # B: today, 潍城区 城关街道, web consultation, not dispatched.
    t["B"] = make_ticket(
        operator,
        area="370702001",
        channel=Channel.web,
        request_type=RequestType.consult,
        title="咨询公积金提取",
        now=local(10, 14, 10),
    )
    # C: today, no area (city board only), WeChat help; personal data in the title.
    t["C"] = make_ticket(
        operator,
        channel=Channel.wechat,
        request_type=RequestType.help,
        title=PHONE_TITLE,
        now=local(10, 14, 11),
    )
    # E: yesterday 16:00, 东关街道 (the trend's yesterday line).
    t["E"] = make_ticket(operator, area="370705001", now=local(10, 13, 16))
    # F: Monday, 东关街道: dispatched, signed and contacted in time (responded).
    t["F"] = make_ticket(operator, area="370705001", category=STREETLIGHT, now=local(10, 12, 9))
    ops.dispatch(db, dispatcher, t["F"], lead=street, now=local(10, 12, 9, 5))
    ops.sign(db, dongguan, t["F"], now=local(10, 12, 9, 20))
    ops.contact(db, dongguan, t["F"], note="已电话联系", now=local(10, 12, 10))
    # D: September, 东关街道, signed but never finished: overdue since 28 September.
    t["D"] = make_ticket(operator, area="370705001", category=STREETLIGHT, now=local(9, 21, 9))
    ops.dispatch(db, dispatcher, t["D"], lead=street, now=local(9, 21, 9, 5))
    ops.sign(db, dongguan, t["D"], now=local(9, 21, 9, 30))
    db.flush()
    return t


@pytest.fixture(scope="session")
def _queueless_app(app, make_app):
    """Flask-SocketIO's test client refuses a message queue: with Redis configured these
    tests run Socket.IO on a second app without one (the Redis path is the two-process
    test's)."""
    if not app.config["REDIS_URL"]:
        return app
    return make_app(REDIS_URL=None)


@pytest.fixture
def board_app(_queueless_app, app, db):
    """The app the Socket.IO tests talk to, on the test's rolled-back connection."""
    original = _queueless_app.extensions["hotline.db"]
    _queueless_app.extensions["hotline.db"] = app.extensions["hotline.db"]
    yield _queueless_app
    _queueless_app.extensions["hotline.db"] = original


@pytest.fixture
def connect():
    def make(app, client, **kwargs):
        return app.extensions["socketio"].test_client(
            app, namespace=NS, flask_test_client=client, **kwargs
        )

    return make


@pytest.fixture
def received():
    """Packets named ``name`` (with Redis as message queue they arrive from another thread)."""

    def make(sio, name, *, wait=3.0):
        deadline = time.monotonic() + wait
        got = []
        while True:
            got += [p["args"][0] for p in sio.get_received(NS) if p["name"] == name]
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    return make


@pytest.fixture
def app_clients(board_app, web_login):
    """``app_clients("leader")`` → a test client of ``board_app`` logged in as that user."""

    def make(username):
        client = board_app.test_client()
        assert web_login(client, username).status_code == 302
        return client

    return make


@pytest.fixture
def publisher(app, board_app):
    """A board publisher fed by the app's in-process events; tests flush it by hand."""
    pub = board_publisher.BoardPublisher(board_app)
    listeners = app.extensions["hotline.events"].listeners
    listeners.append(pub.feed)
    yield pub
    listeners.remove(pub.feed)
