"""What every server-rendered page stands on: the role guard, the header menu and each role's
landing page, the template helpers, and the one way a page runs an operation.

A domain registers its pages in the menu (``add_to_menu``) from its own blueprint builder, so
this module names no page of any domain; ``create_app`` checks that every role got exactly one
landing page.
"""

import datetime as dt
import functools
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy.orm.exc import StaleDataError

from hotline import notify, pickers
from hotline.db import get_session, local_datetime
from hotline.enums import SERVICE_ROLES, Role
from hotline.errors import HotlineError, stale_conflict


@dataclass(frozen=True)
class MenuItem:
    endpoint: str
    label: str
    roles: frozenset
    #: Roles that land on this page after login.
    home_of: frozenset


@dataclass
class Menu:
    """The header menu of one application, in registration order, and each role's home."""

    items: list = field(default_factory=list)
    homes: dict = field(default_factory=dict)

    def add(self, item):
        for role in item.home_of:
            if role in self.homes:
                raise RuntimeError(f"{role.value} already lands on {self.homes[role]}")
            self.homes[role] = item.endpoint
        self.items.append(item)


def add_to_menu(bp, view, label, roles, *, home_of=()):
    """Show the page ``view`` of blueprint ``bp`` in the header menu for ``roles`` and make it
    the landing page of ``home_of``. Called by the blueprint's builder; takes effect when the
    application registers the blueprint."""

    def record(state):
        item = MenuItem(f"{state.name}.{view}", label, frozenset(roles), frozenset(home_of))
        state.app.extensions["hotline.menu"].add(item)

    bp.record_once(record)


@dataclass(frozen=True)
class AdminSection:
    endpoint: str
    label: str
    description: str
    #: Roles besides the administrator that may open the section (e.g. knowledge reviewers).
    roles: frozenset


#: The administration's home page: above every section, in none of them.
ADMIN_HOME = "admin.home"


def add_to_admin(bp, view, label, description, *, roles=()):
    """List the page ``view`` of ``bp`` in the administration (系统管理): its side menu and
    its home page, in registration order. Administrators see every section; ``roles`` adds
    others that may open this one."""

    def record(state):
        section = AdminSection(
            f"{state.name}.{view}", label, description, frozenset({Role.admin, *roles})
        )
        state.app.extensions["hotline.admin_sections"].append(section)

    bp.record_once(record)


def add_admin_warnings(bp, provider):
    """``provider(session)`` returns what the administrator must attend to as ``(message,
    url)`` pairs (e.g. a calendar year not yet defined), shown on the administration's home
    page. How a domain above reports without this one knowing of it."""
    bp.record_once(lambda state: state.app.extensions["hotline.admin_warnings"].append(provider))


def admin_sections(user):
    return [
        section
        for section in current_app.extensions["hotline.admin_sections"]
        if user.role in section.roles
    ]


def current_section(sections, endpoint):
    """The section a page belongs to: its own, or for a sub-page (an edit form, one area's
    page) the section of the same blueprint whose view name shares the longest beginning
    with the page's (``admin_time.policy_edit`` → 办理时限 ``admin_time.policies``)."""
    if not endpoint or endpoint == ADMIN_HOME:
        return None
    blueprint, _, view = endpoint.partition(".")
    best, best_length = None, -1
    for section in sections:
        if section.endpoint == endpoint:
            return section
        own_blueprint, _, own_view = section.endpoint.partition(".")
        if own_blueprint != blueprint:
            continue
        length = len(os.path.commonprefix([own_view, view]))
        if length > best_length:
            best, best_length = section, length
    return best


def admin_warnings(session):
    found = []
    for provider in current_app.extensions["hotline.admin_warnings"]:
        found.extend(provider(session))
    return found


def check_homes(app):
    """Refuse to build an application in which some role has nowhere to land."""
    homes = app.extensions["hotline.menu"].homes
    missing = [role.value for role in Role if role not in homes and role not in SERVICE_ROLES]
    if missing:
        raise RuntimeError(f"roles without a landing page: {', '.join(missing)}")


def home_url(user):
    return url_for(current_app.extensions["hotline.menu"].homes[user.role])


def add_page_script(app, endpoint, **values):
    """Load the script at ``url_for(endpoint, **values)`` on every page of a logged-in user
    with a message centre, before the centre's own (``static/messages.js``): how a layer above
    makes the centre live (``dashboards.inbox_live``) without this one knowing of it."""
    app.extensions["hotline.page_scripts"].append((endpoint, values))


def init_app(app):
    """The menu and the helpers every template may use."""
    app.extensions["hotline.menu"] = Menu()
    app.extensions["hotline.page_scripts"] = []
    app.extensions["hotline.admin_sections"] = []
    app.extensions["hotline.admin_warnings"] = []
    # Forms written by hand in templates carry ``{{ csrf_token() }}``.
    app.add_template_global(generate_csrf, "csrf_token")
    app.add_template_global(api_csrf_token)
    app.add_template_filter(local_time, "local")
    pickers.init_app(app)

    @app.context_processor
    def _menu():
        def menu():
            if not current_user.is_authenticated:
                return []
            return [
                (url_for(item.endpoint), item.label, request.endpoint == item.endpoint)
                for item in app.extensions["hotline.menu"].items
                if current_user.role in item.roles
            ]

        def message_centre():
            """The header's message centre: the user's own inbox unit and its unread count,
            or None (not logged in, or no inbox: an administrator)."""
            if not current_user.is_authenticated:
                return None
            # Asked twice per page (header, scripts): counted once per request.
            cache = request.environ
            if "hotline.message_centre" not in cache:
                db = get_session()
                unit = notify.inbox_unit_of(db, current_user, app.config["MAYORS_OFFICE_UNIT"])
                cache["hotline.message_centre"] = (
                    {"unit": unit, "unread": notify.unread_count(db, unit.id)} if unit else None
                )
            return cache["hotline.message_centre"]

        def page_scripts():
            return [
                url_for(endpoint, **values)
                for endpoint, values in app.extensions["hotline.page_scripts"]
            ]

        def admin_menu():
            if not current_user.is_authenticated:
                return []
            sections = admin_sections(current_user)
            here = current_section(sections, request.endpoint)
            return [(url_for(s.endpoint), s.label, s is here) for s in sections]

        return {
            "menu": menu,
            "message_centre": message_centre,
            "page_scripts": page_scripts,
            "admin_menu": admin_menu,
        }


def api_csrf_token():
    """The session's raw CSRF secret, which page scripts echo in ``X-CSRF-Token`` when they
    call the JSON API (forms carry Flask-WTF's signed form of the same secret)."""
    generate_csrf()  # makes sure the session has one
    return session["csrf_token"]


def local_time(value):
    """A moment in the city's local time, to the minute (every page shows times so)."""
    if value is None:
        return "—"
    if isinstance(value, str):  # a serialised moment (``schemas.iso``)
        value = dt.datetime.fromisoformat(value)
    return f"{local_datetime(value, current_app.config['TIMEZONE']):%Y-%m-%d %H:%M}"


def page_for(*roles):
    """Admit only logged-in users with one of ``roles``; others go to the login page (not
    logged in) or get 403 (logged in, wrong role). The view finds its user in ``g.user``."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            if current_user.role not in roles:
                abort(403)
            g.user = current_user._get_current_object()
            return view(*args, **kwargs)

        return wrapper

    return decorate


def safe_next(target):
    """Only a path on this site (no scheme, no host) may be a redirect target."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return None
    # "//host" and "/\host" (browsers read both as another host) are not our paths.
    if target.startswith("//") or "\\" in target:
        return None
    return target


def refusal(exc):
    """The HotlineError a person is shown for a refused change (a lost race included)."""
    return stale_conflict() if isinstance(exc, StaleDataError) else exc


def perform(change, *, refused):
    """Run ``change(session)`` (parse the form, call the operation) and commit; on a refusal
    roll everything back and return ``refused(error)``, the page re-rendered with the Chinese
    message and what was typed. Returns ``(True, result)`` or ``(False, response)``.

    This is how every page makes a change: nothing of a refused change stays behind."""
    db = get_session()
    try:
        result = change(db)
        db.commit()
    except (HotlineError, StaleDataError) as exc:
        db.rollback()
        return False, refused(refusal(exc))
    return True, result


#: What people type, by input name: shown back to them on a page that could not save it.
TYPED_LABELS = {
    "requester_name": "诉求人姓名",
    "requester_phone": "联系电话",
    "content": "诉求内容",
    "address": "地址",
    "title": "标题",
    "answer": "答复内容",
    "note": "说明",
    "reason": "理由",
    "result": "办理结果",
    "comment": "回访记录",
    "days": "延期天数",
    "username": "用户名",
}


def keep_typed_page(message, status, retry_after=None):
    """A page that says a change could not be saved (the database away, an internal error)
    and keeps what was typed: every posted input goes back into a form that posts it again
    to the same address (a password never does), and what people wrote is shown. Renders
    without the database (no current user, no menu)."""
    resubmit, shown, had_files = [], [], False
    if request.method == "POST":
        for name, values in request.form.lists():
            if "password" in name:
                continue
            for value in values:
                resubmit.append((name, value))
                if name in TYPED_LABELS and value.strip():
                    shown.append((TYPED_LABELS[name], value))
        had_files = any(f.filename for f in request.files.values())
    # Flask-Login's template context loads the user from the database: not now.
    g._login_user = current_app.login_manager.anonymous_user()
    html = render_template(
        "unavailable.html",
        standalone=True,
        status=status,
        message=message,
        resubmit=resubmit,
        shown=shown,
        had_files=had_files,
        action=request.full_path.rstrip("?"),
    )
    return html, status, {"Retry-After": str(retry_after)} if retry_after else {}


def settings_view(section, template, endpoint, saved, extra=None):
    """The view of a settings page over ``section`` (``hotline.settings.Section``): its
    items with their Chinese labels and help, a form that changes them (checked and audited
    by the section) and the history of changes; ``saved`` is the message after a change,
    ``endpoint`` the page to come back to. Only the section's editors may open it.
    ``extra(session)`` adds what else the page shows (a dict of template values)."""

    def render(typed=None, message=None, errors=None, status=200):
        db = get_session()
        page = render_template(
            template,
            items=section.describe(db),
            history=section.history(db),
            typed=typed or {},
            message=message,
            errors=errors or {},
            **(extra(db) if extra else {}),
        )
        return page, status

    @page_for(*section.editors)
    def settings_page():
        if request.method == "GET":
            return render()
        typed = {name: request.form.get(name, "") for name in section.names()}

        def refused(error):
            return render(typed, error.message, error.details, error.status)

        done, changed = perform(lambda db: section.update(db, g.user, typed), refused=refused)
        if not done:
            return changed
        flash(saved if changed else "没有修改任何设置")
        return redirect(url_for(endpoint))

    return settings_page
