"""协办反馈 and 拆单 as the JSON API and the pages read and write them: one parser per
operation (a JSON body, or a posted form turned into the same shape) and the serialisers.
Rules about the tickets live in ``dispatch.cohandling``.

A split's body: ``{"children": [{"content", "category", "area", "unit"}, …], "reason",
"version"}`` — codes for category, area (optional: the call's) and unit. The page's form
posts rows ``content-N``, ``category-N``, ``area-N``, ``unit-N``; rows left wholly blank are
not children.
"""

from dispatch import cohandling, operations
from dispatch.schemas import NOTE_MAX, RESULT_MAX, ticket_to_dict
from hotline.models import Area, Category, Unit
from hotline.pickers import chosen_area
from hotline.schemas import Fields, coded, form_values, iso, labelled, lookup_code

#: The inputs of one child row on the page.
CHILD_FIELDS = ("content", "category", "area", "unit")


def report_values(db, actor, data, *, page=False):
    """协办反馈's keyword arguments (without photos) from ``data``."""
    operations.check_role("report_assist", actor)
    fields = _fields(data, page)
    version = fields.version() if page else fields.integer("version", "版本号", minimum=1)
    report = fields.text(
        "report", "协办反馈内容", required=True, multiline=True, max_len=RESULT_MAX
    )
    fields.check()
    return {"expected_version": version, "report": report}


def split_values(db, actor, data, *, page=False):
    """拆单's keyword arguments from ``data``; every bad field of every child is named."""
    operations.check_role("split", actor)
    if page:
        data = _rows_to_children(data)
    fields = Fields(data)
    version = fields.version() if page else fields.integer("version", "版本号", minimum=1)
    reason = fields.text("reason", "拆单说明", multiline=True, max_len=NOTE_MAX)
    raw = fields.raw("children")
    children = []
    if not isinstance(raw, list):
        fields.fail("children", "请填写拆分后的各项（children 须为列表）")
    elif len(raw) > cohandling.MAX_CHILDREN:
        fields.fail("children", f"拆单最多拆分为 {cohandling.MAX_CHILDREN} 项")
    else:
        for i, item in enumerate(raw, 1):
            children.append(_child(db, fields, i, item))
    fields.check()
    return {"expected_version": version, "reason": reason, "children": children}


def _child(db, fields, i, item):
    name = f"children.{i}"
    if not isinstance(item, dict):
        return fields.fail(name, f"第 {i} 项须为对象")
    inner = Fields(item)
    content = inner.content("content", "该项诉求内容")
    category = lookup_code(
        db,
        inner,
        "category",
        Category,
        "事项分类",
        inner.code("category", "事项分类", required=True),
    )
    area = lookup_code(db, inner, "area", Area, "区域", inner.code("area", "区域"))
    unit = lookup_code(
        db, inner, "unit", Unit, "承办单位", inner.code("unit", "承办单位", required=True)
    )
    for key in item:
        if key not in inner.read:
            inner.errors.setdefault(key, f"未知字段“{key}”")
    for key, message in inner.errors.items():
        fields.fail(f"{name}.{key}", f"第 {i} 项：{message}")
    return cohandling.Child(content, category, area, unit)


def _fields(data, page):
    if page:
        data = form_values(data, skip=("csrf_token", "back"))
        data.setdefault("version", "")
    return Fields(data)


def _rows_to_children(form):
    """A posted split form as the JSON body's shape (each row's area cascade posts one value
    per level: the most specific is the child's area, ``pickers.chosen_area``)."""
    areas = [k for k in form if k.startswith("area-")]
    data = form_values(form, skip=("csrf_token", "back", *areas))
    for key in areas:
        chosen = chosen_area(form.getlist(key))
        if chosen:
            data[key] = chosen
    data.setdefault("version", "")
    rows = {}
    for key in list(data):
        base, _, index = key.rpartition("-")
        if base in CHILD_FIELDS and index.isascii() and index.isdigit() and len(index) <= 3:
            rows.setdefault(int(index), {})[base] = data.pop(key)
    data["children"] = [rows[i] for i in sorted(rows)]
    return data


# -- serialising ------------------------------------------------------------------------------


def assist_to_dict(row):
    a = row.assignment
    return {
        "unit": coded(a.unit),
        "state": row.state,
        "current": row.current,
        "signed_at": iso(a.signed_at),
        "reported_at": iso(a.finished_at),
        "report": a.report,
        "photos": [p.id for p in row.photos],
    }


def child_to_dict(ticket):
    return {
        "number": ticket.number,
        "title": ticket.title,
        "status": labelled(ticket.status),
        "category": coded(ticket.category),
        "lead_unit": coded(ticket.lead_unit),
    }


def split_to_dict(db, parent, actor, event):
    body = ticket_to_dict(parent, actor)
    body["children"] = [child_to_dict(t) for t in cohandling.children_of(db, parent)]
    body["event"] = {
        "id": event.id,
        "action": event.action,
        "payload": event.payload,
        "created_at": iso(event.created_at),
    }
    return body
