"""Pages of the dispatcher (派单台) and the unit handler (待办工单), and the ticket page that
every role that may see a ticket opens.

Views parse forms, call ``dispatch.operations``, commit and render; every rule lives in the
operations (which check role, state, unit and version again whatever the page showed). A
refused action re-renders the ticket page with the Chinese message and what the user typed.
"""

import dataclasses
import itertools

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from dispatch import access, calendar, forms, operations, timers
from dispatch.states import IN_HANDLING, TRANSITIONS
from hotline import attachments
from hotline.db import get_session, utcnow
from hotline.enums import (
    AssignmentRole,
    DecisionStatus,
    IntakeOutcome,
    ReturnReason,
    Role,
    TicketStatus,
    TimerKind,
    TransferTarget,
    UnitKind,
)
from hotline.errors import Conflict, HotlineError
from hotline.models import (
    Assignment,
    Attachment,
    CallbackAttempt,
    Category,
    Extension,
    Ticket,
    TicketEvent,
    Unit,
)
from hotline.web import page_for, safe_next

bp = Blueprint("desk", __name__, template_folder="templates")

S = TicketStatus
QUEUE_PAGE_SIZE = 50
#: The inbox lists at most this many tickets (a unit holding more works from the API list).
INBOX_LIMIT = 500
NOTE_MAX = 1000
RESULT_MAX = 5000


# -- deadlines --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DeadlineState:
    """How a deadline stands: ``state`` is the colour's name (ok green, warn amber, overdue
    red, done grey, none: no deadline) and ``words`` says the same without colour."""

    state: str
    words: str


def deadline_state(due, *, warn_at, done_at, now, stopped=False):
    """The one rule for colouring a deadline. ``warn_at`` is when the clock's warning share
    (``SLA_WARNING_PERCENT``) is used up; ``done_at`` when the step was done; ``stopped``:
    the clock no longer runs (the ticket left handling without this step)."""
    if due is None:
        return DeadlineState("none", "无时限")
    if done_at is not None:
        if done_at > due:
            return DeadlineState("done", f"已完成（超时 {duration_words(done_at - due)}）")
        return DeadlineState("done", "已按时完成")
    if stopped:
        return DeadlineState("done", "已停止计时")
    if now > due:
        return DeadlineState("overdue", f"已超时 {duration_words(now - due)}")
    words = f"剩余 {duration_words(due - now)}"
    if warn_at is not None and now >= warn_at:
        return DeadlineState("warn", f"即将到期，{words}")
    return DeadlineState("ok", words)


def duration_words(delta):
    """A span in Chinese to the two largest units: 1 天 2 小时, 3 小时 5 分钟, 12 分钟."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {minutes} 分钟" if minutes else f"{hours} 小时"
    return f"{minutes} 分钟" if minutes else "不足 1 分钟"


_CLOCKS = (
    ("sign", "签收", TimerKind.sign_warning),
    ("contact", "响应", TimerKind.contact_warning),
    ("finish", "办结", TimerKind.finish_warning),
)


def ticket_deadlines(session, ticket, now, assignment=None):
    """The sign / contact / finish deadlines of ``ticket`` as (label, due, DeadlineState).

    The warning moments come from the SLA timers' own plan (``timers.plan``), so a deadline
    turns amber exactly when its 预警 fires (working time for working-day limits). An
    assisting unit's signature is its own (``assignment``); the rest are the lead's.
    """
    warn_at = {}
    if ticket.status in IN_HANDLING and ticket.clock_started_at is not None:
        settings = operations.timer_settings()
        policy = operations.ticket_policy(session, ticket) if ticket.sla_policy_id else None
        always_on = ticket.lead_unit is not None and ticket.lead_unit.always_on
        work_calendar = calendar.load(session, settings.timezone)
        for timer in timers.plan(ticket, policy, always_on, work_calendar, settings, now):
            warn_at[timer.kind] = timer.due
    done = {"sign": ticket.signed_at, "contact": ticket.contacted_at, "finish": ticket.finished_at}
    if assignment is not None and assignment.role != AssignmentRole.lead:
        done["sign"] = assignment.signed_at
    stopped = ticket.status not in IN_HANDLING
    result = []
    for clock, label, warning in _CLOCKS:
        due = getattr(ticket, f"{clock}_due")
        state = deadline_state(
            due, warn_at=warn_at.get(warning), done_at=done[clock], now=now, stopped=stopped
        )
        result.append((label, due, state))
    return result


# -- shared look-ups --------------------------------------------------------------------------


def _units_by_kind(db):
    """Active units a ticket can go to, grouped by kind (for the selects)."""
    units = db.scalars(
        sa.select(Unit).where(Unit.active, Unit.kind != UnitKind.hotline_centre).order_by(Unit.code)
    ).all()
    order = {kind: i for i, kind in enumerate(UnitKind)}
    units = sorted(units, key=lambda u: (order[u.kind], u.code))
    return [(kind, list(group)) for kind, group in itertools.groupby(units, key=lambda u: u.kind)]


def _categories(db):
    """Active leaf categories as (code, "一级 › 二级 › 三级")."""
    rows = db.execute(
        sa.select(Category.code, Category.name, Category.level)
        .where(Category.active)
        .order_by(Category.code)
    ).all()
    names = {r.code: r.name for r in rows}
    deepest = max((r.level for r in rows), default=0)
    return [
        (r.code, " › ".join(names[r.code[:n]] for n in range(2, len(r.code) + 1, 2)))
        for r in rows
        if r.level == deepest
    ]


def _visible_ticket(db, number):
    """The ticket of ``number`` for the current user: 404 unknown, 403 outside their scope."""
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        abort(404)
    if not access.can_view(db, g.user, ticket):
        abort(403)
    return ticket


def suggested(ticket):
    """The suggestion's first unit and top category codes (None where there is none)."""
    suggestion = ticket.suggestion or {}
    units = suggestion.get("units") or []
    top = (suggestion.get("category") or {}).get("top") or []
    return {
        "unit": units[0]["code"] if units else None,
        "unit_confidence": units[0].get("confidence") if units else None,
        "category": top[0]["code"] if top else None,
        "category_name": top[0].get("name") if top else None,
    }


#: Below this a suggestion is shown as unsure (red), below ``MID_CONFIDENCE`` as amber.
LOW_CONFIDENCE = 0.5
MID_CONFIDENCE = 0.8


@bp.app_template_global()
def confidence_class(value):
    """The colour class of a suggestion's confidence (0–1; None: no suggestion)."""
    if value is None:
        return "conf-none"
    if value < LOW_CONFIDENCE:
        return "conf-low"
    return "conf-mid" if value < MID_CONFIDENCE else "conf-ok"


# -- dispatcher queue -------------------------------------------------------------------------


@bp.get("/dispatch")
@page_for(Role.dispatcher)
def dispatch_queue():
    db = get_session()
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) >= 1 else 1
    total, tickets = _received_page(db, page)
    returns = db.scalars(
        sa.select(Ticket)
        .where(Ticket.status == S.return_requested)
        .options(selectinload(Ticket.assignments).selectinload(Assignment.unit))
        .order_by(Ticket.updated_at, Ticket.id)
    ).all()
    extensions = db.execute(
        sa.select(Extension, Ticket, Unit)
        .join(Ticket, Ticket.id == Extension.ticket_id)
        .join(Unit, Unit.id == Extension.unit_id)
        .where(Extension.status == DecisionStatus.pending)
        .order_by(Extension.requested_at, Extension.id)
    ).all()
    units = _units_by_kind(db)
    unit_names = {u.code: u.name for _, group in units for u in group}
    return render_template(
        "desk_queue.html",
        tickets=tickets,
        total=total,
        page=page,
        pages=max(1, -(-total // QUEUE_PAGE_SIZE)),
        returns=returns,
        extensions=extensions,
        units=units,
        unit_names=unit_names,
        suggested=suggested,
    )


def _received_page(db, page):
    """One page of tickets awaiting dispatch: no suggestion first, then the least sure
    suggestion, each oldest first. Two queries, so each reads ``ix_tickets_dispatch_queue``
    in its own order (PostgreSQL's index keeps NULLs last)."""
    waiting = sa.select(Ticket).where(Ticket.status == S.received)
    unsure = waiting.where(Ticket.dispatch_confidence.is_(None)).order_by(
        Ticket.received_at, Ticket.id
    )
    scored = waiting.where(Ticket.dispatch_confidence.is_not(None)).order_by(
        Ticket.dispatch_confidence, Ticket.received_at, Ticket.id
    )
    counts = dict(
        db.execute(
            sa.select(Ticket.dispatch_confidence.is_(None), sa.func.count())
            .where(Ticket.status == S.received)
            .group_by(Ticket.dispatch_confidence.is_(None))
        ).all()
    )
    n_unsure = counts.get(True, 0)
    total = n_unsure + counts.get(False, 0)
    offset = (page - 1) * QUEUE_PAGE_SIZE
    options = (selectinload(Ticket.category),)
    rows = []
    if offset < n_unsure:
        rows = list(
            db.scalars(unsure.options(*options).offset(offset).limit(QUEUE_PAGE_SIZE)).all()
        )
    room = QUEUE_PAGE_SIZE - len(rows)
    if room:
        query = scored.options(*options).offset(max(0, offset - n_unsure)).limit(room)
        rows += db.scalars(query).all()
    return total, rows


# -- unit handler inbox -----------------------------------------------------------------------

#: Inbox groups, in the order shown.
INBOX_GROUPS = (
    ("to_sign", "待签收"),
    ("doing", "办理中"),
    ("review", "待审核"),
    ("done", "已办结"),
)
_SIGNABLE = TRANSITIONS["sign"].from_states
_REVIEW = {S.return_requested, S.termination_requested}
_DONE = {S.finished, S.called_back}


@bp.get("/inbox")
@page_for(Role.unit_handler)
def inbox():
    db = get_session()
    me = g.user
    tickets = db.scalars(
        sa.select(Ticket)
        .where(access.scope_condition(me), Ticket.status.in_(IN_HANDLING | _DONE))
        .options(
            selectinload(Ticket.assignments),
            selectinload(Ticket.lead_unit),
            selectinload(Ticket.category),
        )
        .order_by(Ticket.received_at, Ticket.id)
        .limit(INBOX_LIMIT + 1)
    ).all()
    truncated = len(tickets) > INBOX_LIMIT
    tickets = tickets[:INBOX_LIMIT]
    pending = set(
        db.scalars(
            sa.select(Extension.ticket_id).where(
                Extension.ticket_id.in_([t.id for t in tickets]),
                Extension.status == DecisionStatus.pending,
            )
        )
    )
    now = utcnow()
    groups = {key: [] for key, _ in INBOX_GROUPS}
    for ticket in tickets:
        mine = ticket.active_assignment(me.unit_id)
        if ticket.status in _DONE:
            key = "done"
        elif ticket.status in _REVIEW or ticket.id in pending:
            key = "review"
        elif (
            mine.role != AssignmentRole.copy
            and mine.signed_at is None
            and ticket.status in _SIGNABLE
        ):
            key = "to_sign"
        else:
            key = "doing"
        row = {
            "ticket": ticket,
            "assignment": mine,
            "deadlines": ticket_deadlines(db, ticket, now, mine),
            "extension_pending": ticket.id in pending,
        }
        groups[key].append(row)
    groups["done"].sort(key=lambda r: r["ticket"].finished_at or now, reverse=True)
    return render_template(
        "desk_inbox.html", groups=groups, labels=INBOX_GROUPS, truncated=truncated
    )


# -- ticket page ------------------------------------------------------------------------------


@bp.get("/tickets/<number>")
@page_for(*Role)
def ticket_page(number):
    db = get_session()
    return _render_ticket(db, _visible_ticket(db, number))


def _pending_extension(db, ticket):
    return db.scalars(
        sa.select(Extension).where(
            Extension.ticket_id == ticket.id, Extension.status == DecisionStatus.pending
        )
    ).first()


def available_actions(user, ticket, pending_extension):
    """Names of the page actions to offer: what the transition table allows the user's role
    in the ticket's state, narrowed to the user's part in the ticket (display only: the
    operation checks everything again)."""
    names = [
        name
        for name in ACTION_SLUGS
        if user.role in TRANSITIONS[name].roles and ticket.status in TRANSITIONS[name].from_states
    ]
    if user.role == Role.unit_handler:
        mine = ticket.active_assignment(user.unit_id)
        lead = mine is not None and mine.role == AssignmentRole.lead
        names = [
            n
            for n in names
            if (n == "sign" and mine and mine.role != AssignmentRole.copy and not mine.signed_at)
            or (n != "sign" and lead)
        ]
        if ticket.status == S.signed and ticket.requester_phone and "finish" in names:
            names.remove("finish")  # 办结 needs 响应 first; the form would only be refused
    if pending_extension is None and "decide_extension" in names:
        names.remove("decide_extension")
    if pending_extension is not None and "request_extension" in names:
        names.remove("request_extension")
    return names


def _render_ticket(db, ticket, *, error=None, form=None, failed_action=None):
    user = g.user
    now = utcnow()
    assignments = db.scalars(
        sa.select(Assignment)
        .where(Assignment.ticket_id == ticket.id)
        .options(selectinload(Assignment.unit))
        .order_by(Assignment.id)
    ).all()
    events = db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .options(selectinload(TicketEvent.actor), selectinload(TicketEvent.unit))
        .order_by(TicketEvent.id)
    ).all()
    extensions = db.scalars(
        sa.select(Extension).where(Extension.ticket_id == ticket.id).order_by(Extension.id)
    ).all()
    attempts = db.scalars(
        sa.select(CallbackAttempt)
        .where(CallbackAttempt.ticket_id == ticket.id)
        .order_by(CallbackAttempt.id)
    ).all()
    photos = db.scalars(
        sa.select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)
    ).all()
    pending = _pending_extension(db, ticket)
    actions = available_actions(user, ticket, pending)
    mine = ticket.active_assignment(user.unit_id) if user.role == Role.unit_handler else None
    dispatcher_forms = bool({"dispatch", "decide_return"} & set(actions))
    hint = suggested(ticket)
    status = error.status if error is not None else 200

    def typed(action, name, default=""):
        """What the user typed into ``action``'s form when it was refused, else ``default``."""
        if form is not None and failed_action == action:
            return form.get(name, "")
        return default

    def typed_list(action, name, default=()):
        if form is not None and failed_action == action:
            return form.getlist(name)
        return list(default)

    return render_template(
        "ticket.html",
        ticket=ticket,
        phone=access.visible_phone(user, ticket.requester_phone),
        deadlines=ticket_deadlines(db, ticket, now, mine),
        assignments=assignments,
        events=events,
        extensions=extensions,
        attempts=attempts,
        photos=photos,
        pending_extension=pending,
        actions=actions,
        slugs=ACTION_SLUGS,
        my_assignment=mine,
        units=_units_by_kind(db) if dispatcher_forms else [],
        categories=_categories(db) if "dispatch" in actions else [],
        hint=hint,
        error=error,
        typed=typed,
        typed_list=typed_list,
        failed_action=failed_action,
        field_errors=error.details if error is not None else {},
        return_reasons=list(ReturnReason),
        intake_outcomes=list(IntakeOutcome),
        transfer_targets=list(TransferTarget),
        event_label=_event_label,
        status_label=_status_label,
        role_label=_role_label,
        max_photos=current_app.config["ATTACHMENT_MAX_FILES"],
        max_photo_mb=current_app.config["ATTACHMENT_MAX_BYTES"] / (1024 * 1024),
    ), status


def _event_label(action):
    if action in TRANSITIONS:
        return TRANSITIONS[action].label
    kind = TimerKind.parse(action)
    return kind.label if kind is not None else action


def _status_label(value):
    status = TicketStatus.parse(value) if value else None
    return status.label if status is not None else (value or "—")


def _role_label(value):
    role = Role.parse(value) if value else None
    return role.label if role is not None else "系统"


# -- actions ----------------------------------------------------------------------------------


#: Operation name → URL segment (of ``dispatch.api.TRANSITION_ENDPOINTS``, whose parsers read
#: the forms). The order is the order shown on the page.
ACTION_SLUGS = {
    "dispatch": "dispatch",
    "decide_return": "return-decision",
    "decide_extension": "extension-decision",
    "resolve_at_intake": "resolve-at-intake",
    "transfer": "transfer",
    "merge": "merge",
    "sign": "sign",
    "contact": "contact",
    "finish": "finish",
    "request_extension": "extension-request",
    "request_return": "return-request",
}
_BY_SLUG = {slug: name for name, slug in ACTION_SLUGS.items()}


@bp.post("/tickets/<number>/<slug>")
@page_for(*Role)
def ticket_action(number, slug):
    if slug not in _BY_SLUG:
        abort(404)
    name = _BY_SLUG[slug]
    db = get_session()
    ticket = _visible_ticket(db, number)
    form = request.form
    try:
        operation, values = forms.parse_transition(db, slug, form)
        photos = []
        if name == "finish":
            # Checked before the operation: a bad photo refuses the whole finish.
            photos = attachments.check(request.files.getlist("photos"))
        event = operation(db, g.user, ticket, **values)
        if photos:
            attachments.store(db, g.user, ticket, photos, purpose="result", event=event)
        db.commit()
    except (HotlineError, StaleDataError) as exc:
        db.rollback()
        if isinstance(exc, StaleDataError):
            exc = Conflict(forms.STALE_MESSAGE, code="TICKET_VERSION_CONFLICT")
        ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
        if ticket is None:
            abort(404)
        return _render_ticket(db, ticket, error=exc, form=form, failed_action=name)
    flash(f"工单 {ticket.number}：“{TRANSITIONS[name].label}”已完成")
    back = safe_next(form.get("back"))
    return redirect(back or url_for("desk.ticket_page", number=ticket.number))
