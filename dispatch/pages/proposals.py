"""Proposing a knowledge-base article from a finished consultation (由工单提议知识库条目): the
handler of the unit that answered a 咨询 ticket turns its question and their reply into an
article for the reviewers. The page reads the ticket; ``hotline.knowledge_admin.propose``
holds every rule."""

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from dispatch.pages import visible_ticket_or_abort
from hotline import knowledge_admin, web
from hotline.db import get_session
from hotline.enums import Role
from hotline.schemas import form_values
from hotline.web import page_for

FIELDS = ("title", "category", "keywords", "answer", "source", "valid_until")


def create_blueprint():
    bp = Blueprint("proposals", __name__, template_folder="templates")
    bp.add_url_rule(
        "/tickets/<number>/knowledge-proposal",
        view_func=propose_page,
        methods=["GET", "POST"],
    )
    return bp


def _render(ticket, form, *, error=None, status=200):
    return (
        render_template(
            "knowledge_proposal.html",
            ticket=ticket,
            form=form,
            error=error,
            field_errors=(error.details or {}) if error is not None else {},
        ),
        status,
    )


@page_for(Role.unit_handler)
def propose_page(number):
    db = get_session()
    ticket = visible_ticket_or_abort(db, number)
    refusal = knowledge_admin.proposal_refusal(g.user, ticket)
    if refusal is not None:
        abort(403)
    if request.method == "GET":
        existing = knowledge_admin.proposed_from(db, ticket)
        if existing is not None:
            flash(f"本工单的答复已提议为知识库条目 {existing.code}", "notice")
            return redirect(url_for("desk.ticket_page", number=ticket.number))
        return _render(ticket, knowledge_admin.proposal_defaults(ticket))

    def change(db):
        values = knowledge_admin.article_values(db, form_values(request.form))
        return knowledge_admin.propose(db, g.user, ticket, values)

    typed = {name: request.form.get(name, "") for name in FIELDS}
    done, result = web.perform(
        change, refused=lambda exc: _render(ticket, typed, error=exc, status=exc.status)
    )
    if not done:
        return result
    flash(f"已提议知识库条目 {result.code}「{result.title}」，待热线中心审核发布", "notice")
    return redirect(url_for("desk.ticket_page", number=ticket.number))
