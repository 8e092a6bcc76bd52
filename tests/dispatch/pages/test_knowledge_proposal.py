"""A unit handler proposes a knowledge article from a finished consultation their unit answered
(the ticket page's button, the proposal page); refused for other tickets, units and roles.
And the close count: tickets answered at intake by an article."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline import knowledge
from hotline import knowledge_admin as kb
from hotline.enums import ArticleState, IntakeOutcome, RequestType
from hotline.errors import Conflict, Forbidden, ValidationFailed
from hotline.models import AuditLog, KnowledgeArticle

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
QUESTION = "想咨询一下，小区门口的路灯是归哪个部门管的，坏了以后一般多久能修好？"
REPLY = "小区门口道路的路灯由街道市政所维护，报修后一般 3 个工作日内修复。"


@pytest.fixture(autouse=True)
def fresh_index():
    knowledge.clear()
    yield
    knowledge.clear()


@pytest.fixture
def consultation(db, finished):
    def make(**overrides):
        values = {
            "request_type": RequestType.consult,
            "title": "路灯归哪个部门管",
            "content": QUESTION,
        }
        values.update(overrides)
        ticket = finished(**values)
        ticket.result = REPLY
        db.flush()
        return ticket

    return make


def proposals(db, ticket):
    return db.scalars(
        sa.select(KnowledgeArticle).where(KnowledgeArticle.source_ticket_number == ticket.number)
    ).all()


def test_the_handler_proposes_from_the_ticket_page(client, web_login, db, user, consultation):
    ticket = consultation()
    web_login(client, "dongguan")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "提议为知识库条目" in page
    form = client.get(f"/tickets/{ticket.number}/knowledge-proposal")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert QUESTION in html and REPLY in html and "路灯归哪个部门管" in html
    data = {
        "csrf_token": TOKEN.search(html).group(1),
        "title": "路灯归哪个部门管、多久修好",
        "category": "010103",
        "keywords": "路灯 归谁管 多久修",
        "answer": REPLY,
        "source": "",
        "valid_until": "",
    }
    refused = client.post(
        f"/tickets/{ticket.number}/knowledge-proposal", data={**data, "answer": ""}
    )
    assert refused.status_code == 422 and "请填写答复内容" in refused.get_data(as_text=True)
    assert proposals(db, ticket) == []
    done = client.post(f"/tickets/{ticket.number}/knowledge-proposal", data=data)
    assert done.status_code == 302
    (article,) = proposals(db, ticket)
    assert article.state == ArticleState.in_review
    assert article.proposed_by_id == user("dongguan").id
    assert article.category.code == "010103" and article.answer == REPLY
    audit = db.scalars(sa.select(AuditLog).where(AuditLog.target == article.code)).one()
    assert audit.action == "knowledge.propose" and audit.payload["ticket"] == ticket.number
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert f"已提议为知识库条目 {article.code}" in page
    # Once per ticket.
    again = client.post(f"/tickets/{ticket.number}/knowledge-proposal", data=data)
    assert again.status_code == 409 and "已提议过" in again.get_data(as_text=True)
    assert len(proposals(db, ticket)) == 1
    # A reviewer publishes it (the handler wrote it, the supervisor did not).
    kb.publish(db, user("supervisor"), article)
    assert article.state == ArticleState.published


def test_other_tickets_units_and_roles_are_refused(
    client, web_login, db, user, consultation, finished, make_ticket
):
    complaint = finished()  # 投诉, not 咨询
    web_login(client, "dongguan")
    assert "提议为知识库条目" not in client.get(f"/tickets/{complaint.number}").get_data(
        as_text=True
    )
    assert client.get(f"/tickets/{complaint.number}/knowledge-proposal").status_code == 403
    received = make_ticket(user("operator"), request_type=RequestType.consult)
    with pytest.raises(Conflict) as refused:
        kb.propose(db, user("dongguan"), received, kb.proposal_defaults(received))
    assert (
        refused.value.code == "PROPOSAL_NOT_CONSULTATION"
        or refused.value.code == "PROPOSAL_NOT_FINISHED"
    )
    ticket = consultation()
    with pytest.raises(Forbidden) as refused:
        kb.propose(db, user("cgj"), ticket, {"title": "x", "answer": "y"})
    assert refused.value.code == "PROPOSAL_NOT_YOUR_UNIT"
    for username in ("dispatcher", "supervisor"):
        with pytest.raises(Forbidden):
            kb.propose(db, user(username), ticket, {"title": "x", "answer": "y"})
    assert proposals(db, ticket) == []


def test_the_proposal_page_is_the_handlers(client, web_login, consultation):
    ticket = consultation()
    web_login(client, "dispatcher")
    assert "提议为知识库条目" not in client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert client.get(f"/tickets/{ticket.number}/knowledge-proposal").status_code == 403


def test_closes_count_tickets_answered_by_the_article(db, user, make_ticket):
    article = kb.get_article(db, "KB-001")
    before = kb.close_counts(db, [article.id]).get(article.id, 0)
    for _ in range(2):
        ticket = make_ticket(user("operator"), request_type=RequestType.consult, title="社保卡丢了")
        ops.resolve_at_intake(
            db, user("operator"), ticket, outcome=IntakeOutcome.answered, article=article
        )
    db.flush()
    assert kb.close_counts(db, [article.id])[article.id] == before + 2
    data = kb.article_to_dict(article, kb.close_counts(db, [article.id])[article.id])
    assert data["closes"] == before + 2


def test_an_article_past_its_date_cannot_close_a_call(db, user, make_ticket):
    article = kb.get_article(db, "KB-001")
    article.valid_until = knowledge.local_today() - dt.timedelta(days=1)
    db.flush()
    ticket = make_ticket(user("operator"), request_type=RequestType.consult)
    with pytest.raises(ValidationFailed) as refused:
        ops.resolve_at_intake(
            db, user("operator"), ticket, outcome=IntakeOutcome.answered, article=article
        )
    assert "已过有效期" in refused.value.message
