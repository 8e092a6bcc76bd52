"""The knowledge base's workflow (hotline.knowledge_admin): states, four eyes, refusals by role,
bad input changing nothing, audit and reference bumps; the index following publication;
expiry and review-due reminders through the scheduler's job, once only; import and export."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa

from hotline import knowledge, reference, settings, tabular
from hotline import knowledge_admin as kb
from hotline.enums import AlertLevel, ArticleState, Role
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import AuditLog, KnowledgeArticle, Notification, Unit, User
from server import scheduler

#: An article no seeded one answers (the console offers it for the calls below).
EBIKE = {
    "title": "电动自行车上牌登记",
    "category": "0305",
    "keywords": "电动车上牌、电动自行车 上牌，电瓶车 车牌 登记",
    "answer": "购买符合国家标准的电动自行车后，车主携带身份证、购车发票和车辆合格证，到就近的"
    "电动自行车登记服务点办理登记上牌，当场发放号牌和行驶证。具体材料和流程以当地最新规定为准。",
    "source": "电动自行车管理条例",
}
EBIKE_CALL = "我新买了一辆电动车，想问问去哪里上牌"


@pytest.fixture(autouse=True)
def fresh_caches():
    # The index and the settings live per process; a rolled-back test must not leave its own.
    knowledge.clear()
    settings.clear()
    yield
    knowledge.clear()
    settings.clear()


def values(db, **overrides):
    return kb.article_values(db, {**EBIKE, **overrides})


def today():
    return knowledge.local_today()


def version(db):
    return reference.versions(db)[reference.KNOWLEDGE]


def audits(db, code):
    return db.scalars(
        sa.select(AuditLog).where(AuditLog.target == code).order_by(AuditLog.id)
    ).all()


@pytest.fixture
def draft(db, user):
    def make(author="admin", **overrides):
        article = kb.create_draft(db, user(author), values(db, **overrides))
        db.flush()
        return article

    return make


@pytest.fixture
def published(db, user, draft):
    def make(author="admin", reviewer="supervisor", **overrides):
        article = draft(author, **overrides)
        kb.submit(db, user(author), article)
        kb.publish(db, user(reviewer), article)
        db.flush()
        return article

    return make


# -- the workflow -------------------------------------------------------------------------------


def test_a_draft_is_written_submitted_and_published_by_another(db, user, draft):
    before = version(db)
    article = draft()
    assert article.code.startswith("KB-") and article.state == ArticleState.draft
    assert article.keywords == "电动车上牌 电动自行车 上牌 电瓶车 车牌 登记"
    assert article.category.code == "0305"
    assert article.proposed_by_id == user("admin").id
    assert version(db) == before + 1
    kb.submit(db, user("admin"), article)
    assert article.state == ArticleState.in_review
    kb.publish(db, user("supervisor"), article)
    assert article.state == ArticleState.published
    assert article.reviewed_by_id == user("supervisor").id and article.reviewed_at is not None
    assert version(db) == before + 3
    rows = audits(db, article.code)
    assert [r.action for r in rows] == ["knowledge.create", "knowledge.submit", "knowledge.publish"]
    assert rows[0].payload["changes"]["title"] == [None, "电动自行车上牌登记"]
    assert rows[2].payload["changes"] == {"state": ["in_review", "published"]}
    assert rows[2].actor_id == user("supervisor").id


def test_the_author_may_not_publish_their_own_article(db, user, draft):
    article = draft("supervisor")
    kb.submit(db, user("supervisor"), article)
    with pytest.raises(Forbidden) as refused:
        kb.publish(db, user("supervisor"), article)
    assert refused.value.code == "ARTICLE_OWN_REVIEW"
    assert article.state == ArticleState.in_review
    kb.publish(db, user("admin"), article)
    assert article.state == ArticleState.published


def test_whoever_edited_the_text_may_not_publish_it_either(db, user, draft):
    article = draft("admin")
    kb.update_draft(db, user("supervisor"), article, {"title": "电动车上牌"})
    kb.submit(db, user("admin"), article)
    assert kb.writers(db, article) == {user("admin").id, user("supervisor").id}
    for reviewer in ("admin", "supervisor"):
        with pytest.raises(Forbidden):
            kb.publish(db, user(reviewer), article)
    # A second supervisor who wrote none of it publishes.
    other = User(username="supervisor2", name="另一审核员", role=Role.supervisor, password_hash="-")
    db.add(other)
    db.flush()
    kb.publish(db, other, article)
    assert article.state == ArticleState.published


def test_a_reviewer_returns_with_a_reason_and_the_draft_goes_round_again(db, user, draft):
    article = draft()
    kb.submit(db, user("admin"), article)
    kb.send_back(db, user("supervisor"), article, "请补充办理地点")
    assert article.state == ArticleState.draft
    last = audits(db, article.code)[-1]
    assert last.action == "knowledge.return" and last.payload["reason"] == "请补充办理地点"
    kb.update_draft(db, user("admin"), article, {"answer": EBIKE["answer"] + "登记服务点见公告。"})
    kb.submit(db, user("admin"), article)
    kb.publish(db, user("supervisor"), article)
    assert article.state == ArticleState.published


def test_withdraw_and_reopen_as_a_draft(db, user, published):
    article = published()
    kb.expire(db, user("admin"), article, "政策调整")
    assert article.state == ArticleState.expired
    kb.reopen(db, user("supervisor"), article)
    assert article.state == ArticleState.draft
    assert article.reviewed_by_id is None and article.review_reminded_at is None
    # Reopened, the text is checked again: its editor may not publish it.
    kb.update_draft(db, user("supervisor"), article, {"source": "新条例"})
    kb.submit(db, user("supervisor"), article)
    with pytest.raises(Forbidden):
        kb.publish(db, user("supervisor"), article)


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("submit", ArticleState.in_review),
        ("publish", ArticleState.draft),
        ("return", ArticleState.published),
        ("reopen", ArticleState.published),
        ("update", ArticleState.published),
        ("expire", ArticleState.expired),
        ("renew", ArticleState.draft),
    ],
)
def test_actions_from_the_wrong_state_are_refused(db, user, draft, action, state):
    article = draft()
    article.state = state
    db.flush()
    calls = {
        "submit": lambda: kb.submit(db, user("supervisor"), article),
        "publish": lambda: kb.publish(db, user("supervisor"), article),
        "return": lambda: kb.send_back(db, user("supervisor"), article, "x"),
        "reopen": lambda: kb.reopen(db, user("supervisor"), article),
        "update": lambda: kb.update_draft(db, user("supervisor"), article, {"title": "新"}),
        "expire": lambda: kb.expire(db, user("supervisor"), article, "x"),
        "renew": lambda: kb.renew(db, user("supervisor"), article, None),
    }
    count = len(audits(db, article.code))
    with pytest.raises(Conflict) as refused:
        calls[action]()
    assert refused.value.code == "ARTICLE_STATE_CONFLICT"
    assert article.state == state
    assert len(audits(db, article.code)) == count


@pytest.mark.parametrize("username", ["operator", "dispatcher", "dongguan", "callback", "leader"])
def test_other_roles_may_not_write_or_review(db, user, draft, username):
    with pytest.raises(Forbidden):
        kb.create_draft(db, user(username), values(db))
    article = draft()
    for call in (
        lambda: kb.update_draft(db, user(username), article, {"title": "x"}),
        lambda: kb.submit(db, user(username), article),
    ):
        with pytest.raises(Forbidden):
            call()
    kb.submit(db, user("admin"), article)
    with pytest.raises(Forbidden):
        kb.publish(db, user(username), article)
    assert article.state == ArticleState.in_review


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "请填写标题"),
        ("title", "题" * 201, "不能超过 200 字"),
        ("answer", "   ", "请填写答复内容"),
        ("category", "9999", "事项分类不存在"),
        ("valid_until", "2026-13-40", "须为日期"),
        ("valid_until", "2000-01-01", "不能早于今天"),
        ("source", "依据\x00", "不可见控制字符"),
    ],
)
def test_bad_input_is_refused_field_by_field(db, field, value, message):
    with pytest.raises(ValidationFailed) as refused:
        values(db, **{field: value})
    assert message in refused.value.details[field]


def test_next_code_follows_the_highest_kb_number(db, draft):
    highest = max(
        int(c[3:]) for c in db.scalars(sa.select(KnowledgeArticle.code)) if c[3:].isdigit()
    )
    assert draft().code == f"KB-{highest + 1:03d}"


# -- the index follows publication ---------------------------------------------------------------


def test_the_index_follows_publication_and_withdrawal(db, user, draft):
    article = draft()
    assert knowledge.search(db, EBIKE_CALL) == []
    kb.submit(db, user("admin"), article)
    assert knowledge.search(db, EBIKE_CALL) == []
    kb.publish(db, user("supervisor"), article)
    assert [e.code for e, _ in knowledge.search(db, EBIKE_CALL)] == [article.code]
    kb.expire(db, user("admin"), article, "政策调整")
    assert knowledge.search(db, EBIKE_CALL) == []


def test_another_process_sees_a_publication_within_the_check_interval(db, user, monkeypatch):
    # Published "by another process": the row and the counter change, this process's watcher
    # was not told. It reads the counters again after CHECK_SECONDS.
    article = KnowledgeArticle(
        code="T-EBIKE",
        title=EBIKE["title"],
        keywords="电动车上牌 电瓶车 上牌",
        answer=EBIKE["answer"],
        state=ArticleState.in_review,
    )
    db.add(article)
    db.flush()
    assert knowledge.search(db, EBIKE_CALL) == []
    db.execute(
        sa.update(KnowledgeArticle)
        .where(KnowledgeArticle.code == "T-EBIKE")
        .values(state=ArticleState.published)
    )
    db.execute(
        sa.text("UPDATE reference_versions SET version = version + 1 WHERE name = 'knowledge'")
    )
    if not db.execute(sa.text("SELECT 1 FROM reference_versions WHERE name = 'knowledge'")).all():
        db.execute(
            sa.text(
                "INSERT INTO reference_versions (name, version, changed_at) "
                "VALUES ('knowledge', 1, CURRENT_TIMESTAMP)"
            )
        )
    assert knowledge.search(db, EBIKE_CALL) == []  # still within the check interval
    clock = [reference.time.monotonic() + reference.CHECK_SECONDS + 0.1]
    monkeypatch.setattr(reference.time, "monotonic", lambda: clock[0])
    assert [e.code for e, _ in knowledge.search(db, EBIKE_CALL)] == ["T-EBIKE"]


def test_an_article_past_its_date_is_not_offered_before_the_job_runs(db, user, published):
    article = published(valid_until=today().isoformat())
    assert [e.code for e, _ in knowledge.search(db, EBIKE_CALL)] == [article.code]
    tomorrow = today() + dt.timedelta(days=1)
    assert knowledge.article_in_force(db, article.code, tomorrow) is None
    assert knowledge.build_index(db, tomorrow).search(EBIKE_CALL) == []
    assert knowledge.article_in_force(db, article.code) is not None


# -- the scheduler's job: expiry and reminders ----------------------------------------------------


def moment(day, hour=9):
    """A moment on local day ``day`` (Asia/Shanghai), as aware UTC."""
    local = dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo("Asia/Shanghai"))
    return local.astimezone(dt.UTC)


def reminders(db):
    return db.scalars(
        sa.select(Notification)
        .where(Notification.kind == kb.REMINDER_KIND)
        .order_by(Notification.id)
    ).all()


def centre_unit(db):
    return db.scalars(sa.select(Unit).where(Unit.code == "U-HOTLINE")).one()


def test_review_reminder_once_per_valid_until_date(app, db, user, published):
    until = today() + dt.timedelta(days=30)
    article = published(valid_until=until.isoformat())
    job = scheduler.make_knowledge_job(app, clock=lambda: moment(today()))
    assert job().reminded == 0  # 30 days away: not yet (14 by default)
    day = until - dt.timedelta(days=14)
    job = scheduler.make_knowledge_job(app, clock=lambda: moment(day))
    assert job().reminded == 1
    db.expire_all()
    (item,) = reminders(db)
    assert item.unit_id == centre_unit(db).id
    assert item.level == AlertLevel.yellow and item.ticket_id is None
    assert article.code in item.body and "还有 14 天" in item.body
    assert db.get(KnowledgeArticle, article.id).review_reminded_at is not None
    # Once only: the next runs, and the next days, send nothing more.
    assert job().reminded == 0
    later = scheduler.make_knowledge_job(app, clock=lambda: moment(day + dt.timedelta(days=3)))
    assert later().reminded == 0
    assert len(reminders(db)) == 1
    # A supervisor in the centre sees it in their message centre.
    assert centre_unit(db).id == user("supervisor").unit_id
    # Renewed to a new date: a new reminder when that one comes near.
    article = db.get(KnowledgeArticle, article.id)
    new_until = until + dt.timedelta(days=365)
    kb.renew(db, user("admin"), article, new_until)
    db.flush()
    assert article.review_reminded_at is None
    near = scheduler.make_knowledge_job(app, clock=lambda: moment(new_until - dt.timedelta(1)))
    assert near().reminded == 1
    db.expire_all()
    assert len(reminders(db)) == 2
    assert "还有 1 天" in reminders(db)[-1].body


def test_the_reminder_days_are_a_setting(app, db, user, published):
    settings.update(db, user("admin"), {"knowledge.review_days_before": "40"})
    until = today() + dt.timedelta(days=30)
    published(valid_until=until.isoformat())
    assert scheduler.make_knowledge_job(app, clock=lambda: moment(today()))().reminded == 1


def test_the_job_expires_articles_past_their_date(app, db, user, published):
    until = today() + dt.timedelta(days=2)
    article = published(valid_until=until.isoformat())
    other = published(valid_until=None, title="电瓶车充电")
    before = version(db)
    on_the_day = scheduler.make_knowledge_job(app, clock=lambda: moment(until, 23))
    assert on_the_day().expired == 0  # valid through its last day
    after = scheduler.make_knowledge_job(app, clock=lambda: moment(until + dt.timedelta(1), 0))
    result = after()
    assert result.expired == 1
    db.expire_all()
    assert db.get(KnowledgeArticle, article.id).state == ArticleState.expired
    assert db.get(KnowledgeArticle, other.id).state == ArticleState.published
    assert version(db) > before
    last = audits(db, article.code)[-1]
    assert last.action == "knowledge.expire" and last.actor_id is None
    assert last.payload["changes"] == {"state": ["published", "expired"]}
    assert "系统自动停用" in last.payload["reason"]
    assert after().expired == 0  # once


def test_publishing_an_article_past_its_date_is_refused(db, user, draft):
    article = draft(valid_until=(today() + dt.timedelta(days=1)).isoformat())
    kb.submit(db, user("admin"), article)
    with pytest.raises(ValidationFailed) as refused:
        kb.publish(db, user("supervisor"), article, today=today() + dt.timedelta(days=2))
    assert refused.value.code == "ARTICLE_PAST_VALIDITY"
    assert article.state == ArticleState.in_review


# -- import and export ---------------------------------------------------------------------------


def xlsx(rows, headers=None):
    headers = headers or [c.header for c in kb.COLUMNS]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def row(code, title="电动自行车上牌登记", state="", valid_until="", category="0305"):
    keywords = EBIKE["keywords"]
    return [code, title, category, keywords, EBIKE["answer"], "条例", valid_until, state]


def run_import(db, user, data, *, dry_run=False, username="admin"):
    return tabular.run(db, user(username), kb.IMPORTER, [("知识库.xlsx", data)], dry_run=dry_run)


def test_import_creates_published_articles_and_updates_by_code(db, user):
    data = xlsx([row("IMP-1"), row("IMP-2", title="电瓶车换电", state="草稿")])
    result = run_import(db, user, data)
    assert (result.created, result.updated) == (2, 0)
    first = kb.get_article(db, "IMP-1")
    assert first.state == ArticleState.published  # no 状态: published, the importer reviewed it
    assert first.reviewed_by_id == user("admin").id
    assert kb.get_article(db, "IMP-2").state == ArticleState.draft
    assert [e.code for e, _ in knowledge.search(db, EBIKE_CALL)] == ["IMP-1"]
    # Again: nothing changes. Then a new title, state kept when the cell is empty.
    again = run_import(db, user, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = run_import(db, user, xlsx([row("IMP-2", title="电瓶车换电站")]))
    assert changed.updated == 1
    article = kb.get_article(db, "IMP-2")
    assert article.title == "电瓶车换电站" and article.state == ArticleState.draft
    last = audits(db, "IMP-2")[-1]
    assert last.action == "knowledge.import"
    assert last.payload["changes"] == {"title": ["电瓶车换电", "电瓶车换电站"]}


def test_import_reports_every_bad_row_and_changes_nothing(db, user):
    count = db.scalar(sa.select(sa.func.count()).select_from(KnowledgeArticle))
    data = xlsx(
        [
            row("OK-1"),
            row("bad code!"),
            row("OK-2", category="9999"),
            row("OK-3", state="已批准"),
            row("OK-4", valid_until="2000-01-01"),
            row("OK-1"),
            ["OK-5", "", "", "", "", "", "", ""],
        ]
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        run_import(db, user, data)
    found = {(e.row, e.column) for e in refused.value.errors}
    assert found >= {
        (3, "编码"),
        (4, "事项分类编码"),
        (5, "状态"),
        (6, "有效期至"),
        (7, "编码"),
        (8, "标题"),
        (8, "答复内容"),
    }
    assert db.scalar(sa.select(sa.func.count()).select_from(KnowledgeArticle)) == count


def test_import_dry_run_saves_nothing_and_only_admins_import(db, user):
    data = xlsx([row("DRY-1")])
    result = run_import(db, user, data, dry_run=True)
    assert result.created == 1 and result.dry_run
    found = sa.select(KnowledgeArticle).where(KnowledgeArticle.code == "DRY-1")
    assert db.scalars(found).first() is None
    with pytest.raises(Forbidden):
        run_import(db, user, data, username="supervisor")


def test_export_reads_back_unchanged(db, user):
    data = kb.export(db)
    table = tabular.read(data, "知识库.xlsx", kb.COLUMNS)
    assert len(table.rows) == db.scalar(sa.select(sa.func.count()).select_from(KnowledgeArticle))
    assert table.rows[0][1]["state"] == "已发布"
    result = run_import(db, user, data)
    assert (result.created, result.updated) == (0, 0)
