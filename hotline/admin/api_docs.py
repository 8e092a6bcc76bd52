"""The API's documentation page (接口文档): ``/api/v1/openapi.json`` (``hotline.openapi``)
rendered readably in Chinese, for administrators who hand the API to other systems:
the endpoints by group, who may call, each query argument and body field with its label,
type, whether it is required and its limits (length, range, values with their labels), and
the statuses each endpoint may answer."""

from flask import Blueprint, current_app, render_template

from hotline import openapi, web
from hotline.enums import Role
from hotline.web import page_for

#: JSON Schema types as the page names them.
TYPES = {
    "string": "文本",
    "integer": "整数",
    "number": "数字",
    "boolean": "true / false",
    "array": "列表",
    "object": "对象",
}
METHODS = ("get", "post", "put", "patch", "delete")


def create_blueprint():
    bp = Blueprint("admin_api_docs", __name__, url_prefix="/admin/api-docs")
    bp.add_url_rule("/", view_func=docs_page)
    web.add_to_admin(
        bp, "docs_page", "接口文档", "JSON API（/api/v1）的全部接口：字段、类型、限制和错误码"
    )
    return bp


def type_of(schema):
    """A field's type in words (a list's items included); "任意" where it is not declared."""
    kind = schema.get("type")
    if isinstance(kind, list):
        return " 或 ".join(type_of({**schema, "type": one}) for one in kind)
    if kind == "array":
        items = schema.get("items", {})
        return f"{TYPES['array']}（{type_of(items)}）"
    return TYPES.get(kind, "任意")


def limits_of(schema):
    """A field's limits in Chinese: length, range, items, allowed values with their labels,
    the format its pattern requires, its default."""
    out = []
    if "minLength" in schema and "maxLength" in schema:
        out.append(f"{schema['minLength']}–{schema['maxLength']} 字")
    elif "maxLength" in schema:
        out.append(f"最多 {schema['maxLength']} 字")
    if "minimum" in schema and "maximum" in schema:
        out.append(f"{schema['minimum']}–{schema['maximum']}")
    elif "minimum" in schema:
        out.append(f"≥ {schema['minimum']}")
    if "maxItems" in schema:
        out.append(f"最多 {schema['maxItems']} 项")
    if "enum" in schema:
        labels = schema.get("x-enum-labels", {})
        out.append(
            "可选："
            + "、".join(f"{v}（{labels[v]}）" if v in labels else str(v) for v in schema["enum"])
        )
    pattern = schema.get("pattern") or schema.get("items", {}).get("pattern")
    if pattern and pattern != r"\S":
        out.append(f"格式：{pattern}")
    if "default" in schema:
        out.append(f"默认：{schema['default']}")
    if schema.get("x-multiline"):
        out.append("可换行")
    return out


def operations(description):
    """(tag, its description, [(method, path, operation)]) in the description's tag order."""
    groups = {tag["name"]: (tag["name"], tag["description"], []) for tag in description["tags"]}
    for path, item in description["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                groups[operation["tags"][0]][2].append((method.upper(), path, operation))
    return [group for group in groups.values() if group[2]]


@page_for(Role.admin)
def docs_page():
    description = openapi.cached(current_app)
    return render_template(
        "admin/api_docs.html",
        description=description,
        groups=operations(description),
        type_of=type_of,
        limits_of=limits_of,
        count=sum(len(item) for item in description["paths"].values()),
    )
