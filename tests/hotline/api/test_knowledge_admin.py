"""``/api/v1/knowledge/articles``: list with filters and counts, create, update, and the review
actions; refusals by role and bad input leave everything as it was."""

import pytest
import sqlalchemy as sa

from hotline import knowledge
from hotline.enums import ArticleState
from hotline.models import AuditLog, KnowledgeArticle
from tests.helpers import assert_error
from tests.hotline.test_knowledge_admin import EBIKE, EBIKE_CALL


@pytest.fixture(autouse=True)
def fresh_index():
    knowledge.clear()
    yield
    knowledge.clear()


def patch(api_client, path, json):
    return api_client.client.patch("/api/v1" + path, json=json, headers=api_client.headers)


def create(api, username="admin", **overrides):
    response = api(username).post("/knowledge/articles", json={**EBIKE, **overrides})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def count(db):
    return db.scalar(sa.select(sa.func.count()).select_from(KnowledgeArticle))


def test_create_submit_publish_through_the_api(api, db):
    data = create(api)
    code = data["code"]
    assert data["state"] == {"value": "draft", "label": "草稿"}
    assert data["category"] == {"code": "0305", "name": "交通秩序"}
    assert data["author"] == "许文涛" and data["hits"] == 0 and data["closes"] == 0
    response = patch(api("admin"), f"/knowledge/articles/{code}", {"source": "新条例"})
    assert response.get_json()["data"]["source"] == "新条例"
    assert api("admin").post(f"/knowledge/articles/{code}/submit").status_code == 200
    error = assert_error(
        api("admin").post(f"/knowledge/articles/{code}/publish"), 403, "ARTICLE_OWN_REVIEW"
    )
    assert "不能审核发布自己" in error["message"]
    response = api("supervisor").post(f"/knowledge/articles/{code}/publish")
    assert response.status_code == 200
    assert response.get_json()["data"]["state"]["value"] == "published"
    assert response.get_json()["data"]["reviewed_by"] == "郑国栋"
    # Offered at the console at once.
    found = api("operator").get("/knowledge?q=" + EBIKE_CALL).get_json()["data"]
    assert [a["code"] for a in found] == [code]
    detail = api("supervisor").get(f"/knowledge/articles/{code}").get_json()["data"]
    assert [h["action"] for h in detail["history"]] == ["create", "update", "submit", "publish"]
    assert detail["history"][1]["changes"] == [
        {"field": "依据来源", "old": EBIKE["source"], "new": "新条例"}
    ]


def test_return_expire_renew_reopen(api, db):
    code = create(api)["code"]
    api("admin").post(f"/knowledge/articles/{code}/submit")
    assert_error(
        api("supervisor").post(f"/knowledge/articles/{code}/return", json={}),
        422,
        "VALIDATION_FAILED",
    )
    response = api("supervisor").post(
        f"/knowledge/articles/{code}/return", json={"reason": "请写明办理地点"}
    )
    assert response.get_json()["data"]["state"]["value"] == "draft"
    api("admin").post(f"/knowledge/articles/{code}/submit")
    api("supervisor").post(f"/knowledge/articles/{code}/publish")
    response = api("supervisor").post(
        f"/knowledge/articles/{code}/renew", json={"valid_until": "2099-12-31"}
    )
    assert response.get_json()["data"]["valid_until"] == "2099-12-31"
    response = api("admin").post(f"/knowledge/articles/{code}/expire", json={"reason": "政策废止"})
    assert response.get_json()["data"]["state"]["value"] == "expired"
    response = api("admin").post(f"/knowledge/articles/{code}/reopen")
    assert response.get_json()["data"]["state"]["value"] == "draft"


def test_list_filters_and_counts(api, db):
    code = create(api, title="电瓶车上牌专用")["code"]
    data = api("supervisor").get("/knowledge/articles?state=draft&q=电瓶车上牌").get_json()["data"]
    assert [a["code"] for a in data["items"]] == [code]
    assert data["total"] == 1
    data = api("admin").get("/knowledge/articles?category=03&per_page=200").get_json()["data"]
    assert code in [a["code"] for a in data["items"]]
    assert all(a["category"]["code"].startswith("03") for a in data["items"])
    published = api("admin").get("/knowledge/articles?state=published").get_json()["data"]
    assert published["total"] == count(db) - 1
    error = assert_error(
        api("admin").get("/knowledge/articles?state=nope&page=0"), 422, "VALIDATION_FAILED"
    )
    assert set(error["details"]) == {"state", "page"}


@pytest.mark.parametrize("username", ["operator", "dispatcher", "dongguan", "callback", "leader"])
def test_other_roles_are_refused(api, db, username):
    before = count(db)
    assert_error(api(username).get("/knowledge/articles"), 403, "ROLE_NOT_ALLOWED")
    assert_error(api(username).post("/knowledge/articles", json=EBIKE), 403, "ROLE_NOT_ALLOWED")
    assert_error(
        api(username).post("/knowledge/articles/KB-001/expire", json={"reason": "x"}),
        403,
        "ROLE_NOT_ALLOWED",
    )
    assert count(db) == before
    assert (
        db.scalars(sa.select(KnowledgeArticle).where(KnowledgeArticle.code == "KB-001")).one().state
        == ArticleState.published
    )


def test_bad_input_changes_nothing(api, db):
    before = count(db)
    audits = db.scalar(sa.select(sa.func.count()).select_from(AuditLog))
    error = assert_error(
        api("admin").post(
            "/knowledge/articles",
            json={**EBIKE, "title": "", "category": "9999", "valid_until": "明天", "x": 1},
        ),
        422,
        "VALIDATION_FAILED",
    )
    assert set(error["details"]) == {"title", "category", "valid_until", "x"}
    assert count(db) == before
    code = create(api)["code"]
    error = assert_error(
        patch(api("admin"), f"/knowledge/articles/{code}", {"answer": ""}), 422, "VALIDATION_FAILED"
    )
    assert error["details"] == {"answer": "请填写答复内容"}
    assert db.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == audits + 1
    assert_error(api("admin").get("/knowledge/articles/NOPE"), 404, "ARTICLE_NOT_FOUND")
    assert_error(
        api("admin").post("/knowledge/articles/KB-001/submit"), 409, "ARTICLE_STATE_CONFLICT"
    )
    assert_error(
        api("admin").post(f"/knowledge/articles/{code}/submit", json={"extra": 1}),
        422,
        "VALIDATION_FAILED",
    )


def test_a_hit_counts_only_for_operators_and_articles_in_force(api, db):
    article = db.scalars(sa.select(KnowledgeArticle).where(KnowledgeArticle.code == "KB-001")).one()
    hits = article.hit_count
    assert api("operator").post("/knowledge/articles/KB-001/hit", json={}).status_code == 200
    assert api("dispatcher").post("/knowledge/articles/KB-001/hit", json={}).status_code == 200
    db.expire_all()
    assert db.get(KnowledgeArticle, article.id).hit_count == hits + 2
    assert_error(
        api("dongguan").post("/knowledge/articles/KB-001/hit", json={}), 403, "ROLE_NOT_ALLOWED"
    )
    code = create(api)["code"]
    assert_error(
        api("operator").post(f"/knowledge/articles/{code}/hit", json={}), 404, "ARTICLE_NOT_FOUND"
    )
