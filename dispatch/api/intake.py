"""JSON endpoints behind the operator console's live panels: knowledge-base search (首问即答),
possible duplicates (并单), the names of suggested places and units, a caller's earlier
tickets (来电历史), and the phone system's hook (来电弹屏): the switch announces each call it
puts through to an agent, and the agent's console asks for the call ringing at its seat.

The classifier's suggestion itself comes from ``POST /api/v1/suggest`` (``classifier.py``).
"""

import sqlalchemy as sa
from flask import Blueprint, g, request

from dispatch import calls, duplicates
from dispatch.schemas import call_to_dict, call_values, caller_history_to_dict
from hotline import knowledge, openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import NotFound, ValidationFailed
from hotline.models import Area
from hotline.schemas import ADDRESS_MAX, Fields, json_body
from hotline.suggestions import place_names, unit_names


def create_blueprint():
    bp = Blueprint("intake", __name__)
    bp.add_url_rule("/knowledge", view_func=search_knowledge)
    bp.add_url_rule("/knowledge/articles/<code>/hit", view_func=article_hit, methods=["POST"])
    bp.add_url_rule("/duplicates", view_func=find_duplicates, methods=["POST"])
    bp.add_url_rule("/intake/names", view_func=intake_names)
    bp.add_url_rule("/intake/caller", view_func=caller_history)
    bp.add_url_rule("/calls", view_func=announce_call, methods=["POST"])
    bp.add_url_rule("/calls/pending", view_func=pending_call)
    return bp


#: Who takes calls or sorts them: the console's helpers are theirs.
INTAKE_ROLES = {Role.operator, Role.dispatcher}
#: Longest knowledge-base query (a whole complaint text may be sent while typing).
QUERY_MAX = 2000


def search_knowledge():
    """知识库: the best articles for ``q`` (the call's words), best first."""
    require_role(INTAKE_ROLES)
    query = (request.args.get("q") or "").strip()
    if not query:
        raise ValidationFailed("请填写查询内容", details={"q": "请填写查询内容"})
    if len(query) > QUERY_MAX:
        message = f"查询内容不能超过 {QUERY_MAX} 字（现为 {len(query)} 字）"
        raise ValidationFailed(message, details={"q": message})
    found = knowledge.search(get_session(), query)
    return ok([knowledge.entry_to_dict(entry, relevance) for entry, relevance in found])


def article_hit(code):
    """命中: the operator opened the article ``code``'s answer at the console (the console's
    script posts once per article per call). Counts only an article in force."""
    require_role(INTAKE_ROLES)
    db = get_session()
    if not knowledge.record_hit(db, code):
        raise NotFound(f"知识库条目不存在或已停用：{code}", code="ARTICLE_NOT_FOUND")
    commit()
    return ok({"code": code})


def find_duplicates():
    """并单: tickets of the last days that may report the same matter as the call being taken."""
    require_role(INTAKE_ROLES)
    db = get_session()
    fields = Fields(json_body())
    phone = fields.phone("phone", "联系电话")
    address = fields.text("address", "地址", max_len=ADDRESS_MAX)
    area_code = fields.code("area", "区域")
    content = fields.content(required=False)
    area = None
    if area_code:
        area = db.scalars(sa.select(Area).where(Area.code == area_code)).first()
        if area is None:
            fields.errors.setdefault("area", f"区域不存在：{area_code}")
    if not (phone or address or area_code or fields.errors):
        fields.errors["phone"] = "请至少提供联系电话、地址或区域之一"
    fields.check()
    found = duplicates.find(db, g.user, phone=phone, address=address, area=area, content=content)
    return ok([duplicates.candidate_to_dict(c, g.user) for c in found])


def intake_names():
    """Names for a suggestion's codes: ``area`` (any level) → its district, street, community
    and grid; ``units`` (comma-separated) → unit names."""
    require_role(INTAKE_ROLES)
    db = get_session()
    area = (request.args.get("area") or "").strip()
    place = {}
    if area:
        # Area codes are hierarchical: 6 district, 9 street, 12 community, 15 grid digits.
        for level, length in (("district", 6), ("street", 9), ("community", 12), ("grid", 15)):
            if len(area) >= length:
                place[level] = area[:length]
    units = [c for c in (request.args.get("units") or "").split(",") if c][:10]
    names = unit_names(db, units)
    return ok(
        {
            "place": place_names(db, place),
            "units": [{"code": c, "name": names.get(c)} for c in units],
        }
    )


def _history(db, phone):
    return caller_history_to_dict(phone, *calls.history(db, g.user, phone))


def caller_history():
    """来电历史: every earlier ticket of the number ``phone``, newest first (the first
    ``calls.HISTORY_LIMIT``, and how many there are in all)."""
    require_role(INTAKE_ROLES)
    fields = Fields({"phone": request.args.get("phone", "")})
    phone = fields.phone("phone", "联系电话")
    if phone is None:
        fields.errors.setdefault("phone", "请填写联系电话")
    fields.check()
    return ok(_history(get_session(), phone))


@openapi.body(lambda data: call_values(Fields(data)))
def announce_call():
    """来电弹屏: the phone system announces a call put through to an agent.

    Body: ``call_id`` (the switch's id of the call), ``caller`` (the caller's number, when
    shown), ``agent`` (the operator's login name), ``recording`` (where the recording will
    be). The switch calls with the API token of an operator account kept for it. Announcing
    the same call again returns the first record (200), so the switch may retry freely."""
    require_role({Role.operator})
    db = get_session()
    call, created = calls.announce(db, g.user, **call_values(Fields(json_body())))
    commit()
    return ok(call_to_dict(call, g.user), 201 if created else 200)


def pending_call():
    """The call ringing at the caller's own seat (``after``: the id of the last call the
    console already showed), with the caller's history; ``null`` when there is none."""
    require_role({Role.operator})
    after = request.args.get("after", "0")
    if not (after.isascii() and after.isdigit() and len(after) < 10):
        raise ValidationFailed("after 须为来电记录编号", details={"after": "须为来电记录编号"})
    db = get_session()
    call = calls.pending_for(db, g.user, after_id=int(after))
    if call is None:
        return ok(None)
    data = call_to_dict(call, g.user)
    data["history"] = _history(db, call.caller_phone) if call.caller_phone else None
    return ok(data)
