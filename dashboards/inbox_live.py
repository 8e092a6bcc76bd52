"""The message centre, live: Socket.IO namespace ``/inbox``.

A page of a logged-in user with an inbox (``hotline.notify.inbox_unit_of``) connects with its
session cookie and joins its unit's room; it is refused otherwise. After every commit that
changed a unit's inbox (new items delivered, items read), ``hotline.notify`` calls the watcher
registered here, which sends that unit's room a ``changed`` message with nothing in it: the
page then asks the JSON API for its count and newest items (``GET /api/v1/inbox/summary``),
where the login and the scope are checked as for any request. So a message says nothing to
anyone, and a lost one costs nothing but time: on every (re)connect the page asks again (the
catch-up), and while connected it also asks once a minute (``hotline/static/messages.js``).

Notifications are written by web requests and by the scheduler process alike; with
``REDIS_URL`` set the messages go through Socket.IO's Redis channel (``dashboards.socket``),
so the scheduler's 预警/超时/督办 reach the pages served by every web process.

hotline cannot import this package: it offers the hooks (``notify.add_inbox_watcher``,
``web.add_page_script``) and this module, above it, plugs into them.
"""

from flask import current_app
from flask_login import current_user
from flask_socketio import Namespace, join_room

from hotline import notify, web
from hotline.db import get_session

NAMESPACE = "/inbox"


def room_of(unit_id):
    return f"inbox:{unit_id}"


def init_app(app, socketio):
    socketio.on_namespace(InboxNamespace(NAMESPACE))

    def changed(unit_ids):
        for unit_id in unit_ids:
            socketio.emit("changed", {}, to=room_of(unit_id), namespace=NAMESPACE)

    notify.add_inbox_watcher(app, changed)
    # The page side of this namespace; it loads the Socket.IO client (served by the boards'
    # pages) unless the page has it already (a board: one connection carries both).
    web.add_page_script(app, "boards.static", filename="inbox_live.js")


class InboxNamespace(Namespace):
    def on_connect(self, auth=None):
        """Admit a logged-in user into their own inbox unit's room (nobody else's)."""
        if not current_user.is_authenticated:
            return False
        unit = notify.inbox_unit_of(
            get_session(), current_user, current_app.config["MAYORS_OFFICE_UNIT"]
        )
        if unit is None:
            return False
        join_room(room_of(unit.id))
        return None
