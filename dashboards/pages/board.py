"""The live board pages (实时大屏): the city board and one per district, and the front-end
files they load from ``node_modules`` (installed by ``npm ci``, never copied into the
repository).

The server renders the first snapshot into the page, so it is readable without JavaScript;
``static/board.js`` then connects to the Socket.IO namespace of ``dashboards.socket`` and
keeps it current, and draws the map of the room's areas from the outlines the dashboards
API serves (``/api/v1/boards/…/map``) coloured by the snapshot's ``map`` figures. The page
is laid out for a 1920×1080 screen without scrolling.
"""

import re
from pathlib import Path

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    send_file,
    url_for,
)

from dashboards import access
from dashboards.pages import district_choices
from dashboards.snapshots import room_snapshot
from dashboards.socket import NAMESPACE
from hotline import web
from hotline.db import get_session
from hotline.enums import AreaLevel, Role
from hotline.models import Area
from hotline.web import page_for


def create_blueprint():
    bp = Blueprint(
        "boards",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/boards/static",
    )
    bp.add_url_rule("/boards", view_func=board_page)
    bp.add_url_rule("/boards/district/<code>", view_func=district_page)
    bp.add_url_rule("/vendor/<name>", view_func=vendor)
    web.add_to_menu(bp, "board_page", "实时大屏", access.BOARD_ROLES, home_of={Role.leader})
    return bp


#: The repository's node_modules (``npm ci`` of package.json / package-lock.json).
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
#: The only files served from it: URL name → path inside node_modules.
VENDOR_FILES = {
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
}
_DISTRICT = re.compile(r"^\d{6}$")


def _render(room, title):
    snapshot = room_snapshot(get_session(), current_app.config, room)
    user = g.user
    districts = district_choices(user)
    district = access.room_district(room)
    # The map's outlines (GeoJSON) come from the dashboards API, by the endpoint's name.
    if district is None:
        map_url = url_for("api.rankings.city_map")
    else:
        map_url = url_for("api.rankings.district_map", code=district)
    return render_template(
        "board.html",
        room=room,
        title=title,
        snapshot=snapshot,
        districts=districts,
        namespace=NAMESPACE,
        map_url=map_url,
    )


@page_for(*access.BOARD_ROLES)
def board_page():
    """The city board; a district leader is sent to their district's."""
    room = access.default_room(g.user)
    if room != access.CITY:
        return redirect(url_for("boards.district_page", code=access.room_district(room)))
    return _render(access.CITY, "全市")


@page_for(*access.BOARD_ROLES)
def district_page(code):
    if not _DISTRICT.match(code):
        abort(404)
    name = get_session().scalar(
        sa.select(Area.name).where(Area.code == code, Area.level == AreaLevel.district)
    )
    if name is None:
        abort(404)
    room = access.district_room(code)
    if not access.may_watch(g.user, room):
        abort(403)
    return _render(room, name)


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
