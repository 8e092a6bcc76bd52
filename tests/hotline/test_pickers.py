"""What the pickers offer (hotline/pickers.py): categories and areas by name with their levels,
paths and pinyin; the most specific area of a posted cascade; the shared macros."""

import re

import pytest
import sqlalchemy as sa
from flask import render_template_string

from hotline import pickers
from hotline.enums import AreaLevel
from hotline.errors import ValidationFailed
from hotline.models import Area, Category


def options(groups):
    return {choice.code: choice for group in groups for choice in group.options}


@pytest.mark.parametrize(
    ("name", "initials", "spelling"),
    [
        ("路灯故障", "ldgz", "ludengguzhang"),
        ("奎文区", "kwq", "kuiwenqu"),
        ("重庆路", "cql", "chongqinglu"),  # a polyphonic character read as in its word
        ("曹家巷社区第1网格", "cjxsqd1wg", "caojiaxiangshequdi1wangge"),
        ("G20 路（北段）", "g20lbd", "g20lubeiduan"),  # letters and digits kept, punctuation not
    ],
)
def test_pinyin_of_a_name(name, initials, spelling):
    assert pickers.pinyin(name) == (initials, spelling)


def test_categories_by_name_with_their_path(db):
    groups = pickers.category_groups(db)
    offered = options(groups)
    light = offered["010103"]
    assert (light.name, light.level, light.parent) == ("路灯故障", 3, "0101")
    assert light.path == ("城乡建设", "市政设施", "路灯故障")
    assert light.label == "城乡建设 › 市政设施 › 路灯故障"
    assert (light.initials, light.spelling) == ("ldgz", "ludengguzhang")
    group = next(g for g in groups if light in g.options)
    assert group.label == "城乡建设 › 市政设施"
    assert group.initials == "cxjs szss"
    # Every active leaf and second-level class; no 一级 class with children.
    rows = db.execute(sa.select(Category.code).where(Category.active)).scalars().all()
    leaves = {c for c in rows if not any(o != c and o.startswith(c) for o in rows)}
    classes = {c for c in rows if len(c) == 4}
    assert set(offered) == leaves | classes
    assert "01" not in offered
    # The class the classifier suggests (level 2) under its 一级 name.
    assert offered["0101"].path == ("城乡建设", "市政设施")
    assert groups[0].label == "城乡建设" and groups[0].options[0].name == "市政设施"
    for group in groups:
        codes = [choice.code for choice in group.options]
        assert codes == sorted(codes)


def test_a_deactivated_branch_is_not_offered(db):
    for category in db.scalars(sa.select(Category).where(Category.code.like("0101__"))):
        category.active = False
    db.flush()
    offered = options(pickers.category_groups(db))
    assert not any(code.startswith("0101") and len(code) == 6 for code in offered)
    assert offered["0101"].path == ("城乡建设", "市政设施")
    db.scalars(sa.select(Category).where(Category.code == "02")).one().active = False
    db.flush()
    assert not any(code.startswith("02") for code in options(pickers.category_groups(db)))


def test_areas_by_level_with_names_parents_and_paths(db):
    levels = pickers.area_levels(db)
    assert list(levels) == [
        AreaLevel.district,
        AreaLevel.street,
        AreaLevel.community,
        AreaLevel.grid,
    ]
    districts = options(levels[AreaLevel.district])
    assert districts["370705"].name == "奎文区"
    assert districts["370705"].initials == "kwq"
    assert (districts["370705"].level, districts["370705"].parent) == (1, None)
    assert [g.label for g in levels[AreaLevel.district]] == [""]  # no group above districts
    street = options(levels[AreaLevel.street])["370705001"]
    assert (street.name, street.level, street.parent) == ("东关街道", 2, "370705")
    assert street.initials == "dgjd"
    grid = options(levels[AreaLevel.grid])["370705001001001"]
    assert grid.level == 4 and grid.parent == "370705001001"
    assert grid.path[:2] == ("奎文区", "东关街道") and grid.path[-1] == grid.name
    # Grouped under their parent's path, every area once.
    community_groups = levels[AreaLevel.community]
    assert "奎文区 › 东关街道" in {g.label for g in community_groups}
    total = sum(len(g.options) for groups in levels.values() for g in groups)
    assert total == db.scalar(sa.select(sa.func.count()).select_from(Area))


def test_lists_are_read_once_per_request_and_fresh_on_the_next(app, db):
    with app.test_request_context("/"):
        first = pickers.category_groups()
        assert pickers.category_groups() is first
    db.scalars(sa.select(Category).where(Category.code == "010103")).one().name = "路灯不亮"
    db.flush()
    with app.test_request_context("/"):
        assert options(pickers.category_groups())["010103"].name == "路灯不亮"


@pytest.mark.parametrize(
    ("posted", "code"),
    [
        ([], ""),
        (["", "", ""], ""),
        (["370705"], "370705"),
        (["370705", "370705001", "", ""], "370705001"),
        (["370705", "370705001", "370705001002", "370705001002001"], "370705001002001"),
        (["", "", "370705001002"], "370705001002"),  # a community alone: its path is implied
        (["370705001 "], "370705001"),
    ],
)
def test_the_most_specific_area_of_a_cascade(posted, code):
    assert pickers.chosen_area(posted) == code


def test_levels_that_do_not_fit_together_are_refused():
    with pytest.raises(ValidationFailed) as refused:
        pickers.chosen_area(["370702", "370705001"])
    assert refused.value.code == "AREA_PATH_INCONSISTENT"
    assert "area" in refused.value.details


MACROS = '{% from "_pickers.html" import category_select, area_select %}'


def test_the_category_macro_renders_names_and_pinyin(app, db):
    with app.test_request_context("/"):
        html = render_template_string(
            MACROS + '{{ category_select("category", id="c", selected="010103") }}'
        )
    assert '<select name="category" id="c" data-picker="category">' in html
    assert '<optgroup label="城乡建设 › 市政设施" data-py="cxjs szss">' in html
    assert (
        '<option value="010103" data-py="ldgz" data-pinyin="ludengguzhang" selected>路灯故障'
        in html
    )
    assert '<option value="">请选择事项分类</option>' in html
    assert "已停用" not in html


def test_a_category_no_longer_offered_stays_selected(app, db):
    with app.test_request_context("/"):
        html = render_template_string(MACROS + '{{ category_select(selected="01") }}')
    assert '<option value="01" selected>城乡建设（已停用或未开放选择的分类）</option>' in html


def test_the_area_macro_renders_a_cascade_with_the_path_selected(app, db):
    with app.test_request_context("/"):
        html = render_template_string(
            MACROS + '{{ area_select("area", selected="370705001004", blank="由系统定位") }}'
        )
    assert '<fieldset class="area-cascade" data-area-cascade data-name="area" id="area">' in html
    for level, label in (("district", "区县"), ("street", "街道乡镇"), ("community", "社区村")):
        assert f'<label for="area-{level}">{label}</label>' in html
    assert html.count('<select name="area"') == 4
    assert '<option value="">由系统定位</option>' in html
    assert 'value="370705" data-py="kwq"' in html
    assert 'value="370705001" data-py="dgjd"' in html
    assert re.findall(r'<option value="(\d+)"[^>]* selected>', html) == [
        "370705",
        "370705001",
        "370705001004",
    ]
    assert '<optgroup label="奎文区 › 东关街道"' in html


def test_options_escape_names_and_mark_the_chosen_path():
    evil = pickers.Choice("370705", '<b>"奎文"&</b>', 1, ('<b>"奎文"&</b>',), None)
    below = pickers.Choice("370705001", "东关街道", 2, ('<b>"奎文"&</b>', "东关街道"), "370705")
    groups = (pickers.Group("", (evil,)), pickers.Group('<b>"奎文"&</b>', (below,)))
    html = str(pickers.options_html(groups, "370705001", path=True))
    assert "<b>" not in html
    assert "&lt;b&gt;&#34;奎文&#34;&amp;&lt;/b&gt;</option>" in html
    assert '<optgroup label="&lt;b&gt;&#34;奎文&#34;&amp;&lt;/b&gt;" data-py="bkwb">' in html
    assert html.count(" selected>") == 2
    assert str(pickers.options_html(groups, "370705001")).count(" selected>") == 1
    assert " selected>" not in str(pickers.options_html(groups, ""))
    assert pickers.offered(groups, "370705001") and not pickers.offered(groups, "3707")
