"""The grid worker's pages (网格工作台, phone-width): tickets in my grids, accept (接单), on-site
check-in with photos and position (现场核查), contact, finish or hand back (上报), and the
patrol report form (主动发现).

Views parse the form, call one operation (``dispatch.operations``), store photos in the same
transaction and commit; a refusal rolls back and re-renders the page with the Chinese message
and what the user typed. Every action form carries the ticket's version, so a double tap is
refused instead of done twice; the report form carries an idempotency key for the same reason.

Check-in is a page form only (multipart, with photos); accept and escalate are also JSON API
transitions (``/api/v1/tickets/<n>/accept``, ``/escalate``).
"""

import datetime as dt
import math
import uuid
from dataclasses import dataclass

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

from classifier.geo import GridLocator
from dispatch import access, desk, operations
from dispatch.api import TRANSITION_ENDPOINTS, title_from
from dispatch.states import IN_HANDLING, TRANSITIONS
from hotline import attachments, suggestions
from hotline.api.parsing import Fields
from hotline.db import get_session, utcnow
from hotline.enums import (
    AssignmentRole,
    Channel,
    RequestType,
    TicketStatus,
    TimerKind,
    Urgency,
)
from hotline.errors import HotlineError, ValidationFailed
from hotline.models import Assignment, Attachment, Category, Ticket, TicketEvent
from hotline.web import page_for

S = TicketStatus

bp = Blueprint(
    "grid",
    __name__,
    url_prefix="/grid",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

NOTE_MAX = 1000
LIST_LIMIT = 100
RECENT_LIMIT = 20
#: Statuses of a ticket the worker has finished (最近办结).
DONE = (S.finished, S.called_back, S.closed)
STALE_MESSAGE = "工单已被他人同时处理，本次操作未生效，请刷新后重试"


def _sent_photos():
    """Whether the request carried photos (a refused form asks for them again)."""
    return any(f.filename for f in request.files.getlist("photos"))


# -- display helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    label: str
    due: dt.datetime
    state: str  # ok / warn / overdue (desk.deadline_state)
    words: str


def deadline(ticket, now):
    """The deadline the worker is held to next (签收 until signed, then 办结), coloured by the
    desk's one rule (``desk.ticket_deadlines``: amber when the 预警 timer fires)."""
    if ticket.status in (S.dispatched, S.reopened):
        wanted = "签收"
    elif ticket.status in IN_HANDLING:
        wanted = "办结"
    else:
        return None
    for label, due, state in desk.ticket_deadlines(get_session(), ticket, now):
        if label == wanted and due is not None:
            return Deadline(label, due, state.state, state.words)
    return None


def event_label(action):
    """An event's name in Chinese: a transition's label, or a timer's (签收预警 …)."""
    transition = TRANSITIONS.get(action)
    if transition is not None:
        return transition.label
    timer = TimerKind.parse(action)
    return timer.label if timer is not None else action


@bp.context_processor
def _helpers():
    return {"event_label": event_label}


# -- position -----------------------------------------------------------------------------------
# Browsers report WGS-84; the grids' polygons (and Chinese map apps) use GCJ-02. A position the
# device filled in is converted; one typed by hand is taken as GCJ-02 (read off a Chinese map).

_A = 6378245.0
_EE = 0.00669342162296594323


def _shift_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lng(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng, lat):
    """The published GCJ-02 offset formula (a few hundred metres in Weifang)."""
    d_lat = _shift_lat(lng - 105.0, lat - 35.0)
    d_lng = _shift_lng(lng - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return round(lng + d_lng, 6), round(lat + d_lat, 6)


def _coordinate(fields, name, label):
    raw = (fields.raw(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return fields._fail(name, f"{label}须为数字，如 119.1234")
    if not math.isfinite(value):
        return fields._fail(name, f"{label}须为数字，如 119.1234")
    return value


def _position(fields):
    """(lng, lat) in GCJ-02 from the form, or (None, None); half a position is an error."""
    lng = _coordinate(fields, "lng", "经度")
    lat = _coordinate(fields, "lat", "纬度")
    if (lng is None) != (lat is None):
        fields._fail("position", "经度和纬度须同时填写")
        return None, None
    if lng is None:
        return None, None
    operations.check_position(lng, lat)
    if fields.raw("position_source") == "device":
        lng, lat = wgs84_to_gcj02(lng, lat)
    return lng, lat


def _parse(parse):
    """Run ``parse`` over the posted form; all its field errors become one refusal."""
    fields = Fields(request.form.to_dict())
    values = parse(fields)
    if fields.errors:
        raise ValidationFailed(next(iter(fields.errors.values())), details=fields.errors)
    return values


def _version(fields):
    raw = (fields.raw("version") or "").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        fields._fail("version", "页面缺少工单版本号，请刷新后重试")
        return None
    return int(raw)


# -- the lists ----------------------------------------------------------------------------------


def _cards(db, query, limit):
    return db.scalars(
        query.options(
            selectinload(Ticket.area), selectinload(Ticket.category), selectinload(Ticket.lead_unit)
        ).limit(limit)
    ).all()


def _led_by(unit_id):
    return sa.exists().where(
        Assignment.ticket_id == Ticket.id,
        Assignment.unit_id == unit_id,
        Assignment.role == AssignmentRole.lead,
        Assignment.active,
    )


@bp.get("")
@page_for(*TRANSITIONS["accept"].roles)
def grid_page():
    """网格工作台: 待接单 (in my grids, led by my office, nobody accepted), 我的工单, 最近办结
    and my patrol reports."""
    db = get_session()
    user = g.user
    grid_ids = [a.id for a in user.grids]
    waiting = _cards(
        db,
        sa.select(Ticket)
        .where(
            Ticket.area_id.in_(grid_ids),
            Ticket.grid_worker_id.is_(None),
            Ticket.status.in_(TRANSITIONS["accept"].from_states),
            _led_by(user.unit_id),
        )
        .order_by(Ticket.finish_due, Ticket.id),
        LIST_LIMIT,
    )
    mine = _cards(
        db,
        sa.select(Ticket)
        .where(Ticket.grid_worker_id == user.id, Ticket.status.in_(IN_HANDLING))
        .order_by(Ticket.finish_due, Ticket.id),
        LIST_LIMIT,
    )
    done = _cards(
        db,
        sa.select(Ticket)
        .where(Ticket.grid_worker_id == user.id, Ticket.status.in_(DONE))
        .order_by(Ticket.finished_at.desc(), Ticket.id.desc()),
        RECENT_LIMIT,
    )
    reported = _cards(
        db,
        sa.select(Ticket)
        .where(Ticket.created_by_id == user.id, Ticket.channel == Channel.grid)
        .order_by(Ticket.received_at.desc(), Ticket.id.desc()),
        RECENT_LIMIT,
    )
    now = utcnow()
    return render_template(
        "grid.html",
        sections=[
            ("waiting", "待接单", waiting, "暂无待接单的工单"),
            ("mine", "我的工单", mine, "暂无在办工单"),
            ("done", "最近办结", done, "暂无办结工单"),
            ("reported", "我的主动发现", reported, "暂无上报记录"),
        ],
        deadline=lambda t: deadline(t, now),
        grids=user.grids,
    )


# -- one ticket -------------------------------------------------------------------------------


def _ticket_or_abort(db, number):
    ticket = db.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        abort(404)
    if not access.can_view(db, g.user, ticket):
        abort(403)
    return ticket


def _render_ticket(db, ticket, *, error=None, action=None, values=None, status=200):
    user = g.user
    events = db.scalars(
        sa.select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .options(selectinload(TicketEvent.actor))
        .order_by(TicketEvent.id)
    ).all()
    photos = db.scalars(
        sa.select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)
    ).all()
    photos_by_event = {}
    for photo in photos:
        photos_by_event.setdefault(photo.event_id, []).append(photo)
    lead = ticket.lead_assignment
    mine = ticket.grid_worker_id == user.id and ticket.status in TRANSITIONS["finish"].from_states
    checked_in = mine and operations.last_check_in(db, ticket, user) is not None
    may_accept = (
        ticket.grid_worker_id is None
        and ticket.status in TRANSITIONS["accept"].from_states
        and lead is not None
        and lead.unit_id == user.unit_id
        and ticket.area_id in {a.id for a in user.grids}
    )
    forms = set()
    if may_accept:
        forms.add("accept")
    if mine:
        forms.update({"check-in", "finish", "escalate"})
        if ticket.status in TRANSITIONS["contact"].from_states:
            forms.add("contact")
    return render_template(
        "grid_ticket.html",
        forms=forms,
        t=ticket,
        phone=access.visible_phone(user, ticket.requester_phone),
        events=events,
        photos_by_event=photos_by_event,
        deadline=deadline(ticket, utcnow()),
        checked_in=checked_in,
        error=error,
        action=action,
        values=values or {},
    ), status


@bp.get("/tickets/<number>")
@page_for(*TRANSITIONS["accept"].roles)
def ticket_page(number):
    db = get_session()
    return _render_ticket(db, _ticket_or_abort(db, number))


@dataclass(frozen=True)
class Action:
    operation: object
    parse: object
    #: Attachment purpose of the form's photos (None: the form takes none).
    purpose: str | None = None
    photos_required: bool = False
    done: str = "操作成功"


def _p_check_in(db, f):
    lng, lat = _position(f)
    return {
        "lng": lng,
        "lat": lat,
        "note": f.text("note", "核查说明", multiline=True, max_len=NOTE_MAX),
    }


def _api_parser(slug):
    """The JSON API's parser of a transition: its field rules are the page's too."""
    return TRANSITION_ENDPOINTS[slug][1]


ACTIONS = {
    "accept": Action(operations.accept, _api_parser("accept"), done="已接单"),
    "check-in": Action(
        operations.check_in,
        _p_check_in,
        purpose="site",
        photos_required=True,
        done="现场核查已记录",
    ),
    "contact": Action(operations.contact, _api_parser("contact"), done="已记录联系诉求人情况"),
    "finish": Action(operations.finish, _api_parser("finish"), purpose="result", done="工单已办结"),
    "escalate": Action(
        operations.escalate, _api_parser("escalate"), done="已上报，工单已交回单位承办人办理"
    ),
}


@bp.post("/tickets/<number>/<action>")
@page_for(*TRANSITIONS["accept"].roles)
def act(number, action):
    spec = ACTIONS.get(action)
    if spec is None:
        abort(404)
    db = get_session()
    user = g.user
    ticket = _ticket_or_abort(db, number)
    values = {}
    try:
        values = request.form.to_dict()
        arguments = _parse(lambda f: {"expected_version": _version(f), **spec.parse(db, f)})
        photos = []
        if spec.purpose:
            photos = attachments.check(
                request.files.getlist("photos"), required=spec.photos_required
            )
        if action == "check-in":
            arguments["photos"] = photos
        event = spec.operation(db, user, ticket, **arguments)
        if photos:
            attachments.store(db, user, ticket, photos, purpose=spec.purpose, event=event)
        db.commit()
    except (HotlineError, StaleDataError) as exc:
        db.rollback()
        message = exc.message if isinstance(exc, HotlineError) else STALE_MESSAGE
        status = exc.status if isinstance(exc, HotlineError) else 409
        if spec.purpose and _sent_photos():
            message += "（出于安全原因，照片需重新选择）"
        values.pop("csrf_token", None)
        return _render_ticket(
            db, ticket, error=message, action=action, values=values, status=status
        )
    message = spec.done
    if action == "accept" and event.payload.get("signed"):
        message += "，并已代表本单位签收"
    if action == "check-in" and event.payload.get("distance_m"):
        message += f"（定位距网格约 {event.payload['distance_m']:.0f} 米）"
    flash(message, "notice")
    if action in ("finish", "escalate"):
        return redirect(url_for("grid.grid_page"), 303)
    return redirect(url_for("grid.ticket_page", number=ticket.number), 303)


# -- 主动发现 -----------------------------------------------------------------------------------


def _categories(db):
    """Leaf categories grouped under their second level, for the form's select."""
    rows = db.scalars(sa.select(Category).where(Category.active).order_by(Category.code)).all()
    names = {c.code: c.name for c in rows}
    groups = {}
    for c in rows:
        if c.level == 3:
            parent = names.get(c.code[:4], "")
            groups.setdefault(f"{names.get(c.code[:2], '')} · {parent}", []).append(c)
    return groups


def _render_report(db, *, values=None, error=None, status=200):
    values = dict(values or {})
    values.setdefault("key", uuid.uuid4().hex)
    return render_template(
        "grid_report.html",
        grids=g.user.grids,
        categories=_categories(db),
        request_types=list(RequestType),
        urgencies=list(Urgency),
        values=values,
        error=error,
    ), status


def _key(fields):
    key = (fields.raw("key") or "").strip()
    if not (1 <= len(key) <= 100 and key.isascii() and key.isprintable()):
        fields._fail("key", "页面缺少防重复提交标识，请刷新页面后重新填写")
        return None
    return key


def _p_report(db, user, fields):
    values = {
        "content": fields.text(
            "content",
            "问题描述",
            required=True,
            multiline=True,
            max_len=current_app.config["MAX_TICKET_CONTENT_CHARS"],
        ),
        "title": fields.text("title", "标题", max_len=100),
        "request_type": fields.choice(
            "request_type", "诉求类型", RequestType, default=RequestType.help
        ),
        "urgency": fields.choice("urgency", "紧急程度", Urgency, default=Urgency.normal),
        "address": fields.text("address", "地址", max_len=200),
        "key": _key(fields),
    }
    code = (fields.raw("category") or "").strip()
    values["category"] = None
    if code:
        values["category"] = db.scalars(sa.select(Category).where(Category.code == code)).first()
        if values["category"] is None:
            fields._fail("category", f"事项分类不存在：{code}")
    values["lng"], values["lat"] = _position(fields)
    values["area"] = _grid_for(user, fields, values["lng"], values["lat"])
    return values


def _grid_for(user, fields, lng, lat):
    """The chosen grid (one of mine), or the one of mine the position falls in."""
    grids = {a.code: a for a in user.grids}
    code = (fields.raw("grid") or "").strip()
    if code:
        if code not in grids:
            return fields._fail("grid", "只能上报本人负责网格内的问题")
        return grids[code]
    if lng is None:
        return fields._fail("grid", "请选择网格，或点“获取定位”按位置确定网格")
    # The same point-in-polygon rule as the intake suggestions: near a boundary is no answer.
    hit = GridLocator([(a.code, a.polygon) for a in grids.values() if a.polygon]).lookup(lng, lat)
    if hit.code is None:
        return fields._fail("grid", "定位不在您负责的网格内或靠近网格边界，请手动选择网格")
    return grids[hit.code]


@bp.route("/report", methods=["GET", "POST"])
@page_for(*TRANSITIONS["accept"].roles)
def report():
    """主动发现: a problem the worker found on patrol, with photos, becomes a ticket (channel
    网格主动发现) that goes to the dispatcher like any other."""
    db = get_session()
    user = g.user
    if request.method == "GET":
        return _render_report(db)
    typed = {}
    try:
        typed = request.form.to_dict()
        values = _parse(lambda f: _p_report(db, user, f))
        photos = attachments.check(request.files.getlist("photos"), required=True)
        key = values.pop("key")
        digest = operations.request_digest(
            {**typed, "photos": [p.sha256 for p in photos], "csrf_token": None}
        )
        if values["title"] is None:
            values["title"] = title_from(values["content"])
        values["suggestion"] = suggestions.for_intake(
            db, values["content"], address=values["address"], lng=values["lng"], lat=values["lat"]
        )
        ticket, created = operations.receive(
            db, user, channel=Channel.grid, idempotency_key=key, digest=digest, **values
        )
        if created:
            event = db.scalars(
                sa.select(TicketEvent).where(
                    TicketEvent.ticket_id == ticket.id, TicketEvent.action == "receive"
                )
            ).one()
            attachments.store(db, user, ticket, photos, purpose="report", event=event)
        db.commit()
    except HotlineError as exc:
        db.rollback()
        typed.pop("csrf_token", None)
        message = exc.message
        if exc.code == "IDEMPOTENCY_KEY_REUSED":
            # Back button after a report, then edited: this is a new report, so a new key.
            typed.pop("key", None)
            message = "此表单已提交过一次；如要上报另一个问题，请核对内容后再次提交"
        if _sent_photos():
            message += "（出于安全原因，照片需重新选择）"
        return _render_report(db, values=typed, error=message, status=exc.status)
    if created:
        flash(f"已上报，工单编号 {ticket.number}，将由热线派单", "notice")
    else:
        flash(f"该问题已上报过（工单编号 {ticket.number}），未重复创建", "notice")
    return redirect(url_for("grid.ticket_page", number=ticket.number), 303)
