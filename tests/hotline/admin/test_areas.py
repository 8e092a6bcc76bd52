"""The areas and grids pages (hotline/admin/areas.py): the tree level by level, search, an
area's page with its map, and the forms that rename, add and replace boundaries."""

import io
import json
import re

import pytest
import sqlalchemy as sa
from shapely.geometry import box, mapping, shape

from hotline.models import Area, AuditLog
from tests.helpers import FORM_TOKEN

STREET = "370705001"  # 东关街道
COMMUNITY = "370705001004"  # 工福街社区
GRID = "370705001004001"


def area(db, code):
    return db.scalars(sa.select(Area).where(Area.code == code)).one()


def audits(db, action):
    return db.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


@pytest.fixture
def admin(client, web_login):
    web_login(client, "admin")
    return client


def post(client, form_token, path, data, page=None):
    data = {"csrf_token": form_token(client, page or path), **data}
    return client.post(path, data=data, content_type="multipart/form-data")


def test_the_tree_from_the_districts_down(admin):
    page = admin.get("/admin/areas/").get_data(as_text=True)
    assert "区划与网格" in page and "奎文区" in page
    assert 'href="/admin/areas/370705"' in page
    district = admin.get("/admin/areas/370705").get_data(as_text=True)
    assert "下级街道乡镇" in district and 'href="/admin/areas/370705001"' in district
    street = admin.get(f"/admin/areas/{STREET}").get_data(as_text=True)
    assert "下级社区村" in street and "工福街社区" in street
    community = admin.get(f"/admin/areas/{COMMUNITY}").get_data(as_text=True)
    assert "下级网格" in community and f'href="/admin/areas/{GRID}"' in community
    assert admin.get("/admin/areas/379999").status_code == 404


def test_the_admin_home_lists_the_section(admin):
    assert 'href="/admin/areas/"' in admin.get("/admin/").get_data(as_text=True)


def test_search_by_name_alias_or_code_and_the_picker(admin):
    page = admin.get("/admin/areas/?q=曹家巷居委会").get_data(as_text=True)
    assert 'href="/admin/areas/370702001001"' in page and "潍城区 › 城关街道" in page
    page = admin.get("/admin/areas/?q=没有这个地方").get_data(as_text=True)
    assert "没有名称、别名或编码包含“没有这个地方”的区域" in page
    response = admin.get(f"/admin/areas/go?area=370705&area={STREET}&area=&area=")
    assert response.status_code == 302 and response.headers["Location"].endswith(STREET)


def test_the_map_draws_the_children_and_the_areas_own_boundary(admin, db):
    page = admin.get(f"/admin/areas/{COMMUNITY}").get_data(as_text=True)
    grids = [g.code for g in area(db, COMMUNITY).children]
    for code in grids:
        assert 'class="shape child" d="M' in page and f'data-code="{code}"' in page
    assert "本区域尚无自己的边界" in page
    # A street without boundaries of its communities is drawn by their grids.
    street = admin.get(f"/admin/areas/{STREET}").get_data(as_text=True)
    assert street.count('class="shape child"') == db.scalar(
        sa.select(sa.func.count()).where(
            Area.code.startswith(STREET), sa.func.length(Area.code) == 15
        )
    )
    # A grid is drawn with its siblings around it.
    grid = admin.get(f"/admin/areas/{GRID}").get_data(as_text=True)
    assert 'class="shape own"' in grid and grid.count('class="shape context"') == len(grids) - 1


def test_rename_and_aliases_through_the_form(admin, db, form_token):
    path = f"/admin/areas/{GRID}"
    response = post(
        admin, form_token, path, {"name": "工福街一号网格", "aliases": "工福一格、一号格"}
    )
    assert response.status_code == 302
    page = admin.get(path).get_data(as_text=True)
    assert "已保存“工福街一号网格”的名称和别名" in page
    db.expire_all()
    assert area(db, GRID).name == "工福街一号网格"
    assert area(db, GRID).aliases == ["工福一格", "一号格"]
    (row,) = audits(db, "area.update")
    assert row.payload["changes"]["aliases"] == [[], ["工福一格", "一号格"]]


def test_a_refused_edit_keeps_what_was_typed(admin, db, form_token):
    path = f"/admin/areas/{GRID}"
    response = post(admin, form_token, path, {"name": "", "aliases": "甲、甲"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'role="alert">请填写名称' in page
    assert "甲、甲</textarea>" in page
    db.expire_all()
    assert area(db, GRID).name == "工福街社区第1网格"
    assert audits(db, "area.update") == []


def test_add_a_grid_and_a_community(admin, db, form_token):
    community = area(db, COMMUNITY)
    expected = f"{COMMUNITY}{len(community.children) + 1:03d}"
    page = admin.get(f"/admin/areas/{COMMUNITY}").get_data(as_text=True)
    assert f"网格编码由系统生成：{expected}" in page
    response = post(
        admin,
        form_token,
        f"/admin/areas/{COMMUNITY}/children",
        {"name": "", "aliases": ""},
        page=f"/admin/areas/{COMMUNITY}",
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(expected)
    assert f"已添加网格“工福街社区第{int(expected[-3:])}网格”（{expected}）" in admin.get(
        f"/admin/areas/{expected}"
    ).get_data(as_text=True)
    response = post(
        admin,
        form_token,
        f"/admin/areas/{STREET}/children",
        {"name": "新华社区", "aliases": "新华居委会", "code": "12"},
        page=f"/admin/areas/{STREET}",
    )
    assert response.status_code == 422
    assert "社区村编码须为 12 位数字" in response.get_data(as_text=True)
    response = post(
        admin,
        form_token,
        f"/admin/areas/{STREET}/children",
        {"name": "新华社区", "aliases": "新华居委会", "code": ""},
        page=f"/admin/areas/{STREET}",
    )
    assert response.status_code == 302
    assert len(audits(db, "area.create")) == 2


def test_upload_a_boundary_file(admin, db, form_token):
    grid = area(db, GRID)
    x, y = grid.center_lng, grid.center_lat
    polygon = mapping(box(x - 0.001, y - 0.001, x + 0.001, y + 0.0015))
    feature = json.dumps({"type": "Feature", "properties": {}, "geometry": polygon}).encode()
    response = post(
        admin,
        form_token,
        f"/admin/areas/{GRID}/polygon",
        {"file": (io.BytesIO(feature), "grid.geojson"), "geojson": ""},
        page=f"/admin/areas/{GRID}",
    )
    assert response.status_code == 302
    page = admin.get(f"/admin/areas/{GRID}").get_data(as_text=True)
    assert "已更新“工福街社区第1网格”的边界（4 个顶点，面积约" in page
    db.expire_all()
    assert shape(area(db, GRID).polygon).equals(shape(polygon))
    assert len(audits(db, "area.polygon")) == 1


def test_a_pasted_collection_with_bad_features_lists_each_and_changes_nothing(
    admin, db, form_token
):
    grids = area(db, COMMUNITY).children
    before = {g.code: json.dumps(g.polygon) for g in grids}
    features = [
        {"type": "Feature", "properties": {"code": g.code}, "geometry": g.polygon} for g in grids
    ]
    features[0]["geometry"] = {"type": "Point", "coordinates": [119.1, 36.7]}
    features.append(
        {"type": "Feature", "properties": {"code": "370799"}, "geometry": grids[0].polygon}
    )
    text = json.dumps({"type": "FeatureCollection", "features": features})
    response = post(
        admin,
        form_token,
        f"/admin/areas/{COMMUNITY}/polygon",
        {"geojson": text},
        page=f"/admin/areas/{COMMUNITY}",
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "GeoJSON 有 2 个要素不合格，未做任何修改" in page
    problems = re.findall(r"<li>(第 \d+ 个要素[^<]*)</li>", page)
    assert len(problems) == 2 and "没有这个编码" in problems[1]
    db.expire_all()
    assert {g.code: json.dumps(g.polygon) for g in area(db, COMMUNITY).children} == before
    assert audits(db, "area.polygon") == []


def test_download_the_boundaries_to_edit_them(admin, db):
    response = admin.get(f"/admin/areas/{COMMUNITY}/boundaries.geojson")
    assert response.mimetype == "application/geo+json"
    document = json.loads(response.get_data(as_text=True))
    codes = {f["properties"]["code"] for f in document["features"]}
    assert codes == {g.code for g in area(db, COMMUNITY).children}


@pytest.mark.parametrize("username", ["operator", "dispatcher", "supervisor", "leader"])
def test_other_roles_may_not_open_or_post(client, web_login, db, username):
    web_login(client, username)
    assert client.get("/admin/areas/").status_code == 403
    assert client.get(f"/admin/areas/{GRID}").status_code == 403
    landing = client.get("/", follow_redirects=True).get_data(as_text=True)
    token = FORM_TOKEN.search(landing).group(1)  # the header's logout form: a valid token
    response = client.post(f"/admin/areas/{GRID}", data={"csrf_token": token, "name": "改名"})
    assert response.status_code == 403
    assert area(db, GRID).name != "改名"


def test_not_logged_in_goes_to_the_login_page(client):
    response = client.get("/admin/areas/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
