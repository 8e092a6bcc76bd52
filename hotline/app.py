import os
import secrets

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.routing import IntegerConverter

from dashboards import board, live, report
from dashboards.api import bp as rankings_api
from dispatch import console, desk, followup, grid
from dispatch.api import bp as tickets_api
from dispatch.callbacks import bp as callbacks_api
from dispatch.intake import bp as intake_api
from hotline import attachments, auth, db, events, notify, suggestions, web
from hotline.api import bp as api
from hotline.config import load_config

#: The API's blueprints, nested once so that they share its auth and error envelope.
api.register_blueprint(tickets_api)
api.register_blueprint(callbacks_api)
api.register_blueprint(intake_api)
api.register_blueprint(rankings_api)


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


def create_app(config=None):
    """Build the application. ``config`` overrides every other source (tests use it)."""
    app = Flask("hotline", instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(app.instance_path, config))
    # Chinese stays readable (and shorter) in JSON; keys keep their documented order.
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret_key(app.instance_path)

    app.url_map.converters["id"] = RowIdConverter
    events.init_app(app)
    notify.init_app(app)
    db.init_app(app)
    auth.init_app(app)
    suggestions.init_app(app)
    _register_blueprints(app)
    live.init_app(app)
    _register_handlers(app)
    return app


def _register_handlers(app):
    @app.after_request
    def no_sniffing(response):
        # JSON is data: a browser must never sniff it into HTML and run what a citizen typed.
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def not_found(exc):
        # Routing errors happen before any blueprint is chosen; answer API paths in the envelope.
        from hotline.api import http_error

        if request.path.startswith("/api/"):
            return http_error(exc)
        return render_template(
            "error.html", status=exc.code, message=PAGE_ERRORS[exc.code]
        ), exc.code

    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        message = "页面已过期或缺少安全校验，请刷新页面后重新提交"
        return render_template("error.html", status=400, message=message), 400


def _register_blueprints(app):
    app.register_blueprint(api)
    app.register_blueprint(web.bp)
    app.register_blueprint(attachments.bp)
    # Pages of each role.
    app.register_blueprint(console.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(grid.bp)
    app.register_blueprint(followup.bp)
    app.register_blueprint(report.bp)
    app.register_blueprint(board.bp)


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
