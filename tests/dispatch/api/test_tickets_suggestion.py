"""``POST /api/v1/tickets`` with the suggestion the client already got from ``POST
/api/v1/suggest``: used as it is when its seal proves it was made for this text by the active
model (no second classification), computed again when it was altered, made for another text,
by another model version, or too long ago. And a blank area filled from the suggestion."""

import copy
import time
import uuid

import pytest

from hotline import suggestions
from hotline.suggestions import SuggestionService
from tests.helpers import assert_error

ADDRESS = "奎文区东关街道胜利东街100号"
BODY = {
    "channel": "phone",
    "request_type": "complaint",
    "content": "小区门口路灯连续一周不亮，晚上出行不便",
    "address": ADDRESS,
}


@pytest.fixture
def classified(monkeypatch):
    """How many times the server classified a text (the suggest API's call included)."""
    calls = []
    original = SuggestionService.suggest

    def counting(self, session, text, **kwargs):
        calls.append(text)
        return original(self, session, text, **kwargs)

    monkeypatch.setattr(SuggestionService, "suggest", counting)
    return calls


def suggest(api, body=BODY):
    response = api("operator").post(
        "/suggest", json={"content": body["content"], "address": body.get("address")}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def create(api, body):
    return api("operator").post(
        "/tickets", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


def stored(response):
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def without_seal(suggestion):
    return {k: v for k, v in suggestion.items() if k not in ("seal", "sealed_at")}


def test_the_suggest_api_seals_its_answer(api, db):
    answer = suggest(api)
    assert len(answer["seal"]) == 64 and isinstance(answer["sealed_at"], int)
    assert answer["model_version"]


def test_a_suggestion_handed_back_is_not_computed_again(api, db, classified):
    answer = suggest(api)
    assert len(classified) == 1
    ticket = stored(create(api, {**BODY, "suggestion": answer}))
    assert len(classified) == 1  # receive used what it was handed
    assert ticket["suggestion"] == without_seal(answer)
    # The place it holds filled the blank area.
    assert ticket["area"]["code"] == "370705001" and ticket["area_source"] == "suggested"


def test_whole_numbers_survive_a_javascript_round_trip(api, db, classified):
    answer = suggest(api)
    # JSON.stringify writes 1.0 as 1: the seal must still hold.
    answer["area"]["confidence"] = 1.0
    resealed = suggestions.sealed(answer, BODY["content"], address=ADDRESS)
    resealed["area"]["confidence"] = 1
    ticket = stored(create(api, {**BODY, "suggestion": resealed}))
    assert len(classified) == 1
    assert ticket["suggestion"]["area"]["confidence"] == 1


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda s: s["area"].update(code="370702001", confidence=0.99), id="place"),
        pytest.param(lambda s: s["category"]["top"].reverse(), id="category"),
        pytest.param(lambda s: s.update(seal="0" * 64), id="seal"),
        pytest.param(lambda s: s.pop("seal"), id="no-seal"),
        pytest.param(lambda s: s.update(sealed_at=s["sealed_at"] - 10), id="time"),
    ],
)
def test_an_altered_suggestion_is_computed_again(api, db, classified, spoil):
    answer = suggest(api)
    fresh = copy.deepcopy(without_seal(answer))
    spoil(answer)
    ticket = stored(create(api, {**BODY, "suggestion": answer}))
    assert len(classified) == 2
    assert ticket["area"]["code"] == "370705001"  # the server's own place, not the altered one
    assert without_seal(ticket["suggestion"])["category"] == fresh["category"]


def test_a_suggestion_for_another_text_is_computed_again(api, db, classified):
    answer = suggest(api)
    other = {**BODY, "content": "楼上装修噪音很大，晚上十点还在施工"}
    ticket = stored(create(api, {**other, "suggestion": answer}))
    assert len(classified) == 2
    assert classified[-1] == other["content"]
    assert ticket["suggestion"] != without_seal(answer)
    # The address is sealed too.
    ticket = stored(create(api, {**BODY, "address": "潍城区", "suggestion": answer}))
    assert len(classified) == 3


def test_a_suggestion_of_another_model_version_is_computed_again(api, db, classified):
    answer = suggest(api)
    old = suggestions.sealed(
        {**without_seal(answer), "model_version": "20200101-000000"},
        BODY["content"],
        address=ADDRESS,
    )
    stored(create(api, {**BODY, "suggestion": old}))
    assert len(classified) == 2


def test_an_old_suggestion_is_computed_again(app, api, db, classified):
    answer = suggest(api)
    made = time.time() - app.config["SUGGESTION_REUSE_SECONDS"] - 1
    stale = suggestions.sealed(without_seal(answer), BODY["content"], address=ADDRESS, now=made)
    stored(create(api, {**BODY, "suggestion": stale}))
    assert len(classified) == 2


def test_another_servers_seal_is_refused(app, api, db, classified):
    answer = suggest(api)
    original = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret"
    try:
        foreign = suggestions.sealed(without_seal(answer), BODY["content"], address=ADDRESS)
    finally:
        app.config["SECRET_KEY"] = original
    stored(create(api, {**BODY, "suggestion": foreign}))
    assert len(classified) == 2


def test_a_suggestion_that_is_not_an_object_is_refused(api, db, ticket_count):
    before = ticket_count()
    error = assert_error(create(api, {**BODY, "suggestion": [1, 2]}), 422, "VALIDATION_FAILED")
    assert error["details"]["suggestion"] == "智能建议须为 /api/v1/suggest 返回的对象"
    assert ticket_count() == before


def test_without_a_suggestion_the_server_computes_it(api, db, classified):
    ticket = stored(create(api, BODY))
    assert len(classified) == 1
    assert ticket["area_source"] == "suggested"


def test_a_typed_area_is_kept(api, db):
    ticket = stored(create(api, {**BODY, "area": "370702001"}))
    assert ticket["area"]["code"] == "370702001" and ticket["area_source"] == "typed"


def test_an_unplaced_text_waits_without_an_area(api, db):
    ticket = stored(create(api, {**BODY, "address": None, "content": "咨询公积金提取需要哪些材料"}))
    assert ticket["area"] is None and ticket["area_source"] is None
