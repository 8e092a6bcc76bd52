"""Where a ticket lies when nobody typed its area (dispatch/placing.py, ``operations.receive``):
a confident suggested place fills it (``area_source='suggested'``), narrowed to a grid by the
point or a single-grid community; anything less sure leaves it for the dispatcher (待定位),
who sets it at dispatch. Then the ticket counts on its district's board, is open to that
district's leader and reaches the grid workers of its grid."""

import pytest
import sqlalchemy as sa

from dashboards import snapshots
from dispatch import access, placing
from dispatch import operations as ops
from hotline.enums import AreaLevel
from hotline.models import Area, TicketEvent
from tests.dispatch.common import DONGGUAN, MY_GRID, STREETLIGHT
from tests.dispatch.conftest import area, unit

COMMUNITY = MY_GRID[:12]  # 东关街道's first community: three grids
STREET = MY_GRID[:9]
#: The threshold the application runs with (hotline/config.py).
THRESHOLD = 0.75


def place(code, confidence=0.9, candidates=(), source="address"):
    """A suggestion's place as ``classifier.pipeline.Suggester._place`` writes it."""
    levels = {"district": 6, "street": 9, "community": 12, "grid": 15}
    return {
        "code": code,
        "level": next((lv for lv, n in levels.items() if code and len(code) == n), None),
        **{lv: (code[:n] if code and len(code) >= n else None) for lv, n in levels.items()},
        "confidence": confidence,
        "matched": "东关街道",
        "source": source,
        "candidates": list(candidates),
    }


def suggestion(where):
    return {"area": where, "units": [], "category": {"top": [], "abstain": True}}


def receive_event(db, ticket):
    return db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "receive"
        )
    ).one()


def test_the_threshold_is_configured(app):
    assert app.config["AREA_FILL_MIN_CONFIDENCE"] == THRESHOLD


def test_a_confident_place_fills_a_blank_area(db, user, make_ticket):
    ticket = make_ticket(user("operator"), suggestion=suggestion(place(COMMUNITY, 0.9)))
    # Three grids and no point: the community, not one of its grids.
    assert ticket.area.code == COMMUNITY
    assert ticket.area_source == "suggested"
    assert receive_event(db, ticket).payload["suggested_area"] == COMMUNITY


def test_the_threshold_itself_fills(db, user, make_ticket):
    ticket = make_ticket(user("operator"), suggestion=suggestion(place(STREET, THRESHOLD)))
    assert ticket.area.code == STREET and ticket.area_source == "suggested"


@pytest.mark.parametrize("confidence", [0.0, 0.5, THRESHOLD - 0.001])
def test_an_unsure_place_leaves_the_area_empty(db, user, make_ticket, confidence):
    ticket = make_ticket(user("operator"), suggestion=suggestion(place(COMMUNITY, confidence)))
    assert ticket.area is None and ticket.area_source is None
    assert "suggested_area" not in receive_event(db, ticket).payload


def test_an_ambiguous_place_is_never_guessed(db, user, make_ticket):
    # Two communities of the same name: the gazetteer fills the shared street only, with the
    # options as candidates; even a high confidence then fills nothing.
    options = [place(COMMUNITY, 0.45), place("370705001004", 0.45)]
    shared = place(STREET, 0.95, candidates=options)
    ticket = make_ticket(user("operator"), suggestion=suggestion(shared))
    assert ticket.area is None
    unresolved = place(None, 0.0, candidates=options)
    ticket = make_ticket(user("operator"), suggestion=suggestion(unresolved))
    assert ticket.area is None


def test_no_suggestion_or_no_place_leaves_the_area_empty(db, user, make_ticket):
    assert make_ticket(user("operator"), suggestion=None).area is None
    assert make_ticket(user("operator"), suggestion=suggestion(None)).area is None


def test_an_unknown_code_fills_nothing(db, user, make_ticket):
    ticket = make_ticket(user("operator"), suggestion=suggestion(place("370705001999", 0.99)))
    assert ticket.area is None


def test_the_point_picks_the_grid(db, user, make_ticket, centre):
    lng, lat = centre(MY_GRID)
    ticket = make_ticket(
        user("operator"), suggestion=suggestion(place(COMMUNITY, 0.9)), lng=lng, lat=lat
    )
    assert ticket.area.code == MY_GRID
    assert ticket.area_source == "suggested"


def test_a_point_on_a_shared_edge_keeps_the_community(db, user, make_ticket):
    first, second = area(db, COMMUNITY + "001"), area(db, COMMUNITY + "002")
    edge_lng = (first.center_lng + second.center_lng) / 2  # the grids are side by side
    ticket = make_ticket(
        user("operator"),
        suggestion=suggestion(place(COMMUNITY, 0.9)),
        lng=edge_lng,
        lat=first.center_lat,
    )
    assert ticket.area.code == COMMUNITY


def test_a_point_outside_the_place_keeps_the_place(db, user, make_ticket, centre):
    lng, lat = centre("370705001004001")  # a grid of another community
    ticket = make_ticket(
        user("operator"), suggestion=suggestion(place(COMMUNITY, 0.9)), lng=lng, lat=lat
    )
    assert ticket.area.code == COMMUNITY


def test_a_community_with_one_grid_gives_that_grid(db, user, make_ticket):
    street = area(db, STREET)
    community = Area(code=STREET + "990", name="试点社区", level=AreaLevel.community, parent=street)
    grid = Area(
        code=STREET + "990001", name="试点社区第1网格", level=AreaLevel.grid, parent=community
    )
    db.add_all([community, grid])
    db.flush()
    ticket = make_ticket(user("operator"), suggestion=suggestion(place(community.code, 0.8)))
    assert ticket.area.code == grid.code
    assert ticket.area_source == "suggested"


def test_a_typed_area_wins(db, user, make_ticket):
    ticket = make_ticket(
        user("operator"), area="370702001", suggestion=suggestion(place(COMMUNITY, 0.99))
    )
    assert ticket.area.code == "370702001"
    assert ticket.area_source == "typed"
    assert "suggested_area" not in receive_event(db, ticket).payload


def test_confident_place_reads_the_suggestion_rules():
    assert placing.confident_place(place(COMMUNITY, 0.8), 0.75) == COMMUNITY
    assert placing.confident_place(place(COMMUNITY, 0.7), 0.75) is None
    assert placing.confident_place(place(COMMUNITY, 0.9, [place(STREET)]), 0.75) is None
    assert placing.confident_place(None, 0.75) is None


# -- the dispatcher sets the area of a 待定位 ticket ---------------------------------------------


def test_dispatch_sets_the_area(db, user, make_ticket):
    ticket = make_ticket(user("operator"), category=STREETLIGHT)
    assert ticket.area is None
    event = ops.dispatch(
        db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), area=area(db, MY_GRID)
    )
    assert ticket.area.code == MY_GRID and ticket.area_source == "typed"
    assert event.payload["area"] == MY_GRID and event.payload["area_before"] is None


def test_dispatch_corrects_a_suggested_area(db, user, make_ticket):
    ticket = make_ticket(
        user("operator"), category=STREETLIGHT, suggestion=suggestion(place(COMMUNITY, 0.9))
    )
    event = ops.dispatch(
        db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), area=area(db, MY_GRID)
    )
    assert (ticket.area.code, ticket.area_source) == (MY_GRID, "typed")
    assert event.payload["area_before"] == COMMUNITY


def test_dispatch_without_an_area_keeps_it(db, user, make_ticket):
    ticket = make_ticket(
        user("operator"), category=STREETLIGHT, suggestion=suggestion(place(COMMUNITY, 0.9))
    )
    event = ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN))
    assert (ticket.area.code, ticket.area_source) == (COMMUNITY, "suggested")
    assert "area" not in event.payload


def test_the_dispatch_form_refuses_an_unknown_area(db, user, make_ticket, api):
    ticket = make_ticket(user("operator"), category=STREETLIGHT)
    response = api("dispatcher").post(
        f"/tickets/{ticket.number}/dispatch",
        json={"lead_unit": DONGGUAN, "area": "370705001999", "version": ticket.version},
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["area"] == "区域不存在：370705001999"
    db.refresh(ticket)
    assert ticket.area is None and ticket.status.value == "received"


# -- what a filled area changes downstream ----------------------------------------------------


def test_a_filled_ticket_reaches_its_district_leader_and_board(app, db, user, make_ticket):
    filled = make_ticket(user("operator"), suggestion=suggestion(place(COMMUNITY, 0.9)))
    unsure = make_ticket(user("operator"), suggestion=suggestion(place(COMMUNITY, 0.3)))
    leader = user("kuiwen-leader")
    assert access.can_view(db, leader, filled)
    assert not access.can_view(db, leader, unsure)
    month = snapshots.month_rates(db, app.config, force=True)
    rooms = snapshots.Board(db, app.config).snapshots(["district:370705", "city"], month=month)
    kuiwen = [item["number"] for item in rooms["district:370705"]["feed"]]
    assert filled.number in kuiwen and unsure.number not in kuiwen
    city = [item["number"] for item in rooms["city"]["feed"]]
    assert {filled.number, unsure.number} <= set(city)


def test_a_ticket_placed_in_a_grid_reaches_its_grid_worker(
    db, user, make_ticket, centre, client, web_login
):
    lng, lat = centre(MY_GRID)
    ticket = make_ticket(
        user("operator"),
        category=STREETLIGHT,
        suggestion=suggestion(place(COMMUNITY, 0.9)),
        lng=lng,
        lat=lat,
    )
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN))
    db.flush()
    assert access.can_view(db, user("grid"), ticket)
    assert web_login(client, "grid").status_code == 302
    page = client.get("/grid").get_data(as_text=True)
    waiting = page.split('id="waiting"')[1].split("</section>")[0]
    assert ticket.number in waiting
