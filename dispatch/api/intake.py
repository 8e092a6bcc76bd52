"""JSON endpoints behind the operator console's live panels: knowledge-base search (首问即答),
possible duplicates (并单) and the names of suggested places and units.

The classifier's suggestion itself comes from ``POST /api/v1/suggest`` (``classifier.py``).
"""

import sqlalchemy as sa
from flask import Blueprint, g, request

from dispatch import duplicates
from hotline import knowledge
from hotline.api import ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import ValidationFailed
from hotline.models import Area
from hotline.schemas import ADDRESS_MAX, Fields, json_body
from hotline.suggestions import place_names, unit_names


def create_blueprint():
    bp = Blueprint("intake", __name__)
    bp.add_url_rule("/knowledge", view_func=search_knowledge)
    bp.add_url_rule("/duplicates", view_func=find_duplicates, methods=["POST"])
    bp.add_url_rule("/intake/names", view_func=intake_names)
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
    return ok([knowledge.entry_to_dict(entry, score) for entry, score in found])


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
