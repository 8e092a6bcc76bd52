"""The knowledge base's administration in the JSON API (``hotline.knowledge_admin`` holds the
rules): list and read articles with their hit and close counts, create and edit drafts, and
move them through review. Administrators and supervisors (督办审核员) only.

The console's search stays ``GET /api/v1/knowledge?q=`` (``dispatch.api.intake``)."""

from flask import Blueprint, g, request

from hotline import knowledge_admin as kb
from hotline import openapi
from hotline.api import commit, ok
from hotline.api.auth import require_role
from hotline.db import get_session
from hotline.errors import ValidationFailed
from hotline.schemas import check_query, json_body


def create_blueprint():
    bp = Blueprint("knowledge_admin", __name__)
    bp.add_url_rule("/knowledge/articles", view_func=list_articles)
    bp.add_url_rule("/knowledge/articles", view_func=create_article, methods=["POST"])
    bp.add_url_rule("/knowledge/articles/<code>", view_func=get_article)
    bp.add_url_rule("/knowledge/articles/<code>", view_func=update_article, methods=["PATCH"])
    for action in ("submit", "publish", "return", "renew", "expire", "reopen"):
        bp.add_url_rule(
            f"/knowledge/articles/<code>/{action}",
            endpoint=action,
            view_func=_action(action),
            methods=["POST"],
        )
    return bp


def _require_staff():
    require_role(kb.EDITORS | kb.REVIEWERS, "“{role}”角色无权管理知识库")


def _describe(db, article):
    closes = kb.close_counts(db, [article.id]).get(article.id, 0)
    names = kb.people(db, [article.proposed_by_id, article.reviewed_by_id])
    return kb.article_to_dict(article, closes, names)


def list_articles():
    """Articles by code; filters ``state``, ``category``, ``q``, ``due=1``; ``page``,
    ``per_page`` (≤ 200)."""
    _require_staff()
    db = get_session()
    errors = {}
    filters = kb.parse_filters(request.args, errors)
    page = kb.page_of(request.args, errors)
    check_query(errors)
    total, rows = kb.list_articles(db, filters, page)
    closes = kb.close_counts(db, [a.id for a in rows])
    names = kb.people(db, [i for a in rows for i in (a.proposed_by_id, a.reviewed_by_id)])
    return ok(
        {
            **page.to_dict(total),
            "items": [kb.article_to_dict(a, closes.get(a.id, 0), names) for a in rows],
        }
    )


def get_article(code):
    """One article with its counts and its history (old → new of every change)."""
    _require_staff()
    db = get_session()
    article = kb.get_article(db, code)
    data = _describe(db, article)
    data["history"] = [
        {
            "at": h.at.isoformat(),
            "actor": h.actor,
            "action": h.action,
            "label": h.label,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in h.changes],
            "reason": h.reason,
            "ticket": h.ticket,
        }
        for h in kb.history(db, article)
    ]
    return ok(data)


@openapi.body(lambda data: kb.article_values(None, data))
def create_article():
    """A new draft (its code is assigned: KB-NNN)."""
    _require_staff()
    db = get_session()
    article = kb.create_draft(db, g.user, kb.article_values(db, json_body()))
    commit()
    return ok(
        _describe(db, article), 201, {"Location": f"/api/v1/knowledge/articles/{article.code}"}
    )


@openapi.body(lambda data: kb.article_values(None, data, partial=True), partial=True)
def update_article(code):
    """Change the fields given of a draft."""
    _require_staff()
    db = get_session()
    article = kb.get_article(db, code)
    values = kb.article_values(db, json_body(), partial=True)
    article = kb.update_draft(db, g.user, article, values)
    commit()
    return ok(_describe(db, article))


def _action(action):
    def view(code):
        _require_staff()
        db = get_session()
        article = kb.get_article(db, code)
        body = json_body() if action in ("return", "renew", "expire") else _empty_body()
        if action == "submit":
            article = kb.submit(db, g.user, article)
        elif action == "publish":
            article = kb.publish(db, g.user, article)
        elif action == "return":
            article = kb.send_back(db, g.user, article, kb.reason_value(body, "退回理由"))
        elif action == "renew":
            article = kb.renew(db, g.user, article, kb.renew_value(body))
        elif action == "expire":
            article = kb.expire(db, g.user, article, kb.reason_value(body, "停用原因"))
        else:
            article = kb.reopen(db, g.user, article)
        commit()
        return ok(_describe(db, article))

    view.__name__ = f"{action}_article"
    view.__doc__ = f"{kb.TRANSITIONS[action].label}."
    return view


def _empty_body():
    """Actions without fields accept no body or an empty JSON object."""
    if request.get_data(cache=True).strip():
        data = json_body()
        if data:
            raise ValidationFailed(
                f"请求内容有误：未知字段“{next(iter(data))}”",
                details={name: f"未知字段“{name}”" for name in data},
            )
    return {}
