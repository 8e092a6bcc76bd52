"""监察问责 over the JSON API: cases with evidence, referring (201, a retry 200, a second
referral 409), the referral list, roles and bad bodies."""

import pytest
import sqlalchemy as sa

from hotline.models import Referral
from tests.dashboards.month import HOUR, OCT12
from tests.dashboards.test_accountability import give_back


@pytest.fixture
def bounced(db, month_builder):
    c = month_builder()
    ticket = c.ticket(1, "U-CGJ", sign=None)
    give_back(c, ticket, "U-CGJ", at=OCT12 + 2 * HOUR, approve=True, to="U-ZJJ")
    give_back(c, ticket, "U-ZJJ", at=OCT12 + 5 * HOUR, approve=True, to="U-CGJ")
    return c


def test_cases_and_a_referral(api, db, bounced):
    supervisor = api("supervisor")
    cases = supervisor.get("/accountability/2026-10").get_json()["data"]["cases"]
    assert [(c["unit_code"], c["kind"]) for c in cases] == [
        ("U-CGJ", "shirking"),
        ("U-ZJJ", "shirking"),
    ]
    assert cases[0]["findings"][0]["items"][0]["ticket"] == bounced.tickets[1].number
    body = {"unit": "U-CGJ", "kind": "shirking", "reason": "一单多退"}
    first = supervisor.post("/accountability/2026-10/referrals", json=body)
    assert first.status_code == 201
    assert first.get_json()["data"]["kind_label"] == "推诿扯皮"
    assert supervisor.post("/accountability/2026-10/referrals", json=body).status_code == 200
    other = supervisor.post("/accountability/2026-10/referrals", json={**body, "reason": "再次"})
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "REFERRAL_EXISTS"
    rows = api("leader").get("/accountability/2026-10/referrals").get_json()["data"]["referrals"]
    assert [r["unit_code"] for r in rows] == ["U-CGJ"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"unit": 5, "kind": "shirking", "reason": "x"}, 404),
        ({"unit": "U-CGJ", "kind": ["shirking"], "reason": "x"}, 422),
        ({"unit": "U-CGJ", "kind": "shirking", "reason": 7}, 422),
        ({"unit": "U-CGJ", "kind": "shirking"}, 422),
        ({"unit": "U-WATER", "kind": "shirking", "reason": "x"}, 409),
        ({"unit": "U-CGJ\x00", "kind": "shirking", "reason": "x"}, 404),
        ({"unit": "U-CGJ", "kind": "shirking", "reason": "a\x00b"}, 422),
    ],
)
def test_bad_bodies_are_refused(api, db, bounced, body, status):
    response = api("supervisor").post("/accountability/2026-10/referrals", json=body)
    assert response.status_code == status
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


def test_roles(api, bounced):
    body = {"unit": "U-CGJ", "kind": "shirking", "reason": "x"}
    assert api("leader").post("/accountability/2026-10/referrals", json=body).status_code == 403
    assert api("cgj").get("/accountability/2026-10").status_code == 403
    assert api("supervisor").get("/accountability/2026-13").status_code == 422


@pytest.mark.parametrize("month", ["9999-12", "1999-12", "2026-13", "2026-10%00"])
def test_months_out_of_range_are_refused(api, db, bounced, month):
    supervisor = api("supervisor")
    assert supervisor.get(f"/accountability/{month}").status_code == 422
    assert supervisor.get(f"/accountability/{month}/referrals").status_code == 422
    body = {"unit": "U-CGJ", "kind": "shirking", "reason": "x"}
    assert supervisor.post(f"/accountability/{month}/referrals", json=body).status_code == 422
    assert db.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0
