"""The operator console page: roles, receive through the form, idempotent double submit,
validation keeping what was typed, one-click resolve, merge, emergency transfer, CSRF and
escaping."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from dispatch import operations
from dispatch.pages.console import confident_place
from hotline import knowledge
from hotline.db import utcnow
from hotline.enums import IntakeOutcome, TicketStatus, TransferTarget
from hotline.models import KnowledgeArticle, Ticket, TicketEvent

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def fresh_index():
    knowledge.clear()
    yield
    knowledge.clear()


@pytest.fixture
def operator_page(client, web_login):
    web_login(client, "operator")
    return client


def form_of(client):
    """The console's CSRF token and idempotency key, as a browser renders them."""
    page = client.get("/console").get_data(as_text=True)
    return {"csrf_token": TOKEN.search(page).group(1), "idempotency_key": KEY.search(page).group(1)}


def call(**overrides):
    values = {
        "requester_phone": "13905361234",
        "requester_name": "李女士",
        "content": "小区门口路灯坏了一个星期，晚上很黑，希望尽快修好。",
        "address": "奎文区东关街道胜利东街100号",
        "category": "",
        "request_type": "complaint",
        "urgency": "normal",
        "channel": "phone",
        "area": "",
    }
    values.update(overrides)
    return values


def new_tickets(db):
    return db.scalars(sa.select(Ticket).where(Ticket.requester_name == "李女士")).all()


def actions(db, ticket):
    return [
        e.action
        for e in db.scalars(
            sa.select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id)
            .order_by(TicketEvent.id)
        )
    ]


def test_anonymous_goes_to_login(client):
    response = client.get("/console")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("username", ["dispatcher", "dongguan", "grid", "leader", "admin"])
def test_only_operators_open_the_console(client, username, web_login):
    web_login(client, username)
    assert client.get("/console").status_code == 403
    assert client.post("/console", data={}).status_code in (400, 403)


def test_console_page(operator_page):
    response = operator_page.get("/console")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "受理（Ctrl+Enter）" in page
    assert 'name="content" accesskey="c" autofocus' in page
    assert "Alt</kbd>+<kbd>1</kbd>" in page
    assert KEY.search(page)
    assert "/console/static/console.js" in page
    assert operator_page.get("/console/static/console.js").status_code == 200


def test_operator_lands_on_the_console(client, web_login):
    response = web_login(client, "operator")
    assert response.headers["Location"] == "/console"


def test_receive_through_the_form(operator_page, db, ticket_count):
    before = ticket_count()
    response = operator_page.post(
        "/console", data={**form_of(operator_page), **call(), "action": "receive"}
    )
    assert response.status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket_count() == before + 1
    assert ticket.status == TicketStatus.received
    assert ticket.created_by.username == "operator"
    assert ticket.requester_phone == "13905361234"
    assert ticket.title.startswith("小区门口路灯坏了")
    assert ticket.suggestion is not None  # stored on receive, as the API does
    assert actions(db, ticket) == ["receive"]
    page = operator_page.get("/console").get_data(as_text=True)
    assert f"工单 {ticket.number} 已受理，已进入派单队列" in page
    # Today's list shows it with the full number (operators call back), the ticket's number
    # opening its page in a new tab (the next call is typed in this one).
    link = f'<a href="/tickets/{ticket.number}" target="_blank" rel="noopener">{ticket.number}</a>'
    assert link in page and "13905361234" in page
    # The form is blank again, with a new key.
    assert "李女士" not in page.split("今日本人受理")[0]


def test_double_submit_makes_one_ticket(operator_page, db):
    data = {**form_of(operator_page), **call(), "action": "receive"}
    first = operator_page.post("/console", data=data)
    second = operator_page.post("/console", data=data)
    assert first.status_code == second.status_code == 302
    (ticket,) = new_tickets(db)
    page = operator_page.get("/console").get_data(as_text=True)
    assert f"工单 {ticket.number} 已于此前提交成功（重复提交未重复创建）" in page


def test_each_blank_form_has_a_new_key(operator_page):
    assert form_of(operator_page)["idempotency_key"] != form_of(operator_page)["idempotency_key"]


def test_missing_content_keeps_what_was_typed(operator_page, db, ticket_count):
    before = ticket_count()
    data = {**form_of(operator_page), **call(content="  "), "action": "receive"}
    response = operator_page.post("/console", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "请填写诉求内容" in page
    assert 'value="13905361234"' in page and 'value="李女士"' in page
    assert "奎文区东关街道胜利东街100号" in page
    assert f'value="{data["idempotency_key"]}"' in page  # the same call may be retried
    assert ticket_count() == before


def test_bad_phone_and_unknown_category_are_named(operator_page, db):
    data = {**form_of(operator_page), **call(requester_phone="12", category="9999")}
    response = operator_page.post("/console", data={**data, "action": "receive"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "联系电话格式不正确" in page and "事项分类不存在：9999" in page
    assert new_tickets(db) == []


def test_one_click_resolve(operator_page, db):
    article = db.scalars(sa.select(KnowledgeArticle).where(KnowledgeArticle.code == "KB-001")).one()
    data = {
        **form_of(operator_page),
        **call(content="我的社保卡丢了怎么补办", request_type="consult"),
    }
    response = operator_page.post(
        "/console", data={**data, "confirm_article": "KB-001", "action": "resolve:KB-001"}
    )
    assert response.status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket.status == TicketStatus.resolved_at_intake
    assert ticket.intake_outcome == IntakeOutcome.answered
    assert ticket.result.startswith(article.answer)
    assert "知识库条目 KB-001" in ticket.result
    # Which article closed which ticket is kept, for the article's hit statistics.
    assert ticket.answer_article_id == article.id
    assert actions(db, ticket) == ["receive", "resolve_at_intake"]
    (event,) = db.scalars(
        sa.select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resolve_at_intake"
        )
    )
    assert event.payload["article"] == "KB-001"
    page = operator_page.get("/console").get_data(as_text=True)
    assert f"工单 {ticket.number} 已直接办结（首问即答：社保卡丢失补办）" in page


@pytest.mark.parametrize("confirmed", [None, "KB-002"])
def test_resolve_needs_the_article_confirmed(operator_page, db, confirmed):
    # Opened and read out, then ticked: a stray click on a closed article closes nothing.
    data = {**form_of(operator_page), **call(content="我的社保卡丢了怎么补办")}
    if confirmed:
        data["confirm_article"] = confirmed
    response = operator_page.post("/console", data={**data, "action": "resolve:KB-001"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "请先展开知识库条目，向来电人读出答复并勾选确认后再办结" in page
    assert "我的社保卡丢了怎么补办" in page  # what was typed is kept
    assert new_tickets(db) == []


def test_resolve_with_an_unknown_article_creates_nothing(operator_page, db):
    data = {**form_of(operator_page), **call(), "confirm_article": "NOPE"}
    response = operator_page.post("/console", data={**data, "action": "resolve:NOPE"})
    assert response.status_code == 404
    assert "知识库条目不存在或已停用：NOPE" in response.get_data(as_text=True)
    assert new_tickets(db) == []


def test_merge_into_a_candidate(operator_page, db, user, make_ticket):
    existing = make_ticket(user("operator2"), requester_phone="13905361234")
    data = {**form_of(operator_page), **call()}
    response = operator_page.post("/console", data={**data, "action": f"merge:{existing.number}"})
    assert response.status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket.status == TicketStatus.merged
    assert ticket.merged_into_id == existing.id
    assert actions(db, ticket) == ["receive", "merge"]
    page = operator_page.get("/console").get_data(as_text=True)
    assert f"已受理并并入工单 {existing.number}" in page


def test_merge_into_a_closed_ticket_is_refused_whole(operator_page, db, user, make_ticket):
    done = make_ticket(user("operator2"))
    operations.resolve_at_intake(
        db, user("operator2"), done, outcome=IntakeOutcome.answered, answer="已答复"
    )
    db.flush()
    data = {**form_of(operator_page), **call()}
    response = operator_page.post("/console", data={**data, "action": f"merge:{done.number}"})
    assert response.status_code == 422
    assert "不能并入" in response.get_data(as_text=True)
    assert new_tickets(db) == []


def test_emergency_transfer(operator_page, db):
    data = {
        **form_of(operator_page),
        **call(content="楼下饭店着火了，冒出很多浓烟", urgency="emergency"),
    }
    response = operator_page.post("/console", data={**data, "action": "transfer:119"})
    assert response.status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket.status == TicketStatus.transferred
    assert ticket.transfer_target == TransferTarget.fire_119
    assert actions(db, ticket) == ["receive", "transfer"]
    event = db.scalars(sa.select(TicketEvent).where(TicketEvent.action == "transfer")).all()[-1]
    assert event.reason.startswith("话务员判断为紧急情况，转119 火警")
    page = operator_page.get("/console").get_data(as_text=True)
    assert f"工单 {ticket.number} 已受理并转119 火警" in page


def test_transfer_only_to_emergency_lines(operator_page, db):
    data = {**form_of(operator_page), **call()}
    response = operator_page.post("/console", data={**data, "action": "transfer:petition"})
    assert response.status_code == 422
    assert "转办去向应为 110、119、120 或 122" in response.get_data(as_text=True)
    assert new_tickets(db) == []


def test_lookup_renders_the_panels_without_javascript(operator_page, db, user, make_ticket):
    existing = make_ticket(user("operator2"), requester_phone="13905361234")
    data = {**form_of(operator_page), **call(content="家里着火了，冒出很多浓烟，快来人")}
    response = operator_page.post("/console", data={**data, "action": "lookup"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "紧急情况预警" in page and 'value="transfer:119"' in page
    assert "智能建议" in page and "定位：" in page
    assert existing.number in page and f'value="merge:{existing.number}"' in page
    assert "同一来电号码" in page
    assert new_tickets(db) == []
    data["content"] = "想问一下住房公积金怎么提取"
    page = operator_page.post("/console", data={**data, "action": "lookup"}).get_data(as_text=True)
    assert "住房公积金提取" in page and 'value="resolve:KB-003"' in page
    assert 'name="confirm_article" value="KB-003"' in page
    assert "紧急情况预警" not in page
    # A street-light complaint shares words with answers, but no article is offered.
    data["content"] = "我们小区门口的路灯坏了好几天了，晚上黑乎乎的，老人差点摔倒"
    page = operator_page.post("/console", data={**data, "action": "lookup"}).get_data(as_text=True)
    assert "暂无与来电相关的知识库条目" in page and "resolve:" not in page


def test_typed_phone_shows_every_earlier_ticket_of_the_caller(operator_page, db, user, make_ticket):
    # Long before the duplicate check's 30 days.
    old = make_ticket(
        user("operator2"),
        requester_phone="13905361234",
        title="去年的噪音投诉",
        now=utcnow() - dt.timedelta(days=400),
    )
    recent = make_ticket(user("operator2"), requester_phone="13905361234", title="本周的路灯")
    make_ticket(user("operator2"), requester_phone="13900000000", title="别人的工单")
    data = {**form_of(operator_page), **call(content="")}
    page = operator_page.post("/console", data={**data, "action": "lookup"}).get_data(as_text=True)
    history = page[page.index("来电历史") :]
    assert "13905361234 此前共 2 件工单" in history
    assert history.index(recent.number) < history.index(old.number)  # newest first
    assert f'href="/tickets/{old.number}"' in history
    assert "别人的工单" not in history


def test_post_without_csrf_token_is_refused(operator_page, db):
    data = {**form_of(operator_page), **call(), "action": "receive"}
    del data["csrf_token"]
    response = operator_page.post("/console", data=data)
    assert response.status_code == 400
    assert "安全校验" in response.get_data(as_text=True)
    assert new_tickets(db) == []


def test_user_text_is_escaped(operator_page, db):
    payload = "<script>alert(1)</script>路灯坏了"
    data = {**form_of(operator_page), **call(content=payload, request_type="")}
    page = operator_page.post("/console", data={**data, "action": "receive"}).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    data["request_type"] = "complaint"
    operator_page.post("/console", data={**data, "action": "receive"})
    page = operator_page.get("/console").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)" in page and "<script>alert(1)" not in page


# -- pickers: categories and areas chosen by name (hotline/pickers.py, _pickers.html) ----------

AREA_SELECTS = re.compile(r'<select name="area" id="area-(\w+)" data-picker="area"')


def selected_codes(page, name):
    """The codes selected in the selects named ``name``, in page order."""
    found = []
    for select in re.findall(rf'<select name="{name}".*?</select>', page, re.S):
        found += re.findall(r'<option value="(\w+)"[^>]* selected>', select)
    return found


def test_category_and_area_are_chosen_by_name_not_typed(operator_page):
    page = operator_page.get("/console").get_data(as_text=True)
    # No text box for a code, no datalist of codes.
    assert 'type="text" id="category"' not in page and "<datalist" not in page
    assert 'type="text" id="area"' not in page
    assert '<select name="category" id="category" data-picker="category">' in page
    assert '<option value="">未选择（由派单员判断）</option>' in page
    assert '<optgroup label="城乡建设 › 市政设施" data-py="cxjs szss">' in page
    assert 'value="010103" data-py="ldgz" data-pinyin="ludengguzhang">路灯故障</option>' in page
    assert AREA_SELECTS.findall(page) == ["district", "street", "community", "grid"]
    assert '<option value="">由系统定位</option>' in page
    assert '<option value="370705" data-py="kwq"' in page and ">奎文区<" in page
    assert 'id="category-top"' in page  # the suggestion's top 3 go beside the picker
    assert '<script src="/static/picker.js" defer>' in page
    assert operator_page.get("/static/picker.js").status_code == 200
    assert operator_page.get("/static/picker.css").status_code == 200
    assert selected_codes(page, "area") == [] and selected_codes(page, "category") == []


def test_receive_with_a_chosen_category_and_area_cascade(operator_page, db):
    """Without script the form posts one code per level (blank below the chosen one)."""
    data = {**form_of(operator_page), **call(category="010103"), "action": "receive"}
    data["area"] = ["370705", "370705001", "370705001004", ""]
    assert operator_page.post("/console", data=data).status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket.category.name == "路灯故障"
    assert ticket.area.code == "370705001004"


def test_receive_with_the_most_specific_area_only(operator_page, db):
    """With script (picker.js) only the most specific level is posted."""
    data = {**form_of(operator_page), **call(area="370705001001001"), "action": "receive"}
    assert operator_page.post("/console", data=data).status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket.area.code == "370705001001001"


def test_area_left_blank_for_the_system_to_locate(operator_page, db):
    data = {**form_of(operator_page), **call(), "action": "receive"}
    data["area"] = ["", "", "", ""]
    assert operator_page.post("/console", data=data).status_code == 302
    (ticket,) = new_tickets(db)
    assert ticket.status == TicketStatus.received


def test_area_levels_that_do_not_fit_together_are_refused(operator_page, db):
    data = {**form_of(operator_page), **call(requester_phone="12"), "action": "receive"}
    data["area"] = ["370702", "370705001", "", ""]  # 潍城区 with a street of 奎文区
    response = operator_page.post("/console", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    # Named together with the other bad field, the form kept, nothing stored.
    assert "所选区域的上下级不一致，请重新选择" in page and "联系电话格式不正确" in page
    assert 'value="李女士"' in page
    assert new_tickets(db) == []


def test_a_refused_form_keeps_the_chosen_category_and_area(operator_page, db):
    data = {**form_of(operator_page), **call(content=" ", category="010103"), "action": "receive"}
    data["area"] = ["370705", "370705001", "", ""]
    page = operator_page.post("/console", data=data).get_data(as_text=True)
    assert selected_codes(page, "category") == ["010103"]
    assert selected_codes(page, "area") == ["370705", "370705001"]


def test_lookup_prefills_a_confident_place_without_javascript(operator_page, db):
    data = {**form_of(operator_page), **call(address="奎文区东关街道"), "action": "lookup"}
    page = operator_page.post("/console", data=data).get_data(as_text=True)
    assert selected_codes(page, "area") == ["370705", "370705001"]
    assert "已按智能建议预填区域，请核对。" in page
    assert 'data-prefilled="370705001"' in page
    # What the operator chose is never replaced by the suggestion.
    data["area"] = ["370702", "", "", ""]
    page = operator_page.post("/console", data=data).get_data(as_text=True)
    assert selected_codes(page, "area") == ["370702"]
    assert "已按智能建议预填区域" not in page


def test_lookup_leaves_the_area_blank_when_the_place_is_unsure(operator_page, db):
    data = {**form_of(operator_page), **call(address="门口"), "action": "lookup"}
    data["content"] = "家门口的路灯坏了一个星期，晚上很黑"
    page = operator_page.post("/console", data=data).get_data(as_text=True)
    assert selected_codes(page, "area") == []
    assert 'data-prefilled=""' in page


@pytest.mark.parametrize(
    ("place", "prefill"),
    [
        (None, False),
        ({"code": None, "confidence": 0.0, "candidates": ["370702", "370705"]}, False),
        # The same line as receive's fill of a blank area (AREA_FILL_MIN_CONFIDENCE, 0.75).
        ({"code": "370705001", "confidence": 0.74, "candidates": []}, False),
        ({"code": "370705001", "confidence": 0.75, "candidates": []}, True),
        ({"code": "370705", "confidence": 0.95, "candidates": ["370702"]}, False),
        ({"code": "370705001001001", "confidence": 1.0, "source": "coordinates"}, True),
    ],
)
def test_only_a_sure_unambiguous_place_prefills_the_area(app, place, prefill):
    with app.app_context():
        assert confident_place(place) is prefill
