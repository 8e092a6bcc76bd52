"""Knowledge-base search (首问即答): seed articles, ranking, the in-memory index and the
``GET /api/v1/knowledge`` endpoint."""

import json

import pytest
import sqlalchemy as sa

from hotline import knowledge, seed
from hotline.enums import ArticleState
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


@pytest.mark.parametrize(
    "call",
    [
        # The walkthrough's case: 老年人优待证 offered beside a street-light complaint.
        "我们小区门口的路灯坏了好几天了，晚上黑乎乎的，老人差点摔倒",
        "市民来电反映：胜利东街与四平路路口往东的辅路上路面塌了好几个坑，昨天晚上就有个骑"
        "电动车的小伙子摔了，希望尽快修补，这一片老人孩子多。",
        "楼下烧烤店晚上油烟太大，熏得窗户都不敢开",
    ],
)
def test_a_call_no_article_answers_gets_none(db, call):
    # Each shares words with some answer (老人, 电动车 …): candidates, but not relevant.
    assert knowledge.index(db).candidates(call)
    assert knowledge.search(db, call) == []


def test_a_long_enquiry_still_gets_its_article(db):
    call = (
        "来电人称其父亲今年已经七十一岁，户口在奎文区，听说办了优待证坐公交车和逛公园可以"
        "免费，想问问在哪里申请，需要带照片和身份证吗。"
    )
    found = knowledge.search(db, call)
    assert codes(found)[0] == "KB-016"
    assert all(relevance >= knowledge.RELEVANCE_THRESHOLD for _, relevance in found)


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
    # The word score ranks the candidates the relevance model then weighs.
    results = knowledge.index(db).candidates("摩天轮")
    assert codes(results)[:2] == ["T-TITLE", "T-ANSWER"]
    assert results[0][1] > results[1][1]


def test_inactive_articles_are_not_offered_and_the_index_is_cached(db):
    article = db.scalars(sa.select(KnowledgeArticle).where(KnowledgeArticle.code == "KB-009")).one()
    assert "KB-009" in codes(knowledge.search(db, "燃气漏气"))
    article.state = ArticleState.expired
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
    assert data[0]["relevance"] >= knowledge.RELEVANCE_THRESHOLD
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


def test_the_shipped_relevance_model_is_the_one_fitted_on_the_development_half():
    from bench import knowledge as bench

    index, covered = bench.load_index()
    dev = bench.scored(index, bench.load_calls(covered)["dev"])
    assert bench.fit(dev) == (knowledge.RELEVANCE, knowledge.RELEVANCE_THRESHOLD)
