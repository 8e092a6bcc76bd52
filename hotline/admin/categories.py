"""事项分类 in the administration: the tree, and each category's page with its changes (add a
child, rename, move under another parent, 水电气热, deactivate / reactivate). Forms only
parse and render; ``hotline.categories`` holds every rule. The import and export of the tree
(``hotline.categories.IMPORTER``) run on the shared import pages."""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from hotline import categories, pickers, tabular, web
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import ValidationFailed
from hotline.schemas import form_values
from hotline.web import page_for, perform

ADMIN = (Role.admin,)


def create_blueprint():
    bp = Blueprint("admin_categories", __name__, url_prefix="/admin/categories")
    bp.add_url_rule("/", view_func=tree)
    bp.add_url_rule("/", view_func=add, methods=["POST"], endpoint="add")
    bp.add_url_rule("/find", view_func=find)
    bp.add_url_rule("/<code>", view_func=detail)
    bp.add_url_rule("/<code>/rename", view_func=rename, methods=["POST"])
    bp.add_url_rule("/<code>/move", view_func=move, methods=["POST"])
    bp.add_url_rule("/<code>/utility", view_func=utility, methods=["POST"])
    bp.add_url_rule("/<code>/active", view_func=active, methods=["POST"])
    web.add_to_admin(bp, "tree", "事项分类", "三级分类树：新增、改名、移动、停用，标记水电气热")
    tabular.register_on(bp, categories.IMPORTER)
    return bp


def _choices(rows, by_code):
    """Pickers' choices of ``rows`` (any level), grouped under their parent's path."""
    return pickers.grouped(
        pickers.Choice(
            code=row.code,
            name=row.name + ("（已停用）" if not row.active else ""),
            level=row.level,
            path=categories.path_names(row, by_code),
            parent=row.code[:-2] or None,
        )
        for row in rows
    )


@page_for(*ADMIN)
def tree():
    return _tree_page(get_session())


def _tree_page(db, *, status=200, error=None, typed=None):
    rows = categories.all_categories(db)
    by_code = {row.code: row for row in rows}
    html = render_template(
        "admin/categories.html",
        nodes=categories.tree(db),
        all_choices=_choices(rows, by_code),
        levels=categories.LEVEL_LABELS,
        error=error,
        typed=typed or {},
        # The branch to show open (the tree's link from a category's page).
        opened=request.args.get("open", "")[:16],
    )
    return html, status


@page_for(*ADMIN)
def find():
    """The category chosen in the search picker → its page."""
    code = request.args.get("code", "").strip()
    if not code:
        return redirect(url_for(".tree"))
    return redirect(url_for(".detail", code=code))


def _detail_page(db, category, *, status=200, error=None, typed=None):
    rows = categories.all_categories(db)
    by_code = {row.code: row for row in rows}
    targets = [
        row for row in rows if row.level == category.level - 1 and row.id != category.parent_id
    ]
    (node,) = [n for n in _walk(categories.tree(db)) if n.category.id == category.id]
    html = render_template(
        "admin/category.html",
        category=category,
        node=node,
        path=categories.path_names(category, by_code),
        ancestors=[by_code[category.code[:n]] for n in range(2, len(category.code), 2)],
        targets=_choices(targets, by_code),
        levels=categories.LEVEL_LABELS,
        error=error,
        typed=typed or {},
    )
    return html, status


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.children)


@page_for(*ADMIN)
def detail(code):
    db = get_session()
    return _detail_page(db, categories.load(db, code))


def _run(code, action, operation, done_message):
    """Parse and apply one change of the category ``code`` from the posted form; back to
    its page with a notice, or the page again with the refusal and what was typed."""
    db = get_session()
    category = categories.load(db, code)

    def change(session):
        return operation(session, category, form_values(request.form))

    done, result = perform(
        change,
        refused=lambda exc: _detail_page(
            get_session(),
            categories.load(get_session(), code),
            status=exc.status,
            error=exc.message,
            typed={"form": action, **request.form.to_dict()},
        ),
    )
    if not done:
        return result
    flash(done_message(category, result))
    return redirect(url_for(".detail", code=category.code))


def _confirmed(data):
    if data.get("confirm") != "yes":
        raise ValidationFailed("请勾选确认后再提交", code="CONFIRMATION_REQUIRED")


@page_for(*ADMIN)
def rename(code):
    def operation(db, category, data):
        values = categories.parse_values(db, {"name": data.get("name")}, creating=False)
        return categories.rename(db, g.user, category, values["name"])

    return _run(
        code,
        "rename",
        operation,
        lambda c, changed: f"已改名为“{c.name}”" if changed else "名称未变",
    )


@page_for(*ADMIN)
def move(code):
    def operation(db, category, data):
        _confirmed(data)
        values = categories.parse_values(db, {"parent": data.get("parent")}, creating=False)
        return categories.move(db, g.user, category, values["parent"])

    def message(category, recoded):
        return (
            f"已移动到“{category.parent.name}”之下，编码 "
            + "、".join(f"{old} → {new}" for old, new in list(recoded.items())[:5])
            + ("……" if len(recoded) > 5 else "")
        )

    return _run(code, "move", operation, message)


@page_for(*ADMIN)
def utility(code):
    def operation(db, category, data):
        wanted = data.get("utility") == "true"
        return categories.set_utility(db, g.user, category, wanted)

    return _run(
        code,
        "utility",
        operation,
        lambda c, changed: (
            f"已{'标记' if c.utility else '取消'}水电气热（{len(changed)} 个分类）"
            if changed
            else "未变化"
        ),
    )


@page_for(*ADMIN)
def active(code):
    def operation(db, category, data):
        wanted = data.get("active") == "true"
        if not wanted:
            _confirmed(data)
        return categories.set_active(db, g.user, category, wanted)

    return _run(
        code,
        "active",
        operation,
        lambda c, changed: (
            f"已{'启用' if c.active else '停用'}“{c.name}”"
            + (f"及其 {len(changed) - 1} 个下级分类" if len(changed) > 1 else "")
            if changed
            else "未变化"
        ),
    )


@page_for(*ADMIN)
def add():
    """A new category under the posted parent (none: a 一级 class)."""
    data = form_values(request.form)
    parent_code = data.get("parent")

    def change(session):
        values = categories.parse_values(
            session,
            {k: data[k] for k in ("name", "parent") if k in data},
            creating=True,
        )
        return categories.add(session, g.user, **values)

    def refused(exc):
        if parent_code:
            parent = categories.load(get_session(), parent_code)
            typed = {"form": "add", **request.form.to_dict()}
            return _detail_page(
                get_session(), parent, status=exc.status, error=exc.message, typed=typed
            )
        return _tree_page(get_session(), status=exc.status, error=exc.message, typed=request.form)

    done, row = perform(change, refused=refused)
    if not done:
        return row
    flash(f"已新增{categories.LEVEL_LABELS[row.level]}“{row.name}”（{row.code}）")
    return redirect(url_for(".detail", code=row.code))
