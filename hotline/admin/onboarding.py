"""城市导入: the steps of onboarding a city (division tables → boundaries → grids → units),
each through the shared import pages (``/admin/imports/<kind>``), and the city's settings
(name, ticket-number prefix, map centre). The loading itself is ``hotline.onboarding``."""

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import aliased

from hotline import city, onboarding, tabular, web
from hotline.db import get_session
from hotline.enums import AreaLevel, Role, UnitKind
from hotline.models import Area, Unit
from hotline.settings import DEFINITIONS
from hotline.web import page_for

ADMIN = (Role.admin,)

IMPORTERS = (
    tabular.Importer(
        kind="areas",
        label="行政区划",
        load=onboarding.load_areas,
        accepts=onboarding.AREAS_ACCEPTS,
        options=onboarding.AREAS_OPTIONS,
    ),
    tabular.Importer(
        kind="boundaries",
        label="区划边界",
        load=onboarding.load_boundaries,
        accepts=onboarding.BOUNDARY_ACCEPTS,
    ),
    tabular.Importer(
        kind="grids",
        label="网格（自动生成）",
        load=onboarding.load_grids,
        accepts="不需要文件：为还没有网格的社区村生成网格",
        options=onboarding.GRID_OPTIONS,
        files_required=False,
    ),
)


def create_blueprint():
    bp = Blueprint("onboarding", __name__, url_prefix="/admin/onboarding")
    bp.add_url_rule("/", view_func=overview)
    bp.add_url_rule("/city", view_func=city_settings, methods=["POST"])
    for importer in IMPORTERS:
        tabular.register_on(bp, importer)
    web.add_to_admin(
        bp, "overview", "城市导入", "导入行政区划、边界，生成网格；城市名称、工单编号前缀和地图中心"
    )
    bp.add_app_template_global(_city_values, "city_settings")
    return bp


def _city_values():
    """The city's settings for any template (``city_settings().map_center``)."""
    return city.template_values(get_session(), current_app.config)


def _counts(db):
    by_level = dict(
        db.execute(sa.select(Area.level, sa.func.count(Area.id)).group_by(Area.level)).all()
    )
    bounded = dict(
        db.execute(
            sa.select(Area.level, sa.func.count(Area.id))
            .where(Area.polygon.is_not(None))
            .group_by(Area.level)
        ).all()
    )
    grid = aliased(Area)
    without_grids = db.scalar(
        sa.select(sa.func.count(Area.id)).where(
            Area.level == AreaLevel.community,
            ~sa.exists().where(grid.parent_id == Area.id),
        )
    )
    units = dict(
        db.execute(
            sa.select(Unit.kind, sa.func.count(Unit.id))
            .where(Unit.kind.in_([UnitKind.street_office, UnitKind.district_government]))
            .group_by(Unit.kind)
        ).all()
    )
    return {
        "levels": [
            (onboarding.LEVEL_WORD[level], by_level.get(level, 0), bounded.get(level, 0))
            for level in AreaLevel
        ],
        "without_grids": without_grids or 0,
        "street_units": units.get(UnitKind.street_office, 0),
        "district_units": units.get(UnitKind.district_government, 0),
    }


def _render(db, *, error=None, form=None, status=200):
    values = city.template_values(db, current_app.config)
    if form is None:
        form = {
            "name": values["name"],
            "ticket_prefix": values["ticket_prefix"],
            "map_center": ",".join(str(v) for v in values["map_center"]),
        }
    return (
        render_template(
            "admin/onboarding.html",
            counts=_counts(db),
            importers=IMPORTERS,
            labels={key.split(".")[1]: DEFINITIONS[key] for key in city.KEYS},
            form=form,
            error=error,
        ),
        status,
    )


@page_for(*ADMIN)
def overview():
    return _render(get_session())


@page_for(*ADMIN)
def city_settings():
    form = {name: request.form.get(name, "") for name in ("name", "ticket_prefix", "map_center")}

    def change(db):
        return city.update(db, g.user, {f"city.{name}": value for name, value in form.items()})

    def refused(error):
        return _render(get_session(), error=error, form=form, status=422)

    done, result = web.perform(change, refused=refused)
    if not done:
        return result
    flash("城市设置已保存" if result else "城市设置没有变化")
    return redirect(url_for("onboarding.overview"))
