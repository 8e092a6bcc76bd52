"""分类模型 over HTTP and the acceptance figures behind it (``hotline.acceptance``): the weekly
series, the categories, the confusions and the drift warning on tickets injected across two
weeks with an injected clock; who may read and who may act; switching versions with a
required reason (audited, CSRF-protected); 立即重新训练; the acceptance API unchanged."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import dashboards.pages.classifier as page_module
from classifier import artefact
from classifier import learning as model_learning
from hotline import acceptance, model_versions, settings
from hotline.enums import RequestType
from hotline.models import AuditLog, Category, ModelActivation, ModelRetrain, Unit
from tests.helpers import FORM_TOKEN

TZ = ZoneInfo("Asia/Shanghai")
#: A Wednesday: the current week began on Monday 17 March; the last complete week is 10–16
#: March, the one before 3–9 March.
NOW = dt.datetime(2025, 3, 19, 12, 0, tzinfo=TZ).astimezone(dt.UTC)
BEFORE = dt.datetime(2025, 3, 4, 10, 0, tzinfo=TZ)  # the week before the last complete one
LAST = dt.datetime(2025, 3, 11, 10, 0, tzinfo=TZ)  # the last complete week
URL = "/reports/classifier"


def suggestion(category="0101", request_type="complaint", unit="U-CGJ"):
    return {
        "category": {
            "top": [
                {"code": category, "name": "", "probability": 0.6},
                {"code": "0102", "name": "", "probability": 0.2},
                {"code": "0103", "name": "", "probability": 0.1},
            ],
            "abstain": False,
        },
        "request_type": request_type,
        "urgency": {"tier": "normal"},
        "area": None,
        "units": [{"code": unit, "name": ""}],
        "model_version": "test",
    }


@pytest.fixture
def history(db, user, make_ticket):
    """The week before: 40 tickets, every suggestion accepted. The last complete week: 40
    tickets, 20 filed under 市容环境卫生 instead of the suggested 市政设施, 10 of them typed
    咨询 instead of the suggested 投诉."""
    operator = user("operator")
    categories = dict(db.execute(sa.select(Category.code, Category.id)).all())
    lead = db.scalar(sa.select(Unit.id).where(Unit.code == "U-CGJ"))

    def ticket(at, category, request_type=RequestType.complaint):
        t = make_ticket(operator, request_type=request_type)
        t.suggestion = suggestion()
        t.received_at = at.astimezone(dt.UTC)
        t.category_id = categories[category]
        t.lead_unit_id = lead
        return t

    for i in range(40):
        ticket(BEFORE + dt.timedelta(minutes=i), "010103")
    for i in range(40):
        wrong = i % 2 == 0
        ticket(
            LAST + dt.timedelta(minutes=i),
            "020501" if wrong else "010103",
            RequestType.consult if wrong and i % 4 == 0 else RequestType.complaint,
        )
    db.flush()


# -- the figures ----------------------------------------------------------------------------------


def test_weekly_series_confusions_and_drift(db, history):
    review = acceptance.review(db, NOW, "Asia/Shanghai")
    weeks = review["weeks"]
    assert len(weeks) == 12
    assert weeks[-1]["start"] == dt.date(2025, 3, 17) and not weeks[-1]["complete"]
    assert weeks[-2]["label"] == "03-10–03-16" and weeks[-2]["complete"]
    last, before = weeks[-2]["fields"], weeks[-3]["fields"]
    assert before["category"] == {"tickets": 40, "accepted": 40, "rate": 1.0, "in_top3": 40}
    assert last["category"] == {"tickets": 40, "accepted": 20, "rate": 0.5, "in_top3": 20}
    assert last["request_type"]["accepted"] == 30 and last["unit"]["rate"] == 1.0
    assert last["area"]["tickets"] == 0  # no area suggested
    assert weeks[-1]["fields"]["category"]["tickets"] == 0

    assert review["confusions"]["category"] == [
        {
            "suggested": "0101",
            "suggested_name": "市政设施",
            "chosen": "0205",
            "chosen_name": "市容环境卫生",
            "count": 20,
        }
    ]
    assert review["confusions"]["request_type"] == [
        {
            "suggested": "complaint",
            "suggested_name": "投诉",
            "chosen": "consult",
            "chosen_name": "咨询",
            "count": 10,
        }
    ]
    drift = {d["field"]: d for d in review["drift"]}
    assert set(drift) == {"category", "request_type"}
    assert drift["category"]["label"] == "事项分类"
    assert (drift["category"]["rate"], drift["category"]["previous_rate"]) == (0.5, 1.0)
    assert drift["request_type"]["rate"] == 0.75
    assert drift["category"]["week"] == "03-10–03-16"


def test_request_type_confusions_are_read_whole(db, user, make_ticket, history):
    """A category chosen below the suggested level is read at that level; a request type is
    its own value, however long."""
    t = make_ticket(user("operator"), request_type=RequestType.complaint)
    t.suggestion = suggestion(request_type="report")
    t.received_at = (LAST + dt.timedelta(hours=5)).astimezone(dt.UTC)
    db.flush()
    confusions = acceptance.review(db, NOW, "Asia/Shanghai")["confusions"]["request_type"]
    assert [
        (c["suggested_name"], c["chosen"], c["chosen_name"], c["count"]) for c in confusions
    ] == [
        ("投诉", "consult", "咨询", 10),
        ("举报", "complaint", "投诉", 1),
    ]


def test_categories_at_either_level(db, history):
    top = acceptance.review(db, NOW, "Asia/Shanghai")["categories"]
    assert [(c["code"], c["name"], c["tickets"]) for c in top] == [
        ("01", "城乡建设", 60),
        ("02", "环境保护", 20),
    ]
    assert top[0]["category"]["rate"] == 1.0 and top[1]["category"]["rate"] == 0.0
    assert top[1]["unit"] == {"tickets": 20, "accepted": 20, "rate": 1.0, "in_top3": 20}
    second = acceptance.review(db, NOW, "Asia/Shanghai", level=2)["categories"]
    assert [(c["code"], c["name"]) for c in second] == [
        ("0101", "市政设施"),
        ("0205", "市容环境卫生"),
    ]


def test_drift_needs_enough_tickets_and_a_fall_beyond_the_margin(db, user, history):
    settings.update(db, user("admin"), {"classifier.drift_min_tickets": 41})
    assert acceptance.review(db, NOW, "Asia/Shanghai")["drift"] == []
    settings.update(
        db, user("admin"), {"classifier.drift_min_tickets": 30, "classifier.drift_margin": 0.3}
    )
    assert [d["field"] for d in acceptance.review(db, NOW, "Asia/Shanghai")["drift"]] == [
        "category"
    ]


def test_the_current_week_counts_once_it_has_enough_tickets(db, history):
    """On the Sunday after the injected weeks the current week (10–16 March) is compared."""
    sunday = dt.datetime(2025, 3, 16, 20, 0, tzinfo=TZ).astimezone(dt.UTC)
    review = acceptance.review(db, sunday, "Asia/Shanghai")
    assert not review["weeks"][-1]["complete"]
    assert {d["field"] for d in review["drift"]} == {"category", "request_type"}
    assert review["drift"][0]["week"].endswith("（本周）")


def test_the_api_answers_as_before(api, history):
    response = api("supervisor").get(
        "/classifier/acceptance", query_string={"from": "2025-03-03", "to": "2025-03-17"}
    )
    assert response.status_code == 200
    body = response.get_json()["data"]
    assert set(body) == {"from", "to", "category", "area", "unit", "request_type", "urgency"}
    assert body["category"] == {"tickets": 80, "accepted": 60, "rate": 0.75, "in_top3": 60}
    assert body["request_type"] == {"tickets": 80, "accepted": 70, "rate": 0.875, "in_top3": 70}
    assert body["area"] == {"tickets": 0, "accepted": 0, "rate": None, "in_top3": 0}


# -- the page -------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(page_module, "utcnow", lambda: NOW)


@pytest.fixture
def second_version(db, models_dir, tmp_path):
    """Another registered version (the suite's model saved again under a new name)."""
    bundle, meta = artefact.load(models_dir, artefact.active_version(models_dir))
    version = artefact.save(bundle, tmp_path, {**meta, "training_sha256": "3" * 64})
    model_versions.register(db, None, tmp_path, version)
    db.flush()
    return version


def _token(client):
    return FORM_TOKEN.search(client.get(URL).get_data(as_text=True)).group(1)


def test_administrators_see_the_figures_and_the_actions(
    client, web_login, history, clock, second_version
):
    web_login(client, "admin")
    page = client.get(URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-testid="drift" data-field="category"' in text
    assert "采纳率下降预警：事项分类" in text and "50.0%" in text and "100.0%" in text
    assert 'data-testid="drift" data-field="request_type"' in text
    assert 'data-testid="drift" data-field="unit"' not in text
    assert '市政设施 <span class="muted">0101</span>' in text
    assert '市容环境卫生 <span class="muted">0205</span>' in text
    assert 'data-testid="actions"' in text and "立即重新训练" in text
    assert 'data-testid="activate-form"' in text and f'value="{second_version}"' in text
    # 分类模型 is in the header menu
    assert f'href="{URL}" aria-current="page">分类模型</a>' in text


def test_supervisors_read_without_any_action(client, web_login, history, clock, second_version):
    web_login(client, "supervisor")
    text = client.get(URL).get_data(as_text=True)
    assert "采纳率下降预警" in text and second_version in text
    assert "<button" not in text.split("</header>")[1]
    assert 'data-testid="actions"' not in text and "csrf_token" not in text.split("</header>")[1]
    assert ">分类模型</a>" in text
    token = _token(client)
    response = client.post(
        URL + "/activate",
        data={"csrf_token": token, "version": second_version, "reason": "试试"},
    )
    assert response.status_code == 403
    assert client.post(URL + "/retrain", data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize("username", ["operator", "dispatcher", "leader", "callback"])
def test_others_may_not_open_it(client, web_login, username):
    web_login(client, username)
    assert client.get(URL).status_code == 403
    assert ">分类模型</a>" not in client.get("/").get_data(as_text=True)


def test_activation_with_a_reason_is_audited(client, db, web_login, second_version):
    web_login(client, "admin")
    first = model_versions.active_version(db)
    response = client.post(
        URL + "/activate",
        data={"csrf_token": _token(client), "version": second_version, "reason": "新模型效果更好"},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"已启用模型版本 {second_version}" in page
    assert model_versions.active_version(db) == second_version
    db.expire_all()
    switch = db.scalars(sa.select(ModelActivation).order_by(ModelActivation.id.desc())).first()
    assert (switch.version, switch.previous, switch.reason) == (
        second_version,
        first,
        "新模型效果更好",
    )
    audited = db.scalars(sa.select(AuditLog).where(AuditLog.action == "classifier.activate")).all()
    assert [(a.target, a.payload["reason"]) for a in audited] == [
        (second_version, "新模型效果更好")
    ]

    # and back, again with a reason
    response = client.post(
        URL + "/rollback", data={"csrf_token": _token(client), "reason": "回退观察"}
    )
    assert response.status_code == 302
    assert model_versions.active_version(db) == first
    assert "已回退到模型版本" in client.get(URL).get_data(as_text=True)


def test_a_switch_without_a_reason_is_refused_in_chinese(client, db, web_login, second_version):
    web_login(client, "admin")
    first = model_versions.active_version(db)
    for path, extra in (("/activate", {"version": second_version}), ("/rollback", {})):
        response = client.post(
            URL + path, data={"csrf_token": _token(client), "reason": "  ", **extra}
        )
        assert response.status_code == 422
        assert "请填写切换原因" in response.get_data(as_text=True)
    assert model_versions.active_version(db) == first


def test_the_forms_need_their_csrf_token(client, db, web_login, second_version):
    web_login(client, "admin")
    first = model_versions.active_version(db)
    response = client.post(URL + "/activate", data={"version": second_version, "reason": "x"})
    assert response.status_code == 400
    assert client.post(URL + "/retrain").status_code == 400
    assert model_versions.active_version(db) == first
    assert db.scalar(sa.select(sa.func.count()).select_from(ModelRetrain)) == 0


def test_retrain_now_asks_for_a_run(client, db, web_login):
    web_login(client, "admin")
    response = client.post(URL + "/retrain", data={"csrf_token": _token(client)})
    assert response.status_code == 302
    run = db.scalars(sa.select(ModelRetrain)).one()
    assert (run.status, run.trigger) == ("pending", "page")
    text = client.get(URL).get_data(as_text=True)
    assert f"已提交重新训练（第 {run.id} 次，等待训练）" in text
    assert 'data-testid="run" data-status="pending"' in text and "管理员手动" in text


def test_runs_show_both_models_figures_and_the_gate(client, db, web_login, second_version):
    candidate = {"category_macro_f1": 0.86, "unit_top3": 0.80, "n_category": 120, "n_unit": 120}
    active = {"category_macro_f1": 0.83, "unit_top3": 0.84, "n_category": 120, "n_unit": 120}
    decision = model_learning.gate(candidate, active, 0.02)
    assert not decision.promote
    db.add(
        ModelRetrain(
            status="kept",
            trigger="schedule",
            requested_at=NOW,
            finished_at=NOW,
            candidate_version=second_version,
            active_version="suite",
            reason=decision.reason,
            figures={
                "candidate": candidate,
                "active": active,
                "tolerance": 0.02,
                "holdout": {"from": NOW.isoformat(), "to": NOW.isoformat(), "tickets": 120},
                "checks": [*decision.checks, "<b>未转义</b>"],
            },
        )
    )
    db.flush()
    web_login(client, "supervisor")
    text = client.get(URL).get_data(as_text=True)
    assert "未启用（保留为候选版本）" in text and "定期训练" in text
    assert "未启用：承办单位前三命中率 下降 0.040" in text
    assert "分类宏平均F1" in text and "0.860" in text and "+0.030" in text
    assert "✗ 承办单位前三命中率（候选 0.800，启用中 0.840）" in text
    assert "✓ 分类宏平均F1（候选 0.860，启用中 0.830）" in text
    assert "✓ 诉求类型准确率：未测" in text
    assert "&lt;b&gt;未转义&lt;/b&gt;" in text and "<b>未转义</b>" not in text
