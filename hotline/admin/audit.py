"""The audit page (审计日志): every administrative change and login, who, when, from where,
old → new, with filters and an XLSX export."""

import io

import sqlalchemy as sa
from flask import Blueprint, current_app, g, render_template, request, send_file

from hotline import audit_log, web
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import ValidationFailed
from hotline.models import User
from hotline.schemas import Page
from hotline.web import page_for


def create_blueprint():
    bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")
    bp.add_url_rule("/", view_func=audit_page)
    bp.add_url_rule("/export.xlsx", view_func=export)
    web.add_to_admin(
        bp, "audit_page", "审计日志", "登录、管理操作和个人信息查看的全部记录，可筛选、导出"
    )
    return bp


@page_for(Role.admin)
def audit_page():
    db = get_session()
    timezone = current_app.config["TIMEZONE"]
    error, total, found = None, 0, []
    try:
        audit_filter = audit_log.AuditFilter.from_args(request.args, timezone)
        page = Page.from_args(request.args, size=audit_log.PAGE_SIZE)
        total, found = audit_log.rows(db, audit_filter, limit=page.size, offset=page.offset)
    except ValidationFailed as exc:
        error, audit_filter, page = (
            exc.message,
            audit_log.AuditFilter(),
            Page(1, audit_log.PAGE_SIZE),
        )
    users = db.execute(sa.select(User.username, User.name).order_by(User.name)).all()
    return (
        render_template(
            "admin/audit.html",
            error=error,
            rows=found,
            total=total,
            page=page,
            pages=page.count(total),
            args=request.args,
            users=users,
            actions=audit_log.known_actions(db),
            action_label=audit_log.action_label,
            changes_of=audit_log.changes_of,
            details_of=audit_log.details_of,
            max_export=audit_log.MAX_EXPORT,
        ),
        422 if error else 200,
    )


@page_for(Role.admin)
def export():
    db = get_session()
    timezone = current_app.config["TIMEZONE"]
    audit_filter = audit_log.AuditFilter.from_args(request.args, timezone)
    data, _ = audit_log.export(db, g.user, audit_filter, timezone)
    db.commit()
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name="审计日志.xlsx",
    )
