"""监察问责: each detector rule met and not met, on tickets driven through the real operations
in October 2026, and the referral to discipline inspection (role, reason, one per month, unit
and kind, retries, evidence frozen, audited)."""

import pytest
import sqlalchemy as sa

from dashboards import accountability
from dispatch import operations as ops
from hotline import settings
from hotline.enums import CallbackOutcome, ReferralKind, ReturnReason, Satisfaction, Solved
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import AuditLog, Referral
from tests.dashboards.month import DAY, HOUR, MIN, OCT12, local
from tests.dispatch.common import MY_GRID, OTHER_GRID, PHOTOS

MONTH = "2026-10"
AFTER = local(11, 3)


def cases(db, **thresholds):
    if thresholds:
        settings.update(db, None, {f"accountability.{k}": v for k, v in thresholds.items()})
    return {
        (c.unit_code, c.kind): c for c in accountability.detect(db, MONTH, timezone="Asia/Shanghai")
    }


def rules(case):
    return [f["rule"] for f in case.findings]


def finding(case, rule):
    return next(f for f in case.findings if f["rule"] == rule)


def give_back(c, ticket, code, *, at, approve, to=None, note="不属于本单位职责"):
    """``code`` asks to return ``ticket`` at ``at``; the dispatcher decides 20 minutes later."""
    ops.request_return(
        c.db,
        c.handler(code),
        ticket,
        return_reason=ReturnReason.not_our_duty,
        note=note,
        now=at,
    )
    ops.decide_return(
        c.db,
        c.staff.dispatcher,
        ticket,
        approve=approve,
        note="审核",
        lead=c.unit(to) if to else None,
        now=at + 20 * MIN,
    )


# -- 推诿扯皮 ------------------------------------------------------------------------------------


def test_a_ticket_passed_back_and_forth_is_bounced_for_every_unit_that_returned_it(
    db, month_builder
):
    c = month_builder()
    bounced = c.ticket(1, "U-CGJ", sign=None)
    give_back(c, bounced, "U-CGJ", at=OCT12 + 2 * HOUR, approve=True, to="U-ZJJ")
    give_back(c, bounced, "U-ZJJ", at=OCT12 + 5 * HOUR, approve=True, to="U-CGJ")
    once = c.ticket(2, "U-STHJ", sign=None)  # returned once, re-dispatched: no bouncing
    give_back(c, once, "U-STHJ", at=OCT12 + 2 * HOUR, approve=True, to="U-JTJ")
    found = cases(db)
    for code in ("U-CGJ", "U-ZJJ"):
        case = found[(code, ReferralKind.shirking)]
        assert rules(case) == ["bounced"]
        item = finding(case, "bounced")["items"][0]
        assert item["ticket"] == bounced.number
        texts = [f["text"] for f in item["facts"]]
        assert texts[0] == "潍坊市城市管理局申请退单（非本单位职责，已同意）：不属于本单位职责"
        assert texts[1].startswith("潍坊市住房和城乡建设局申请退单")
        assert item["facts"][0]["time"] == "2026-10-12 11:00"
    assert ("U-STHJ", ReferralKind.shirking) not in found
    # Three units needed: the same two returns are no longer enough.
    assert ("U-CGJ", ReferralKind.shirking) not in cases(db, bounce_units=3)


def test_the_same_unit_returning_twice_is_back_and_forth(db, month_builder):
    c = month_builder()
    ticket = c.ticket(1, "U-CGJ", sign=None)
    give_back(c, ticket, "U-CGJ", at=OCT12 + 2 * HOUR, approve=False)
    give_back(c, ticket, "U-CGJ", at=OCT12 + DAY, approve=False)
    case = cases(db)[("U-CGJ", ReferralKind.shirking)]
    assert finding(case, "bounced")["count"] == 1


def test_rejected_returns_reach_the_threshold(db, month_builder):
    c = month_builder()
    for no in (1, 2):
        ticket = c.ticket(no, "U-WATER", sign=None)
        give_back(c, ticket, "U-WATER", at=OCT12 + 3 * HOUR, approve=False)
    upheld = c.ticket(3, "U-POWER", sign=None)
    give_back(c, upheld, "U-POWER", at=OCT12 + 3 * HOUR, approve=True, to="U-WATER")
    rejected = c.ticket(4, "U-POWER", sign=None)
    give_back(c, rejected, "U-POWER", at=OCT12 + 3 * HOUR, approve=False)
    found = cases(db, rejected_returns=2)
    case = found[("U-WATER", ReferralKind.shirking)]
    assert rules(case) == ["rejected_returns"]
    assert finding(case, "rejected_returns")["summary"] == "退单被驳回 2 件（阈值 2 件）"
    assert case.ticket_ids == sorted([c.tickets[1].id, c.tickets[2].id])
    assert ("U-POWER", ReferralKind.shirking) not in found  # one upheld, one rejected
    assert ("U-WATER", ReferralKind.shirking) not in cases(db, rejected_returns=3)


def test_returning_within_minutes_of_dispatch_repeatedly(db, month_builder):
    c = month_builder()
    for no in (1, 2):
        ticket = c.ticket(no, "U-CGJ", sign=None)
        give_back(c, ticket, "U-CGJ", at=OCT12 + 5 * MIN, approve=True, to="U-ZJJ")
    slow = c.ticket(3, "U-STHJ", sign=None)
    give_back(c, slow, "U-STHJ", at=OCT12 + 5 * MIN, approve=True, to="U-ZJJ")
    slower = c.ticket(4, "U-STHJ", sign=None)
    give_back(c, slower, "U-STHJ", at=OCT12 + 2 * HOUR, approve=True, to="U-ZJJ")
    found = cases(db, quick_return_count=2, quick_return_minutes=10)
    case = found[("U-CGJ", ReferralKind.shirking)]
    assert rules(case) == ["quick_returns"]
    facts = finding(case, "quick_returns")["items"][0]["facts"]
    assert [f["text"] for f in facts] == [
        "派给潍坊市城市管理局",
        "5 分钟后潍坊市城市管理局申请退单（非本单位职责）",
    ]
    assert ("U-STHJ", ReferralKind.shirking) not in found  # once within 10 minutes
    assert ("U-CGJ", ReferralKind.shirking) not in cases(db, quick_return_minutes=4)


# -- 弄虚作假 ------------------------------------------------------------------------------------


def finished(c, no, code, reply, callback, *, phone=True):
    ticket = c.ticket(no, code, finish=None, phone=phone, contact=HOUR if phone else None)
    ops.finish(c.db, c.handler(code), ticket, result=reply, now=OCT12 + DAY)
    c.call(ticket, callback, at=OCT12 + 2 * DAY)
    return ticket


def test_solved_claims_the_callback_contradicts(db, month_builder):
    c = month_builder()
    unsolved = (Solved.unsolved, Satisfaction.dissatisfied)
    finished(c, 1, "U-CGJ", "经现场核实，路灯已修复，恢复照明。", unsolved)
    finished(c, 2, "U-CGJ", "问题已解决。", unsolved)
    finished(c, 3, "U-CGJ", "已修复。", (Solved.solved, Satisfaction.satisfied))
    # Honest replies: no claim of a solution.
    finished(c, 4, "U-ZJJ", "已协调产权单位，问题尚未解决，将继续跟进。", unsolved)
    finished(c, 5, "U-ZJJ", "已协调产权单位，问题尚未解决，将继续跟进。", unsolved)
    finished(c, 6, "U-STHJ", "问题已解决。", unsolved)  # once: below 2
    assert ("U-CGJ", ReferralKind.falsification) not in cases(db)  # 2, the default is 3
    found = cases(db, unsolved_claims=2)
    case = found[("U-CGJ", ReferralKind.falsification)]
    assert rules(case) == ["unsolved_claims"]
    items = finding(case, "unsolved_claims")["items"]
    assert [i["ticket"] for i in items] == sorted([c.tickets[1].number, c.tickets[2].number])
    assert [f["text"] for f in items[0]["facts"]] == [
        "办结答复：经现场核实，路灯已修复，恢复照明。",
        "回访：诉求人称未解决：回访记录",
    ]
    assert ("U-ZJJ", ReferralKind.falsification) not in found
    assert ("U-STHJ", ReferralKind.falsification) not in found


def grid_ticket(c, db, user, make_ticket, *, phone="13805360001"):
    ticket = make_ticket(
        c.staff.operator, category="010103", area=MY_GRID, requester_phone=phone, now=OCT12 - HOUR
    )
    ops.dispatch(db, c.staff.dispatcher, ticket, lead=c.unit("U-S-370705001"), now=OCT12)
    return ticket


def test_on_site_claims_need_a_check_in_on_a_grid_ticket(db, user, month_builder, make_ticket):
    c = month_builder()
    handler, worker = user("dongguan"), user("grid")
    claimed = grid_ticket(c, db, user, make_ticket)
    ops.sign(db, handler, claimed, now=OCT12 + 10 * MIN)
    ops.contact(db, handler, claimed, note="已电话联系", now=OCT12 + 20 * MIN)
    ops.finish(db, handler, claimed, result="工作人员已到现场查看，路灯已修复。", now=OCT12 + DAY)
    # The grid worker checked in: the same claim is backed.
    checked = grid_ticket(c, db, user, make_ticket)
    ops.accept(db, worker, checked, now=OCT12 + 10 * MIN)
    lng, lat = checked.area.center_lng, checked.area.center_lat
    ops.check_in(db, worker, checked, lng=lng, lat=lat, photos=PHOTOS, now=OCT12 + HOUR)
    ops.contact(db, worker, checked, note="已电话联系", now=OCT12 + 2 * HOUR)
    ops.finish(db, worker, checked, result="已到现场处理完毕。", now=OCT12 + DAY)
    # Not a grid ticket (the street, no grid worker's grid): nothing to check in against.
    street = c.ticket(3, "U-S-370705001", finish=None)
    ops.finish(db, handler, street, result="已到现场处理完毕。", now=OCT12 + DAY)
    # No claim of going there.
    plain = grid_ticket(c, db, user, make_ticket)
    ops.sign(db, handler, plain, now=OCT12 + 10 * MIN)
    ops.contact(db, handler, plain, note="已电话联系", now=OCT12 + 20 * MIN)
    ops.finish(db, handler, plain, result="已电话答复诉求人政策规定。", now=OCT12 + DAY)

    assert ("U-S-370705001", ReferralKind.falsification) not in cases(db)  # 1 of 2 by default
    case = cases(db, onsite_without_check_in=1)[("U-S-370705001", ReferralKind.falsification)]
    assert rules(case) == ["onsite_without_check_in"]
    items = finding(case, "onsite_without_check_in")["items"]
    assert [i["ticket"] for i in items] == [claimed.number]
    assert "网格内，无现场核查记录" in items[0]["facts"][0]["text"]


def claimed_on_grid(c, db, user, make_ticket, reply, *, area=MY_GRID):
    """A ticket in ``area`` that 东关街道's handler finishes with ``reply`` (no check-in)."""
    handler = user("dongguan")
    ticket = make_ticket(c.staff.operator, category="010103", area=area, now=OCT12 - HOUR)
    ops.dispatch(db, c.staff.dispatcher, ticket, lead=c.unit("U-S-370705001"), now=OCT12)
    ops.sign(db, handler, ticket, now=OCT12 + 10 * MIN)
    ops.contact(db, handler, ticket, note="已电话联系", now=OCT12 + 20 * MIN)
    ops.finish(db, handler, ticket, result=reply, now=OCT12 + DAY)
    return ticket


@pytest.mark.parametrize(
    ("reply", "claim"),
    [
        ("工作人员第一时间前往现场查看，路灯已修复。", True),
        ("我街道立即派人赶赴现场处置。", True),
        ("执法人员到场核实后已责令整改。", True),
        ("网格员实地查看，垃圾已清运。", True),
        ("已到现场处理完毕。", True),
        ("经现场核实，问题属实，已修复。", True),
        ("建议您前往区政务服务中心办理。", False),
        ("请您赴市场监管局反映。", False),
        ("经核实，该事项不属我单位职责，请您前往区人社局现场咨询。", False),
        ("工作人员已告知，建议您到现场窗口办理。", False),
        ("已电话答复诉求人政策规定。", False),
    ],
)
def test_what_counts_as_a_claim_of_going_on_site(reply, claim):
    assert accountability.claims_onsite(reply) is claim


def test_advice_to_go_and_grids_no_worker_covers_are_no_evidence(
    db, user, month_builder, make_ticket
):
    c = month_builder()
    advised = claimed_on_grid(c, db, user, make_ticket, "建议您前往区政务服务中心办理。")
    told = claimed_on_grid(c, db, user, make_ticket, "请您赴市场监管局反映。")
    # A grid of the street, but not the grid worker's: no one of the unit could check in.
    elsewhere = claimed_on_grid(
        c, db, user, make_ticket, "工作人员已到现场查看，路灯已修复。", area=OTHER_GRID
    )
    claimed = claimed_on_grid(c, db, user, make_ticket, "工作人员已到现场查看，路灯已修复。")
    case = cases(db, onsite_without_check_in=1)[("U-S-370705001", ReferralKind.falsification)]
    items = finding(case, "onsite_without_check_in")["items"]
    assert [i["ticket"] for i in items] == [claimed.number]
    assert {advised.number, told.number, elsewhere.number}.isdisjoint(case.ticket_ids)


def test_detection_takes_as_many_queries_for_30_cases_as_for_3(
    db, user, month_builder, make_ticket, count_queries
):
    """One query per kind of fact, not per ticket: it runs on every page view and referral."""
    c = month_builder()
    unsolved = (Solved.unsolved, Satisfaction.dissatisfied)

    def add(first, n):
        for no in range(first, first + n):
            finished(c, no, "U-CGJ", "问题已解决。", unsolved)
            claimed_on_grid(c, db, user, make_ticket, "工作人员已到现场查看，已修复。")

    def detected():
        with count_queries() as counted:
            found = cases(db)
        falsified = found[("U-S-370705001", ReferralKind.falsification)]
        return (
            counted.count,
            len(falsified.ticket_ids),
            len(found[("U-CGJ", ReferralKind.falsification)].ticket_ids),
        )

    settings.update(
        db, None, {"accountability.onsite_without_check_in": 1, "accountability.unsolved_claims": 1}
    )
    add(1, 3)
    few, grids, claims = detected()
    assert (grids, claims) == (3, 3)
    add(4, 27)
    many, grids, claims = detected()
    assert (grids, claims) == (30, 30)
    assert many == few


def test_contact_reported_with_no_phone_to_call(db, month_builder):
    c = month_builder()
    handler = c.handler("U-CGJ")
    called = c.ticket(1, "U-CGJ", phone=False, contact=None, finish=None)
    ops.contact(db, handler, called, note="已电话联系诉求人，说明办理进度", now=OCT12 + HOUR)
    visited = c.ticket(2, "U-CGJ", phone=False, contact=None, finish=None)
    ops.contact(db, handler, visited, note="已上门与诉求人当面沟通", now=OCT12 + HOUR)
    with_phone = c.ticket(3, "U-ZJJ", finish=None)  # contacted by phone, has a phone
    found = cases(db)
    case = found[("U-CGJ", ReferralKind.falsification)]
    assert rules(case) == ["contact_without_phone"]
    items = finding(case, "contact_without_phone")["items"]
    assert [i["ticket"] for i in items] == [called.number]
    assert (
        items[0]["facts"][0]["text"] == "诉求人未留电话，报称已联系：已电话联系诉求人，说明办理进度"
    )
    assert with_phone.contacted_at is not None
    assert ("U-ZJJ", ReferralKind.falsification) not in found
    assert ("U-CGJ", ReferralKind.falsification) not in cases(db, contact_without_phone=2)


def test_other_months_are_not_this_months_cases(db, month_builder):
    c = month_builder()
    ticket = c.ticket(1, "U-CGJ", phone=False, contact=None, finish=None, at=local(11, 2))
    ops.contact(db, c.handler("U-CGJ"), ticket, note="已电话联系", now=local(11, 2, 10))
    assert cases(db) == {}


# -- referral --------------------------------------------------------------------------------------


@pytest.fixture
def shirking(db, month_builder):
    """城管局 and 住建局 passed one ticket back and forth in October."""
    c = month_builder()
    ticket = c.ticket(1, "U-CGJ", sign=None)
    give_back(c, ticket, "U-CGJ", at=OCT12 + 2 * HOUR, approve=True, to="U-ZJJ")
    give_back(c, ticket, "U-ZJJ", at=OCT12 + 5 * HOUR, approve=True, to="U-CGJ")
    return c


def refer(db, actor, unit="U-CGJ", kind="shirking", reason="一单多退，推诿扯皮", **kwargs):
    return accountability.refer(
        db,
        actor,
        month=MONTH,
        unit=accountability.unit_by_code(db, unit),
        kind=kind,
        reason=reason,
        now=kwargs.pop("now", AFTER),
        timezone="Asia/Shanghai",
        **kwargs,
    )


def test_a_supervisor_refers_a_case_with_its_evidence_frozen(db, user, shirking):
    supervisor = user("supervisor")
    referral, created = refer(db, supervisor)
    assert created
    assert (referral.month, referral.kind, referral.referred_at) == (
        MONTH,
        ReferralKind.shirking,
        AFTER,
    )
    assert referral.ticket_ids == [shirking.tickets[1].id]
    assert referral.evidence[0]["rule"] == "bounced"
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "referral.create")).one()
    assert entry.target == "2026-10/U-CGJ/shirking"
    assert entry.payload["rules"] == ["bounced"] and entry.actor_id == supervisor.id
    # The case now shows its referral; the list has it.
    case = cases(db)[("U-CGJ", ReferralKind.shirking)]
    assert case.referral.id == referral.id
    (row,) = accountability.referrals(db, MONTH)
    assert row["unit_name"] == "潍坊市城市管理局" and row["kind_label"] == "推诿扯皮"
    assert row["tickets"] == [shirking.tickets[1].number]
    assert row["at"] == "2026-11-03 09:00" and row["by"] == supervisor.name


def test_a_retry_is_not_a_duplicate_and_a_second_referral_is_refused(db, user, shirking):
    supervisor = user("supervisor")
    first, _ = refer(db, supervisor)
    again, created = refer(db, supervisor, now=AFTER + MIN)
    assert again.id == first.id and not created
    with pytest.raises(Conflict) as caught:
        refer(db, supervisor, reason="另一理由")
    assert caught.value.code == "REFERRAL_EXISTS"
    assert "不能重复移送" in caught.value.message
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 1
    assert (
        db.scalar(
            sa.select(sa.func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "referral.create")
        )
        == 1
    )
    # Another unit's case of the same month is its own referral.
    other, created = refer(db, supervisor, unit="U-ZJJ")
    assert created and other.id != first.id


def test_only_supervisors_refer_and_only_cases_with_a_reason(db, user, shirking):
    for name in ("leader", "cgj", "dispatcher", "admin"):
        with pytest.raises(Forbidden):
            refer(db, user(name))
    supervisor = user("supervisor")
    for reason in ("", "   ", None, 12, "x" * 2001, "a\x00b"):
        with pytest.raises(ValidationFailed):
            refer(db, supervisor, reason=reason)
    with pytest.raises(ValidationFailed):
        refer(db, supervisor, kind="bribery")
    with pytest.raises(Conflict) as caught:
        refer(db, supervisor, kind="falsification")  # no such case
    assert caught.value.code == "NO_CASE"
    with pytest.raises(Conflict):
        refer(db, supervisor, unit="U-WATER")
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


def test_the_callback_outcomes_other_than_unsolved_are_no_evidence(db, month_builder):
    c = month_builder()
    for no in (1, 2):
        finished(c, no, "U-CGJ", "问题已解决。", CallbackOutcome.refused)
    assert cases(db) == {}


def test_the_ranking_export_lists_the_months_referrals(db, user, shirking, tmp_path):
    from openpyxl import load_workbook

    from dashboards import exports, ranking

    refer(db, user("supervisor"))
    result = ranking.compute(
        db,
        MONTH,
        as_of=AFTER,
        settings=ranking.Settings(min_sample=3),
        timezone="Asia/Shanghai",
        mayors_office_code="U-SZFB",
    )
    path = tmp_path / "ranking.xlsx"
    exports.write_xlsx(result, path, referrals=accountability.referrals(db, MONTH))
    ws = load_workbook(path)["移送纪检监察"]
    assert "本月移送纪检监察 1 起" in ws["A2"].value
    assert [c.value for c in ws[3]] == list(exports.REFERRAL_HEADERS)
    row = [c.value for c in ws[4]]
    assert row[:2] == ["潍坊市城市管理局", "推诿扯皮"]
    assert row[2].startswith("1 件工单在单位间来回退单")
    assert row[3] == shirking.tickets[1].number
    assert row[4:] == ["一单多退，推诿扯皮", user("supervisor").name, "2026-11-03 09:00"]
    empty = tmp_path / "empty.xlsx"
    exports.write_xlsx(result, empty)
    assert load_workbook(empty)["移送纪检监察"]["A4"].value == "本月无移送纪检监察的单位"
