"""Pages of 疑难工单 and 联席会议 (issue 17 §4) for supervisors (督办审核员), who change them,
and leaders (领导), who read them.

- ``GET /hard-cases``: tickets a meeting can act on meeting the hard-case rules
  (``dispatch.hard_cases``), filtered by rule, each with its evidence; a supervisor puts one
  on a planned meeting's agenda from its row. A district's leader sees the district's
  tickets.
- ``GET /meetings``: the meetings, latest first, and (supervisors) the form calling one.
- ``GET /meetings/<id>``: one meeting — its agenda with the reasons, the form adding any
  open ticket (a hard case, or another with a reason), the minutes form, and once held a
  decision form per ticket (responsible unit picked by name, deadline, notes) applied through
  指定承办; links to the XLSX and the print layout.
- ``GET /meetings/<id>/meeting.xlsx`` and ``GET /meetings/<id>/print``: agenda and minutes
  to file or to print (A4).

Each POST parses with ``dispatch.meeting_schemas`` and runs one function of
``dispatch.meetings`` through ``hotline.web.perform``: a refusal rolls back and re-renders
the page with the Chinese message and what was typed; success redirects with a message.
The meetings' pages are the city's: a district's leader reads the hard cases of the
district only, and not the meetings.
"""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from dispatch import access, hard_cases, meeting_exports, meetings
from dispatch import meeting_schemas as schemas
from dispatch.pages.desk import units_by_kind
from dispatch.states import TRANSITIONS
from hotline import web
from hotline.db import get_session, utcnow
from hotline.enums import MeetingState, Role
from hotline.errors import NotFound, ValidationFailed
from hotline.schemas import Page, form_values
from hotline.web import page_for

#: The hard-case list's page size (each row carries its evidence).
HARD_CASE_PAGE = 30


def create_blueprint():
    bp = Blueprint("meetings", __name__, template_folder="templates")
    bp.add_url_rule("/hard-cases", view_func=hard_case_list)
    bp.add_url_rule("/hard-cases/agenda", view_func=hard_case_to_agenda, methods=["POST"])
    bp.add_url_rule("/meetings", view_func=meeting_list)
    bp.add_url_rule("/meetings", view_func=meeting_create, methods=["POST"])
    bp.add_url_rule("/meetings/<int:meeting_id>", view_func=meeting_page)
    bp.add_url_rule("/meetings/<int:meeting_id>/items", view_func=item_add, methods=["POST"])
    bp.add_url_rule(
        "/meetings/<int:meeting_id>/items/<int:item_id>/remove",
        view_func=item_remove,
        methods=["POST"],
    )
    bp.add_url_rule(
        "/meetings/<int:meeting_id>/items/<int:item_id>/decision",
        view_func=item_decide,
        methods=["POST"],
    )
    bp.add_url_rule("/meetings/<int:meeting_id>/hold", view_func=meeting_hold, methods=["POST"])
    bp.add_url_rule("/meetings/<int:meeting_id>/meeting.xlsx", view_func=meeting_xlsx)
    bp.add_url_rule("/meetings/<int:meeting_id>/print", view_func=meeting_print)
    web.add_to_menu(bp, "hard_case_list", "疑难工单", meetings.READER_ROLES)
    web.add_to_menu(bp, "meeting_list", "联席会议", meetings.READER_ROLES)
    return bp


def _tz():
    return current_app.config["TIMEZONE"]


def _may_change():
    return g.user.role in meetings.MEETING_ROLES


def _require_city_reader():
    """Meetings are the city's: a district's leader reads the hard cases only."""
    if g.user.role == Role.leader and g.user.district_id is not None:
        abort(403)


def _meeting(db, meeting_id):
    try:
        return schemas.meeting_or_404(db, meeting_id)
    except NotFound:
        abort(404)


def _item(db, meeting, item_id):
    try:
        return schemas.item_or_404(db, meeting, item_id)
    except NotFound:
        abort(404)


def _typed():
    return {k: v for k, v in request.form.items() if k != "csrf_token"}


# -- 疑难工单 ----------------------------------------------------------------------------------


def _list_filter():
    """The hard-case list's rule filter and page asked for in the query, checked."""
    try:
        rules = hard_cases.parse_rules(request.args.getlist("rule"))
    except ValueError:
        raise ValidationFailed("未知的疑难规则", details={"rule": "未知的疑难规则"}) from None
    return rules, Page.from_args(request.args, size=HARD_CASE_PAGE)


def _hard_case_page(error=None, status=200):
    db = get_session()
    rules, page = _list_filter()
    listing = hard_cases.listing(
        db, utcnow(), page, tz=_tz(), rules=rules, scope=access.scope_condition(g.user)
    )
    html = render_template(
        "hard_cases.html",
        listing=listing,
        rules=rules,
        all_rules=hard_cases.RULES,
        page=page.number,
        pages=page.count(listing.total),
        planned=meetings.planned_meetings(db) if _may_change() else [],
        may_change=_may_change(),
        error=error,
    )
    return html, status


@page_for(*meetings.READER_ROLES)
def hard_case_list():
    return _hard_case_page()


@page_for(*meetings.MEETING_ROLES)
def hard_case_to_agenda():
    rules, page = _list_filter()

    def change(db):
        data = form_values(request.form)
        try:
            meeting_id = int(data.pop("meeting", ""))
        except ValueError:
            message = "请选择联席会议"
            raise ValidationFailed(message, details={"meeting": message}) from None
        meeting = schemas.meeting_or_404(db, meeting_id)
        values = schemas.parse_item(data)
        ticket = access.visible_ticket(db, g.user, values["number"])
        meetings.add_item(db, g.user, meeting, ticket, reason=values["reason"], tz=_tz())
        return meeting, ticket

    done, result = web.perform(change, refused=lambda e: _hard_case_page(e, e.status))
    if not done:
        return result
    meeting, ticket = result
    flash(f"工单 {ticket.number} 已列入“{meeting.title}”议程", "notice")
    # Back to the list as it was (its rule filter and page, which the form's address carries),
    # never to the Referer header, which the client controls.
    return redirect(url_for("meetings.hard_case_list", rule=rules, page=page.number))


# -- 联席会议 ----------------------------------------------------------------------------------


def _meeting_list_page(error=None, typed=None, status=200):
    _require_city_reader()
    db = get_session()
    page = Page.from_args(request.args, size=current_app.config["DEFAULT_PAGE_SIZE"])
    total, rows = meetings.meetings_page(db, page)
    html = render_template(
        "meetings.html",
        meetings=rows,
        counts=schemas.agenda_counts(db, [m.id for m in rows]),
        total=total,
        page=page.number,
        pages=page.count(total),
        may_change=_may_change(),
        error=error,
        typed=typed or {},
    )
    return html, status


@page_for(*meetings.READER_ROLES)
def meeting_list():
    return _meeting_list_page()


@page_for(*meetings.MEETING_ROLES)
def meeting_create():
    def change(db):
        values = schemas.parse_meeting(form_values(request.form))
        return meetings.create_meeting(db, g.user, **values)

    done, result = web.perform(change, refused=lambda e: _meeting_list_page(e, _typed(), e.status))
    if not done:
        return result
    flash(f"联席会议“{result.title}”已创建，请列入议题", "notice")
    return redirect(url_for("meetings.meeting_page", meeting_id=result.id))


def _meeting_page(meeting_id, failure=None):
    """The meeting's page; ``failure`` = (form key, error, typed) of a refused form."""
    _require_city_reader()
    db = get_session()
    meeting = _meeting(db, meeting_id)
    held = meeting.state == MeetingState.held
    may_decide = _may_change() and held
    html = render_template(
        "meeting.html",
        meeting=meeting,
        held=held,
        may_change=_may_change(),
        may_decide=may_decide,
        units=units_by_kind(db) if may_decide else [],
        designatable=TRANSITIONS["apply_meeting_decision"].from_states,
        reasons_text=meeting_exports.reasons_text,
        failure=failure,
    )
    return html, failure[1].status if failure else 200


@page_for(*meetings.READER_ROLES)
def meeting_page(meeting_id):
    return _meeting_page(meeting_id)


def _meeting_change(meeting_id, key, change, done_message, anchor=None):
    """Run ``change(db, meeting)`` for the form ``key`` of the meeting's page."""
    db = get_session()
    _meeting(db, meeting_id)  # 404 before parsing

    def run(session):
        return change(session, schemas.meeting_or_404(session, meeting_id))

    done, result = web.perform(run, refused=lambda e: _meeting_page(meeting_id, (key, e, _typed())))
    if not done:
        return result
    flash(done_message(result), "notice")
    return redirect(url_for("meetings.meeting_page", meeting_id=meeting_id, _anchor=anchor))


@page_for(*meetings.MEETING_ROLES)
def item_add(meeting_id):
    def change(db, meeting):
        values = schemas.parse_item(form_values(request.form))
        ticket = access.visible_ticket(db, g.user, values["number"])
        meetings.add_item(db, g.user, meeting, ticket, reason=values["reason"], tz=_tz())
        return ticket

    return _meeting_change(
        meeting_id, "add", change, lambda t: f"工单 {t.number} 已列入议程", "agenda"
    )


@page_for(*meetings.MEETING_ROLES)
def item_remove(meeting_id, item_id):
    def change(db, meeting):
        item = schemas.item_or_404(db, meeting, item_id)
        number = item.ticket.number
        meetings.remove_item(db, g.user, item)
        return number

    return _meeting_change(
        meeting_id, f"remove-{item_id}", change, lambda n: f"工单 {n} 已移出议程", "agenda"
    )


@page_for(*meetings.MEETING_ROLES)
def meeting_hold(meeting_id):
    def change(db, meeting):
        values = schemas.parse_hold(form_values(request.form))
        return meetings.hold_meeting(db, g.user, meeting, **values)

    return _meeting_change(
        meeting_id, "hold", change, lambda m: "会议已记录召开，可逐件记录会议决定", "minutes"
    )


@page_for(*meetings.MEETING_ROLES)
def item_decide(meeting_id, item_id):
    def change(db, meeting):
        item = schemas.item_or_404(db, meeting, item_id)
        values = schemas.parse_decision(db, form_values(request.form))
        meetings.decide_item(db, g.user, item, **values)
        return item

    def message(item):
        return (
            f"工单 {item.ticket.number} 已按会议决定指定“{item.decision_unit.name}”承办，"
            f"办结时限 {web.local_time(item.decision_due)}"
        )

    return _meeting_change(meeting_id, f"decide-{item_id}", change, message, f"item-{item_id}")


@page_for(*meetings.READER_ROLES)
def meeting_xlsx(meeting_id):
    _require_city_reader()
    meeting = _meeting(get_session(), meeting_id)
    data = meeting_exports.write_xlsx(meeting, tz=_tz())
    response = Response(
        data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response.headers.set(
        "Content-Disposition", "attachment", filename=meeting_exports.filename(meeting)
    )
    return response


@page_for(*meetings.READER_ROLES)
def meeting_print(meeting_id):
    _require_city_reader()
    meeting = _meeting(get_session(), meeting_id)
    return render_template(
        "meeting_print.html", meeting=meeting, reasons_text=meeting_exports.reasons_text
    )
