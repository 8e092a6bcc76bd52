"""质检: quality inspection of intake (issue 17 §6). Every day a random sample of each
operator's tickets goes to the inspectors (质检员), who score each on a checklist with
comments; each operator reads their own results, inspectors and supervisors everyone's
monthly scores.

**What is sampled.** The tickets an operator received (``Ticket.created_by`` is a user
whose role is 话务员) on one local day, whatever the channel and whatever became of them
(answered or transferred at intake, merged, dispatched): the checklist judges the intake,
not the handling. Per operator and day ``inspection.daily_per_operator`` tickets, or
``inspection.percent`` per cent of them if that is more, never more than there are.

**Reproducible and idempotent.** The draw is ``random.Random(f"{day}:{operator id}")``
over the operator's tickets of the day in id order, so the same day draws the same
tickets. A day is sampled once per operator: an operator with a sample for the day gets
no more (re-running a day adds nothing, even after the settings changed), and a ticket is
in at most one sample (``inspections.ticket_id`` is unique).

**When.** The scheduler's job (``run_due``, hourly) samples every finished local day (over
for ``SETTLE``) from the day after the latest sampled one, at most ``CATCH_UP_DAYS`` back: days
missed while no scheduler ran are caught up; a day without tickets is looked at again on
the next run and still yields nothing. One transaction; on PostgreSQL under an advisory
lock, so a second scheduler skips the round.

**Late arrivals are not topped up, on purpose.** A ticket whose ``received_at`` falls on a
day already sampled but which reaches the table later (after ``SETTLE``) is never sampled.
Live intake cannot do this: ``receive`` stamps ``received_at`` with the moment of its own
transaction, committed at once. What can: a 拆单 child (``dispatch.cohandling``; it keeps its
parent's moment, and the parent, the operator's intake it was split from, was in the day's
draw), and backfills, imports and the demo history, which pass a ``now`` in the past and are
no intake to judge. The quota is a floor per operator and day, met by the day as it stood;
topping it up from a few late tickets would make the draw depend on when the job ran and
break "a day is sampled once" for no better picture of an operator's intake.

**Claiming** (``claim``, 领取; ``release``, 放弃领取): an inspector claims a pending sample
before scoring it, so two inspectors never type out the same sample's scores: the form is
shown to its holder only, the queue names the holder, and a sample another inspector holds
is refused (``INSPECTION_CLAIMED``) to the others, also when they score through the API.
The holder is ``Inspection.inspector_id`` while the sample is pending (then the scorer: the
same person), so a claim needs no column of its own. A claim lasts until scored or released;
the holder or a supervisor releases it (an inspector away leaves no sample stuck). Both are
audited (``inspection.claim``, ``inspection.release``). Scoring an unclaimed sample claims
and scores it at once.

**Scoring** (``inspect``, one operation, audited ``inspection.inspect``): every item of
``CHECKLIST`` gets whole points from 0 to its maximum (the maxima add up to 100, the
total is the score); points deducted need a comment on the item; an overall comment is
optional. A sample is scored once: a second submission is refused (``INSPECTION_DONE``),
also when two inspectors submit at the same moment (the write is conditional on the sample
still pending), so what an operator read is never silently changed.

The module sits in ``dispatch`` with the rest of supervision (the table's docstring says
so): the form shows the ticket's intake decision as the ticket's history names it
(``dispatch.states``), and the layers let the dashboards above read the scores.
"""

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from dispatch.states import event_label
from hotline import settings
from hotline.audit import audit
from hotline.db import local_today, utcnow
from hotline.enums import InspectionState, Role
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import Inspection, Ticket, TicketEvent, User
from hotline.schemas import DAY_YEARS, Fields, iso, labelled, local_day, month_days, month_of_text


@dataclass(frozen=True)
class CheckItem:
    key: str
    label: str
    maximum: int
    #: What the inspector looks at (shown beside the item on the form).
    help: str


#: The checklist and its maxima: the one place they are defined (the maxima add up to 100).
CHECKLIST = (
    CheckItem("category", "分类准确", 20, "事项分类、诉求类型和紧急程度选择正确"),
    CheckItem("address", "地址准确", 20, "地址和所属区域记录准确，承办单位能找到地方"),
    CheckItem("content", "内容完整", 25, "时间、地点、事由和诉求记录完整，表述清楚"),
    CheckItem("courtesy", "服务规范", 15, "文明用语，规范应答，耐心倾听"),
    CheckItem("transfer", "转办正确", 20, "直接办结、转办、并单或交派单的决定正确"),
)
ITEMS = {item.key: item for item in CHECKLIST}
MAX_SCORE = sum(item.maximum for item in CHECKLIST)
if MAX_SCORE != 100:  # pragma: no cover - a wrong edit of the table above
    raise RuntimeError(f"the checklist's maxima add up to {MAX_SCORE}, not 100")

#: Who scores samples; who reads every operator's scores; who reads their own.
INSPECT_ROLES = frozenset({Role.inspector})
SCORE_ROLES = frozenset({Role.inspector, Role.supervisor})
OWN_ROLES = frozenset({Role.operator})

ITEM_COMMENT_MAX = 500
COMMENT_MAX = 2000
#: How far back the scheduler samples days it missed.
CATCH_UP_DAYS = 31
#: A day is sampled once it has been over this long: a ticket received in its last second
#: and committed a moment later is still in it.
SETTLE = dt.timedelta(minutes=15)
JOB_INTERVAL_SECONDS = 3600
#: The advisory lock of the sampling job (PostgreSQL): one sampler at a time.
SAMPLE_LOCK = 0x12345_17_06
#: The actions that decide what becomes of a ticket at intake (the checklist's 转办正确).
INTAKE_DECISIONS = ("resolve_at_intake", "transfer", "merge", "dispatch", "designate")


# -- sampling ----------------------------------------------------------------------------------


def quota(tickets, per_operator, percent):
    """How many of an operator's ``tickets`` of one day are sampled."""
    by_share = -(-tickets * percent // 100)  # rounded up: 1 % of 30 tickets is one
    return min(tickets, max(per_operator, by_share))


def _day_bounds(day, timezone):
    zone = ZoneInfo(timezone)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + dt.timedelta(days=1)
    # Aware arithmetic is wall-clock: the next local midnight.
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def sample_day(session, day, timezone, now=None):
    """Sample the local ``day``: each operator without a sample for it gets theirs. Returns
    the new Inspection rows (flushed); the caller commits."""
    start, end = _day_bounds(day, timezone)
    rows = session.execute(
        sa.select(Ticket.id, Ticket.created_by_id)
        .join(User, User.id == Ticket.created_by_id)
        .where(User.role == Role.operator, Ticket.received_at >= start, Ticket.received_at < end)
        .order_by(Ticket.id)
    ).all()
    if not rows:
        return []
    by_operator = defaultdict(list)
    for ticket_id, operator_id in rows:
        by_operator[operator_id].append(ticket_id)
    done = set(session.scalars(sa.select(Inspection.operator_id).where(Inspection.day == day)))
    per_operator = settings.get(session, "inspection.daily_per_operator")
    percent = settings.get(session, "inspection.percent")
    now = now or utcnow()
    added = []
    for operator_id in sorted(by_operator):
        if operator_id in done:
            continue
        tickets = by_operator[operator_id]
        draw = random.Random(f"{day.isoformat()}:{operator_id}")
        for ticket_id in sorted(draw.sample(tickets, quota(len(tickets), per_operator, percent))):
            row = Inspection(
                ticket_id=ticket_id,
                operator_id=operator_id,
                day=day,
                sampled_at=now,
                state=InspectionState.pending,
            )
            session.add(row)
            added.append(row)
    session.flush()
    return added


@dataclass
class SamplingResult:
    days: list = field(default_factory=list)
    sampled: int = 0


def days_due(session, today):
    """The finished local days to sample before ``today``: after the latest sampled day,
    at most ``CATCH_UP_DAYS`` back."""
    first = today - dt.timedelta(days=CATCH_UP_DAYS)
    latest = session.scalar(sa.select(sa.func.max(Inspection.day)))
    if latest is not None:
        first = max(first, latest + dt.timedelta(days=1))
    return [first + dt.timedelta(days=n) for n in range((today - first).days)]


def run_due(session_factory, now=None, timezone="Asia/Shanghai"):
    """The scheduler's job: sample every day due (``days_due``) in one transaction,
    committed. Returns a SamplingResult, or None when another scheduler holds the lock or
    committed the same samples first."""
    now = now or utcnow()
    session = session_factory()
    try:
        if session.get_bind().dialect.name == "postgresql":
            if not session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(SAMPLE_LOCK))):
                session.rollback()
                return None
        result = SamplingResult()
        for day in days_due(session, local_today(timezone, now - SETTLE)):
            result.days.append(day)
            result.sampled += len(sample_day(session, day, timezone, now))
        session.commit()
        return result
    except IntegrityError:
        session.rollback()  # another sampler's rows reached the table first: they stand
        return None
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


# -- scoring -----------------------------------------------------------------------------------


def _refuse_role(actor, what):
    raise Forbidden(
        f"“{actor.role.label}”角色无权{what}",
        code="ROLE_NOT_ALLOWED",
        details={"role": actor.role.value},
    )


def validated(checks, comment):
    """``checks`` ({item key: {"points", "comment"}}) and the overall ``comment`` checked
    against ``CHECKLIST``: (checks as stored, comment), or ValidationFailed naming every
    problem in Chinese (``INSPECTION_INVALID``)."""
    if not isinstance(checks, dict) or not all(isinstance(v, dict) for v in checks.values()):
        raise ValidationFailed(
            "评分项格式不正确：每一项须含得分（points）和说明（comment）",
            code="INSPECTION_INVALID",
            details={"checks": "格式不正确"},
        )
    flat = {
        f"{key}_{part}": value
        for key, item in checks.items()
        for part, value in item.items()
        if value is not None
    }
    if comment is not None:
        flat["comment"] = comment
    fields = Fields(flat)
    stored = {}
    for item in CHECKLIST:
        points = fields.integer(
            f"{item.key}_points",
            f"“{item.label}”得分",
            required=True,
            minimum=0,
            maximum=item.maximum,
        )
        note = fields.text(
            f"{item.key}_comment",
            f"“{item.label}”说明",
            max_len=ITEM_COMMENT_MAX,
            multiline=True,
        )
        if points is not None and points < item.maximum and not note:
            fields.fail(
                f"{item.key}_comment",
                f"“{item.label}”扣了 {item.maximum - points} 分，请填写扣分说明",
            )
        stored[item.key] = {"points": points, "comment": note}
    overall = fields.text("comment", "总体评语", max_len=COMMENT_MAX, multiline=True)
    for name in flat:
        if name not in fields.read:
            fields.fail(name, f"没有这个评分项：{name}")
    if fields.errors:
        raise ValidationFailed(
            "质检评分未提交：" + "；".join(fields.errors.values()),
            code="INSPECTION_INVALID",
            details=fields.errors,
        )
    return stored, overall


def submission(data):
    """A page's form or an API body, flat (``category_points``, ``category_comment`` …,
    ``comment``), as ``inspect``'s keyword arguments. Values are checked by ``inspect``;
    a field naming no checklist item is refused."""
    checks = {item.key: {} for item in CHECKLIST}
    unknown = {}
    for name, value in data.items():
        if name == "comment":
            continue
        key, _, part = name.rpartition("_")
        if key in ITEMS and part in ("points", "comment"):
            checks[key][part] = value
        else:
            unknown[name] = "没有这个评分项"
    if unknown:
        raise ValidationFailed(
            f"质检评分未提交：没有这个评分项“{next(iter(unknown))}”",
            code="INSPECTION_INVALID",
            details=unknown,
        )
    return {"checks": checks, "comment": data.get("comment")}


def _free_or_mine(actor):
    """The condition of a pending sample ``actor`` may claim or score: unclaimed or theirs."""
    return sa.or_(Inspection.inspector_id.is_(None), Inspection.inspector_id == actor.id)


def _check_pending_for(inspection, actor):
    if inspection.state != InspectionState.pending:
        raise _already_done(inspection)
    if inspection.inspector_id not in (None, actor.id):
        raise _claimed(inspection)


def _refused_write(session, inspection):
    """Why a conditional write of a pending sample touched no row: scored or claimed since."""
    session.refresh(inspection)
    if inspection.state != InspectionState.pending:
        return _already_done(inspection)
    return _claimed(inspection)


def claim(session, actor, inspection, *, now=None):
    """领取: ``actor`` (an inspector) takes a pending sample to score it; the others can no
    longer score it. Claiming one's own sample again changes nothing. Audited; the caller
    commits."""
    if actor.role not in INSPECT_ROLES:
        _refuse_role(actor, "领取质检样本")
    _check_pending_for(inspection, actor)
    if inspection.inspector_id == actor.id:
        return inspection
    written = session.execute(
        sa.update(Inspection)
        .where(
            Inspection.id == inspection.id,
            Inspection.state == InspectionState.pending,
            _free_or_mine(actor),
        )
        .values(inspector_id=actor.id)
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:
        raise _refused_write(session, inspection)
    session.refresh(inspection)
    audit(
        session,
        actor,
        "inspection.claim",
        target=inspection.ticket.number,
        payload={"inspection": inspection.id},
    )
    session.flush()
    return inspection


def release(session, actor, inspection, *, now=None):
    """放弃领取: the holder, or a supervisor (the holder away), gives a claimed pending
    sample back to the queue. Audited; the caller commits."""
    if actor.role not in SCORE_ROLES:
        _refuse_role(actor, "放弃领取质检样本")
    if inspection.state != InspectionState.pending:
        raise _already_done(inspection)
    holder = inspection.inspector
    if holder is None:
        raise Conflict(
            "该质检样本尚未被领取",
            code="INSPECTION_NOT_CLAIMED",
            details={"inspection": inspection.id},
        )
    if actor.role != Role.supervisor and holder.id != actor.id:
        raise _claimed(inspection)
    written = session.execute(
        sa.update(Inspection)
        .where(
            Inspection.id == inspection.id,
            Inspection.state == InspectionState.pending,
            Inspection.inspector_id == holder.id,
        )
        .values(inspector_id=None)
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:
        raise _refused_write(session, inspection)
    session.refresh(inspection)
    audit(
        session,
        actor,
        "inspection.release",
        target=inspection.ticket.number,
        payload={"inspection": inspection.id, "holder": holder.username},
    )
    session.flush()
    return inspection


def inspect(session, actor, inspection, *, checks, comment=None, now=None):
    """质检评分: score a sampled ticket on the checklist. Once per sample (a second
    submission, or a lost race, is refused with ``INSPECTION_DONE``), and only by the
    sample's holder when it is claimed (``INSPECTION_CLAIMED``); audited; the caller
    commits."""
    if actor.role not in INSPECT_ROLES:
        _refuse_role(actor, "进行质检评分")
    _check_pending_for(inspection, actor)
    stored, overall = validated(checks, comment)
    score = sum(item["points"] for item in stored.values())
    now = now or utcnow()
    written = session.execute(
        sa.update(Inspection)
        .where(
            Inspection.id == inspection.id,
            Inspection.state == InspectionState.pending,
            _free_or_mine(actor),
        )
        .values(
            state=InspectionState.done,
            inspector_id=actor.id,
            inspected_at=now,
            checks=stored,
            score=score,
            comment=overall,
        )
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:
        raise _refused_write(session, inspection)
    session.refresh(inspection)
    audit(
        session,
        actor,
        "inspection.inspect",
        target=inspection.ticket.number,
        payload={
            "inspection": inspection.id,
            "operator": inspection.operator.username,
            "day": inspection.day.isoformat(),
            "score": score,
            "checks": stored,
            "comment": overall,
        },
    )
    session.flush()
    return inspection


def _already_done(inspection):
    return Conflict(
        "该工单已质检评分，不能重复提交",
        code="INSPECTION_DONE",
        details={"inspection": inspection.id},
    )


def _claimed(inspection):
    holder = inspection.inspector
    name = holder.name if holder else "其他质检员"
    return Conflict(
        f"该质检样本已由{name}领取，只有领取人可以评分",
        code="INSPECTION_CLAIMED",
        details={"inspection": inspection.id, "holder": holder.username if holder else None},
    )


# -- reading -----------------------------------------------------------------------------------

_OPTIONS = (
    selectinload(Inspection.ticket).selectinload(Ticket.category),
    selectinload(Inspection.ticket).selectinload(Ticket.area),
    selectinload(Inspection.operator),
    selectinload(Inspection.inspector),
)


def get(session, actor, inspection_id):
    """One sample, for an inspector or a supervisor (an operator reads theirs on their own
    page, ``results_of``)."""
    if actor.role not in SCORE_ROLES:
        _refuse_role(actor, "查看质检记录")
    row = session.scalars(
        sa.select(Inspection).where(Inspection.id == inspection_id).options(*_OPTIONS)
    ).first()
    if row is None:
        raise NotFound(f"质检记录不存在：{inspection_id}", code="INSPECTION_NOT_FOUND")
    return row


def queue(session, actor, page, *, operator_id=None, day=None):
    """待质检: pending samples, oldest day first. Returns (total, rows of ``page``)."""
    if actor.role not in SCORE_ROLES:
        _refuse_role(actor, "查看质检队列")
    query = sa.select(Inspection).where(Inspection.state == InspectionState.pending)
    if operator_id is not None:
        query = query.where(Inspection.operator_id == operator_id)
    if day is not None:
        query = query.where(Inspection.day == day)
    return page.of(session, query, Inspection.day, Inspection.id, options=_OPTIONS)


def next_pending(session, actor):
    """The id of the oldest sample still pending that ``actor`` may score (unclaimed or
    theirs; None: nothing left for them)."""
    return session.scalar(
        sa.select(Inspection.id)
        .where(Inspection.state == InspectionState.pending, _free_or_mine(actor))
        .order_by(Inspection.day, Inspection.id)
        .limit(1)
    )


def operators(session):
    """Every operator (话务员), by name: the queue's and the scores' operator picker."""
    return session.scalars(
        sa.select(User).where(User.role == Role.operator).order_by(User.name, User.username)
    ).all()


def recording_url(ref):
    """The address to hear a ticket's call at, when the phone system's recording reference
    (``Ticket.recording_ref``, as the switch announced it: ``POST /calls`` ``recording``) is
    a web address (http/https), else None: the reference is then a code of the switch's own
    storage, to be played there. The page links to the address rather than embedding an
    ``<audio>`` player, which the Content-Security-Policy (media from this site only) would
    block for the phone system's server."""
    if not ref:
        return None
    parts = urlsplit(ref.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return ref.strip()
    return None


def intake_decision(session, ticket):
    """What became of ``ticket`` at intake: the first deciding event after 受理 (直接办结,
    转办, 并单, 派单, 指定) as {label, reason, actor, at}, or None while it waits."""
    event = session.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action.in_(INTAKE_DECISIONS))
        .order_by(TicketEvent.id)
        .limit(1)
    ).first()
    if event is None:
        return None
    actor = session.get(User, event.actor_id) if event.actor_id else None
    details = []
    if ticket.intake_outcome is not None and event.action == "resolve_at_intake":
        details.append(ticket.intake_outcome.label)
    if ticket.transfer_target is not None and event.action == "transfer":
        details.append(f"转至{ticket.transfer_target.label}")
    if event.action == "merge" and (event.payload or {}).get("into"):
        details.append(f"并入工单 {event.payload['into']}")
    return {
        "label": event_label(event.action),
        "details": "，".join(details),
        "reason": event.reason,
        "actor": actor,
        "at": event.created_at,
    }


def queue_filters(session, args, errors):
    """The queue's filters from query ``args``: ``operator`` (a login name, chosen by name
    from ``operators``) and ``day`` (YYYY-MM-DD). Returns (operators, the operator or None,
    the day or None); bad values go to ``errors`` in Chinese."""
    everyone = operators(session)
    chosen = (args.get("operator") or "").strip()
    operator = next((o for o in everyone if o.username == chosen), None)
    if chosen and operator is None:
        errors["operator"] = "没有这名话务员"
    day_text = (args.get("day") or "").strip()
    day = local_day(day_text, "day", errors) if day_text else None
    return everyone, operator, day


def parse_month(raw, errors, today):
    """``YYYY-MM`` from a query (``today``'s month when absent) as (year, month), or None
    with a Chinese reason in ``errors["month"]`` (``hotline.schemas.month_of_text``)."""
    if raw is None or not raw.strip():
        return today.year, today.month
    month = month_of_text(raw)
    if month is None:
        errors["month"] = (
            f"月份格式应为 YYYY-MM，例如 {today:%Y-%m}（{DAY_YEARS[0]}–{DAY_YEARS[1]} 年）"
        )
    return month


@dataclass
class OperatorScore:
    """One operator's month: inspected samples, their average, each item's average, and the
    items furthest below their maximum (the ones to coach)."""

    operator: User
    count: int
    pending: int
    average: float | None
    items: dict
    lowest: list


#: Items whose average is at most this share of the maximum are "lowest" (to coach).
LOWEST_SHARE = 0.9
LOWEST_SHOWN = 2


def _score_of(operator, done, pending):
    if not done:
        return OperatorScore(operator, 0, pending, None, {}, [])
    items = {
        item.key: round(sum(r.checks[item.key]["points"] for r in done) / len(done), 1)
        for item in CHECKLIST
    }
    shares = sorted((items[item.key] / item.maximum, n, item) for n, item in enumerate(CHECKLIST))
    lowest = [item for share, _, item in shares if share <= LOWEST_SHARE][:LOWEST_SHOWN]
    average = round(sum(r.score for r in done) / len(done), 1)
    return OperatorScore(operator, len(done), pending, average, items, lowest)


def monthly_scores(session, actor, month):
    """质检成绩: each operator's month (samples of days in ``month``), by operator name.
    Operators with neither done nor pending samples are left out."""
    if actor.role not in SCORE_ROLES:
        _refuse_role(actor, "查看全体话务员的质检成绩")
    first, following = month_days(month)
    rows = session.scalars(
        sa.select(Inspection)
        .where(Inspection.day >= first, Inspection.day < following)
        .options(selectinload(Inspection.operator))
    ).all()
    grouped = defaultdict(list)
    for row in rows:
        grouped[row.operator_id].append(row)
    scores = []
    for samples in grouped.values():
        done = [r for r in samples if r.state == InspectionState.done]
        scores.append(_score_of(samples[0].operator, done, len(samples) - len(done)))
    scores.sort(key=lambda s: (s.operator.name, s.operator.username))
    return scores


def results_of(session, actor, month):
    """我的质检: the operator's own inspected samples of ``month`` (newest first) and their
    OperatorScore. Only ever the actor's own: there is no argument naming another."""
    if actor.role not in OWN_ROLES:
        _refuse_role(actor, "查看本人质检结果")
    first, following = month_days(month)
    samples = session.scalars(
        sa.select(Inspection)
        .where(
            Inspection.operator_id == actor.id,
            Inspection.day >= first,
            Inspection.day < following,
        )
        .options(*_OPTIONS)
        .order_by(Inspection.day.desc(), Inspection.id.desc())
    ).all()
    done = [r for r in samples if r.state == InspectionState.done]
    return done, _score_of(actor, done, len(samples) - len(done))


def item_rows(inspection):
    """The checklist of a scored sample: [(CheckItem, points, comment)]."""
    checks = inspection.checks or {}
    return [
        (item, checks.get(item.key, {}).get("points"), checks.get(item.key, {}).get("comment"))
        for item in CHECKLIST
    ]


# -- the JSON API's shapes ------------------------------------------------------------------------


def _person(user):
    return {"username": user.username, "name": user.name} if user else None


def sample_to_dict(row, *, full=False, decision=None, phone=None):
    """One sample and, once scored, the checklist's points and comments; ``full``: with its
    ticket as taken (``decision``: ``intake_decision``; ``phone`` as the reader may see it)."""
    ticket = row.ticket
    data = {
        "id": row.id,
        "day": row.day.isoformat(),
        "state": labelled(row.state),
        "operator": _person(row.operator),
        "ticket": {
            "number": ticket.number,
            "received_at": iso(ticket.received_at),
            "channel": labelled(ticket.channel),
            "request_type": labelled(ticket.request_type),
            "title": ticket.title,
            "status": labelled(ticket.status),
            "category": (
                {"code": ticket.category.code, "name": ticket.category.name}
                if ticket.category
                else None
            ),
        },
        "inspector": _person(row.inspector),
        "inspected_at": iso(row.inspected_at),
        "score": row.score,
        "checks": [
            {
                "item": item.key,
                "label": item.label,
                "maximum": item.maximum,
                "points": points,
                "comment": comment,
            }
            for item, points, comment in item_rows(row)
        ]
        if row.state == InspectionState.done
        else None,
        "comment": row.comment,
    }
    if full:
        data["ticket"].update(
            {
                "content": ticket.content,
                "address": ticket.address,
                "area": {"code": ticket.area.code, "name": ticket.area.name}
                if ticket.area
                else None,
                "requester_name": ticket.requester_name,
                "requester_phone": phone,
                "recording_ref": ticket.recording_ref,
                "recording_url": recording_url(ticket.recording_ref),
                "intake_decision": {
                    "label": decision["label"],
                    "details": decision["details"],
                    "reason": decision["reason"],
                    "by": _person(decision["actor"]),
                    "at": iso(decision["at"]),
                }
                if decision
                else None,
            }
        )
    return data


def score_to_dict(score):
    return {
        "operator": _person(score.operator),
        "count": score.count,
        "pending": score.pending,
        "average": score.average,
        "items": [
            {
                "item": item.key,
                "label": item.label,
                "maximum": item.maximum,
                "average": score.items.get(item.key),
            }
            for item in CHECKLIST
        ],
        "lowest": [item.key for item in score.lowest],
    }
