"""The dispatch catalogue's administration pages (派单目录): the rules with filters and their
flags, a rule's form (pickers for category, area and unit), ending and deleting a rule, and
"who handles this?" (谁来办？). Views parse and render; ``dispatch.catalogue`` holds every
rule. Its import and export are the shared import pages' (``tabular``: kind ``routing``)."""

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from dispatch import catalogue, routing
from hotline import pickers, tabular, web
from hotline.db import get_session
from hotline.enums import Role, UnitKind
from hotline.errors import HotlineError, ValidationFailed
from hotline.models import Category, Unit
from hotline.schemas import Page, form_values
from hotline.web import page_for

ADMIN = (Role.admin,)
PAGE_SIZE = 50


def create_blueprint():
    bp = Blueprint(
        "admin_routing", __name__, url_prefix="/admin/routing", template_folder="templates"
    )
    bp.add_url_rule("/", view_func=rules)
    bp.add_url_rule("/new", view_func=new_rule, methods=["GET", "POST"])
    bp.add_url_rule("/<id:rule_id>", view_func=edit_rule, methods=["GET", "POST"])
    bp.add_url_rule("/<id:rule_id>/end", view_func=end_rule, methods=["POST"])
    bp.add_url_rule("/<id:rule_id>/delete", view_func=delete_rule, methods=["POST"])
    bp.add_url_rule("/preview", view_func=preview)
    web.add_to_admin(
        bp,
        "rules",
        "派单目录",
        "哪类事项在哪里派给哪个单位：带生效日期的规则、冲突与覆盖提示、“谁来办”预览",
    )
    tabular.register_on(bp, catalogue.IMPORTER)
    web.add_admin_warnings(bp, _warnings)
    return bp


def _warnings(db):
    today = routing.today()
    flagged = catalogue.listing(db, catalogue.Filters(issue="any"), today)
    conflicts = sum(1 for _, flags in flagged if any(f.kind == "conflict" for f in flags))
    if not conflicts:
        return []
    return [
        (
            f"派单目录有 {conflicts} 条规则互相冲突（同一分类和区域同期派给不同单位）",
            url_for("admin_routing.rules", issue="conflict"),
        )
    ]


def _units(db):
    """Active units grouped by kind, for the unit picker: [(UnitKind, [Unit])]."""
    rows = db.scalars(sa.select(Unit).where(Unit.active).order_by(Unit.code)).all()
    groups = [(kind, [u for u in rows if u.kind == kind]) for kind in UnitKind]
    return [(kind, group) for kind, group in groups if group]


def category_groups(db):
    """Every active category, level one included (a rule may cover a whole 一级 class),
    grouped under its parent's path, for the category picker."""
    rows = db.execute(
        sa.select(Category.code, Category.name, Category.level)
        .where(Category.active)
        .order_by(Category.code)
    ).all()
    names = {code: name for code, name, _ in rows}
    groups = {}
    for code, name, level in rows:
        ancestors = [code[:n] for n in range(2, len(code), 2)]
        if any(a not in names for a in ancestors):
            continue
        choice = pickers.Choice(
            code=code,
            name=name,
            level=level,
            path=tuple(names[a] for a in ancestors) + (name,),
            parent=ancestors[-1] if ancestors else None,
        )
        groups.setdefault(pickers.PATH_SEPARATOR.join(choice.path[:-1]), []).append(choice)
    return tuple(pickers.Group(label, tuple(options)) for label, options in groups.items())


def _all_units(db):
    return db.scalars(sa.select(Unit).order_by(Unit.code)).all()


@page_for(*ADMIN)
def rules():
    db = get_session()
    today = routing.today()
    error = None
    args = {k: v for k, v in request.args.items() if k not in ("area", "city")}
    try:
        args["area"] = (
            "city"
            if request.args.get("city")
            else pickers.chosen_area(request.args.getlist("area"))
        )
        page = Page.from_args(request.args, size=PAGE_SIZE)
        filters = catalogue.parse_filters(args)
    except HotlineError as exc:
        page, filters, error = Page(1, PAGE_SIZE), catalogue.Filters(), exc.message
    found, issue_count = catalogue.flagged_rules(db, today, filters)
    shown = found[page.offset : page.offset + page.size]
    return render_template(
        "admin_routing_list.html",
        rows=shown,
        total=len(found),
        page=page,
        pages=page.count(len(found)),
        filters=filters,
        today=today,
        error=error,
        units=_all_units(db),
        issue_count=issue_count,
        states=catalogue.STATES,
        flag_labels=catalogue.FLAG_LABELS,
        path=catalogue.category_path,
        state_of=catalogue.state_of,
        categories=category_groups(db),
        query={k: v for k, v in args.items() if k != "page" and v},
    )


def _posted(creating):
    """The posted form as the JSON ``rule_values`` reads: blanks are absent when creating;
    when editing, a blank area, date or note clears it."""
    data = form_values(request.form, booleans=("replace",))
    area = pickers.chosen_area(request.form.getlist("area"))
    data.pop("area", None)
    if area:
        data["area"] = area
    if not creating:
        for name in ("area", "valid_from", "valid_to", "note"):
            data.setdefault(name, None)
    return data


def _form(rule, typed=None, error=None, status=200):
    db = get_session()
    today = routing.today()
    flags = []
    if rule is not None:
        found = catalogue.analyse(catalogue.all_rules(db), catalogue.offered_categories(db), today)
        flags = found.get(rule.id, [])
    if typed is None:
        typed = (
            {
                "category": rule.category.code,
                "area": rule.area.code if rule.area else "",
                "unit": rule.unit.code,
                "valid_from": rule.valid_from.isoformat() if rule.valid_from else "",
                "valid_to": rule.valid_to.isoformat() if rule.valid_to else "",
                "note": rule.note or "",
            }
            if rule is not None
            else {"valid_from": today.isoformat()}
        )
    return (
        render_template(
            "admin_routing_form.html",
            rule=rule,
            typed=typed,
            error=error,
            flags=flags,
            units=_units(db),
            categories=category_groups(db),
            today=today,
            yesterday=today - dt.timedelta(days=1),
            path=catalogue.category_path,
            rule_text=catalogue.rule_text,
        ),
        status,
    )


def _typed():
    typed = {k: v for k, v in request.form.items() if k != "csrf_token"}
    codes = sorted((v for v in request.form.getlist("area") if v), key=len)
    typed["area"] = codes[-1] if codes else ""
    return typed


def _refused(rule):
    def refused(error):
        details = error.details if isinstance(error.details, dict) else {}
        words = [v for v in details.values() if isinstance(v, str)]
        message = "；".join(words) if len(words) > 1 else error.message
        return _form(rule, _typed(), message, error.status)

    return refused


@page_for(*ADMIN)
def new_rule():
    if request.method == "GET":
        return _form(None)

    def change(db):
        values = catalogue.rule_values(db, _posted(True), creating=True)
        return catalogue.create_rule(db, g.user, values, routing.today())

    done, result = web.perform(change, refused=_refused(None))
    if not done:
        return result
    flash(f"已新增派单规则 {catalogue.rule_text(result)}", "notice")
    return redirect(url_for("admin_routing.rules", category=result.category.code))


@page_for(*ADMIN)
def edit_rule(rule_id):
    db = get_session()
    rule = catalogue.load_rule(db, rule_id)
    if request.method == "GET":
        return _form(rule)

    def change(db):
        values = catalogue.rule_values(db, _posted(False), creating=False)
        return catalogue.update_rule(db, g.user, rule, values, routing.today())

    done, result = web.perform(change, refused=_refused(rule))
    if not done:
        return result
    flash(f"已保存派单规则 {catalogue.rule_text(result)}", "notice")
    return redirect(url_for("admin_routing.rules", category=result.category.code))


@page_for(*ADMIN)
def end_rule(rule_id):
    db = get_session()
    rule = catalogue.load_rule(db, rule_id)

    def change(db):
        try:
            last = catalogue.parse_date(request.form.get("valid_to", ""), "最后生效日期")
        except ValueError as exc:
            raise ValidationFailed(str(exc), details={"valid_to": str(exc)}) from None
        return catalogue.end_rule(db, g.user, rule, last, routing.today())

    done, result = web.perform(change, refused=_refused(rule))
    if not done:
        return result
    flash(f"派单规则 #{rule_id} 将于 {result.valid_to} 后不再生效", "notice")
    return redirect(url_for("admin_routing.rules", category=result.category.code))


@page_for(*ADMIN)
def delete_rule(rule_id):
    db = get_session()
    rule = catalogue.load_rule(db, rule_id)
    text, category = catalogue.rule_text(rule), rule.category.code
    done, result = web.perform(
        lambda db: catalogue.delete_rule(db, g.user, rule), refused=_refused(rule)
    )
    if not done:
        return result
    flash(f"已删除派单规则 {text}", "notice")
    return redirect(url_for("admin_routing.rules", category=category))


@page_for(*ADMIN)
def preview():
    db = get_session()
    args = dict(request.args)
    if "area" in request.args:
        args["area"] = pickers.chosen_area(request.args.getlist("area"))
    result, error = None, None
    if args.get("category"):
        try:
            category, area, day, address = catalogue.preview_query(db, args)
            result = catalogue.preview(db, category, area, day, address=address)
        except HotlineError as exc:
            error = exc.message
    return render_template(
        "admin_routing_preview.html",
        categories=category_groups(db),
        args=args,
        result=result,
        error=error,
        today=routing.today(),
        rule_text=catalogue.rule_text,
        area_name=catalogue.area_name,
    ), 200 if error is None else 422
