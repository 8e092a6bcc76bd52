"""The knowledge base's administration pages: list, review queue, form, article page with its
history and actions, for administrators and supervisors only."""

import re

import pytest
import sqlalchemy as sa

from hotline import knowledge
from hotline import knowledge_admin as kb
from hotline.enums import ArticleState
from hotline.models import KnowledgeArticle
from tests.hotline.test_knowledge_admin import EBIKE

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def fresh_index():
    knowledge.clear()
    yield
    knowledge.clear()


@pytest.fixture
def page_as(client, web_login):
    def login(username):
        web_login(client, username)
        return client

    return login


def token(client, path):
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def count(db):
    return db.scalar(sa.select(sa.func.count()).select_from(KnowledgeArticle))


def test_the_list_shows_articles_with_their_counts(page_as, db):
    client = page_as("admin")
    html = client.get("/admin/knowledge/").get_data(as_text=True)
    assert "社保卡丢失补办" in html and "命中" in html and "办结" in html
    assert "/admin/imports/knowledge" in html and "导出 XLSX" in html
    filtered = client.get("/admin/knowledge/?state=draft&q=社保卡").get_data(as_text=True)
    assert "社保卡丢失补办" not in filtered and "没有符合条件的条目" in filtered
    assert client.get("/admin/knowledge/?state=nope").status_code == 422
    # Listed in the administration.
    assert "/admin/knowledge/" in client.get("/admin/").get_data(as_text=True)


def test_a_supervisor_reaches_the_pages_from_the_header(page_as):
    client = page_as("supervisor")
    html = client.get("/admin/knowledge/").get_data(as_text=True)
    assert 'href="/admin/knowledge/"' in html
    assert "/admin/imports/knowledge" not in html  # imports are the administrator's
    assert "管理首页" not in html


@pytest.mark.parametrize("username", ["operator", "dongguan", "leader"])
def test_other_roles_get_403(page_as, db, username):
    client = page_as(username)
    assert client.get("/admin/knowledge/").status_code == 403
    assert client.get("/admin/knowledge/KB-001").status_code == 403
    assert client.post("/admin/knowledge/KB-001/expire", data={"reason": "x"}).status_code in (
        400,
        403,
    )
    assert (
        db.scalars(sa.select(KnowledgeArticle.state).where(KnowledgeArticle.code == "KB-001")).one()
        == ArticleState.published
    )


def test_write_submit_and_publish_through_the_pages(page_as, client, db, web_login):
    client = page_as("admin")
    before = count(db)
    bad = client.post(
        "/admin/knowledge/new",
        data={"csrf_token": token(client, "/admin/knowledge/new"), **EBIKE, "title": ""},
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "请填写标题" in html and EBIKE["answer"] in html  # what was typed stays
    assert count(db) == before
    created = client.post(
        "/admin/knowledge/new",
        data={"csrf_token": token(client, "/admin/knowledge/new"), **EBIKE},
    )
    assert created.status_code == 302
    code = created.headers["Location"].rsplit("/", 1)[-1]
    page = client.get(f"/admin/knowledge/{code}").get_data(as_text=True)
    assert "新建草稿" in page and "提交审核" in page and "编辑草稿" in page
    edited = client.post(
        f"/admin/knowledge/{code}/edit",
        data={
            "csrf_token": token(client, f"/admin/knowledge/{code}/edit"),
            **EBIKE,
            "source": "电动自行车管理条例（2026 年修订）",
        },
    )
    assert edited.status_code == 302
    form_token = token(client, f"/admin/knowledge/{code}")
    submitted = client.post(f"/admin/knowledge/{code}/submit", data={"csrf_token": form_token})
    assert submitted.status_code == 302
    page = client.get(f"/admin/knowledge/{code}").get_data(as_text=True)
    assert "须由其他审核人发布" in page
    refused = client.post(f"/admin/knowledge/{code}/publish", data={"csrf_token": form_token})
    assert refused.status_code == 403
    assert "不能审核发布自己" in refused.get_data(as_text=True)
    # The supervisor finds it in the review queue and publishes it.
    client.post("/logout", data={"csrf_token": form_token})
    web_login(client, "supervisor")
    queue = client.get("/admin/knowledge/review").get_data(as_text=True)
    assert code in queue and "许文涛" in queue
    published = client.post(
        f"/admin/knowledge/{code}/publish",
        data={"csrf_token": token(client, f"/admin/knowledge/{code}")},
    )
    assert published.status_code == 302
    page = client.get(f"/admin/knowledge/{code}").get_data(as_text=True)
    assert "已发布" in page and "受理台可检索" in page
    assert "依据来源" in page and "电动自行车管理条例（2026 年修订）" in page  # history old → new
    assert kb.get_article(db, code).state == ArticleState.published


def test_a_return_without_reason_keeps_the_article_in_review(page_as, db, user):
    article = kb.create_draft(db, user("admin"), kb.article_values(db, EBIKE))
    kb.submit(db, user("admin"), article)
    db.flush()
    client = page_as("supervisor")
    response = client.post(
        f"/admin/knowledge/{article.code}/return",
        data={"csrf_token": token(client, f"/admin/knowledge/{article.code}"), "reason": " "},
    )
    assert response.status_code == 422
    assert "请填写退回理由" in response.get_data(as_text=True)
    db.expire_all()
    assert kb.get_article(db, article.code).state == ArticleState.in_review


def test_the_admin_home_warns_of_articles_waiting(page_as, db, user):
    article = kb.create_draft(db, user("supervisor"), kb.article_values(db, EBIKE))
    kb.submit(db, user("supervisor"), article)
    db.flush()
    html = page_as("admin").get("/admin/").get_data(as_text=True)
    assert "知识库有 1 篇条目待审核" in html
