"""The knowledge base's administration pages (知识库): the list with filters and per-article
hit and close counts, the review queue, an article with its history, the draft form, and one
button per action its state allows. Administrators and supervisors (督办审核员) use them;
every rule is in ``hotline.knowledge_admin``."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from hotline import knowledge, settings, tabular, web
from hotline import knowledge_admin as kb
from hotline.db import get_session
from hotline.enums import ArticleState, Role
from hotline.errors import HotlineError, NotFound
from hotline.schemas import check_query, form_values
from hotline.web import page_for

ROLES = (Role.admin, Role.supervisor)
#: The state changes a page posts (``/admin/knowledge/<code>/<action>``).
ACTIONS = ("submit", "publish", "return", "renew", "expire", "reopen")
DONE = {
    "submit": "已提交审核",
    "publish": "已审核发布，受理台即可检索到该条目",
    "return": "已退回修改",
    "renew": "已复核续期",
    "expire": "已停用",
    "reopen": "已转为草稿，可重新编辑",
}


def create_blueprint():
    bp = Blueprint("knowledge_pages", __name__, url_prefix="/admin/knowledge")
    bp.add_url_rule("/", view_func=articles)
    bp.add_url_rule("/review", view_func=review)
    bp.add_url_rule("/new", view_func=new_article, methods=["GET", "POST"])
    bp.add_url_rule("/<code>", view_func=article_page)
    bp.add_url_rule("/<code>/edit", view_func=edit_article, methods=["GET", "POST"])
    bp.add_url_rule("/<code>/<action>", view_func=article_action, methods=["POST"])
    web.add_to_admin(
        bp,
        "articles",
        "知识库",
        "首问即答条目的撰写、审核发布、到期复核，以及命中和办结统计",
        roles={Role.supervisor},
    )
    web.add_to_menu(bp, "articles", "知识库", {Role.supervisor})
    web.add_admin_warnings(bp, kb.admin_warnings)
    tabular.register_on(bp, kb.IMPORTER)
    return bp


def _article_or_404(db, code):
    try:
        return kb.get_article(db, code)
    except NotFound:
        abort(404)


@page_for(*ROLES)
def articles():
    db = get_session()
    errors = {}
    filters = kb.parse_filters(request.args, errors)
    page = kb.page_of(request.args, errors)
    check_query(errors)
    total, rows = kb.list_articles(db, filters, page)
    return render_template(
        "admin/knowledge_list.html",
        articles=rows,
        total=total,
        page=page,
        pages=page.count(total),
        filters=filters,
        states=list(ArticleState),
        by_state=kb.counts_by_state(db),
        closes=kb.close_counts(db, [a.id for a in rows]),
        review_days=settings.get(db, "knowledge.review_days_before"),
        query_args={k: v for k, v in request.args.items() if k != "page"},
    )


@page_for(*ROLES)
def review():
    db = get_session()
    queue = kb.review_queue(db)
    return render_template(
        "admin/knowledge_review.html",
        articles=queue,
        names=kb.people(db, [a.proposed_by_id for a in queue]),
        mine={a.id for a in queue if g.user.id in kb.writers(db, a)},
    )


def _form_render(template_args, *, error=None, form=None, status=200):
    return (
        render_template(
            "admin/knowledge_form.html",
            error=error,
            field_errors=(error.details or {}) if error is not None else {},
            form=form,
            **template_args,
        ),
        status,
    )


def _typed():
    return {
        name: request.form.get(name, "")
        for name in ("title", "category", "keywords", "answer", "source", "valid_until")
    }


@page_for(*ROLES)
def new_article():
    blank = {n: "" for n in ("title", "category", "keywords", "answer", "source", "valid_until")}
    if request.method == "GET":
        return _form_render({"article": None}, form=blank)

    def change(db):
        return kb.create_draft(db, g.user, kb.article_values(db, form_values(request.form)))

    done, result = web.perform(
        change,
        refused=lambda exc: _form_render(
            {"article": None}, error=exc, form=_typed(), status=exc.status
        ),
    )
    if not done:
        return result
    flash(f"已新建草稿 {result.code}：{result.title}", "notice")
    return redirect(url_for("knowledge_pages.article_page", code=result.code))


@page_for(*ROLES)
def edit_article(code):
    db = get_session()
    article = _article_or_404(db, code)
    if request.method == "GET":
        form = {
            "title": article.title,
            "category": article.category.code if article.category else "",
            "keywords": article.keywords,
            "answer": article.answer,
            "source": article.source or "",
            "valid_until": article.valid_until.isoformat() if article.valid_until else "",
        }
        return _form_render({"article": article}, form=form)

    def change(db):
        return kb.update_draft(
            db, g.user, article, kb.article_values(db, form_values(request.form))
        )

    done, result = web.perform(
        change,
        refused=lambda exc: _form_render(
            {"article": _article_or_404(db, code)}, error=exc, form=_typed(), status=exc.status
        ),
    )
    if not done:
        return result
    flash(f"条目 {code} 已保存", "notice")
    return redirect(url_for("knowledge_pages.article_page", code=code))


def _render_article(db, article, *, error=None, failed=None, status=200):
    closes = kb.close_counts(db, [article.id]).get(article.id, 0)
    user = g.user
    offered = [name for name in ("update", *ACTIONS) if kb.allowed(user, name, article)]
    own = "publish" in offered and user.id in kb.writers(db, article)
    return (
        render_template(
            "admin/knowledge_article.html",
            article=article,
            closes=closes,
            names=kb.people(db, [article.proposed_by_id, article.reviewed_by_id]),
            history=kb.history(db, article),
            offered=offered,
            own=own,
            error=error,
            failed=failed,
            typed=request.form if error is not None else {},
            in_force=knowledge.is_in_force(article, knowledge.local_today()),
        ),
        status,
    )


@page_for(*ROLES)
def article_page(code):
    db = get_session()
    return _render_article(db, _article_or_404(db, code))


@page_for(*ROLES)
def article_action(code, action):
    if action not in ACTIONS:
        abort(404)
    db = get_session()
    article = _article_or_404(db, code)

    def change(db):
        data = form_values(request.form)
        if action == "submit":
            return kb.submit(db, g.user, article)
        if action == "publish":
            return kb.publish(db, g.user, article)
        if action == "return":
            return kb.send_back(db, g.user, article, kb.reason_value(data, "退回理由"))
        if action == "renew":
            return kb.renew(db, g.user, article, kb.renew_value(data))
        if action == "expire":
            return kb.expire(db, g.user, article, kb.reason_value(data, "停用原因"))
        return kb.reopen(db, g.user, article)

    def refused(exc: HotlineError):
        return _render_article(
            db, _article_or_404(db, code), error=exc, failed=action, status=exc.status
        )

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"条目 {code} {DONE[action]}", "notice")
    back = web.safe_next(request.form.get("back"))
    return redirect(back or url_for("knowledge_pages.article_page", code=code))
