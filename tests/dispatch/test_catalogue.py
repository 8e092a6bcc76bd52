"""The dispatch catalogue's administration (dispatch/catalogue.py): dated rules honoured at
dispatch and in the intake suggestions, flags (conflict, duplicate, expired, inactive,
shadowed), "who handles this?", the operations' refusals and audit rows, and the import."""

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa

from classifier.router import LearnedRouter, record_from_codes
from dispatch import catalogue, routing
from hotline import suggestions, tabular
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import Area, AuditLog, Category, RoutingRule, Unit

TODAY = routing.today()
TOMORROW = TODAY + dt.timedelta(days=1)
YESTERDAY = TODAY - dt.timedelta(days=1)


def _get(db, model, code):
    return db.scalars(sa.select(model).where(model.code == code)).one()


def _rule(db, admin, category, unit, area=None, **dates):
    values = {
        "category": _get(db, Category, category),
        "area": _get(db, Area, area) if area else None,
        "unit": _get(db, Unit, unit),
        "valid_from": dates.get("valid_from"),
        "valid_to": dates.get("valid_to"),
        "note": dates.get("note"),
    }
    return catalogue.create_rule(db, admin, values, TODAY)


def _flags(db, rule):
    found = catalogue.analyse(catalogue.all_rules(db), catalogue.offered_categories(db), TODAY)
    return found.get(rule.id, [])


def _kinds(db, rule):
    return {f.kind for f in _flags(db, rule)}


def _audits(db, action):
    return db.scalars(sa.select(AuditLog).where(AuditLog.action == action)).all()


@pytest.fixture
def admin(user):
    return user("admin")


# -- validity ---------------------------------------------------------------------------------


def test_a_rule_from_tomorrow_is_ignored_at_dispatch_today(db, admin):
    lamp = _get(db, Category, "010103")
    _rule(db, admin, "010103", "U-GAJ", valid_from=TOMORROW)
    assert routing.catalogue_unit(db, lamp, None).code == "U-CGJ"  # 0101's rule
    assert routing.dispatch_unit(db, lamp, None).code == "U-CGJ"
    assert routing.catalogue_unit(db, lamp, None, TOMORROW).code == "U-GAJ"
    assert routing.dispatch_unit(db, lamp, None, None, TOMORROW).code == "U-GAJ"


def test_an_ended_rule_stops_deciding_after_its_last_day(db, admin):
    lamp = _get(db, Category, "010103")
    _rule(db, admin, "010103", "U-GAJ", valid_to=YESTERDAY)
    assert routing.catalogue_unit(db, lamp, None).code == "U-CGJ"
    assert routing.catalogue_unit(db, lamp, None, YESTERDAY).code == "U-GAJ"


def test_the_suggester_holds_the_rules_of_today_and_rebuilds_when_the_date_turns(
    db, admin, app, monkeypatch
):
    _rule(db, admin, "010103", "U-GAJ", valid_from=TOMORROW)
    db.commit()
    rules = suggestions.reference_data(db, TODAY)[1]
    assert ("010103", None, "U-GAJ") not in rules
    assert ("010103", None, "U-GAJ") in suggestions.reference_data(db, TOMORROW)[1]

    service = suggestions.SuggestionService(app.config["CLASSIFIER_MODELS_DIR"])
    suggester, _ = service._suggester(db)
    assert suggester.router.catalogue.lookup("010103", None) == "U-CGJ"
    monkeypatch.setattr(suggestions, "local_today", lambda tz: TOMORROW)
    suggester, _ = service._suggester(db)
    assert suggester.router.catalogue.lookup("010103", None) == "U-GAJ"


def test_two_rules_in_force_for_one_pair_the_later_start_decides_everywhere(db, admin):
    lamp = _get(db, Category, "010103")
    # Written past the checks (as rows from before them could be).
    db.add_all(
        [
            RoutingRule(category=lamp, unit=_get(db, Unit, "U-GAJ"), valid_from=YESTERDAY),
            RoutingRule(category=lamp, unit=_get(db, Unit, "U-ZJJ"), valid_from=None),
        ]
    )
    db.flush()
    assert routing.catalogue_unit(db, lamp, None).code == "U-GAJ"
    assert ("010103", None, "U-GAJ") in suggestions.reference_data(db, TODAY)[1]
    assert ("010103", None, "U-ZJJ") not in suggestions.reference_data(db, TODAY)[1]


# -- operations -------------------------------------------------------------------------------


def test_create_edit_end_delete_are_audited_old_to_new_and_bump_the_version(db, admin):
    from hotline import reference

    before = reference.versions(db)[reference.ROUTING]
    rule = _rule(db, admin, "010103", "U-GAJ", area="370705001", valid_from=TOMORROW, note="试点")
    (created,) = _audits(db, "routing_rule.create")
    assert created.payload["changes"]["unit"] == [None, "U-GAJ"]
    assert created.payload["changes"]["valid_from"] == [None, TOMORROW.isoformat()]
    assert created.target == str(rule.id)

    catalogue.update_rule(db, admin, rule, {"unit": _get(db, Unit, "U-ZJJ")}, TODAY)
    catalogue.end_rule(db, admin, rule, TOMORROW + dt.timedelta(days=30), TODAY)
    updates = _audits(db, "routing_rule.update")
    assert updates[0].payload["changes"] == {"unit": ["U-GAJ", "U-ZJJ"]}
    assert updates[1].payload["changes"] == {
        "valid_to": [None, (TOMORROW + dt.timedelta(days=30)).isoformat()]
    }

    catalogue.delete_rule(db, admin, rule)
    (deleted,) = _audits(db, "routing_rule.delete")
    assert deleted.payload["changes"]["unit"] == ["U-ZJJ", None]
    assert deleted.payload["changes"]["area"] == ["370705001", None]
    assert db.get(RoutingRule, rule.id) is None
    assert reference.versions(db)[reference.ROUTING] == before + 4


def test_refusals(db, admin, user):
    with pytest.raises(Forbidden):
        _rule(db, user("dispatcher"), "010103", "U-GAJ")
    unit = _get(db, Unit, "U-GAJ")
    unit.active = False
    with pytest.raises(ValidationFailed) as refused:
        _rule(db, admin, "010103", "U-GAJ")
    assert "已停用" in refused.value.message
    unit.active = True
    category = _get(db, Category, "010103")
    category.active = False
    with pytest.raises(ValidationFailed):
        _rule(db, admin, "010103", "U-GAJ")
    category.active = True
    with pytest.raises(ValidationFailed) as refused:
        _rule(db, admin, "010103", "U-GAJ", valid_from=TOMORROW, valid_to=TODAY)
    assert "早于" in refused.value.message
    # 0101 × 全市 → U-CGJ is open-ended: another unit for it from tomorrow conflicts …
    with pytest.raises(Conflict) as refused:
        _rule(db, admin, "0101", "U-ZJJ", valid_from=TOMORROW)
    assert refused.value.code == "ROUTING_CONFLICT"
    # … as does a second rule with the same start.
    with pytest.raises(Conflict) as refused:
        _rule(db, admin, "0101", "U-CGJ")
    assert refused.value.code == "ROUTING_RULE_EXISTS"
    assert not _audits(db, "routing_rule.create")


def test_replace_ends_the_older_conflicting_rule_the_day_before(db, admin):
    old = db.scalars(
        sa.select(RoutingRule)
        .join(Category)
        .where(Category.code == "0101", RoutingRule.area_id.is_(None))
    ).one()
    new = catalogue.create_rule(
        db,
        admin,
        {
            "category": old.category,
            "area": None,
            "unit": _get(db, Unit, "U-ZJJ"),
            "valid_from": TOMORROW,
            "valid_to": None,
            "note": None,
            "replace": True,
        },
        TODAY,
    )
    assert old.valid_to == TODAY
    assert new.valid_from == TOMORROW
    (ended,) = _audits(db, "routing_rule.update")
    assert ended.payload["changes"] == {"valid_to": [None, TODAY.isoformat()]}
    lamp = _get(db, Category, "010103")
    assert routing.catalogue_unit(db, lamp, None).code == "U-CGJ"
    assert routing.catalogue_unit(db, lamp, None, TOMORROW).code == "U-ZJJ"


# -- flags ------------------------------------------------------------------------------------


def test_conflicts_and_duplicates_are_flagged(db, admin):
    lamp = _get(db, Category, "010103")
    one = RoutingRule(category=lamp, unit=_get(db, Unit, "U-GAJ"), valid_from=TODAY)
    two = RoutingRule(category=lamp, unit=_get(db, Unit, "U-ZJJ"), valid_from=TOMORROW)
    three = RoutingRule(
        category=lamp, unit=_get(db, Unit, "U-GAJ"), valid_from=TOMORROW + dt.timedelta(days=9)
    )
    past = RoutingRule(
        category=lamp,
        unit=_get(db, Unit, "U-CGJ"),
        valid_from=TODAY - dt.timedelta(days=30),
        valid_to=YESTERDAY,
    )
    db.add_all([one, two, three, past])
    db.flush()
    assert _kinds(db, one) == {"conflict", "duplicate"}
    assert _kinds(db, two) == {"conflict"}
    conflicts = [f for f in _flags(db, two) if f.kind == "conflict"]
    assert sorted(f.others for f in conflicts) == sorted([(one.id,), (three.id,)])
    assert "冲突" in conflicts[0].message and "分别派给" in conflicts[0].message
    # An overlap that lies wholly in the past no longer matters: only "expired".
    assert _kinds(db, past) == {"expired"}


def test_a_parent_rule_fully_covered_by_its_children_is_shadowed(db, admin):
    # Every class under 01 城乡建设 (0101 … 0108) has its own whole-city rule in the seed, and
    # 01 itself (a 一级 class with children) is not offered at intake: 01's rule never decides.
    city = _rule(db, admin, "01", "U-ZJJ")
    street = _rule(db, admin, "01", "U-ZJJ", area="370705001")
    (flag,) = _flags(db, city)
    assert flag.kind == "shadowed" and "覆盖" in flag.message and len(flag.others) >= 8
    assert _kinds(db, street) == {"shadowed"}


def test_a_parent_rule_still_deciding_somewhere_is_not_shadowed(db, admin):
    # A child rule ending tomorrow leaves 01 deciding that class from the day after.
    child = db.scalars(
        sa.select(RoutingRule)
        .join(Category)
        .where(Category.code == "0108", RoutingRule.area_id.is_(None))
    ).one()
    catalogue.end_rule(db, admin, child, TOMORROW, TODAY)
    parent = _rule(db, admin, "01", "U-ZJJ")
    assert not _flags(db, parent)
    # Ending the parent too (before the child ends) makes it shadowed again.
    catalogue.end_rule(db, admin, parent, TOMORROW, TODAY)
    assert _kinds(db, parent) == {"shadowed"}
    # A level-2 class is offered at intake: its own tickets always go by its rule.
    assert not _flags(db, db.get(RoutingRule, child.id))


def test_expired_and_inactive_rules_are_flagged(db, admin):
    rule = _rule(db, admin, "010103", "U-GAJ", valid_to=YESTERDAY)
    assert _kinds(db, rule) == {"expired"}
    live = _rule(db, admin, "010104", "U-GAJ")
    live.unit.active = False
    db.flush()
    assert "inactive" in _kinds(db, live)


def test_listing_filters(db, admin):
    future = _rule(db, admin, "010103", "U-GAJ", area="370705001", valid_from=TOMORROW)
    found = catalogue.listing(db, catalogue.Filters(state="future"), TODAY)
    assert [r.id for r, _ in found] == [future.id]
    found = catalogue.listing(db, catalogue.Filters(category="0101", area="370705"), TODAY)
    assert future.id in [r.id for r, _ in found]
    assert all(r.category.code.startswith("0101") and r.area for r, _ in found)
    found = catalogue.listing(db, catalogue.Filters(area="city", unit="U-CGJ"), TODAY)
    assert found and all(r.area is None and r.unit.code == "U-CGJ" for r, _ in found)
    assert not catalogue.listing(db, catalogue.Filters(issue="any"), TODAY)


# -- preview ----------------------------------------------------------------------------------


def test_preview_names_the_deciding_rule_and_the_chain_it_beat(db, admin):
    lamp = _get(db, Category, "010103")
    street = _get(db, Area, "370705001")
    decided = _rule(db, admin, "010103", "U-GAJ", area="370705")
    result = catalogue.preview(db, lamp, street, TODAY)
    assert result.rule.id == decided.id
    assert result.dispatch_unit.code == "U-GAJ"
    assert [r.category.code for r, _ in result.beaten] == ["0101"]
    assert "更具体" in result.beaten[0][1]
    # Tomorrow's rule at the street is more specific by area.
    _rule(db, admin, "010103", "U-ZJJ", area="370705001", valid_from=TOMORROW)
    result = catalogue.preview(db, lamp, street, TOMORROW)
    assert result.rule.unit.code == "U-ZJJ"
    assert [r.area.code if r.area else None for r, _ in result.beaten] == ["370705", None]
    assert "区域" in result.beaten[0][1]


def test_preview_shows_the_learned_routers_top_three(db, monkeypatch):
    learned = LearnedRouter().fit(
        [record_from_codes("010103", "370705001")] * 6 + [record_from_codes("0102", None)] * 2,
        ["U-CGJ"] * 4 + ["U-S-370705001"] * 2 + ["U-WATER"] * 2,
    )

    class Fake:
        router = type("R", (), {"learned": learned})()

    monkeypatch.setattr(
        suggestions.SuggestionService, "_suggester", lambda self, session, **kw: (Fake(), "v")
    )
    result = catalogue.preview(db, _get(db, Category, "010103"), _get(db, Area, "370705001"), TODAY)
    units = [u.code for u, _, _ in result.learned]
    assert len(units) == 3 and units[0] == "U-CGJ"
    data = catalogue.preview_to_dict(result)
    assert data["learned"][0]["name"] == _get(db, Unit, "U-CGJ").name
    assert 0 < data["learned"][0]["confidence"] <= 1


# -- import and export ------------------------------------------------------------------------


def _xlsx(
    rows, headers=("事项分类编码", "区域编码", "承办单位编码", "生效日期", "失效日期", "说明")
):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _import(db, admin, data, dry_run=False):
    return tabular.run(db, admin, catalogue.IMPORTER, [("rules.xlsx", data)], dry_run=dry_run)


def _count(db):
    return db.scalar(sa.select(sa.func.count()).select_from(RoutingRule))


def test_import_dry_run_then_real_then_idempotent(db, admin):
    before = _count(db)
    data = _xlsx(
        [
            ("010103", "370705001", "U-GAJ", TOMORROW.isoformat(), "", "试点"),
            ("0101", "", "U-CGJ", "", "", "全市市政设施"),  # the seed's own rule: note added
        ]
    )
    result = _import(db, admin, data, dry_run=True)
    assert (result.created, result.updated) == (1, 1)
    assert _count(db) == before
    result = _import(db, admin, data)
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    assert _count(db) == before + 1
    assert routing.catalogue_unit(
        db, _get(db, Category, "010103"), _get(db, Area, "370705001"), TOMORROW
    ).code == ("U-GAJ")
    assert len(_audits(db, "routing_rule.create")) == 1
    assert _audits(db, "import.routing")
    again = _import(db, admin, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_import_by_category_path_and_export_round_trip(db, admin):
    data = _xlsx(
        [("城乡建设 › 市政设施 › 路灯故障", "", "U-GAJ", "2030/1/1", "2030-12-31", "")],
        headers=("事项分类", "区域编码", "承办单位编码", "生效日期", "失效日期", "说明"),
    )
    result = _import(db, admin, data)
    assert result.created == 1
    exported = catalogue.export(db)
    table = tabular.read(exported, "out.xlsx", catalogue.COLUMNS)
    assert any(
        cells["category"] == "010103" and cells["valid_from"] == "2030-01-01"
        for _, cells in table.rows
    )
    again = tabular.run(db, admin, catalogue.IMPORTER, [("out.xlsx", exported)])
    assert again.created == again.updated == 0


def test_import_row_errors_change_nothing(db, admin):
    before = _count(db)
    data = _xlsx(
        [
            ("999999", "", "U-GAJ", "", "", ""),  # unknown category
            ("010103", "123", "U-GAJ", "", "", ""),  # unknown area
            ("010103", "", "U-NONE", "", "", ""),  # unknown unit
            ("010104", "", "U-GAJ", "2026-13-01", "", ""),  # bad date
            ("010105", "", "U-GAJ", "2030-02-01", "2030-01-01", ""),  # ends before it starts
            ("0101", "", "U-ZJJ", TOMORROW.isoformat(), "", ""),  # conflicts with the seed's
            ("010106", "", "U-GAJ", "", "", ""),  # conflicts with the next row
            ("010106", "", "U-ZJJ", TOMORROW.isoformat(), "", ""),
            ("020101", "", "U-GAJ", "", "", "有效行"),
        ]
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        _import(db, admin, data)
    errors = refused.value.errors
    rows = {e.row for e in errors}
    assert {2, 3, 4, 5, 6} <= rows
    first = [e for e in errors if e.row < 7]
    assert len(first) == 5
    # The first pass stops at bad cells; fix them and the conflicts are reported.
    data = _xlsx(
        [
            ("0101", "", "U-ZJJ", TOMORROW.isoformat(), "", ""),
            ("010106", "", "U-GAJ", "", "", ""),
            ("010106", "", "U-ZJJ", TOMORROW.isoformat(), "", ""),
            ("010106", "", "U-GAJ", "", "", "同键重复"),
        ]
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        _import(db, admin, data)
    messages = [(e.row, e.message) for e in refused.value.errors]
    assert any(row == 5 and "同一条规则" in m for row, m in messages)
    data = _xlsx(
        [
            ("0101", "", "U-ZJJ", TOMORROW.isoformat(), "", ""),
            ("010106", "", "U-GAJ", "", "", ""),
            ("010106", "", "U-ZJJ", TOMORROW.isoformat(), "", ""),
        ]
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        _import(db, admin, data)
    messages = [(e.row, e.message) for e in refused.value.errors]
    assert any(row == 2 and "现有规则" in m for row, m in messages)
    assert any(row == 3 and "第 4 行" in m for row, m in messages)
    assert any(row == 4 and "第 3 行" in m for row, m in messages)
    assert _count(db) == before
    assert not _audits(db, "routing_rule.create")


# -- seed -------------------------------------------------------------------------------------


def test_seeding_again_leaves_a_pair_with_an_administrators_rule_alone(db, admin):
    from hotline import seed

    old = db.scalars(
        sa.select(RoutingRule)
        .join(Category)
        .where(Category.code == "0101", RoutingRule.area_id.is_(None))
    ).one()
    catalogue.end_rule(db, admin, old, YESTERDAY, TODAY)
    items = [
        {"category": "0101", "area": None, "unit": "U-CGJ"},
        {"category": "010103", "area": None, "unit": "U-GAJ", "valid_from": "2030-01-01"},
    ]
    assert seed.load_routing(db, items) == 1
    added = db.scalars(sa.select(RoutingRule).join(Category).where(Category.code == "010103")).one()
    assert added.valid_from == dt.date(2030, 1, 1)
    assert routing.catalogue_unit(db, _get(db, Category, "010102"), None) is None
    assert seed.load_routing(db, items) == 0


def test_a_rule_of_a_unit_deactivated_since_may_still_be_ended(db, admin):
    rule = _rule(db, admin, "010103", "U-GAJ")
    rule.unit.active = False
    db.flush()
    same = {"category": rule.category, "unit": rule.unit, "area": None, "note": "停用后结束"}
    catalogue.update_rule(db, admin, rule, {**same, "valid_to": TODAY}, TODAY)
    assert rule.valid_to == TODAY
    # A new rule to the deactivated unit is refused.
    with pytest.raises(ValidationFailed):
        catalogue.create_rule(db, admin, {**same, "valid_from": TOMORROW, "valid_to": None}, TODAY)
