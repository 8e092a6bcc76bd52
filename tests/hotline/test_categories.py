"""The category tree's operations (hotline/categories.py): codes stay hierarchical through
adds and moves, deactivation takes the subtree and is refused at intake, every change is
audited old → new and bumps the categories' reference version."""

import pytest
import sqlalchemy as sa

from dispatch import operations, sla
from hotline import categories, reference
from hotline.errors import NotFound, ValidationFailed
from hotline.models import AuditLog, Category, ReferenceVersion, SlaPolicy, Unit


def cat(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


def version(db):
    return db.scalar(
        sa.select(ReferenceVersion.version).where(ReferenceVersion.name == reference.CATEGORIES)
    )


def audits(db, action):
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
    ).all()


def assert_codes_hierarchical(db):
    for row in db.scalars(sa.select(Category)):
        assert len(row.code) == 2 * row.level, row
        if row.parent_id is None:
            assert row.level == 1
        else:
            assert row.parent.code == row.code[:-2], row
            assert row.parent.level == row.level - 1


def test_add_generates_the_next_code_under_the_parent_and_inherits_utility(db, user):
    before = version(db) or 0
    row = categories.add(db, user("admin"), name="  二次供水  ", parent=cat(db, "0102"))
    assert (row.code, row.name, row.level, row.utility, row.active) == (
        "010206",
        "二次供水",
        3,
        True,
        True,
    )
    top = categories.add(db, user("admin"), name="应急管理")
    assert (top.code, top.level, top.utility) == ("16", 1, False)
    assert version(db) == before + 2
    (created, _) = audits(db, "category.create")
    assert created.target == "010206"
    assert created.payload["changes"]["name"] == [None, "二次供水"]
    assert created.payload["changes"]["parent"] == [None, "0102"]


def test_add_with_a_given_code_and_its_refusals(db, user):
    admin, water = user("admin"), cat(db, "0102")
    assert categories.add(db, admin, name="水费发票", parent=water, code="010250").code == "010250"
    # The next generated code follows the highest.
    assert categories.add(db, admin, name="水表更换", parent=water).code == "010251"
    for code, expected in [
        ("010250", "CATEGORY_CODE_TAKEN"),
        ("010300", "CATEGORY_CODE_INVALID"),
        ("0103", "CATEGORY_CODE_INVALID"),
        ("010399", "CATEGORY_CODE_INVALID"),  # not under 0102
    ]:
        with pytest.raises(ValidationFailed) as caught:
            categories.add(db, admin, name=f"测试{code}", parent=water, code=code)
        assert caught.value.code == expected
    with pytest.raises(ValidationFailed) as caught:
        categories.add(db, admin, name="停水", parent=water)
    assert caught.value.code == "CATEGORY_NAME_TAKEN"
    with pytest.raises(ValidationFailed) as caught:
        categories.add(db, admin, name="更细", parent=cat(db, "010201"))
    assert caught.value.code == "CATEGORY_TOO_DEEP"
    with pytest.raises(ValidationFailed) as caught:
        categories.add(db, admin, name=" ", parent=water)
    assert caught.value.code == "CATEGORY_NAME_REQUIRED"
    with pytest.raises(ValidationFailed) as caught:
        categories.add(db, admin, name="长" * 51, parent=water)
    assert caught.value.code == "CATEGORY_NAME_TOO_LONG"


def test_rename_is_audited_and_refuses_a_sibling_name(db, user):
    admin, row = user("admin"), cat(db, "010201")
    assert categories.rename(db, admin, row, "计划停水") is True
    assert categories.rename(db, admin, row, "计划停水") is False
    (audit,) = audits(db, "category.rename")
    assert audit.target == "010201"
    assert audit.payload["changes"] == {"name": ["停水", "计划停水"]}
    with pytest.raises(ValidationFailed) as caught:
        categories.rename(db, admin, row, "水压不足")
    assert caught.value.code == "CATEGORY_NAME_TAKEN"


def test_move_recodes_the_subtree_and_everything_follows_by_id(db, user, make_ticket):
    admin = user("admin")
    water = cat(db, "0102")
    leaf_ids = {c.code: c.id for c in categories.subtree(db, water)}
    ticket = make_ticket(user("operator"), category="010201")
    policy = sla.find_policy(db, ticket)
    assert policy.name == "水电气热·供水"
    recoded = categories.move(db, admin, water, cat(db, "02"))
    assert recoded == {
        "0102": "0208",
        "010201": "020801",
        "010202": "020802",
        "010203": "020803",
        "010204": "020804",
        "010205": "020805",
    }
    db.flush()
    db.expire_all()
    assert {c.code: c.id for c in categories.subtree(db, cat(db, "0208"))} == {
        recoded[code]: id_ for code, id_ in leaf_ids.items()
    }
    assert cat(db, "0208").parent.code == "02"
    assert_codes_hierarchical(db)
    # The ticket, its SLA policy (by id) and the routing rules follow the category.
    assert ticket.category.code == "020801"
    assert ticket.category.ancestor_codes() == ["020801", "0208", "02"]
    assert sla.find_policy(db, ticket).id == policy.id
    assert db.get(SlaPolicy, policy.id).category.code == "0208"
    (audit,) = audits(db, "category.move")
    assert audit.target == "0208"
    assert audit.payload["changes"]["code"] == ["0102", "0208"]
    assert audit.payload["changes"]["parent"] == ["01", "02"]
    assert audit.payload["recoded"]["010205"] == "020805"
    # A new child of 01 does not take the freed code while a higher one exists.
    assert categories.add(db, admin, name="新二级", parent=cat(db, "01")).code == "0109"


def test_move_a_leaf_and_route_by_its_new_parent(db, user):
    admin = user("admin")
    leaf = cat(db, "010201")
    categories.move(db, admin, leaf, cat(db, "0103"))
    assert leaf.code == "010305"
    assert leaf.parent.code == "0103"
    assert_codes_hierarchical(db)


@pytest.mark.parametrize(
    ("code", "parent", "expected"),
    [
        ("0102", "010201", "CATEGORY_MOVE_INTO_ITSELF"),
        ("0102", "0102", "CATEGORY_MOVE_INTO_ITSELF"),
        ("0102", "0103", "CATEGORY_MOVE_LEVEL"),
        ("010201", "02", "CATEGORY_MOVE_LEVEL"),
        ("010201", "010301", "CATEGORY_MOVE_LEVEL"),
        ("010201", "0102", "CATEGORY_MOVE_UNCHANGED"),
        ("01", "02", "CATEGORY_MOVE_TOP"),
    ],
)
def test_move_refusals_change_nothing(db, user, code, parent, expected):
    row = cat(db, code)
    with pytest.raises(ValidationFailed) as caught:
        categories.move(db, user("admin"), row, cat(db, parent))
    assert caught.value.code == expected
    assert "category" not in caught.value.message
    db.rollback()
    assert cat(db, code).id == row.id
    assert audits(db, "category.move") == []


def test_move_refuses_a_name_taken_under_the_new_parent(db, user):
    admin = user("admin")
    categories.add(db, admin, name="停水", parent=cat(db, "0103"))
    with pytest.raises(ValidationFailed) as caught:
        categories.move(db, admin, cat(db, "010201"), cat(db, "0103"))
    assert caught.value.code == "CATEGORY_NAME_TAKEN"


def test_deactivate_takes_the_subtree_and_reactivate_brings_it_back(db, user):
    admin, water = user("admin"), cat(db, "0102")
    before = version(db) or 0
    changed = categories.set_active(db, admin, water, False)
    assert changed == ["0102", "010201", "010202", "010203", "010204", "010205"]
    assert not any(c.active for c in categories.subtree(db, water))
    assert version(db) == before + 1
    (audit,) = audits(db, "category.deactivate")
    assert audit.payload["changes"] == {"active": [True, False]}
    assert audit.payload["subtree"] == changed
    # A child cannot come back under an inactive parent, nor be added there.
    with pytest.raises(ValidationFailed) as caught:
        categories.set_active(db, admin, cat(db, "010201"), True)
    assert caught.value.code == "CATEGORY_PARENT_INACTIVE"
    with pytest.raises(ValidationFailed) as caught:
        categories.add(db, admin, name="新的", parent=water)
    assert caught.value.code == "CATEGORY_PARENT_INACTIVE"
    with pytest.raises(ValidationFailed) as caught:
        categories.move(db, admin, cat(db, "010301"), water)
    assert caught.value.code == "CATEGORY_PARENT_INACTIVE"
    assert categories.set_active(db, admin, water, False) == []
    assert len(categories.set_active(db, admin, water, True)) == 6
    assert all(c.active for c in categories.subtree(db, water))


def test_utility_marks_the_subtree(db, user):
    admin, facilities = user("admin"), cat(db, "0101")
    changed = categories.set_utility(db, admin, facilities, True)
    assert changed[0] == "0101" and len(changed) == 7
    assert all(c.utility for c in categories.subtree(db, facilities))
    (audit,) = audits(db, "category.utility")
    assert audit.payload["changes"] == {"utility": [False, True]}
    assert categories.set_utility(db, admin, facilities, True) == []


def test_load_refuses_an_unknown_code(db):
    with pytest.raises(NotFound) as caught:
        categories.load(db, "9999")
    assert caught.value.code == "CATEGORY_NOT_FOUND"


def test_tree_counts_tickets_of_the_subtree(db, user, make_ticket):
    make_ticket(user("operator"), category="010201")
    make_ticket(user("operator"), category="0102")
    nodes = {n.category.code: n for n in categories.tree(db)}
    top = nodes["01"]
    water = next(n for n in top.children if n.category.code == "0102")
    stop = next(n for n in water.children if n.category.code == "010201")
    assert (stop.tickets, water.tickets) == (1, 2)
    assert top.tickets >= 2
    assert top.as_dict()["children"][1]["code"] == "0102"


# -- intake, dispatch and reclassification refuse a deactivated category ---------------------------


def test_operations_refuse_an_inactive_category_but_the_ticket_keeps_it(db, user, make_ticket):
    admin = user("admin")
    old = make_ticket(user("operator"), category="010201")
    categories.set_active(db, admin, cat(db, "0102"), False)
    db.flush()
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(user("operator"), category="010202")
    assert caught.value.code == "CATEGORY_INACTIVE"
    assert "水压不足" in caught.value.message
    lead = db.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
    with pytest.raises(ValidationFailed) as caught:
        operations.dispatch(db, user("dispatcher"), old, lead=lead, category=cat(db, "010202"))
    assert caught.value.code == "CATEGORY_INACTIVE"
    # The ticket's own (now inactive) category may stay as it is.
    operations.dispatch(db, user("dispatcher"), old, lead=lead, category=cat(db, "010201"))
    assert old.category.name == "停水"
    with pytest.raises(ValidationFailed) as caught:
        operations.reclassify(
            db, user("dispatcher"), old, category=cat(db, "010203"), reason="改分类"
        )
    assert caught.value.code == "CATEGORY_INACTIVE"
