"""Knowledge-base search (首问即答): seed articles, ranking, the in-memory index and the
``GET /api/v1/knowledge`` endpoint."""

import json

import pytest
import sqlalchemy as sa

from hotline import knowledge, seed
from hotline.models import KnowledgeArticle
from tests.helpers import assert_error


@pytest.fixture(autouse=True)
def fresh_index():
    # The index lives per process: never let one test's articles leak into another's.
    knowledge.clear()
    yield
    knowledge.clear()


def codes(results):
    return [entry.code for entry, _ in results]


def test_seed_holds_about_thirty_articles_in_chinese(db):
    rows = db.scalars(sa.select(KnowledgeArticle)).all()
    assert len(rows) >= 30
    assert all("以当地最新规定为准" in row.answer for row in rows)
    assert all(row.category is not None for row in rows)


def test_loading_the_seed_again_inserts_nothing(db):
    with open(seed.SEED_DIR / "knowledge.json", encoding="utf-8") as f:
        data = json.load(f)
    assert seed.load_knowledge(db, data) == 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("我的社保卡丢了，想问问怎么补办", "KB-001"),
        ("想把公积金取出来交房租", "KB-003"),
        ("家里暖气一点都不热", "KB-011"),
        ("孩子刚出生，怎么给宝宝上户口", "KB-006"),
        ("小区门口总有人乱停车", "KB-013"),
        ("想开个小店，营业执照怎么办", "KB-008"),
    ],
)
def test_the_matching_article_ranks_first(db, query, expected):
    results = knowledge.search(db, query)
    assert codes(results)[0] == expected
    assert len(results) <= knowledge.LIMIT
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True)


def test_unrelated_text_finds_nothing(db):
    assert knowledge.search(db, "今天天气很好") == []
    assert knowledge.search(db, "") == []


def test_title_and_keywords_weigh_more_than_the_answer(db):
    db.add_all(
        [
            KnowledgeArticle(
                code="T-ANSWER", title="其他事项", keywords="", answer="关于摩天轮的说明"
            ),
            KnowledgeArticle(code="T-TITLE", title="摩天轮开放时间", keywords="", answer="见公告"),
        ]
    )
    db.flush()
    results = knowledge.search(db, "摩天轮")
    assert codes(results)[:2] == ["T-TITLE", "T-ANSWER"]
    assert results[0][1] > results[1][1]


def test_inactive_articles_are_not_offered_and_the_index_is_cached(db):
    article = db.scalars(sa.select(KnowledgeArticle).where(KnowledgeArticle.code == "KB-009")).one()
    assert "KB-009" in codes(knowledge.search(db, "燃气漏气"))
    article.active = False
    db.flush()
    # Within the cache's lifetime the process still answers from its index ...
    assert "KB-009" in codes(knowledge.search(db, "燃气漏气"))
    knowledge.clear()
    # ... and after it the deactivated article is gone.
    assert "KB-009" not in codes(knowledge.search(db, "燃气漏气"))


def test_api_search(api):
    response = api("operator").get("/knowledge?q=社保卡丢了怎么补办")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data[0]["code"] == "KB-001"
    assert data[0]["title"] == "社保卡丢失补办"
    assert data[0]["category"] == {"code": "0503", "name": "社会保险"}
    assert "以当地最新规定为准" in data[0]["answer"]
    assert data[0]["score"] > 0
    assert api("dispatcher").get("/knowledge?q=公积金提取").status_code == 200


def test_api_validation(api):
    error = assert_error(api("operator").get("/knowledge"), 422, "VALIDATION_FAILED")
    assert error["details"] == {"q": "请填写查询内容"}
    assert_error(api("operator").get("/knowledge?q=%20%20"), 422, "VALIDATION_FAILED")
    error = assert_error(
        api("operator").get("/knowledge?q=" + "字" * 2001), 422, "VALIDATION_FAILED"
    )
    assert "2000" in error["details"]["q"]


@pytest.mark.parametrize("username", ["dongguan", "grid", "callback", "leader"])
def test_api_refuses_other_roles(api, username):
    assert_error(api(username).get("/knowledge?q=社保卡"), 403, "ROLE_NOT_ALLOWED")


def test_api_needs_login(client):
    assert_error(client.get("/api/v1/knowledge?q=社保卡"), 401, "AUTH_REQUIRED")
