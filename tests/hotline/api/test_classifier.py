"""Classifier endpoints: live suggestions, the suggestion stored at intake, acceptance rates, and
model versions (list, activate)."""

import threading
import time

import pytest
import sqlalchemy as sa

from classifier import artefact
from hotline import model_versions, suggestions
from hotline.db import get_session
from hotline.models import AuditLog, ModelActivation, Ticket, User
from tests.helpers import assert_error

STREETLIGHT = "奎文区东关街道中学街社区的路灯坏了一个星期，晚上出门黑漆漆的，希望尽快维修。"
GARBAGE = "东关街道中学街社区门口的垃圾堆了好几天没人清运，臭气熏天"
BODY = {"channel": "phone", "request_type": "complaint", "content": STREETLIGHT}


def data(response, status=200):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def create(api, content=STREETLIGHT, **extra):
    return data(api("operator").post("/tickets", json={**BODY, "content": content, **extra}), 201)


def stored_suggestion(db, number):
    db.expire_all()
    return db.scalars(sa.select(Ticket.suggestion).where(Ticket.number == number)).one()


# -- POST /suggest ----------------------------------------------------------------------------


def test_suggest_for_operator(api, models_dir):
    result = data(api("operator").post("/suggest", json={"content": STREETLIGHT}))
    assert set(result) == {
        "category",
        "request_type",
        "urgency",
        "area",
        "units",
        "model_version",
        # signed, to be handed back when the ticket is created
        "sealed_at",
        "seal",
    }
    assert result["model_version"] == artefact.active_version(models_dir)

    top = result["category"]["top"]
    assert len(top) == 3
    for item in top:
        assert set(item) == {"code", "name", "probability"}
        assert isinstance(item["code"], str) and isinstance(item["name"], str)
        assert 0.0 <= item["probability"] <= 1.0
    assert [i["probability"] for i in top] == sorted((i["probability"] for i in top), reverse=True)
    assert any(item["code"].startswith("01") for item in top)
    assert result["category"]["abstain"] is False

    assert result["request_type"] == "complaint"
    assert result["urgency"] == {"tier": "normal", "transfer_to": None, "evidence": None}
    assert result["area"]["community"] == "370705001001"
    assert result["area"]["source"] == "content"
    assert result["units"][0]["reason"] == "派单目录规则"
    assert set(result["units"][0]) == {"code", "confidence", "reason"}


def test_suggest_with_address_and_coordinates(api, db):
    from hotline.models import Area

    polygon = db.scalars(sa.select(Area.polygon).where(Area.code == "370705001001001")).one()
    ring = polygon["coordinates"][0][:-1]
    lng = sum(x for x, _ in ring) / len(ring)
    lat = sum(y for _, y in ring) / len(ring)
    result = data(
        api("dispatcher").post(
            "/suggest", json={"content": "路灯坏了", "address": "东关街道", "lng": lng, "lat": lat}
        )
    )
    assert result["area"]["code"] == "370705001001001"
    assert result["area"]["source"] == "coordinates"

    by_address = data(
        api("operator").post(
            "/suggest", json={"content": "路灯坏了", "address": "奎文区东关街道工福街社区"}
        )
    )
    assert by_address["area"]["code"] == "370705001004"
    assert by_address["area"]["source"] == "address"


def test_suggest_emergency(api):
    result = data(api("operator").post("/suggest", json={"content": "楼道里全是煤气味，煤气漏了"}))
    assert result["urgency"]["tier"] == "emergency"
    assert result["urgency"]["transfer_to"] == "utility"


@pytest.mark.parametrize("username", ["dispatcher", "grid", "supervisor"])
def test_suggest_for_other_intake_roles(api, username):
    assert data(api(username).post("/suggest", json={"content": STREETLIGHT}))["category"]


@pytest.mark.parametrize("username", ["dongguan", "cgj", "callback", "leader", "admin"])
def test_suggest_refused_for_other_roles(api, username):
    assert_error(
        api(username).post("/suggest", json={"content": STREETLIGHT}), 403, "ROLE_NOT_ALLOWED"
    )


def test_suggest_needs_login(client):
    response = client.post("/api/v1/suggest", json={"content": STREETLIGHT})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": ""}, "content"),
        ({"content": "   "}, "content"),
        ({"content": 12}, "content"),
        ({"content": "路灯坏了", "lng": 200.0, "lat": 36.7}, "lng"),
        ({"content": "路灯坏了", "lng": 119.1, "lat": "北纬"}, "lat"),
        ({"content": "路灯坏了", "address": "地" * 201}, "address"),
    ],
)
def test_suggest_bad_input(api, body, field):
    error = assert_error(api("operator").post("/suggest", json=body), 422, "VALIDATION_FAILED")
    assert field in error["details"], error


def test_suggest_content_too_long(api, app):
    limit = app.config["MAX_TICKET_CONTENT_CHARS"]
    response = api("operator").post("/suggest", json={"content": "路" * (limit + 1)})
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert "content" in error["details"]


def test_suggest_without_an_active_model(api, app, db, tmp_path):
    db.execute(sa.delete(ModelActivation))
    original = app.extensions["hotline.suggestions"]
    app.extensions["hotline.suggestions"] = suggestions.SuggestionService(str(tmp_path))
    try:
        response = api("operator").post("/suggest", json={"content": STREETLIGHT})
    finally:
        app.extensions["hotline.suggestions"] = original
    assert_error(response, 409, "NO_ACTIVE_MODEL")


def test_an_aged_suggester_is_rebuilt_beside_its_callers(committed_app, models_dir, monkeypatch):
    """Every REFERENCE_TTL seconds each process rebuilds its suggester (seconds on a busy
    machine): the callers meanwhile get the one already built, and one thread builds."""
    service = suggestions.SuggestionService(models_dir)
    real_build = suggestions._build
    started, release, builds = threading.Event(), threading.Event(), []

    def slow_build(*args):
        builds.append(1)
        started.set()
        release.wait(60)  # a caller that waited for this would fail the test below
        return real_build(*args)

    def suggester():
        """As a request: its transaction ends (on SQLite it holds the database's lock)."""
        session = get_session()
        try:
            return service._suggester(session)[0]
        finally:
            session.rollback()

    with committed_app.app_context():
        first = suggester()
        key = service._built[0]
        monkeypatch.setattr(suggestions, "_build", slow_build)
        service._built = (key, time.monotonic() - suggestions.REFERENCE_TTL - 1, first)
        assert suggester() is first
        assert started.wait(60)  # reading the reference rows first: seconds on a busy machine
        assert suggester() is first  # no second build, no wait
        release.set()
        deadline = time.monotonic() + 60
        while service._built[2] is first and time.monotonic() < deadline:
            time.sleep(0.05)
    assert service._built[2] is not first and service._built[0] == key
    assert time.monotonic() - service._built[1] < suggestions.REFERENCE_TTL
    assert builds == [1]


# -- the suggestion stored with a new ticket --------------------------------------------------


def test_created_ticket_stores_the_suggestion(api, db, models_dir):
    ticket = create(api)
    suggestion = ticket["suggestion"]
    assert suggestion["model_version"] == artefact.active_version(models_dir)
    assert suggestion["category"]["top"][0]["code"].startswith("01")
    assert suggestion["area"]["community"] == "370705001001"

    shown = data(api("operator").get(f"/tickets/{ticket['number']}"))
    assert shown["suggestion"] == suggestion
    assert stored_suggestion(db, ticket["number"]) == suggestion
    # the operator's own choices are not overwritten by the suggestion; the blank area is
    # filled from the confident place, marked as suggested
    assert shown["category"] is None
    assert shown["area"]["code"] == "370705001001" and shown["area_source"] == "suggested"
    assert shown["urgency"]["value"] == "normal"


def test_created_ticket_suggestion_uses_address_and_coordinates(api, db):
    ticket = create(api, content="路灯坏了好几天", address="奎文区东关街道工福街社区")
    assert ticket["suggestion"]["area"]["code"] == "370705001004"
    assert ticket["suggestion"]["area"]["source"] == "address"


def test_ticket_is_created_when_the_classifier_is_disabled(api, app, db):
    app.config["CLASSIFIER_ENABLED"] = False
    try:
        ticket = create(api)
    finally:
        app.config["CLASSIFIER_ENABLED"] = True
    assert ticket["suggestion"] is None
    assert data(api("operator").get(f"/tickets/{ticket['number']}"))["suggestion"] is None
    assert stored_suggestion(db, ticket["number"]) is None
    assert ticket["status"]["value"] == "received"


def test_ticket_is_created_when_the_classifier_fails(api, db, monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise RuntimeError("model file corrupt")

    monkeypatch.setattr(suggestions.SuggestionService, "suggest", fail)
    before = db.scalar(sa.select(sa.func.count()).select_from(Ticket))
    ticket = create(api)
    assert ticket["suggestion"] is None
    assert ticket["status"]["value"] == "received"
    assert data(api("operator").get(f"/tickets/{ticket['number']}"))["suggestion"] is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Ticket)) == before + 1
    assert "classifier failed at intake" in caplog.text


# -- GET /classifier/acceptance ---------------------------------------------------------------


def acceptance(api, username="supervisor", **params):
    return data(api(username).get("/classifier/acceptance", query_string=params))


def dispatch(api, ticket, category, lead_unit):
    return data(
        api("dispatcher").post(
            f"/tickets/{ticket['number']}/dispatch",
            json={"version": ticket["version"], "category": category, "lead_unit": lead_unit},
        )
    )


def test_acceptance_counts(api, db):
    before = acceptance(api)
    assert set(before) == {"from", "to", "category", "area", "unit", "request_type", "urgency"}

    accepted = create(api)
    rejected = create(api, content=GARBAGE)
    create(api, content="胜利东街的路灯晚上不亮")  # never dispatched: no final category

    suggested = accepted["suggestion"]["category"]["top"][0]["code"]
    assert len(suggested) == 4
    # a third-level code below the suggested one counts as accepted
    dispatch(api, accepted, suggested + "01", accepted["suggestion"]["units"][0]["code"])
    top3 = [c["code"] for c in rejected["suggestion"]["category"]["top"]]
    other = next(code for code in ("1101", "1301", "1501") if code not in top3)
    dispatch(api, rejected, other + "01", "U-STHJ")

    after = acceptance(api)
    delta = {
        name: {key: after[name][key] - before[name][key] for key in ("tickets", "accepted")}
        for name in ("category", "unit", "request_type", "urgency", "area")
    }
    assert delta["category"] == {"tickets": 2, "accepted": 1}
    assert after["category"]["in_top3"] - before["category"]["in_top3"] == 1
    # the lead unit: the first suggestion for one ticket, another unit for the other
    assert delta["unit"] == {"tickets": 2, "accepted": 1}
    # all three tickets have a request type and an urgency chosen at intake
    assert delta["request_type"] == {"tickets": 3, "accepted": 3}
    assert delta["urgency"] == {"tickets": 3, "accepted": 3}
    assert delta["area"] == {"tickets": 0, "accepted": 0}  # no area was chosen
    if before["category"]["tickets"] == 0:
        assert after["category"]["rate"] == 0.5


def test_acceptance_ignores_tickets_without_suggestion(api, app):
    before = acceptance(api)
    app.config["CLASSIFIER_ENABLED"] = False
    try:
        ticket = create(api)
    finally:
        app.config["CLASSIFIER_ENABLED"] = True
    dispatch(api, ticket, "010101", "U-CGJ")
    after = acceptance(api)
    assert after["category"] == before["category"]
    assert after["request_type"] == before["request_type"]


def test_acceptance_period(api):
    create(api)
    empty = acceptance(api, **{"from": "2001-01-01", "to": "2001-02-01"})
    assert empty["from"].startswith("2001-01-01T00:00:00")
    assert empty["to"].startswith("2001-02-01T00:00:00")
    assert empty["category"] == {"tickets": 0, "accepted": 0, "rate": None, "in_top3": 0}
    assert empty["request_type"]["tickets"] == 0


def test_acceptance_bad_date(api):
    error = assert_error(
        api("supervisor").get("/classifier/acceptance", query_string={"from": "2024/01/01"}),
        422,
        "VALIDATION_FAILED",
    )
    assert "from" in error["details"]


@pytest.mark.parametrize("username", ["dispatcher", "leader", "admin"])
def test_acceptance_for_report_roles(api, username):
    assert "category" in acceptance(api, username)


@pytest.mark.parametrize("username", ["operator", "dongguan", "grid"])
def test_acceptance_refused(api, username):
    assert_error(api(username).get("/classifier/acceptance"), 403, "ROLE_NOT_ALLOWED")


# -- model versions ---------------------------------------------------------------------------


def test_list_models(api, db, models_dir):
    listed = data(api("supervisor").get("/classifier/models"))
    active = model_versions.active_version(db)
    assert active == artefact.active_version(models_dir)  # the suite's model, imported
    assert listed["active"] == active
    assert [m["version"] for m in listed["models"]] == [active]
    meta = artefact.read_meta(models_dir, active)
    assert listed["models"] == [
        {
            "version": active,
            "active": True,
            "created_at": meta["created_at"],
            "source": "seed_data/corpus/messages.jsonl",
            "training_rows": meta["training_rows"],
            "metrics": {"accuracy": None, "macro_f1": None},
        }
    ]
    (switch,) = listed["activations"]
    assert switch["version"] == active and switch["previous"] is None
    assert switch["reason"].startswith("从模型目录导入")


def test_list_models_refused(api):
    assert_error(api("operator").get("/classifier/models"), 403, "ROLE_NOT_ALLOWED")


@pytest.fixture
def second_version(db, models_dir, tmp_path):
    """Another registered version (the suite's model saved again under a new name)."""
    bundle, meta = artefact.load(models_dir, artefact.active_version(models_dir))
    version = artefact.save(bundle, tmp_path, {**meta, "training_sha256": "2" * 64})
    model_versions.register(db, None, tmp_path, version)
    db.flush()
    return version


def test_activate_by_admin_is_audited_and_suggestions_follow(api, db, second_version):
    first = model_versions.active_version(db)
    result = data(
        api("admin").post(
            f"/classifier/models/{second_version}/activate", json={"reason": "新训练的版本"}
        )
    )
    assert result == {"active": second_version, "previous": first}
    assert model_versions.active_version(db) == second_version
    db.expire_all()
    rows = db.execute(
        sa.select(AuditLog.action, AuditLog.target, AuditLog.payload, User.username)
        .join(User, AuditLog.actor_id == User.id)
        .where(AuditLog.action == "classifier.activate")
    ).all()
    assert [tuple(r) for r in rows] == [
        (
            "classifier.activate",
            second_version,
            {"previous": first, "reason": "新训练的版本"},
            "admin",
        )
    ]
    # this process follows at once (others within seconds)
    suggested = data(api("operator").post("/suggest", json={"content": STREETLIGHT}))
    assert suggested["model_version"] == second_version

    # a rollback: the earlier version again, with why
    back = data(api("admin").post(f"/classifier/models/{first}/activate", json={"reason": "回退"}))
    assert back == {"active": first, "previous": second_version}
    listed = data(api("admin").get("/classifier/models"))
    assert [(a["version"], a["previous"], a["reason"]) for a in listed["activations"][:2]] == [
        (first, second_version, "回退"),
        (second_version, first, "新训练的版本"),
    ]
    assert (
        data(api("operator").post("/suggest", json={"content": STREETLIGHT}))["model_version"]
        == first
    )


def test_activate_without_a_body(api, db):
    version = model_versions.active_version(db)
    result = data(api("admin").post(f"/classifier/models/{version}/activate"))
    assert result == {"active": version, "previous": version}


def test_activate_with_a_bad_reason(api, db, second_version):
    response = api("admin").post(
        f"/classifier/models/{second_version}/activate", json={"reason": "x" * 501}
    )
    assert_error(response, 422, "VALIDATION_FAILED")
    assert model_versions.active_version(db) != second_version


@pytest.mark.parametrize("username", ["supervisor", "dispatcher", "operator", "leader"])
def test_activate_refused_for_others(api, db, username):
    version = model_versions.active_version(db)
    response = api(username).post(f"/classifier/models/{version}/activate")
    assert_error(response, 403, "ROLE_NOT_ALLOWED")
    db.expire_all()
    assert not db.scalars(sa.select(AuditLog).where(AuditLog.action == "classifier.activate")).all()


@pytest.mark.parametrize("version", ["20990101T000000-deadbeef", "..", "ACTIVE"])
def test_activate_unknown_version(api, db, version):
    active = model_versions.active_version(db)
    response = api("admin").post(f"/classifier/models/{version}/activate")
    assert_error(response, 404, "MODEL_NOT_FOUND")
    assert model_versions.active_version(db) == active
    db.expire_all()
    assert not db.scalars(sa.select(AuditLog).where(AuditLog.action == "classifier.activate")).all()
