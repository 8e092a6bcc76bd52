"""Pages of the callback agents (回访台) and the supervisors (督办审核), DOMAIN.md §4–5.

- ``GET /callbacks``: finished tickets waiting for a call, next to call first, each with a
  form recording one call (``operations.record_callback``). Supervisors and administrators
  may watch the queue; only the roles the transition table allows get the forms.
- ``GET /supervision``: unhappy callbacks to reopen or accept, pending extension and
  termination requests, overdue tickets by 督办 level, and scoring exemption of any ticket.

Every POST parses the form with the JSON API's parser of the same transition
(``dispatch.schemas.TRANSITION_FORMS``) and runs the operation with the page's ticket version
(``hotline.web.perform``). A refusal rolls back and re-renders the page with the Chinese
message and what the user typed; success redirects with a flash message.
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

from dispatch import access, queues, schemas, sla
from dispatch.deadlines import duration_words
from dispatch.states import TRANSITIONS
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import (
    CallbackOutcome,
    DecisionStatus,
    EscalationLevel,
    ExemptionKind,
    Role,
    Satisfaction,
    Solved,
    TicketStatus,
)
from hotline.errors import NotFound, ValidationFailed
from hotline.models import Extension, Ticket, TicketEvent
from hotline.schemas import Page
from hotline.web import page_for

#: Transitions each page may post (URL segment of ``TRANSITION_FORMS``).
CALLBACK_ACTIONS = {"callback", "close"}
SUPERVISION_ACTIONS = {"reopen", "close", "extension-decision", "termination-review", "exempt"}
#: The page number argument of each section of the supervision page.
_PAGE_ARGS = {"reviews": "rp", "extensions": "ep", "terminations": "tp", "overdue": "op"}
#: What the lists show of each ticket's relations.
_CARD_OPTIONS = (selectinload(Ticket.category), selectinload(Ticket.lead_unit))
#: Where a supervisor's action lands back on the page (the section's anchor).
SECTION_OF = {
    "reopen": "reviews",
    "close": "reviews",
    "extension-decision": "extensions",
    "termination-review": "terminations",
    "exempt": "exempt",
}


def create_blueprint():
    bp = Blueprint("followup", __name__, template_folder="templates")
    bp.add_url_rule("/callbacks", view_func=callbacks)
    bp.add_url_rule("/callbacks/<number>/<slug>", view_func=callback_action, methods=["POST"])
    bp.add_url_rule("/supervision", view_func=supervision)
    bp.add_url_rule("/supervision/<number>/<slug>", view_func=supervision_action, methods=["POST"])
    web.add_to_menu(bp, "callbacks", "回访台", {Role.callback_agent}, home_of={Role.callback_agent})
    web.add_to_menu(bp, "supervision", "督办审核", {Role.supervisor}, home_of={Role.supervisor})
    return bp


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


# -- shared helpers ---------------------------------------------------------------------------


def _page(name="page"):
    return Page.from_args(request.args, size=current_app.config["DEFAULT_PAGE_SIZE"], name=name)


def _perform(number, slug, failed):
    """Run the transition ``slug`` on ticket ``number`` from the posted form. Returns (True,
    parsed values), or (False, the page re-rendered by ``failed(Failure)``)."""
    form = schemas.TRANSITION_FORMS[slug]

    def change(db):
        ticket = access.visible_ticket(db, g.user, number)
        values = schemas.parse_transition(db, g.user, form, request.form, page=True)
        form.operation(db, g.user, ticket, **values)
        return values

    def refused(error):
        typed = {k: v for k, v in request.form.items() if k not in ("csrf_token", "version")}
        return failed(Failure(number, slug, error.message, error.status, typed))

    return web.perform(change, refused=refused)


# -- 回访台 ------------------------------------------------------------------------------------


def _queue_args():
    due = request.args.get("due")
    if due not in (None, "", "0", "1"):
        raise ValidationFailed("“仅显示到期”取值应为 1 或 0", details={"due": "取值应为 1 或 0"})
    return due == "1", _page()


def _callbacks_page(failure=None):
    due_only, page = _queue_args()
    db = get_session()
    now = utcnow()
    total, tickets = queues.calls(db, g.user, page, now, due_only=due_only)
    attempts = queues.attempts_of(db, tickets)
    rows = [
        {
            "ticket": t,
            "phone": access.visible_phone(g.user, t.requester_phone, t.number),
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
        page=page.number,
        pages=page.count(total),
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


@page_for(*queues.QUEUE_ROLES)
def callbacks():
    return _callbacks_page()


@page_for(*queues.QUEUE_ROLES)
def callback_action(number, slug):
    if slug not in CALLBACK_ACTIONS:
        abort(404)
    done, values = _perform(number, slug, _callbacks_page)
    if not done:
        return values
    if slug == "callback":
        flash(f"工单 {number} 回访已记录：{values['outcome'].label}", "notice")
    else:
        flash(f"工单 {number} 已归档", "notice")
    due_only, page = _queue_args()
    return redirect(
        url_for(
            "followup.callbacks",
            due="1" if due_only else None,
            page=page.number if page.number > 1 else None,
        )
    )


# -- 督办审核 ----------------------------------------------------------------------------------


def _reviews(db, page):
    """已回访: unhappy callbacks waiting for 重办 or 归档 (``dispatch.queues`` order)."""
    return queues.reviews(db, g.user, page)


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
        .limit(page.size)
        .offset(page.offset)
    ).all()
    return total, rows


def _terminations(db, page):
    """终止待审 tickets, longest waiting first, each with the unit's latest reason."""
    query = sa.select(Ticket).where(Ticket.status == TicketStatus.termination_requested)
    query = access.scoped(query, g.user)
    total, tickets = page.of(db, query, Ticket.updated_at, Ticket.id, options=_CARD_OPTIONS)
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
    query = access.scoped(sa.select(Ticket).where(sla.overdue(now)), g.user)
    total, tickets = page.of(db, query, Ticket.finish_due, Ticket.id, options=_CARD_OPTIONS)
    return total, [(t, duration_words(now - t.finish_due)) for t in tickets]


def _exempt_target(db, failure):
    """The ticket the 考核豁免 form is about (``?ticket=``, or the one just refused)."""
    number = (request.args.get("ticket") or "").strip()
    if failure is not None and failure.slug == "exempt":
        number = failure.number
    if not number:
        return None, None
    try:
        return access.visible_ticket(db, g.user, number), None
    except NotFound as exc:
        return None, exc.message


def _supervision_page(failure=None):
    db = get_session()
    now = utcnow()
    pages = {key: _page(key) for key in _PAGE_ARGS.values()}
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
        pages={key: page.number for key, page in pages.items()},
        page_count={name: pages[key].count(sections[name][0]) for name, key in _PAGE_ARGS.items()},
        failure=failure,
        failed_elsewhere=failed_elsewhere,
        exempt_ticket=exempt_ticket,
        exempt_number=request.args.get("ticket", ""),
        exempt_error=exempt_error,
        exemption_kinds=list(ExemptionKind),
        escalation={level.value: level.label for level in EscalationLevel},
    )
    return html, failure.status if failure else 200


@page_for(Role.supervisor)
def supervision():
    return _supervision_page()


@page_for(Role.supervisor)
def supervision_action(number, slug):
    if slug not in SUPERVISION_ACTIONS:
        abort(404)
    done, values = _perform(number, slug, _supervision_page)
    if not done:
        return values
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
