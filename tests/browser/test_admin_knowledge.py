"""The knowledge base in Chromium: an administrator writes an article and submits it, a
supervisor (督办审核员) publishes it from the review queue, and the operator's console then
offers it for a matching call; opening it there counts a hit on the article's page."""

import datetime as dt

from playwright.sync_api import expect

from tests.hotline.test_knowledge_admin import EBIKE, EBIKE_CALL

DESKTOP = {"width": 1920, "height": 1080}


def notice(page):
    return page.locator("div.notice[role=status]")


def test_write_review_publish_and_offer_at_the_console(new_page, screenshot):
    admin = new_page("admin")
    admin.set_viewport_size(DESKTOP)
    admin.goto("/admin/knowledge/")
    admin.get_by_role("link", name="新建条目").click()
    admin.fill("input[name=title]", EBIKE["title"])
    search = admin.locator("#article-category-search")
    search.click()
    search.press_sequentially("jtzx")
    admin.keyboard.press("Enter")
    assert admin.locator("#article-category").input_value() == "0305"
    admin.fill("input[name=keywords]", EBIKE["keywords"])
    admin.fill("textarea[name=answer]", EBIKE["answer"])
    admin.fill("input[name=source]", EBIKE["source"])
    until = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    admin.fill("input[name=valid_until]", until)
    screenshot(admin, "admin-knowledge-form")
    admin.get_by_role("button", name="保存草稿").click()
    expect(notice(admin)).to_contain_text("已新建草稿")
    code = admin.locator("h1 small.code").inner_text()
    admin.get_by_role("button", name="提交审核").click()
    expect(notice(admin)).to_contain_text("已提交审核")
    expect(admin.locator(".kb-side")).to_contain_text("须由其他审核人发布")
    screenshot(admin, "admin-knowledge-submitted")

    supervisor = new_page("supervisor")
    supervisor.set_viewport_size(DESKTOP)
    supervisor.get_by_role("navigation", name="主菜单").get_by_role("link", name="知识库").click()
    supervisor.get_by_role("link", name="审核队列").click()
    row = supervisor.locator("tr", has_text=code)
    expect(row).to_contain_text("许文涛")
    screenshot(supervisor, "admin-knowledge-review-queue")
    row.get_by_role("link", name="审核").click()
    supervisor.get_by_role("button", name="审核通过并发布").click()
    expect(notice(supervisor)).to_contain_text("已审核发布")
    expect(supervisor.locator(".kb-meta")).to_contain_text("受理台可检索")
    expect(supervisor.locator(".kb-history")).to_contain_text("审核发布")

    operator = new_page("operator")
    operator.fill("#content", EBIKE_CALL)
    article = operator.locator("#knowledge-panel details.article", has_text=EBIKE["title"])
    article.wait_for(timeout=20_000)
    with operator.expect_response(lambda r: r.url.endswith(f"/knowledge/articles/{code}/hit")):
        article.locator("summary").click()
    expect(article).to_contain_text("当场发放号牌")

    admin.goto(f"/admin/knowledge/{code}")
    expect(admin.get_by_test_id("hits")).to_have_text("1")
    expect(admin.locator(".kb-history")).to_contain_text("郑国栋")
    screenshot(admin, "admin-knowledge-article")
    admin.goto("/admin/knowledge/?q=" + EBIKE["title"])
    expect(admin.locator("tr", has_text=code)).to_contain_text("已发布")
    admin.goto("/admin/knowledge/")
    screenshot(admin, "admin-knowledge-list")
