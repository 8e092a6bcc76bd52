"""The category tree (事项分类) in the JSON API, for administrators: the whole tree, a new
category, and one change to a category (name, parent, utility, active). The rules are
``hotline.categories``'."""

from flask import Blueprint, g

from hotline import categories, openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.enums import Role
from hotline.schemas import json_body

ADMIN = (Role.admin,)


def create_blueprint():
    bp = Blueprint("admin_categories", __name__, url_prefix="/admin/categories")
    bp.add_url_rule("", view_func=list_tree)
    bp.add_url_rule("", view_func=create, methods=["POST"])
    bp.add_url_rule("/<code>", view_func=get_one)
    bp.add_url_rule("/<code>", view_func=change, methods=["PATCH"])
    return bp


def _require_admin():
    require_role(ADMIN, "“{role}”角色无权管理事项分类")


def _one(db, category):
    (node,) = [n for n in _walk(categories.tree(db)) if n.category.id == category.id]
    return node.as_dict()


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.children)


def list_tree():
    """The whole tree, inactive categories included, with each node's ticket count."""
    _require_admin()
    return ok([node.as_dict() for node in categories.tree(get_session())])


def get_one(code):
    _require_admin()
    db = get_session()
    return ok(_one(db, categories.load(db, code)))


@openapi.body(lambda data: categories.parse_values(None, data, creating=True))
def create():
    """A new category: ``name``, ``parent`` (code; absent: a 一级 class), optionally
    ``code`` (else generated) and ``utility`` (else as its parent)."""
    _require_admin()
    db = get_session()
    values = categories.parse_values(db, json_body(), creating=True)
    row = categories.add(db, g.user, **values)
    commit()
    return ok(_one(db, row), 201, {"Location": f"/api/v1/admin/categories/{row.code}"})


@openapi.body(lambda data: categories.parse_values(None, data, creating=False), partial=True)
def change(code):
    """Any of ``name``, ``parent`` (a move: the subtree's codes change; the answer has the
    new code), ``utility``, ``active``."""
    _require_admin()
    db = get_session()
    category = categories.load(db, code)
    values = categories.parse_values(db, json_body(), creating=False)
    categories.update(db, g.user, category, values)
    commit()
    return ok(_one(db, category))
