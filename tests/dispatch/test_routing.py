"""Whom a program dispatches to (dispatch/routing.py ``dispatch_unit``): the classifier's unit,
else the catalogue's, else the place's own street office or district government, and never
the hotline centre."""

import sqlalchemy as sa

from dispatch import routing
from hotline.models import Area, Category, Unit


def _get(db, model, code):
    return db.scalars(sa.select(model).where(model.code == code)).one()


def _suggestion(category, *units):
    return {
        "category": {"top": [{"code": category, "probability": 0.9}], "abstain": False},
        "units": [{"code": code, "confidence": 0.8, "reason": "test"} for code in units],
    }


def test_the_classifiers_unit_comes_first_when_it_routed_this_category(db):
    category = _get(db, Category, "010103")  # 路灯故障: the catalogue says U-CGJ
    area = _get(db, Area, "370705001")
    suggestion = _suggestion("010103", "U-ZJJ", "U-CGJ")
    assert routing.dispatch_unit(db, category, area, suggestion).code == "U-ZJJ"
    # Units routed for another category are not this ticket's: the catalogue decides.
    other = _suggestion("010601", "U-ZJJ")
    assert routing.dispatch_unit(db, category, area, other).code == "U-CGJ"
    abstained = {**suggestion, "category": {**suggestion["category"], "abstain": True}}
    assert routing.dispatch_unit(db, category, area, abstained).code == "U-CGJ"


def test_the_hotline_centre_and_inactive_units_are_passed_over(db):
    category = _get(db, Category, "110301")  # 热线接通: the catalogue names the centre
    street = _get(db, Area, "370705001001002")
    suggestion = _suggestion("110301", "U-HOTLINE")
    assert routing.catalogue_unit(db, category, street).code == "U-HOTLINE"
    assert routing.dispatch_unit(db, category, street, suggestion).code == "U-S-370705001"
    assert routing.dispatch_unit(db, category, _get(db, Area, "370705")).code == "U-D-370705"
    assert routing.dispatch_unit(db, category, None) is None

    office = _get(db, Unit, "U-S-370705001")
    office.active = False
    db.flush()
    assert routing.dispatch_unit(db, category, street).code == "U-D-370705"
    cgj = _get(db, Unit, "U-CGJ")
    cgj.active = False
    db.flush()
    lamp = _get(db, Category, "010103")
    assert routing.dispatch_unit(db, lamp, street, _suggestion("010103", "U-CGJ")).code == (
        "U-D-370705"
    )


def test_no_category_no_unit(db):
    assert routing.dispatch_unit(db, None, _get(db, Area, "370705001")) is None
