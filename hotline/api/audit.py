"""The audit log for programs: ``GET /api/v1/audit`` (administrators), filtered like the
audit page."""

from flask import Blueprint, current_app, g, request

from hotline import audit_log
from hotline.api import ok
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import Forbidden
from hotline.schemas import Page


def create_blueprint():
    bp = Blueprint("audit", __name__)
    bp.add_url_rule("/audit", view_func=list_audit)
    return bp


def list_audit():
    if g.user.role != Role.admin:
        raise Forbidden("只有系统管理员可以查看审计日志", code="AUDIT_FORBIDDEN")
    timezone = current_app.config["TIMEZONE"]
    audit_filter = audit_log.AuditFilter.from_args(request.args, timezone)
    page = Page.from_args(request.args, size=audit_log.PAGE_SIZE, size_arg="per_page", max_size=200)
    total, found = audit_log.rows(get_session(), audit_filter, limit=page.size, offset=page.offset)
    return ok(
        {
            "items": [audit_log.to_dict(e, actor, timezone) for e, actor in found],
            **page.to_dict(total),
        }
    )
