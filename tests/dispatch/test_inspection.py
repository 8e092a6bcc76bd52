"""质检 (dispatch.inspection): the daily sample of each operator's tickets (counts, local
days, idempotent, reproducible, caught up), the checklist's scoring (precise Chinese
refusals, once per sample, audited), who may do and see what, and the monthly scores
worked out by hand."""

import datetime as dt

import pytest
import sqlalchemy as sa

from dispatch import inspection
from dispatch import operations as ops
from hotline import settings
from hotline.enums import Channel, InspectionState, IntakeOutcome, Role, TransferTarget
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import AuditLog, Inspection, User
from hotline.schemas import Page
from tests.dispatch.common import TZ

TIMEZONE = "Asia/Shanghai"
#: A Wednesday of March 2026 and the days around it (no ticket of any other test is there).
DAY = dt.date(2026, 3, 11)


def at(day, hour, minute=0):
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def full_marks(**changes):
    """A complete checklist with full marks, ``changes`` as {item: (points, comment)}."""
    checks = {item.key: {"points": item.maximum, "comment": None} for item in inspection.CHECKLIST}
    for key, (points, comment) in changes.items():
        checks[key] = {"points": points, "comment": comment}
    return checks


@pytest.fixture
def tickets_on(make_ticket):
    """``tickets_on(user, day, n)`` → ``n`` tickets ``user`` received on the local ``day``."""

    def make(user, day, n, hour=10, **values):
        return [
            make_ticket(user, now=at(day, hour, minute), title=f"测试工单{minute}", **values)
            for minute in range(n)
        ]

    return make


def sampled(db, day=None):
    query = sa.select(Inspection)
    if day is not None:
        query = query.where(Inspection.day == day)
    return db.scalars(query.order_by(Inspection.id)).all()


# -- the checklist ---------------------------------------------------------------------------


def test_the_checklist_names_five_items_whose_maxima_add_up_to_100():
    assert [(i.label, i.maximum) for i in inspection.CHECKLIST] == [
        ("分类准确", 20),
        ("地址准确", 20),
        ("内容完整", 25),
        ("服务规范", 15),
        ("转办正确", 20),
    ]
    assert inspection.MAX_SCORE == 100


@pytest.mark.parametrize(
    "tickets, per_operator, percent, expected",
    [
        (10, 3, 0, 3),
        (2, 3, 0, 2),  # fewer than the quota: all of them
        (0, 3, 0, 0),
        (10, 3, 50, 5),  # the share, when it is more
        (30, 3, 5, 3),  # 1.5 rounded up is 2, less than 3
        (101, 0, 1, 2),  # 1.01 rounded up
        (10, 0, 0, 0),  # sampling switched off
    ],
)
def test_quota(tickets, per_operator, percent, expected):
    assert inspection.quota(tickets, per_operator, percent) == expected


# -- sampling ------------------------------------------------------------------------------


def test_each_operator_gets_the_days_quota_of_their_own_tickets(db, user, tickets_on):
    mine = tickets_on(user("operator"), DAY, 5)
    # Late in the evening is still the day; after midnight local time is the next.
    mine += tickets_on(user("operator"), DAY, 1, hour=23)
    theirs = tickets_on(user("operator2"), DAY, 2)
    tickets_on(user("operator"), DAY + dt.timedelta(days=1), 4, hour=0)
    tickets_on(user("grid"), DAY, 3, channel=Channel.grid, area="370705001001001")

    added = inspection.sample_day(db, DAY, TIMEZONE, now=at(DAY + dt.timedelta(days=1), 1))

    by_operator = {}
    for row in added:
        by_operator.setdefault(row.operator.username, set()).add(row.ticket_id)
    assert set(by_operator) == {"operator", "operator2"}  # a grid worker's are not intake
    assert len(by_operator["operator"]) == 3
    assert by_operator["operator"] <= {t.id for t in mine}
    assert by_operator["operator2"] == {t.id for t in theirs}
    assert {row.day for row in added} == {DAY}
    assert {row.state for row in added} == {InspectionState.pending}


def test_tickets_taken_at_intake_count_whatever_became_of_them(db, user, tickets_on):
    operator = user("operator")
    answered, transferred, merged = tickets_on(operator, DAY, 3)
    ops.resolve_at_intake(db, operator, answered, outcome=IntakeOutcome.answered, answer="已答复")
    ops.transfer(db, operator, transferred, target=TransferTarget.fire_119, reason="火情，转119")
    [earlier] = tickets_on(operator, DAY - dt.timedelta(days=1), 1)
    ops.merge(db, operator, merged, into=earlier)
    added = inspection.sample_day(db, DAY, TIMEZONE)
    assert {row.ticket_id for row in added} == {answered.id, transferred.id, merged.id}


def test_a_day_is_sampled_once_whatever_runs_again(db, user, tickets_on):
    tickets_on(user("operator"), DAY, 6)
    first = {row.ticket_id for row in inspection.sample_day(db, DAY, TIMEZONE)}
    assert len(first) == 3
    assert inspection.sample_day(db, DAY, TIMEZONE) == []
    # Not even when the quota is raised afterwards: a day's sample is what it was.
    settings.update(db, user("admin"), {"inspection.daily_per_operator": 5})
    assert inspection.sample_day(db, DAY, TIMEZONE) == []
    assert {row.ticket_id for row in sampled(db)} == first


def test_the_draw_is_the_same_for_the_same_day_and_operator(db, user, tickets_on):
    tickets_on(user("operator"), DAY, 12)
    draws = []
    for _ in range(2):
        attempt = db.begin_nested()
        draws.append(sorted(row.ticket_id for row in inspection.sample_day(db, DAY, TIMEZONE)))
        attempt.rollback()
    assert draws[0] == draws[1]
    assert len(draws[0]) == 3


def test_the_percentage_setting_samples_more_when_it_is_more(db, user, tickets_on):
    settings.update(db, user("admin"), {"inspection.percent": 50})
    tickets_on(user("operator"), DAY, 10)
    assert len(inspection.sample_day(db, DAY, TIMEZONE)) == 5


def test_nothing_is_sampled_for_a_day_without_tickets(db, user, tickets_on):
    tickets_on(user("operator"), DAY, 3)
    assert inspection.sample_day(db, DAY - dt.timedelta(days=1), TIMEZONE) == []
    assert sampled(db) == []


def test_the_job_samples_each_finished_day_and_catches_up_missed_ones(app, db, user, tickets_on):
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    for day in days:
        tickets_on(user("operator"), day, 4)
    # Today's tickets wait: the day is not over.
    today = DAY + dt.timedelta(days=3)
    tickets_on(user("operator"), today, 4, hour=8)
    factory = app.extensions["hotline.db"]

    result = inspection.run_due(factory, now=at(today, 9), timezone=TIMEZONE)

    assert result.sampled == 9
    assert result.days[-3:] == days and result.days[-1] == today - dt.timedelta(days=1)
    assert len(result.days) == inspection.CATCH_UP_DAYS  # a month back, on a first run
    assert {d: len(sampled(db, d)) for d in days} == {d: 3 for d in days}
    assert sampled(db, today) == []
    # The next run looks only after the latest sampled day: nothing more.
    again = inspection.run_due(factory, now=at(today, 10), timezone=TIMEZONE)
    assert again.days == [] and again.sampled == 0
    # Just after midnight the day is left to settle; a little later it is sampled.
    midnight = today + dt.timedelta(days=1)
    early = inspection.run_due(factory, now=at(midnight, 0, 5), timezone=TIMEZONE)
    assert early.days == [] and sampled(db, today) == []
    tomorrow = inspection.run_due(factory, now=at(midnight, 0, 20), timezone=TIMEZONE)
    assert tomorrow.days == [today] and tomorrow.sampled == 3


# -- scoring -------------------------------------------------------------------------------


@pytest.fixture
def pending(db, user, tickets_on):
    """One pending sample of the operator's."""
    tickets_on(user("operator"), DAY, 1)
    [row] = inspection.sample_day(db, DAY, TIMEZONE)
    return row


def test_an_inspector_scores_a_sample_once_and_it_is_audited(db, user, pending):
    checks = full_marks(address=(12, "地址只写到小区，缺楼号"), courtesy=(13, "结束语不规范"))
    row = inspection.inspect(
        db, user("inspector"), pending, checks=checks, comment="  总体较好  ", now=at(DAY, 15)
    )
    assert row.state == InspectionState.done
    assert row.score == 100 - 8 - 2
    assert row.inspector.username == "inspector"
    assert row.inspected_at == at(DAY, 15)
    assert row.comment == "总体较好"
    assert row.checks["address"] == {"points": 12, "comment": "地址只写到小区，缺楼号"}
    assert row.checks["category"] == {"points": 20, "comment": None}
    [log] = db.scalars(sa.select(AuditLog).where(AuditLog.action == "inspection.inspect")).all()
    assert log.target == row.ticket.number
    assert log.payload["score"] == 90 and log.payload["operator"] == "operator"

    with pytest.raises(Conflict) as caught:
        inspection.inspect(db, user("inspector"), row, checks=full_marks())
    assert caught.value.code == "INSPECTION_DONE"
    assert caught.value.message == "该工单已质检评分，不能重复提交"
    db.refresh(row)
    assert row.score == 90


def test_a_submission_racing_another_is_refused(db, user, pending):
    """Two inspectors read the sample pending; the second write finds it done."""
    db.execute(
        sa.update(Inspection)
        .where(Inspection.id == pending.id)
        .values(state=InspectionState.done)
        .execution_options(synchronize_session=False)
    )
    # ``pending`` still says pending in this session: the conditional write settles it.
    assert pending.state == InspectionState.pending
    with pytest.raises(Conflict) as caught:
        inspection.inspect(db, user("inspector"), pending, checks=full_marks())
    assert caught.value.code == "INSPECTION_DONE"
    assert (
        db.scalars(sa.select(AuditLog).where(AuditLog.action == "inspection.inspect")).all() == []
    )


def second_inspector(db):
    other = User(username="inspector2", name="孙质检", role=Role.inspector)
    other.set_password("质检-Second-12345")
    db.add(other)
    db.flush()
    return other


def test_a_claim_keeps_the_sample_for_its_holder_until_released(db, user, pending):
    holder, supervisor = user("inspector"), user("supervisor")
    other = second_inspector(db)
    inspection.claim(db, holder, pending)
    inspection.claim(db, holder, pending)  # again: nothing more
    assert pending.inspector_id == holder.id and pending.state == InspectionState.pending
    assert inspection.next_pending(db, other) is None
    assert inspection.next_pending(db, holder) == pending.id
    for attempt in (
        lambda: inspection.claim(db, other, pending),
        lambda: inspection.inspect(db, other, pending, checks=full_marks()),
        lambda: inspection.release(db, other, pending),
    ):
        with pytest.raises(Conflict) as caught:
            attempt()
        assert caught.value.code == "INSPECTION_CLAIMED"
        assert caught.value.message == "该质检样本已由郑雅琴领取，只有领取人可以评分"
    with pytest.raises(Forbidden):
        inspection.claim(db, supervisor, pending)
    inspection.release(db, supervisor, pending)
    assert pending.inspector_id is None
    with pytest.raises(Conflict) as caught:
        inspection.release(db, holder, pending)
    assert caught.value.code == "INSPECTION_NOT_CLAIMED"
    # Scoring an unclaimed sample claims and scores it at once.
    inspection.inspect(db, other, pending, checks=full_marks())
    assert (pending.state, pending.inspector_id) == (InspectionState.done, other.id)
    actions = db.scalars(
        sa.select(AuditLog.action).where(AuditLog.action.like("inspection.%")).order_by(AuditLog.id)
    ).all()
    assert actions == ["inspection.claim", "inspection.release", "inspection.inspect"]


@pytest.mark.parametrize("operation", ["claim", "inspect"])
def test_a_claim_or_score_racing_anothers_claim_is_refused(db, user, pending, operation):
    """Two inspectors read the sample unclaimed; the second write finds it held."""
    other = second_inspector(db)
    db.execute(
        sa.update(Inspection)
        .where(Inspection.id == pending.id)
        .values(inspector_id=user("inspector").id)
        .execution_options(synchronize_session=False)
    )
    assert pending.inspector_id is None  # this session's view is stale
    extra = {"checks": full_marks()} if operation == "inspect" else {}
    with pytest.raises(Conflict) as caught:
        getattr(inspection, operation)(db, other, pending, **extra)
    assert caught.value.code == "INSPECTION_CLAIMED"
    assert (pending.state, pending.inspector_id) == (InspectionState.pending, user("inspector").id)
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action.like("inspection.%"))).all() == []


@pytest.mark.parametrize(
    "checks, comment, field, message",
    [
        (
            full_marks(category=(21, "多给")),
            None,
            "category_points",
            "“分类准确”得分须在 0–20 之间",
        ),
        (full_marks(content=(-1, "负分")), None, "content_points", "“内容完整”得分须在 0–25 之间"),
        (full_marks(courtesy=("十", None)), None, "courtesy_points", "“服务规范”得分须为整数"),
        (full_marks(courtesy=(True, None)), None, "courtesy_points", "“服务规范”得分须为整数"),
        (full_marks(courtesy=(7.5, "半分")), None, "courtesy_points", "“服务规范”得分须为整数"),
        ({**full_marks(), "address": {}}, None, "address_points", "请填写“地址准确”得分"),
        (
            {k: v for k, v in full_marks().items() if k != "transfer"},
            None,
            "transfer_points",
            "请填写“转办正确”得分",
        ),
        (
            full_marks(content=(20, None)),
            None,
            "content_comment",
            "“内容完整”扣了 5 分，请填写扣分说明",
        ),
        (
            full_marks(content=(20, "   ")),
            None,
            "content_comment",
            "“内容完整”扣了 5 分，请填写扣分说明",
        ),
        (
            full_marks(address=(20, "x" * 501)),
            None,
            "address_comment",
            "“地址准确”说明不能超过 500 字（现为 501 字）",
        ),
        (full_marks(), "坏\x00字", "comment", "总体评语包含不可见控制字符（U+0000）"),
        (full_marks(), ["不是文本"], "comment", "总体评语须为文本"),
        (
            {**full_marks(), "speed": {"points": 5}},
            None,
            "speed_points",
            "没有这个评分项：speed_points",
        ),
    ],
)
def test_bad_scores_are_refused_precisely_and_change_nothing(
    db, user, pending, checks, comment, field, message
):
    with pytest.raises(ValidationFailed) as caught:
        inspection.inspect(db, user("inspector"), pending, checks=checks, comment=comment)
    error = caught.value
    assert error.code == "INSPECTION_INVALID"
    assert error.details[field] == message
    assert error.message.startswith("质检评分未提交：") and message in error.message
    db.refresh(pending)
    assert pending.state == InspectionState.pending and pending.score is None


def test_checks_that_are_no_mapping_are_refused(db, user, pending):
    for bad in (["category"], {"category": 20}, None):
        with pytest.raises(ValidationFailed) as caught:
            inspection.inspect(db, user("inspector"), pending, checks=bad)
        assert caught.value.details == {"checks": "格式不正确"}


def test_every_problem_is_named_at_once(db, user, pending):
    checks = full_marks(category=(99, None), address=(5, None))
    with pytest.raises(ValidationFailed) as caught:
        inspection.inspect(db, user("inspector"), pending, checks=checks)
    assert set(caught.value.details) == {"category_points", "address_comment"}


def test_a_form_is_read_into_the_checklist(pending):
    data = {"category_points": 18, "category_comment": "二级分类选错", "comment": "好"}
    values = inspection.submission(data)
    assert values["checks"]["category"] == {"points": 18, "comment": "二级分类选错"}
    assert values["checks"]["address"] == {}
    assert values["comment"] == "好"
    with pytest.raises(ValidationFailed) as caught:
        inspection.submission({"version": "1"})
    assert caught.value.details == {"version": "没有这个评分项"}


# -- who may do what -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "username", ["operator", "dispatcher", "supervisor", "callback", "leader", "admin", "dongguan"]
)
def test_only_inspectors_score(db, user, pending, username):
    with pytest.raises(Forbidden) as caught:
        inspection.inspect(db, user(username), pending, checks=full_marks())
    assert caught.value.code == "ROLE_NOT_ALLOWED"
    assert caught.value.message.endswith("角色无权进行质检评分")
    db.refresh(pending)
    assert pending.state == InspectionState.pending


@pytest.mark.parametrize("username", ["operator", "dispatcher", "leader", "admin", "dongguan"])
def test_only_inspectors_and_supervisors_read_everyones_scores(db, user, username):
    with pytest.raises(Forbidden):
        inspection.monthly_scores(db, user(username), (2026, 3))
    with pytest.raises(Forbidden):
        inspection.queue(db, user(username), Page(1, 20))


@pytest.mark.parametrize("username", ["inspector", "supervisor", "operator"])
def test_an_operators_results_are_their_own(db, user, tickets_on, username):
    tickets_on(user("operator2"), DAY, 1)
    [theirs] = inspection.sample_day(db, DAY, TIMEZONE)
    inspection.inspect(db, user("inspector"), theirs, checks=full_marks())
    if username != "operator":
        with pytest.raises(Forbidden):
            inspection.results_of(db, user(username), (2026, 3))
        return
    done, score = inspection.results_of(db, user("operator"), (2026, 3))
    assert done == [] and score.count == 0
    done, score = inspection.results_of(db, user("operator2"), (2026, 3))
    assert [r.id for r in done] == [theirs.id] and score.average == 100


# -- the month, by hand ----------------------------------------------------------------------


def test_monthly_scores_worked_out_by_hand(db, user, tickets_on):
    inspector = user("inspector")
    tickets_on(user("operator"), DAY, 2)
    tickets_on(user("operator2"), DAY, 2)
    tickets_on(user("operator"), dt.date(2026, 4, 1), 1)  # April: not in March
    inspection.sample_day(db, DAY, TIMEZONE)
    inspection.sample_day(db, dt.date(2026, 4, 1), TIMEZONE)
    rows = {}
    for row in sampled(db):
        rows.setdefault((row.operator.username, row.day.month), []).append(row)
    first, second = rows[("operator", 3)]
    # 王晓丽: 100 and 70 (address 10/20 and content 5/25 lost)
    inspection.inspect(db, inspector, first, checks=full_marks())
    inspection.inspect(
        db,
        inspector,
        second,
        checks=full_marks(address=(10, "地址不全"), content=(5, "漏记诉求")),
    )
    # 刘婷婷: one scored 85 (category 12/20, courtesy 8/15), one still pending
    inspection.inspect(
        db,
        inspector,
        rows[("operator2", 3)][0],
        checks=full_marks(category=(12, "分类错"), courtesy=(8, "语气生硬")),
    )
    [april] = rows[("operator", 4)]
    inspection.inspect(db, inspector, april, checks=full_marks(category=(0, "全错")))

    scores = {s.operator.username: s for s in inspection.monthly_scores(db, inspector, (2026, 3))}

    wang = scores["operator"]
    assert (wang.count, wang.pending, wang.average) == (2, 0, 85.0)  # (100 + 70) / 2
    assert wang.items == {
        "category": 20.0,
        "address": 15.0,  # (20 + 10) / 2 = 75 % of 20
        "content": 15.0,  # (25 + 5) / 2 = 60 % of 25
        "courtesy": 15.0,
        "transfer": 20.0,
    }
    assert [i.label for i in wang.lowest] == ["内容完整", "地址准确"]
    liu = scores["operator2"]
    assert (liu.count, liu.pending, liu.average) == (1, 1, 85.0)
    # category 12/20 = 60 %, courtesy 8/15 = 53 %: courtesy first
    assert [i.label for i in liu.lowest] == ["服务规范", "分类准确"]
    # Ordered by name: 刘婷婷 before 王晓丽 (by code point, as the database orders).
    assert [
        s.operator.username for s in inspection.monthly_scores(db, inspector, (2026, 3))
    ] == sorted(scores, key=lambda n: scores[n].operator.name)
    april_scores = inspection.monthly_scores(db, user("supervisor"), (2026, 4))
    assert [(s.operator.username, s.average) for s in april_scores] == [("operator", 80.0)]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, (2026, 12)),
        ("", (2026, 12)),
        ("2026-03", (2026, 3)),
        ("2026-13", None),
        ("1999-12", None),
        ("2101-01", None),
        ("2026-3", None),
        ("２０２６-03", None),
        ("2026-03\x00", None),
    ],
)
def test_month_argument(raw, expected):
    errors = {}
    assert inspection.parse_month(raw, errors, dt.date(2026, 12, 5)) == expected
    if expected is None:
        assert errors["month"].startswith("月份格式应为 YYYY-MM")
