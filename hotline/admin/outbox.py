"""Notifications leaving the system, in the administration (``hotline.outbox``):

- 通知发送: the outbox's copies by state, the failed ones first in mind (time, channel, kind,
  masked recipient, ticket, tries, last error) with 重新发送, filtered by state, channel and
  kind;
- 通知模板: the texts citizens receive, each with a preview filled with sample values; a
  template with an unknown placeholder or unpaired braces is refused with its name.
"""

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from hotline import outbox, web
from hotline.db import get_session
from hotline.enums import OutboxState, Role
from hotline.errors import ValidationFailed
from hotline.schemas import Page
from hotline.web import page_for


def create_blueprint():
    bp = Blueprint("admin_outbox", __name__, url_prefix="/admin")
    bp.add_url_rule("/outbox/", view_func=outbox_page)
    bp.add_url_rule("/outbox/<id:copy_id>/retry", view_func=retry, methods=["POST"])
    bp.add_url_rule("/templates", view_func=templates_page, methods=["GET", "POST"])
    web.add_to_admin(
        bp,
        "outbox_page",
        "通知发送",
        "短信、企业微信、微信公众号通知的发送情况，发送失败的可重新发送",
    )
    web.add_to_admin(
        bp,
        "templates_page",
        "通知模板",
        "市民收到的验证码、受理、办结、再次反映通知的文字，带预览",
    )
    web.add_admin_warnings(bp, _failed_warning)
    return bp


def _failed_warning(db):
    failed = outbox.counts(db)[OutboxState.failed]
    if not failed:
        return []
    return [
        (
            f"{failed} 条通知多次重试后仍发送失败，请检查短信或微信网关后重新发送",
            url_for("admin_outbox.outbox_page", state=OutboxState.failed.value),
        )
    ]


@page_for(Role.admin)
def outbox_page():
    db = get_session()
    error, total, rows = None, 0, []
    try:
        found = outbox.OutboxFilter.from_args(request.args)
        page = Page.from_args(request.args, size=outbox.PAGE_SIZE)
        total, rows = outbox.page_of(db, found, page)
    except ValidationFailed as exc:
        error, found, page = exc.message, outbox.OutboxFilter(), Page(1, outbox.PAGE_SIZE)
    return (
        render_template(
            "admin/outbox.html",
            error=error,
            counts=outbox.counts(db),
            states=list(OutboxState),
            channels=outbox.CHANNEL_LABELS,
            kinds=[(k, outbox.kind_label(k)) for k in outbox.kinds(db)],
            found=found,
            rows=rows,
            total=total,
            page=page,
            pages=page.count(total),
            args=request.args,
            masked=outbox.masked_recipient,
            kind_label=outbox.kind_label,
        ),
        422 if error else 200,
    )


@page_for(Role.admin)
def retry(copy_id):
    back = web.safe_next(request.form.get("next")) or url_for("admin_outbox.outbox_page")

    def refused(error):
        flash(error.message, "error")
        return redirect(back)

    def change(db):
        return outbox.retry(db, g.user, outbox.get(db, copy_id))

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash(f"已重新排入发送队列（{outbox.CHANNEL_LABELS.get(result.channel, result.channel)}）")
    return redirect(back)


@page_for(Role.admin)
def templates_page():
    db = get_session()
    if request.method == "GET":
        return _render_templates(db)
    typed = {kind: request.form.get(kind, "") for kind in outbox.TEMPLATES}

    def refused(error):
        return _render_templates(db, typed, error.message, error.details, error.status)

    done, changed = web.perform(
        lambda session: outbox.update_templates(session, g.user, typed), refused=refused
    )
    if not done:
        return changed
    flash("通知模板已保存，此后发出的通知即用新模板" if changed else "没有修改任何模板")
    return redirect(url_for("admin_outbox.templates_page"))


def _render_templates(db, typed=None, message=None, errors=None, status=200):
    typed = typed or {}
    items = []
    for template in outbox.templates(db):
        text = typed.get(template.kind, template.text)
        try:
            sample, parts = outbox.preview(
                template.kind, outbox.check_template(template.kind, text)
            )
        except ValueError:
            sample, parts = None, 0
        items.append((template, text, sample, parts))
    return (
        render_template(
            "admin/templates.html",
            items=items,
            message=message,
            errors=errors or {},
            labels=outbox.PLACEHOLDER_LABELS,
            sms_chars=outbox.SMS_CHARS,
        ),
        status,
    )
