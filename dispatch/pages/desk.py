"""Pages of the dispatcher (派单台) and the unit handler (待办工单), and the ticket page that
every role that may see a ticket opens.

Views parse forms, call ``dispatch.operations``, commit and render; every rule lives in the
operations (which check role, state, unit and version again whatever the page showed). A
refused action re-renders the ticket page with the Chinese message and what the user typed.
"""

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

from dispatch import access, hot_issues, reply_review, schemas, whistle
from dispatch.deadlines import load_policies, ticket_deadlines
from dispatch.history import history
from dispatch.narrative import Teller, assignment_state, rounds
from dispatch.pages import visible_ticket_or_abort
from dispatch.states import IN_HANDLING, TRANSITIONS, event_label
from hotline import knowledge_admin, web
from hotline.db import get_session, utcnow
from hotline.enums import (
    AssignmentRole,
    DecisionStatus,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Role,
    TicketStatus,
    TransferTarget,
    UnitKind,
    Urgency,
)
from hotline.models import (
    Area,
    Assignment,
    Category,
    Extension,
    Ticket,
    Unit,
)
from hotline.schemas import Page
from hotline.web import page_for, safe_next

S = TicketStatus
QUEUE_PAGE_SIZE = 50
#: The inbox lists at most this many tickets (a unit holding more works from the API list).
INBOX_LIMIT = 500


def create_blueprint():
    bp = Blueprint("desk", __name__, template_folder="templates")
    bp.add_url_rule("/dispatch", view_func=dispatch_queue)
    bp.add_url_rule("/inbox", view_func=inbox)
    bp.add_url_rule("/tickets/<number>", view_func=ticket_page)
    bp.add_url_rule("/tickets/<number>/<slug>", view_func=ticket_action, methods=["POST"])
    bp.add_app_template_global(confidence_class)
    web.add_to_menu(bp, "dispatch_queue", "派单台", {Role.dispatcher}, home_of={Role.dispatcher})
    web.add_to_menu(bp, "inbox", "待办工单", {Role.unit_handler}, home_of={Role.unit_handler})
    return bp


# -- shared look-ups --------------------------------------------------------------------------


def units_by_kind(db):
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


#: Suggested units offered one click away on the dispatch form.
SUGGESTED_UNITS = 3


def suggested(ticket):
    """The suggestion's units (first and top few), top category and place (None or empty
    where there is none)."""
    suggestion = ticket.suggestion or {}
    units = suggestion.get("units") or []
    top = (suggestion.get("category") or {}).get("top") or []
    place = suggestion.get("area") or {}
    return {
        "unit": units[0]["code"] if units else None,
        "unit_confidence": units[0].get("confidence") if units else None,
        "units": [(u["code"], u.get("confidence")) for u in units[:SUGGESTED_UNITS]],
        "category": top[0]["code"] if top else None,
        "category_name": top[0].get("name") if top else None,
        "place": place.get("code"),
        "place_confidence": place.get("confidence"),
        "place_candidates": [c for c in place.get("candidates") or [] if c],
    }


def _areas(db):
    """Every area as (district name, [(code, "街道 › 社区 › 网格")]) for the area picker."""
    rows = db.execute(sa.select(Area.code, Area.name).order_by(Area.code)).all()
    names = dict(rows)
    groups = {}
    for code, name in rows:
        district = code[:6]
        path = [names.get(code[:n]) for n in (9, 12, 15) if len(code) >= n]
        label = " › ".join(p for p in path if p) or name
        groups.setdefault(district, []).append((code, label))
    return [(names.get(d, d), options) for d, options in groups.items()]


#: Below this a suggestion is shown as unsure (red), below ``MID_CONFIDENCE`` as amber.
LOW_CONFIDENCE = 0.5
MID_CONFIDENCE = 0.8


def confidence_class(value):
    """The colour class of a suggestion's confidence (0–1; None: no suggestion)."""
    if value is None:
        return "conf-none"
    if value < LOW_CONFIDENCE:
        return "conf-low"
    return "conf-mid" if value < MID_CONFIDENCE else "conf-ok"


# -- dispatcher queue -------------------------------------------------------------------------


@page_for(Role.dispatcher)
def dispatch_queue():
    db = get_session()
    page = Page.from_args(request.args, size=QUEUE_PAGE_SIZE)
    unlocated = request.args.get("show") == UNLOCATED
    total, tickets = _received_page(db, page, unlocated=unlocated)
    n_unlocated = db.scalar(
        sa.select(sa.func.count())
        .select_from(Ticket)
        .where(Ticket.status == S.received, Ticket.area_id.is_(None))
    )
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
    units = units_by_kind(db)
    unit_names = {u.code: u.name for _, group in units for u in group}
    return render_template(
        "desk_queue.html",
        tickets=tickets,
        total=total,
        unlocated=unlocated,
        n_unlocated=n_unlocated,
        page=page.number,
        pages=page.count(total),
        returns=returns,
        extensions=extensions,
        units=units,
        unit_names=unit_names,
        suggested=suggested,
        hot=hot_issues.of_tickets(db, [t.id for t in tickets]),
    )


#: ``/dispatch?show=unlocated``: only tickets without an area (待定位).
UNLOCATED = "unlocated"


def _received_page(db, page, *, unlocated=False):
    """One page of tickets awaiting dispatch: no suggestion first, then the least sure
    suggestion, each oldest first. Two queries, so each reads ``ix_tickets_dispatch_queue``
    in its own order (PostgreSQL's index keeps NULLs last). ``unlocated``: only tickets
    without an area (待定位), which the dispatcher must place."""
    where = [Ticket.status == S.received]
    if unlocated:
        where.append(Ticket.area_id.is_(None))
    waiting = sa.select(Ticket).where(*where)
    unsure = waiting.where(Ticket.dispatch_confidence.is_(None)).order_by(
        Ticket.received_at, Ticket.id
    )
    scored = waiting.where(Ticket.dispatch_confidence.is_not(None)).order_by(
        Ticket.dispatch_confidence, Ticket.received_at, Ticket.id
    )
    counts = dict(
        db.execute(
            sa.select(Ticket.dispatch_confidence.is_(None), sa.func.count())
            .where(*where)
            .group_by(Ticket.dispatch_confidence.is_(None))
        ).all()
    )
    n_unsure = counts.get(True, 0)
    total = n_unsure + counts.get(False, 0)
    offset = page.offset
    options = (selectinload(Ticket.category), selectinload(Ticket.area))
    rows = []
    if offset < n_unsure:
        rows = list(db.scalars(unsure.options(*options).offset(offset).limit(page.size)).all())
    room = page.size - len(rows)
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
    ("whistle", "吹哨报到"),
)
_SIGNABLE = TRANSITIONS["sign"].from_states
_REVIEW = {S.return_requested, S.termination_requested, S.reviewing}
_DONE = {S.finished, S.called_back}


@page_for(Role.unit_handler)
def inbox():
    db = get_session()
    me = g.user
    # What the unit has to do: the tickets it holds, and those it is summoned to and has not
    # answered yet (not every ticket it may still read: an ended summons is no work).
    holds = sa.exists().where(
        Assignment.ticket_id == Ticket.id, Assignment.unit_id == me.unit_id, Assignment.active
    )
    tickets = db.scalars(
        sa.select(Ticket)
        .where(
            sa.or_(holds, whistle.open_condition(me.unit_id)),
            Ticket.status.in_(IN_HANDLING | _REVIEW | _DONE),
        )
        .options(
            selectinload(Ticket.assignments),
            selectinload(Ticket.lead_unit),
            selectinload(Ticket.category),
            selectinload(Ticket.area),
        )
        .order_by(Ticket.received_at, Ticket.id)
        .limit(INBOX_LIMIT + 1)
    ).all()
    truncated = len(tickets) > INBOX_LIMIT
    tickets = tickets[:INBOX_LIMIT]
    _policies = load_policies(db, tickets)  # one query, not one per ticket's deadlines
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
    summoned = whistle.open_for_unit(db, me.unit_id, [t.id for t in tickets])
    for ticket in tickets:
        mine = ticket.active_assignment(me.unit_id)
        if ticket.id in summoned:
            # Summoned to report and give an opinion (吹哨报到), with the summons' deadlines;
            # a unit also assisting on the ticket keeps its 协办 row below as well.
            groups["whistle"].append(whistle.inbox_row(ticket, summoned[ticket.id], now))
        if mine is None:
            continue
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


@page_for(*Role)
def ticket_page(number):
    db = get_session()
    return render_ticket(db, visible_ticket_or_abort(db, number))


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


def render_ticket(db, ticket, *, error=None, form=None, failed_action=None):
    """The ticket page for the current user; with ``error`` (a refused form, ``form`` what
    was typed, ``failed_action`` its operation) as a 4xx. Public: the ticket page's other
    forms (吹哨报到, 协办 …) posted elsewhere re-render it the same way."""
    user = g.user
    now = utcnow()
    record = history(db, ticket)
    pending = _pending_extension(db, ticket)
    actions = available_actions(user, ticket, pending)
    mine = ticket.active_assignment(user.unit_id) if user.role == Role.unit_handler else None
    dispatcher_forms = bool({"dispatch", "decide_return"} & set(actions))
    hint = suggested(ticket)
    units = units_by_kind(db) if dispatcher_forms else []
    status = error.status if error is not None else 200
    deadlines = ticket_deadlines(db, ticket, now, mine)
    teller = Teller(db, record.events, current_app.config["TIMEZONE"])

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
        phone=access.visible_phone(user, ticket.requester_phone, ticket.number),
        deadlines=deadlines,
        assignments=record.assignments,
        assignment_state=assignment_state,
        rounds=rounds(record, ticket, now, deadlines),
        events=[(e, teller.sentence(e)) for e in record.events],
        extensions=record.extensions,
        attempts=record.attempts,
        photos=record.photos,
        pending_extension=pending,
        actions=actions,
        slugs=ACTION_SLUGS,
        my_assignment=mine,
        units=units,
        unit_names={u.code: u.name for _, group in units for u in group},
        categories=_categories(db) if "dispatch" in actions else [],
        urgencies=list(Urgency),
        request_types=list(RequestType),
        areas=_areas(db) if "dispatch" in actions else [],
        area_names=_area_names(db, hint) if "dispatch" in actions else {},
        hint=hint,
        error=error,
        typed=typed,
        typed_list=typed_list,
        failed_action=failed_action,
        field_errors=error.details if error is not None else {},
        return_reasons=list(ReturnReason),
        intake_outcomes=list(IntakeOutcome),
        transfer_targets=list(TransferTarget),
        event_label=event_label,
        status_label=_status_label,
        role_label=_role_label,
        proposal=_proposal(db, user, ticket),
        hot_issue=hot_issues.of_ticket(db, user, ticket),
        reply_review=reply_review.ticket_context(db, ticket),
        max_photos=current_app.config["ATTACHMENT_MAX_FILES"],
        max_photo_mb=current_app.config["ATTACHMENT_MAX_BYTES"] / (1024 * 1024),
    ), status


def _proposal(db, user, ticket):
    """For the handler of the unit that answered a finished consultation: the article
    already proposed from it, or the offer to propose one (None: nothing to show)."""
    if not knowledge_admin.can_propose(user, ticket):
        return None
    return {"existing": knowledge_admin.proposed_from(db, ticket)}


def _area_names(db, hint):
    """{code: name} of the suggested place and its candidates (shown beside the picker)."""
    codes = {hint["place"]} | {c.get("code") for c in hint["place_candidates"]}
    codes.discard(None)
    if not codes:
        return {}
    return dict(db.execute(sa.select(Area.code, Area.name).where(Area.code.in_(codes))).all())


def _status_label(value):
    status = TicketStatus.parse(value) if value else None
    return status.label if status is not None else (value or "—")


def _role_label(value):
    role = Role.parse(value) if value else None
    return role.label if role is not None else "系统"


# -- actions ----------------------------------------------------------------------------------


#: Operation name → URL segment (``dispatch.schemas.TRANSITION_FORMS``, whose parsers read
#: the forms). The order is the order shown on the page.
ACTION_SLUGS = {
    "dispatch": "dispatch",
    "decide_return": "return-decision",
    "decide_extension": "extension-decision",
    "resolve_at_intake": "resolve-at-intake",
    "transfer": "transfer",
    "merge": "merge",
    "reclassify": "reclassify",
    "sign": "sign",
    "contact": "contact",
    "finish": "finish",
    "approve_reply": "approve-reply",
    "return_reply": "return-reply",
    "request_extension": "extension-request",
    "request_return": "return-request",
}
_BY_SLUG = {slug: name for name, slug in ACTION_SLUGS.items()}


@page_for(*Role)
def ticket_action(number, slug):
    if slug not in _BY_SLUG:
        abort(404)
    name = _BY_SLUG[slug]
    form = schemas.TRANSITION_FORMS[slug]
    db = get_session()
    ticket = visible_ticket_or_abort(db, number)

    def change(db):
        values = schemas.parse_transition(db, g.user, form, request.form, page=True)
        if form.photos:
            values["photos"] = form.read_photos(request.files.getlist("photos"))
        return form.operation(db, g.user, ticket, **values)

    def refused(error):
        refreshed = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
        if refreshed is None:
            abort(404)
        return render_ticket(db, refreshed, error=error, form=request.form, failed_action=name)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"工单 {ticket.number}：“{TRANSITIONS[name].label}”已完成")
    back = safe_next(request.form.get("back"))
    return redirect(back or url_for("desk.ticket_page", number=ticket.number))
