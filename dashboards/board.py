"""The live board pages (实时大屏): the city board and one per district, and the front-end
files they load from ``node_modules`` (installed by ``npm ci``, never copied into the
repository).

The server renders the first snapshot into the page, so it is readable without JavaScript;
``static/board.js`` then connects to the Socket.IO namespace of ``dashboards.live`` and
keeps it current.
"""

import re
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, abort, g, redirect, render_template, send_file, url_for

from dashboards import live
from hotline.db import get_session
from hotline.enums import AreaLevel, Role
from hotline.models import Area
from hotline.web import page_for

bp = Blueprint(
    "boards",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/boards/static",
)

#: The repository's node_modules (``npm ci`` of package.json / package-lock.json).
NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
#: The only files served from it: URL name → path inside node_modules.
VENDOR_FILES = {
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
}
_DISTRICT = re.compile(r"^\d{6}$")


def _districts():
    return (
        get_session()
        .execute(
            sa.select(Area.code, Area.name)
            .where(Area.level == AreaLevel.district)
            .order_by(Area.code)
        )
        .all()
    )


def _render(room, title):
    snapshot = live.room_snapshot(room)
    user = g.user
    districts = [] if user.role == Role.leader and user.district_id else _districts()
    return render_template(
        "board.html",
        room=room,
        title=title,
        snapshot=snapshot,
        districts=districts,
        namespace=live.NAMESPACE,
    )


@bp.get("/boards")
@page_for(*live.BOARD_ROLES)
def board_page():
    """The city board; a district leader is sent to their district's."""
    room = live.default_room(g.user)
    if room != live.CITY:
        return redirect(url_for("boards.district_page", code=live.room_district(room)))
    return _render(live.CITY, "全市")


@bp.get("/boards/district/<code>")
@page_for(*live.BOARD_ROLES)
def district_page(code):
    if not _DISTRICT.match(code):
        abort(404)
    name = get_session().scalar(
        sa.select(Area.name).where(Area.code == code, Area.level == AreaLevel.district)
    )
    if name is None:
        abort(404)
    room = live.district_room(code)
    if not live.may_watch(g.user, room):
        abort(403)
    return _render(room, name)


@bp.get("/vendor/<name>")
def vendor(name):
    """ECharts and the Socket.IO client from node_modules, by an allow-list (no path from
    the URL ever reaches the file system)."""
    relative = VENDOR_FILES.get(name)
    if relative is None:
        abort(404)
    path = NODE_MODULES / relative
    if not path.is_file():
        # Not installed: `make assets` (npm ci) was not run. The page still shows the
        # server-rendered numbers.
        abort(404)
    return send_file(path, mimetype="text/javascript", max_age=86400)
