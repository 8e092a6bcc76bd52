"""Pages of the callback agents (回访台) and the supervisors (督办审核), DOMAIN.md §4–5.

- ``GET /callbacks``: finished tickets waiting for a call, next to call first, each with a
  form recording one call (``operations.record_callback``). Supervisors and administrators
  may watch the queue; only the roles the transition table allows get the forms.
- ``GET /supervision``: unhappy callbacks to reopen or accept, pending extension and
  termination requests, overdue tickets by 督办 level, and scoring exemption of any ticket.

Every POST parses the form with the JSON API's parser of the same transition
(``dispatch.api.TRANSITION_ENDPOINTS``), calls the operation with the page's ticket version
and commits. A refusal rolls back and re-renders the page with the Chinese message and what
the user typed; success redirects with a flash message.
"""

from dataclasses import dataclass, field

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

from dispatch import access, forms, sla
from dispatch import callbacks as queues
from dispatch.api import load_ticket, positive_int
from dispatch.desk import duration_words
from dispatch.states import TRANSITIONS
from hotline.db import get_session, utcnow
from hotline.enums import (
    CallbackOutcome,
    DecisionStatus,
    ExemptionKind,
    Role,
    Satisfaction,
    Solved,
    TicketStatus,
)
from hotline.errors import HotlineError, NotFound, ValidationFailed
from hotline.models import Extension, Ticket, TicketEvent
from hotline.web import page_for

bp = Blueprint("followup", __name__, template_folder="templates")

#: Transitions each page may post (URL segment of ``TRANSITION_ENDPOINTS``).
CALLBACK_ACTIONS = {"callback", "close"}
SUPERVISION_ACTIONS = {"reopen", "close", "extension-decision", "termination-review", "exempt"}
#: 督办 levels (``Ticket.escalation_level``), as the scheduler escalates them.
ESCALATION_LABELS = {
    0: "未督办",
    1: "一级督办（热线中心）",
    2: "二级督办（区县或部门领导）",
    3: "三级督办（市长办公室）",
}
#: Where a supervisor's action lands back on the page (the section's anchor).
SECTION_OF = {
    "reopen": "reviews",
    "close": "reviews",
    "extension-decision": "extensions",
    "termination-review": "terminations",
    "exempt": "exempt",
}


@dataclass
class Failure:
    """A refused submission: re-rendered beside its ticket with what the user typed."""

    number: str
    slug: str
    message: str
    status: int
    typed: dict = field(default_factory=dict)

    def values_for(self, number, slug):
        return self.typed if (number, slug) == (self.number, self.slug) else {}


@bp.errorhandler(HotlineError)
def _refused(exc):
    # Bad query parameters (page numbers …): a page with the message, never a 500.
    return render_template("error.html", status=exc.status, message=exc.message), exc.status


# -- shared helpers ---------------------------------------------------------------------------


def _page_size():
    return current_app.config["DEFAULT_PAGE_SIZE"]


def _page_arg(name):
    errors = {}
    page = positive_int(request.args, name, 1, errors)
    if errors:
        raise ValidationFailed(f"页码“{name}”须为正整数", details=errors)
    return page


def _pages(total):
    return max(1, -(-total // _page_size()))


def _perform(number, slug):
    """Run the transition ``slug`` on ticket ``number`` from the posted form and commit.
    Returns the ticket and the parsed values; raises HotlineError / StaleDataError."""
    db = get_session()
    ticket = load_ticket(db, number)
    operation, values = forms.parse_transition(db, slug, request.form)
    operation(db, g.user, ticket, **values)
    db.commit()
    return ticket, values


def _failure(number, slug, exc):
    get_session().rollback()  # nothing of a refused action may stay
    if isinstance(exc, StaleDataError):
        message, status = forms.STALE_MESSAGE, 409
    else:
        message, status = exc.message, exc.status
    typed = {k: v for k, v in request.form.items() if k not in ("csrf_token", "version")}
    return Failure(number, slug, message, status, typed)


# -- 回访台 ------------------------------------------------------------------------------------


def _queue_args():
    due = request.args.get("due")
    if due not in (None, "", "0", "1"):
        raise ValidationFailed("“仅显示到期”取值应为 1 或 0", details={"due": "取值应为 1 或 0"})
    return due == "1", _page_arg("page")


def _callbacks_page(failure=None):
    due_only, page = _queue_args()
    db = get_session()
    now = utcnow()
    # The queue of ``dispatch.callbacks`` (its order, scope and attempt counting).
    query = sa.select(Ticket).where(
        Ticket.status == TicketStatus.finished, Ticket.callback_next_at.is_not(None)
    )
    if due_only:
        query = query.where(Ticket.callback_next_at <= now)
    total, tickets = queues.page_of(
        db, query, (Ticket.callback_next_at, Ticket.id), page, _page_size()
    )
    attempts = queues.attempts_of(db, tickets)
    rows = [
        {
            "ticket": t,
            "phone": access.visible_phone(g.user, t.requester_phone),
            "attempts": attempts[t.id],
            "last": attempts[t.id][-1] if attempts[t.id] else None,
            "due_now": t.callback_next_at <= now,
            "waits": duration_words(t.callback_next_at - now) if t.callback_next_at > now else None,
            "overdue": duration_words(now - t.callback_due)
            if t.callback_due is not None and t.callback_due < now
            else None,
        }
        for t in tickets
    ]
    # Keyboard shortcuts go to one form: the refused one, else the next to call.
    numbers = [t.number for t in tickets]
    shortcuts = failure.number if failure and failure.number in numbers else None
    shortcuts = shortcuts or (numbers[0] if numbers else None)
    html = render_template(
        "followup_callbacks.html",
        rows=rows,
        total=total,
        page=page,
        pages=_pages(total),
        due_only=due_only,
        failure=failure,
        failed_elsewhere=failure is not None and failure.number not in numbers,
        shortcuts=shortcuts,
        may_call=g.user.role in TRANSITIONS["record_callback"].roles,
        may_close=g.user.role in TRANSITIONS["close"].roles,
        max_attempts=current_app.config["CALLBACK_MAX_ATTEMPTS"],
        outcomes=list(CallbackOutcome),
        solved=list(Solved),
        satisfaction=list(Satisfaction),
    )
    return html, failure.status if failure else 200


@bp.get("/callbacks")
@page_for(*queues.QUEUE_ROLES)
def callbacks():
    return _callbacks_page()


@bp.post("/callbacks/<number>/<slug>")
@page_for(*queues.QUEUE_ROLES)
def callback_action(number, slug):
    if slug not in CALLBACK_ACTIONS:
        abort(404)
    try:
        _, values = _perform(number, slug)
    except (HotlineError, StaleDataError) as exc:
        return _callbacks_page(_failure(number, slug, exc))
    if slug == "callback":
        flash(f"工单 {number} 回访已记录：{values['outcome'].label}", "notice")
    else:
        flash(f"工单 {number} 已归档", "notice")
    due_only, page = _queue_args()
    return redirect(
        url_for(
            "followup.callbacks", due="1" if due_only else None, page=page if page > 1 else None
        )
    )


# -- 督办审核 ----------------------------------------------------------------------------------


def _reviews(db, page):
    """已回访: unhappy callbacks waiting for 重办 or 归档 (``dispatch.callbacks`` order)."""
    query = sa.select(Ticket).where(Ticket.status == TicketStatus.called_back)
    return queues.page_of(db, query, (Ticket.callback_at, Ticket.id), page, _page_size())


def _extensions(db, page):
    """Pending extension requests, oldest first (only tickets in handling keep one)."""
    query = (
        sa.select(Extension, Ticket)
        .join(Ticket, Ticket.id == Extension.ticket_id)
        .where(Extension.status == DecisionStatus.pending)
    )
    total = db.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = db.execute(
        query.options(selectinload(Ticket.lead_unit))
        .order_by(Extension.requested_at, Extension.id)
        .limit(_page_size())
        .offset((page - 1) * _page_size())
    ).all()
    return total, rows


def _terminations(db, page):
    """终止待审 tickets, longest waiting first, each with the unit's latest reason."""
    query = sa.select(Ticket).where(Ticket.status == TicketStatus.termination_requested)
    total, tickets = queues.page_of(db, query, (Ticket.updated_at, Ticket.id), page, _page_size())
    reasons = {}
    if tickets:
        events = db.execute(
            sa.select(TicketEvent.ticket_id, TicketEvent.reason, TicketEvent.created_at)
            .where(
                TicketEvent.ticket_id.in_([t.id for t in tickets]),
                TicketEvent.action == "request_termination",
            )
            .order_by(TicketEvent.id)
        )
        reasons = {e.ticket_id: e for e in events}  # the latest request wins
    return total, [(t, reasons.get(t.id)) for t in tickets]


def _overdue(db, page, now):
    """In handling past the finish deadline, the most overdue first."""
    query = sa.select(Ticket).where(sla.overdue(now))
    total, tickets = queues.page_of(db, query, (Ticket.finish_due, Ticket.id), page, _page_size())
    return total, [(t, duration_words(now - t.finish_due)) for t in tickets]


def _exempt_target(db, failure):
    """The ticket the 考核豁免 form is about (``?ticket=``, or the one just refused)."""
    number = (request.args.get("ticket") or "").strip()
    if failure is not None and failure.slug == "exempt":
        number = failure.number
    if not number:
        return None, None
    try:
        return load_ticket(db, number), None
    except NotFound as exc:
        return None, exc.message


def _supervision_page(failure=None):
    db = get_session()
    now = utcnow()
    pages = {name: _page_arg(name) for name in ("rp", "ep", "tp", "op")}
    sections = {
        "reviews": _reviews(db, pages["rp"]),
        "extensions": _extensions(db, pages["ep"]),
        "terminations": _terminations(db, pages["tp"]),
        "overdue": _overdue(db, pages["op"], now),
    }
    exempt_ticket, exempt_error = _exempt_target(db, failure)
    shown = {t.number for t in sections["reviews"][1]}
    shown |= {t.number for _, t in sections["extensions"][1]}
    shown |= {t.number for t, _ in sections["terminations"][1]}
    failed_elsewhere = (
        failure is not None and failure.slug != "exempt" and failure.number not in shown
    )
    html = render_template(
        "followup_supervision.html",
        sections=sections,
        pages=pages,
        page_count={name: _pages(total) for name, (total, _) in sections.items()},
        failure=failure,
        failed_elsewhere=failed_elsewhere,
        exempt_ticket=exempt_ticket,
        exempt_number=request.args.get("ticket", ""),
        exempt_error=exempt_error,
        exemption_kinds=list(ExemptionKind),
        escalation=ESCALATION_LABELS,
    )
    return html, failure.status if failure else 200


@bp.get("/supervision")
@page_for(Role.supervisor)
def supervision():
    return _supervision_page()


@bp.post("/supervision/<number>/<slug>")
@page_for(Role.supervisor)
def supervision_action(number, slug):
    if slug not in SUPERVISION_ACTIONS:
        abort(404)
    try:
        ticket, values = _perform(number, slug)
    except (HotlineError, StaleDataError) as exc:
        return _supervision_page(_failure(number, slug, exc))
    flash(_done_message(number, slug, values), "notice")
    section = SECTION_OF[slug]
    ticket_arg = number if slug == "exempt" else None
    return redirect(url_for("followup.supervision", ticket=ticket_arg, _anchor=section))


def _done_message(number, slug, values):
    if slug == "reopen":
        return f"工单 {number} 已退回原承办单位重办"
    if slug == "close":
        return f"工单 {number} 已同意归档"
    if slug == "exempt":
        return f"工单 {number} 已{'设为' if values['exempt'] else '取消'}考核豁免"
    verdict = "同意" if values["approve"] else "驳回"
    kind = "延期申请" if slug == "extension-decision" else "终止申请"
    return f"工单 {number} 的{kind}已{verdict}"
