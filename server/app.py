"""The application factory: every blueprint of every domain, in one explicit list.

This package is the composition root: it sits above the domains (``dashboards`` →
``dispatch`` → ``hotline``; ``classifier`` beside them), assembles them into one application
and runs it (``server.cli``: the ``hotline`` command and the processes it starts). No domain
imports it.
"""

import os
import secrets

import sqlalchemy as sa
from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

import dashboards.api.accountability
import dashboards.api.analysis
import dashboards.api.hotspots
import dashboards.api.rankings
import dashboards.api.warnings
import dashboards.pages.accountability
import dashboards.pages.admin_accountability
import dashboards.pages.admin_analysis
import dashboards.pages.admin_classifier
import dashboards.pages.admin_inspection
import dashboards.pages.admin_scoring
import dashboards.pages.analysis
import dashboards.pages.board
import dashboards.pages.classifier
import dashboards.pages.hotspots
import dashboards.pages.inspection_export
import dashboards.pages.report
import dashboards.pages.search
import dashboards.pages.warnings
import dispatch.api.callbacks
import dispatch.api.catalogue
import dispatch.api.citizen
import dispatch.api.citizen_track
import dispatch.api.cohandling
import dispatch.api.inspections
import dispatch.api.intake
import dispatch.api.learning
import dispatch.api.meetings
import dispatch.api.open311
import dispatch.api.reply_review
import dispatch.api.tickets
import dispatch.api.time_rules
import dispatch.api.units
import dispatch.api.whistle
import dispatch.metrics
import dispatch.pages.admin_open311
import dispatch.pages.admin_review
import dispatch.pages.admin_routing
import dispatch.pages.admin_time
import dispatch.pages.admin_units
import dispatch.pages.citizen
import dispatch.pages.citizen_track
import dispatch.pages.cohandling
import dispatch.pages.console
import dispatch.pages.desk
import dispatch.pages.followup
import dispatch.pages.grid
import dispatch.pages.inspection
import dispatch.pages.meetings
import dispatch.pages.photos
import dispatch.pages.proposals
import dispatch.pages.reply_review
import dispatch.pages.whistle
import hotline.admin.api_docs
import hotline.admin.areas
import hotline.admin.audit
import hotline.admin.categories
import hotline.admin.home
import hotline.admin.knowledge
import hotline.admin.onboarding
import hotline.admin.outbox
import hotline.admin.personal_data
import hotline.admin.retention
import hotline.admin.users
import hotline.api
import hotline.api.areas
import hotline.api.audit
import hotline.api.categories
import hotline.api.classifier
import hotline.api.inbox
import hotline.api.knowledge_admin
import hotline.api.openapi
import hotline.api.outbox
import hotline.api.reference
import hotline.api.sessions
import hotline.api.users
import hotline.pages
from dashboards import socket
from hotline import (
    auth,
    config,
    db,
    events,
    headers,
    limits,
    metrics,
    notify,
    observability,
    outbox_delivery,
    privacy,
    suggestions,
    web,
)
from hotline.errors import INTERNAL_ERROR, HotlineError, ServiceUnavailable

#: The JSON API's blueprints, nested under ``/api/v1`` (``hotline.api``: who is calling, the
#: envelope, the error codes).
API = [
    hotline.api.sessions,
    hotline.api.openapi,
    hotline.api.reference,
    hotline.api.classifier,
    hotline.api.inbox,
    hotline.api.audit,
    hotline.api.users,
    hotline.api.outbox,
    hotline.api.knowledge_admin,
    hotline.api.areas,
    hotline.api.categories,
    dispatch.api.tickets,
    dispatch.api.reply_review,
    dispatch.api.cohandling,
    dispatch.api.callbacks,
    dispatch.api.inspections,
    dispatch.api.meetings,
    dispatch.api.intake,
    dispatch.api.time_rules,
    dispatch.api.catalogue,
    dispatch.api.units,
    dispatch.api.whistle,
    dispatch.api.learning,
    dashboards.api.rankings,
    dashboards.api.hotspots,
    dashboards.api.warnings,
    dashboards.api.analysis,
    dashboards.api.accountability,
]
#: Public JSON APIs outside ``/api/v1`` with their own envelope handlers and no staff login
#: (the 市民端's app API under ``/citizen/api/v1``).
PUBLIC_API = [
    dispatch.api.citizen,
    dispatch.api.citizen_track,
]
#: The pages, in the order of the header menu each registers its pages in.
PAGES = [
    hotline.pages,
    dispatch.pages.console,
    dispatch.pages.desk,
    dispatch.pages.cohandling,
    dispatch.pages.grid,
    dispatch.pages.followup,
    dispatch.pages.inspection,
    dispatch.pages.reply_review,
    dispatch.pages.meetings,
    dispatch.pages.photos,
    dispatch.pages.proposals,
    dispatch.pages.whistle,
    dashboards.pages.board,
    dashboards.pages.report,
    dashboards.pages.analysis,
    dashboards.pages.search,
    dashboards.pages.hotspots,
    dashboards.pages.warnings,
    dashboards.pages.accountability,
    dashboards.pages.classifier,
    # The 市民端 (public, no login, no menu).
    dispatch.pages.citizen,
    # The 市民端 (public, no login): following one's requests after submitting.
    dispatch.pages.citizen_track,
    # The administration's sections, in the order of its side menu.
    hotline.admin.users,
    dispatch.pages.admin_units,
    hotline.admin.areas,
    hotline.admin.categories,
    dispatch.pages.admin_routing,
    dispatch.pages.admin_time,
    dispatch.pages.admin_review,
    dispatch.pages.admin_open311,
    hotline.admin.knowledge,
    dashboards.pages.admin_scoring,
    dashboards.pages.admin_analysis,
    dashboards.pages.admin_classifier,
    dashboards.pages.admin_inspection,
    dashboards.pages.inspection_export,
    dashboards.pages.admin_accountability,
    hotline.admin.onboarding,
    hotline.admin.outbox,
    hotline.admin.retention,
    hotline.admin.personal_data,
    hotline.admin.home,
    hotline.admin.audit,
    hotline.admin.api_docs,
]

#: What a person sees on a page that cannot be shown (the API answers in its envelope).
PAGE_ERRORS = {
    403: "您无权访问此页面或工单",
    404: "页面或工单不存在",
    405: "不支持该操作方式",
    413: "上传内容过大：请减少照片数量或压缩照片后重试",
}


class RowIdConverter(IntegerConverter):
    """``<id:name>``: a row id, at most the largest INTEGER, so a huge number in a URL is
    a 404 rather than a database error."""

    def __init__(self, url_map):
        super().__init__(url_map, max=2**31 - 1)


#: Where the instance folder is (one per host; absolute path).
INSTANCE_PATH_VARIABLE = "HOTLINE_INSTANCE_PATH"


def create_app(overrides=None):
    """Build the application. ``overrides`` beat every other configuration source (tests)."""
    # The instance folder (hotline.cfg, secret_key, default attachment and model folders):
    # HOTLINE_INSTANCE_PATH, else instance/ beside the code.
    app = Flask(
        "hotline",
        instance_relative_config=True,
        instance_path=os.environ.get(INSTANCE_PATH_VARIABLE) or None,
    )
    os.makedirs(app.instance_path, exist_ok=True)
    config.load(app, overrides)
    # Chinese stays readable (and shorter) in JSON; keys keep their documented order.
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(app.instance_path)

    hops = app.config["PROXY_HOPS"]
    if hops:
        # The client's own address and scheme from the proxies' headers (rate limits, login
        # throttle, audit, HSTS); only as many hops as are really there are trusted.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.url_map.converters["id"] = RowIdConverter
    # First: its clock starts before every other hook, its access line follows them all.
    observability.init_app(app)
    headers.init_app(app)
    events.init_app(app)
    notify.init_app(app)
    outbox_delivery.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    privacy.init_app(app)
    limits.init_app(app)
    web.init_app(app)
    suggestions.init_app(app)
    api = hotline.api.create_blueprint()
    for module in API:
        api.register_blueprint(module.create_blueprint())
    app.register_blueprint(api)
    # Other systems' interface: Open311 GeoReport v2 at /open311/v2, in its own formats.
    app.register_blueprint(dispatch.api.open311.create_blueprint())
    for module in PUBLIC_API:
        app.register_blueprint(module.create_blueprint())
    for module in PAGES:
        app.register_blueprint(module.create_blueprint())
    web.check_homes(app)
    metrics.add_collector(app, dispatch.metrics.ticket_families)
    socket.init_app(app)
    _register_handlers(app)
    return app


#: Paths whose errors are answered in the JSON envelope (the staff API, the citizens' app API).
JSON_PATHS = ("/api/", "/citizen/api/")


def _answers_json():
    return request.path.startswith(JSON_PATHS)


def _register_handlers(app):
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def not_shown(exc):
        # Routing errors happen before any blueprint is chosen; answer API paths in the envelope.
        if _answers_json():
            return hotline.api.http_error(exc)
        if request.path.startswith(dispatch.api.open311.PREFIX):
            return dispatch.api.open311.http_error(exc)
        return render_template(
            "error.html", status=exc.code, message=PAGE_ERRORS[exc.code]
        ), exc.code

    @app.errorhandler(HotlineError)
    def refused(exc):
        # A page's refusal that no page renders itself (bad query arguments …).
        if _answers_json():
            return hotline.api.hotline_error(exc)
        if request.path.startswith(dispatch.api.open311.PREFIX):
            return dispatch.api.open311.hotline_error(exc)
        return (
            render_template("error.html", status=exc.status, message=exc.message),
            exc.status,
            exc.headers(),
        )

    @app.errorhandler(sa.exc.SQLAlchemyError)
    def database_error(exc):
        # Pages (the API's blueprint answers its own): the database away is a 503 that keeps
        # what was typed; any other database error is an internal error.
        if _answers_json():
            return hotline.api.database_error(exc)
        if request.path.startswith(dispatch.api.open311.PREFIX):
            return dispatch.api.open311.database_error(exc)
        if not db.unavailable(exc):
            db.log_error(app.logger, exc, f"on {request.method} {request.path}")
            return web.keep_typed_page(INTERNAL_ERROR, 500)
        db.outage.failed(exc)
        return web.keep_typed_page(
            "系统繁忙，请稍后重试（本次操作未生效）", 503, ServiceUnavailable.retry_after
        )

    @app.errorhandler(InternalServerError)
    def internal_error(exc):
        # Flask logs the unhandled exception itself; people get Chinese and keep their text.
        if _answers_json():
            return hotline.api.error_response(500, "INTERNAL_ERROR", INTERNAL_ERROR)
        if request.path.startswith(dispatch.api.open311.PREFIX):
            return dispatch.api.open311.internal_error(exc)
        return web.keep_typed_page(INTERNAL_ERROR, 500)

    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        message = "页面已过期或缺少安全校验，请刷新页面后重新提交"
        return render_template("error.html", status=400, message=message), 400


def _instance_secret_key(instance_path):
    """A random key kept in the instance folder, so a demo needs no setup and sessions
    survive restarts. Production sets HOTLINE_SECRET_KEY instead."""
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        # Several workers may start at once: write aside, then link into place atomically.
        tmp = f"{path}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path) as f:
        return f.read().strip()
