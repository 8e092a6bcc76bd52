"""个人信息保护法: the retention of requesters' personal data. A ticket closed longer ago than
``retention.months`` loses its requester's personal data; what the statistics read stays.

**Removed** (set empty): the requester's name and phone, the ticket's address (its area
stays, and its point is rounded to 0.001°, about 100 m, so hot-spot maps still place it), the
call's recording reference; the caller's number and recording of the incoming calls that
became the ticket; the recipient (phone or WeChat openid) of every SMS/WeChat copy about it;
event payload keys that name a person (``PERSONAL_KEYS``).

**Scrubbed** (free text kept, the personal data in it replaced by a note): phone numbers, ID
numbers and e-mail addresses (``hotline.privacy``'s detectors, the ones public pages use),
and the requester's name where it appears (the full name, and the surname with 先生/女士 …).
In the ticket's title, content, result, callback comment and exemption reason; the units'
reports and return notes; the extension requests' reasons and decisions; the callback
attempts' comments; every event's reason and payload texts; the outbox copies' and the
units' notifications' titles and bodies.

**Outside tickets**, once every due ticket is done: the citizen portal's verification codes
created and sign-ins expired before the cutoff are deleted (nothing reads them after they
expire), and texts to citizens about no ticket (a code's SMS) lose their recipient.

**Kept** for statistics (DOMAIN.md §5's ranking, the analysis pages): the number, channel,
type, category, urgency, area, units and their assignments, every time and deadline, states,
outcomes, callback results and satisfaction, exemptions, events' actions and actors, photos.

A ticket counts as closed by its ``closed_at`` (every final state sets it; a 再次反映 clears
it). ``tickets.redacted_at`` marks a ticket done, so a run is idempotent: a second run finds
nothing. ticket_events is append-only; migration 0015 lets it be updated only inside a
transaction that holds an unfinished, non-dry ``retention_runs`` row, so each batch is one
transaction: its run row, its redactions and its audit row, the row finished, committed.
Batches take their tickets ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two schedulers share
the work and never redact a ticket twice.

Why the default is 24 months: a requester may ask again about the same matter and the
centre checks repeats (重复件) and 回访 against earlier tickets for up to about two years, and
the yearly reviews compare with the previous year; after that only the statistics are used.
A centre with its own archive rule changes the setting (系统管理 › 个人信息保护).
"""

import datetime as dt
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from hotline import settings
from hotline.audit import audit
from hotline.db import utcnow
from hotline.enums import Role
from hotline.errors import Forbidden
from hotline.models import (
    Assignment,
    CallbackAttempt,
    CitizenSession,
    Extension,
    IncomingCall,
    Notification,
    OutboxMessage,
    RetentionRun,
    Ticket,
    TicketEvent,
    User,
    VerificationCode,
)
from hotline.privacy import scrub_personal

#: Tickets per batch (one transaction each); see bench/retention.py for its time.
BATCH = 1000
#: Who may run the job by hand and see its runs.
RUN_ROLES = frozenset({Role.admin})
#: Event payload keys whose value is a person's name, number or address: removed.
PERSONAL_KEYS = frozenset(
    {"requester_name", "requester_phone", "phone", "caller_phone", "recipient", "openid"}
)
NAME_REMOVED = "〔姓名已隐去〕"
#: How people are addressed by surname on the phone (张先生, 李阿姨).
_ADDRESS_FORMS = ("先生", "女士", "小姐", "师傅", "大爷", "大妈", "阿姨", "老师", "同志")
#: Decimal places a redacted ticket's point keeps (0.001° ≈ 100 m).
POINT_DECIMALS = 3

#: The kinds a report counts, in the order pages show them, with their Chinese names.
KINDS = {
    "requester_name": "诉求人姓名",
    "requester_phone": "诉求人电话",
    "address": "详细地址",
    "point": "坐标（取整到约百米）",
    "recording": "通话录音编号",
    "ticket_texts": "工单文字（标题、内容、结果、回访记录、豁免理由）",
    "unit_texts": "承办单位文字（办理报告、退单说明、延期理由）",
    "callback_comments": "回访尝试记录",
    "event_texts": "工单记录（事件说明与附加信息）",
    "call_numbers": "来电号码",
    "outbox": "短信/微信副本（收件人与正文）",
    "notifications": "单位通知正文",
    "citizen_codes": "市民端验证码记录（删除）",
    "citizen_sessions": "市民端登录记录（删除）",
    "outbox_unlinked": "与工单无关的市民短信收件人",
    "calls_unlinked": "未形成工单的来电号码与录音编号",
}


# -- the rule -------------------------------------------------------------------------------------


def cutoff_for(now, months):
    """The moment ``months`` calendar months before ``now`` (the 31st of a shorter month is
    its last day)."""
    index = now.year * 12 + now.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    days = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return now.replace(year=year, month=month, day=min(now.day, days))


def _name_pattern(name):
    """A pattern for the requester's name in free text, or None (no usable name)."""
    name = (name or "").strip()
    if len(name) < 2:
        return None  # one character would remove it from every word it is part of
    forms = [re.escape(name)]
    if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name):
        forms.append(re.escape(name[0]) + "(?:" + "|".join(_ADDRESS_FORMS) + ")")
    return re.compile("|".join(forms))


def scrub(text, name_pattern):
    """``text`` without phones, ID numbers, e-mails and the requester's name."""
    if not text:
        return text
    text = scrub_personal(text)
    if name_pattern is not None:
        text = name_pattern.sub(NAME_REMOVED, text)
    return text


def _scrub_json(value, name_pattern):
    if isinstance(value, str):
        return scrub(value, name_pattern)
    if isinstance(value, list):
        return [_scrub_json(v, name_pattern) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, name_pattern) for k, v in value.items() if k not in PERSONAL_KEYS}
    return value


def _changed(row, new, fields):
    """``new`` reduced to the fields whose value differs from ``row``'s."""
    return {f: new[f] for f in fields if new[f] != row[f]}


@dataclass
class _Plan:
    """What one batch changes: per table, the rows' new values (``{"_id": …, field: …}``)."""

    tickets: list = field(default_factory=list)
    rows: dict = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)

    def add(self, model, row_id, changes, kind):
        if changes:
            self.rows.setdefault(model, []).append({"_id": row_id, **changes})
            self.counts[kind] += 1


TICKET_TEXTS = ("title", "content", "result", "callback_comment", "exempt_reason")


def _plan_batch(session, tickets, now):
    """The redactions of ``tickets`` (rows of ``tickets``' columns): nothing is written."""
    plan = _Plan()
    ids = [t.id for t in tickets]
    names = {t.id: _name_pattern(t.requester_name) for t in tickets}
    for t in tickets:
        pattern = names[t.id]
        new = {
            "requester_name": None,
            "requester_phone": None,
            "address": None,
            "recording_ref": None,
            "lng": None if t.lng is None else round(t.lng, POINT_DECIMALS),
            "lat": None if t.lat is None else round(t.lat, POINT_DECIMALS),
            **{f: scrub(t._mapping[f], pattern) for f in TICKET_TEXTS},
        }
        row = t._mapping
        for kind, fields in (
            ("requester_name", ["requester_name"]),
            ("requester_phone", ["requester_phone"]),
            ("address", ["address"]),
            ("recording", ["recording_ref"]),
            ("point", ["lng", "lat"]),
            ("ticket_texts", list(TICKET_TEXTS)),
        ):
            if _changed(row, new, fields):
                plan.counts[kind] += 1
        plan.tickets.append({"_id": t.id, "redacted_at": now, **_changed(row, new, list(new))})

    def texts(model, columns, kind):
        table = model.__table__
        query = sa.select(table.c.id, table.c.ticket_id, *(table.c[c] for c in columns)).where(
            table.c.ticket_id.in_(ids)
        )
        for r in session.execute(query):
            pattern = names[r.ticket_id]
            values = r._mapping
            new = {}
            for c in columns:
                v = values[c]
                new[c] = _scrub_json(v, pattern) if isinstance(v, dict) else scrub(v, pattern)
            plan.add(model, r.id, _changed(values, new, columns), kind)

    texts(Assignment, ["report", "return_note"], "unit_texts")
    texts(Extension, ["reason", "decision_note"], "unit_texts")
    texts(CallbackAttempt, ["comment"], "callback_comments")
    texts(TicketEvent, ["reason", "payload"], "event_texts")
    texts(Notification, ["title", "body"], "notifications")
    for r in session.execute(
        sa.select(
            OutboxMessage.id,
            OutboxMessage.ticket_id,
            OutboxMessage.recipient,
            OutboxMessage.title,
            OutboxMessage.body,
            OutboxMessage.payload,
        ).where(OutboxMessage.ticket_id.in_(ids))
    ):
        pattern = names[r.ticket_id]
        new = {
            "recipient": None,
            "title": scrub(r.title, pattern),
            "body": scrub(r.body, pattern),
            "payload": _scrub_json(r.payload, pattern),
        }
        plan.add(OutboxMessage, r.id, _changed(r._mapping, new, list(new)), "outbox")
    for r in session.execute(
        sa.select(IncomingCall.id, IncomingCall.caller_phone, IncomingCall.recording_ref).where(
            IncomingCall.ticket_id.in_(ids)
        )
    ):
        new = {"caller_phone": None, "recording_ref": None}
        plan.add(IncomingCall, r.id, _changed(r._mapping, new, list(new)), "call_numbers")
    return plan


def _apply(session, plan):
    """Write ``plan``: per table and set of columns, one UPDATE … FROM unnest(…) on
    PostgreSQL (one statement for the batch: thousands of single-row UPDATEs cost seconds),
    an executemany elsewhere. The tickets' version moves on (an open form of one is stale)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    for model, rows in [(Ticket, plan.tickets), *plan.rows.items()]:
        table = model.__table__
        extra = {"version": table.c.version + 1} if model is Ticket else {}
        groups = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        for columns, same in groups.items():
            columns = [c for c in columns if c != "_id"]
            if not postgres:
                session.execute(
                    table.update().where(table.c.id == sa.bindparam("_id")).values(extra), same
                )
                continue
            session.execute(*_unnest_update(session, table, columns, same, extra))


def _unnest_update(session, table, columns, rows, extra):
    """``UPDATE table SET c = v.c … FROM unnest(arrays) AS v WHERE table.id = v._id``: the
    rows' values go as one array parameter per column (compiling a VALUES list of thousands
    of rows costs SQLAlchemy seconds)."""
    dialect = session.get_bind().dialect
    sets, arrays, params = [], [], {"_id": [r["_id"] for r in rows]}
    for i, c in enumerate(columns):
        kind = table.c[c].type.compile(dialect=dialect)
        values = [r[c] for r in rows]
        if "JSON" in kind:
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
            arrays.append(f"CAST(:p{i} AS text[])")
        else:
            arrays.append(f"CAST(:p{i} AS {kind}[])")
        params[f"p{i}"] = values
        sets.append(f"{c} = CAST(v.p{i} AS {kind})")
    sets.extend(f"{c} = {table.name}.{c} + 1" for c in extra)
    names = ", ".join(["_id", *(f"p{i}" for i in range(len(columns)))])
    statement = (
        f"UPDATE {table.name} SET {', '.join(sets)} "
        f"FROM unnest(CAST(:_id AS integer[]), {', '.join(arrays)}) AS v({names}) "
        f"WHERE {table.name}.id = v._id"
    )
    return sa.text(statement), params


def _sweep(session, cutoff, apply):
    """What is kept of a phone outside tickets, older than ``cutoff``: the citizen portal's
    verification codes and expired sign-ins (deleted: nothing reads them after they expire),
    the recipients of texts to citizens about no ticket (a code's text), and the caller's
    number and recording of calls never taken into a ticket. Counts by kind;
    ``apply`` makes the changes."""
    old_codes = VerificationCode.created_at < cutoff
    old_sessions = CitizenSession.expires_at < cutoff
    # Calls never taken into a ticket (unanswered, or not a matter for the hotline).
    calls = sa.and_(
        IncomingCall.ticket_id.is_(None),
        IncomingCall.received_at < cutoff,
        sa.or_(IncomingCall.caller_phone.is_not(None), IncomingCall.recording_ref.is_not(None)),
    )
    unlinked = sa.and_(
        OutboxMessage.ticket_id.is_(None),
        OutboxMessage.audience == "citizen",
        OutboxMessage.recipient.is_not(None),
        OutboxMessage.created_at < cutoff,
    )
    if apply:  # the rows changed, not counted first: another runner may take some
        done = lambda statement: session.execute(statement).rowcount  # noqa: E731
        counts = {
            "citizen_codes": done(sa.delete(VerificationCode).where(old_codes)),
            "citizen_sessions": done(sa.delete(CitizenSession).where(old_sessions)),
            "outbox_unlinked": done(
                sa.update(OutboxMessage).where(unlinked).values(recipient=None)
            ),
            "calls_unlinked": done(
                sa.update(IncomingCall).where(calls).values(caller_phone=None, recording_ref=None)
            ),
        }
    else:
        count = lambda model, where: session.scalar(  # noqa: E731
            sa.select(sa.func.count()).select_from(model).where(where)
        )
        counts = {
            "citizen_codes": count(VerificationCode, old_codes),
            "citizen_sessions": count(CitizenSession, old_sessions),
            "outbox_unlinked": count(OutboxMessage, unlinked),
            "calls_unlinked": count(IncomingCall, calls),
        }
    return +Counter(counts)


# -- runs ----------------------------------------------------------------------------------------


@dataclass
class Report:
    """What a run redacted, or would have (a dry run)."""

    dry_run: bool
    cutoff: dt.datetime
    tickets: int = 0
    counts: Counter = field(default_factory=Counter)
    oldest: dt.datetime | None = None
    newest: dt.datetime | None = None
    runs: list = field(default_factory=list)
    seconds: float = 0.0
    #: Why nothing ran (the setting is off), or None.
    skipped: str | None = None
    #: A dry run stopped by ``max_batches`` with more tickets due than it counted.
    capped: bool = False

    def note(self, tickets, counts):
        self.tickets += len(tickets)
        self.counts.update(counts)
        for t in tickets:
            if self.oldest is None or t.closed_at < self.oldest:
                self.oldest = t.closed_at
            if self.newest is None or t.closed_at > self.newest:
                self.newest = t.closed_at

    def lines(self):
        """The report in Chinese, one line each (the CLI prints it)."""
        head = "试运行（未作任何修改）" if self.dry_run else "已执行"
        if self.skipped:
            return [f"个人信息保护：{self.skipped}"]
        out = [
            f"个人信息保护 {head}：{self.cutoff:%Y-%m-%d %H:%M} UTC 之前归档的工单",
            f"  工单数：{self.tickets}"
            + ("（仅统计了一部分，到期的还有更多）" if self.capped else ""),
        ]
        if self.tickets:
            out.append(f"  最早归档：{self.oldest:%Y-%m-%d}，最晚归档：{self.newest:%Y-%m-%d}")
        for kind, label in KINDS.items():
            out.append(f"  {label}：{self.counts.get(kind, 0)}")
        out.append(f"  用时：{self.seconds:.2f} 秒")
        return out

    def as_dict(self):
        return {
            "dry_run": self.dry_run,
            "cutoff": self.cutoff.isoformat(),
            "tickets": self.tickets,
            "counts": {k: self.counts.get(k, 0) for k in KINDS},
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "runs": self.runs,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
        }


def enabled(session):
    return bool(settings.get(session, "retention.enabled"))


def current_cutoff(session, now):
    return cutoff_for(now, settings.get(session, "retention.months"))


_COLUMNS = (
    Ticket.id,
    Ticket.closed_at,
    Ticket.requester_name,
    Ticket.requester_phone,
    Ticket.address,
    Ticket.recording_ref,
    Ticket.lng,
    Ticket.lat,
    *(getattr(Ticket, f) for f in TICKET_TEXTS),
)


def _due(cutoff, after, batch):
    return (
        sa.select(*_COLUMNS)
        .where(Ticket.redacted_at.is_(None), Ticket.closed_at < cutoff, Ticket.id > after)
        .order_by(Ticket.id)
        .limit(batch)
    )


def require_runner(actor):
    if actor is not None and actor.role not in RUN_ROLES:
        raise Forbidden(
            "只有系统管理员可以运行个人信息脱敏",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value},
        )


def run(
    session_factory,
    *,
    actor=None,
    dry_run=False,
    now=None,
    batch=BATCH,
    force=False,
    max_batches=None,
):
    """Redact every ticket due (closed before the cutoff, not yet redacted), one committed
    transaction per ``batch`` tickets; or, ``dry_run``, count what would be redacted and
    change nothing but a finished dry-run row and its audit row. ``actor`` is None for the
    scheduler. With the setting off only ``force`` (a person's explicit run) runs;
    ``max_batches`` stops a run after that many batches (the benchmark times batches
    so; a dry run so stopped counts only those). Returns a Report."""
    require_runner(actor)
    started = time.perf_counter()
    now = now or utcnow()
    session = session_factory()
    try:
        cutoff = current_cutoff(session, now)
        report = Report(dry_run=dry_run, cutoff=cutoff)
        if not enabled(session) and not force and not dry_run:
            report.skipped = "已关闭（系统管理 › 个人信息保护）"
            return report
        actor_id = actor.id if actor else None
        if dry_run:
            after, batches = 0, 0
            while max_batches is None or batches < max_batches:
                tickets = session.execute(_due(cutoff, after, batch)).all()
                if not tickets:
                    break
                report.note(tickets, _plan_batch(session, tickets, now).counts)
                after, batches = tickets[-1].id, batches + 1
            report.capped = batches == max_batches and bool(
                session.execute(_due(cutoff, after, 1)).first()
            )
            report.counts.update(_sweep(session, cutoff, apply=False))
            run_row = RetentionRun(
                dry_run=True,
                cutoff=cutoff,
                started_at=now,
                actor_id=actor_id,
                tickets=report.tickets,
                counts=_stored_counts(report),
            )
            session.add(run_row)
            run_row.finished_at = utcnow()
            session.flush()
            audit(
                session,
                actor,
                "retention.dry_run",
                target=f"{report.tickets} 张工单",
                payload={"run": run_row.id, **_audit_payload(report)},
            )
            session.commit()
            report.runs.append(run_row.id)
        else:
            after = 0
            postgres = session.get_bind().dialect.name == "postgresql"
            while max_batches is None or len(report.runs) < max_batches:
                query = _due(cutoff, after, batch)
                if postgres:
                    query = query.with_for_update(of=Ticket, skip_locked=True)
                tickets = session.execute(query).all()
                if not tickets:
                    session.rollback()
                    # Every due ticket done: what is kept of phones outside tickets.
                    _record_sweep(session, actor, cutoff, report)
                    break
                after = tickets[-1].id
                run_row = RetentionRun(
                    dry_run=False, cutoff=cutoff, started_at=utcnow(), actor_id=actor_id
                )
                session.add(run_row)
                session.flush()  # the run row first: the events' trigger looks for it
                plan = _plan_batch(session, tickets, now)
                _apply(session, plan)
                batch_report = Report(dry_run=False, cutoff=cutoff)
                batch_report.note(tickets, plan.counts)
                run_row.tickets = batch_report.tickets
                run_row.counts = _stored_counts(batch_report)
                run_row.finished_at = utcnow()
                session.flush()
                audit(
                    session,
                    actor,
                    "retention.redact",
                    target=f"{batch_report.tickets} 张工单",
                    payload={"run": run_row.id, **_audit_payload(batch_report)},
                )
                session.commit()
                report.note(tickets, plan.counts)
                report.runs.append(run_row.id)
        report.seconds = time.perf_counter() - started
        return report
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def _record_sweep(session, actor, cutoff, report):
    """The sweep (``_sweep``) in a transaction of its own, recorded as a run of no ticket."""
    counts = _sweep(session, cutoff, apply=True)
    if not counts:
        session.rollback()
        return
    swept = Report(dry_run=False, cutoff=cutoff, counts=counts)
    run_row = RetentionRun(
        dry_run=False,
        cutoff=cutoff,
        started_at=utcnow(),
        finished_at=utcnow(),
        actor_id=actor.id if actor else None,
        tickets=0,
        counts=_stored_counts(swept),
    )
    session.add(run_row)
    session.flush()
    audit(
        session,
        actor,
        "retention.redact",
        target="市民端记录",
        payload={"run": run_row.id, **_audit_payload(swept)},
    )
    session.commit()
    report.counts.update(counts)
    report.runs.append(run_row.id)


def _stored_counts(report):
    return {
        **{k: report.counts.get(k, 0) for k in KINDS},
        "capped": report.capped,
        "oldest": report.oldest.isoformat() if report.oldest else None,
        "newest": report.newest.isoformat() if report.newest else None,
    }


def _audit_payload(report):
    return {
        "cutoff": report.cutoff.isoformat(),
        "tickets": report.tickets,
        "counts": _stored_counts(report),
    }


def recent_runs(session, limit=30):
    """The latest runs, newest first, with their actors' names."""
    return session.execute(
        sa.select(RetentionRun, User.name)
        .outerjoin(User, User.id == RetentionRun.actor_id)
        .order_by(RetentionRun.id.desc())
        .limit(limit)
    ).all()
