"""分类模型 in Chromium at 1920×1080: tickets received through the API (with the classifier's
real suggestions) are filed over the last weeks, the current week's mostly against the
suggested category; a retrained candidate kept back by the gate is recorded. The administrator
sees the drift warning, the weekly series, the corrections, the versions and the gate's
figures, activates the candidate with a reason and rolls back; a supervisor sees the same
without any action. (Supervisors read it at a desk, not on a phone: no 390 px test.)

The drift thresholds are lowered for the test and put back at the end (the browser database
is shared by the session's browser tests)."""

import datetime as dt

import requests
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.orm import sessionmaker

from classifier import artefact
from hotline import model_versions, settings
from hotline.db import make_engine
from hotline.models import Category, ModelRetrain, Ticket
from tests.helpers import PASSWORD

FULL_HD = {"width": 1920, "height": 1080}
TEXTS = [
    "奎文区东关街道中学街社区的路灯坏了一个星期，晚上出门黑漆漆的，希望尽快维修。",
    "胜利东街的井盖丢了，很危险，请尽快处理",
    "小区门口的垃圾堆了好几天没人清运，臭气熏天",
    "楼下饭店油烟很大，熏得家里没法开窗",
    "家里停水两天了，也没有通知",
    "晚上工地施工噪音太大，影响休息",
]


def _tickets(base, count):
    http = requests.Session()
    login = http.post(
        f"{base}/api/v1/auth/login", json={"username": "operator", "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    http.headers["X-CSRF-Token"] = login.json()["data"]["csrf_token"]
    numbers = []
    for i in range(count):
        received = http.post(
            f"{base}/api/v1/tickets",
            json={"channel": "phone", "request_type": "complaint", "content": TEXTS[i % 6]},
            timeout=30,
        )
        assert received.status_code == 201, received.text
        numbers.append(received.json()["data"]["number"])
    return numbers


def _history(session, numbers, now):
    """Half the tickets filed last week as suggested, half this week under another category
    (and typed 咨询 where 投诉 was suggested, for one in three)."""
    ids = dict(session.execute(sa.select(Category.code, Category.id)).all())
    half = len(numbers) // 2
    for i, number in enumerate(numbers):
        ticket = session.scalars(sa.select(Ticket).where(Ticket.number == number)).one()
        suggested = ticket.suggestion["category"]["top"][0]["code"]
        if i < half:
            ticket.received_at = now - dt.timedelta(days=7, minutes=i)
            ticket.category_id = ids[suggested]
        else:
            ticket.received_at = now - dt.timedelta(minutes=i)
            other = "0205" if not suggested.startswith("0205") else "0101"
            ticket.category_id = ids[other]
            if i % 3 == 0:
                ticket.request_type = "consult"


def _candidate(session, models_dir, tmp_path):
    """A retrained candidate (the suite's model saved again) that the gate kept back; the
    suite's model registered and active in the database first (as a web process does when it
    starts on a database that names none)."""
    model_versions.import_folder(session, None, models_dir)
    active = model_versions.active_version(session)
    bundle, meta = artefact.load(models_dir, artefact.active_version(models_dir))
    version = artefact.save(
        bundle, tmp_path, {**meta, "source": "centre-history", "training_sha256": "7" * 64}
    )
    model_versions.register(session, None, tmp_path, version)
    now = dt.datetime.now(dt.UTC)
    session.add(
        ModelRetrain(
            status="kept",
            trigger="schedule",
            requested_at=now - dt.timedelta(minutes=9),
            started_at=now - dt.timedelta(minutes=8),
            finished_at=now - dt.timedelta(minutes=2),
            candidate_version=version,
            active_version=active,
            reason="未启用：承办单位前三命中率 下降 0.031，超过允许的 0.02",
            figures={
                "candidate": {
                    "category_macro_f1": 0.861,
                    "category_accuracy": 0.884,
                    "request_type_accuracy": 0.902,
                    "unit_top3": 0.812,
                    "emergency_recall": 0.95,
                    "n_category": 412,
                    "n_request_type": 412,
                    "n_unit": 398,
                    "n_emergency": 20,
                },
                "active": {
                    "category_macro_f1": 0.793,
                    "category_accuracy": 0.851,
                    "request_type_accuracy": 0.874,
                    "unit_top3": 0.843,
                    "emergency_recall": 0.95,
                },
                "tolerance": 0.02,
                "holdout": {
                    "from": (now - dt.timedelta(days=14)).isoformat(),
                    "to": now.isoformat(),
                    "tickets": 412,
                },
                "training": {"tickets": 3120, "seed_rows": 2000},
                "checks": [
                    {
                        "figure": "category_macro_f1",
                        "name": "分类宏平均F1",
                        "candidate": 0.861,
                        "active": 0.793,
                        "n": 412,
                        "gating": True,
                        "change": 0.068,
                        "passed": True,
                    },
                    {
                        "figure": "unit_top3",
                        "name": "承办单位前三命中率",
                        "candidate": 0.812,
                        "active": 0.843,
                        "n": 398,
                        "gating": True,
                        "change": -0.031,
                        "passed": False,
                    },
                ],
            },
        )
    )
    return version


def test_the_model_page_with_data(
    new_page, browser_database, live_server, models_dir, tmp_path, screenshot
):
    numbers = _tickets(live_server, 12)
    engine = make_engine(browser_database)
    factory = sessionmaker(bind=engine)
    with factory() as session:
        _history(session, numbers, dt.datetime.now(dt.UTC))
        candidate = _candidate(session, models_dir, tmp_path)
        original = model_versions.active_version(session)
        before = settings.current(session)
        settings.update(
            session, None, {"classifier.drift_min_tickets": 5, "classifier.drift_margin": 0.1}
        )
        session.commit()
    try:
        page = new_page("admin")
        page.set_viewport_size(FULL_HD)
        page.goto("/")
        page.get_by_role("navigation", name="主菜单").get_by_role("link", name="分类模型").click()
        expect(page.get_by_role("heading", name="分类模型")).to_be_visible()
        drift = page.locator("[data-testid=drift][data-field=category]")
        expect(drift).to_contain_text("采纳率下降预警：事项分类")
        expect(page.locator("[data-testid=series] tbody tr")).to_have_count(12)
        expect(page.locator("[data-testid=confusions-category] tbody tr").first).to_contain_text(
            "市容环境卫生"
        )
        run = page.locator("[data-testid=run][data-status=kept]").first
        expect(run).to_contain_text("未启用（保留为候选版本）")
        expect(run).to_contain_text("✗ 承办单位前三命中率")
        row = page.locator(f"[data-testid=versions] tr[data-version='{candidate}']")
        expect(row).to_contain_text("候选")
        screenshot(page, "model-page")

        # A switch needs its reason: the browser will not send the form without one.
        row.get_by_role("button", name="启用").click()
        expect(page.locator("div.notice[role=status]")).to_have_count(0)
        row.get_by_placeholder("启用原因").fill("候选的分类 F1 更高，先试用一周")
        row.get_by_role("button", name="启用").click()
        expect(page.locator("div.notice[role=status]")).to_contain_text(
            f"已启用模型版本 {candidate}"
        )
        expect(page.locator("[data-testid=switches] tbody tr").first).to_contain_text(
            "候选的分类 F1 更高，先试用一周"
        )
        page.get_by_label("回退原因").fill("单位前三命中率偏低，回退")
        page.get_by_role("button", name="回退到上一版本").click()
        expect(page.locator("div.notice[role=status]")).to_contain_text("已回退到模型版本")

        page = new_page("supervisor")
        page.set_viewport_size(FULL_HD)
        page.goto("/reports/classifier")
        expect(page.locator("[data-testid=drift][data-field=category]")).to_be_visible()
        expect(page.locator("main button")).to_have_count(0)
        expect(page.locator("[data-testid=actions]")).to_have_count(0)
    finally:
        with factory() as session:
            settings.update(
                session,
                None,
                {
                    d.key: value
                    for d, value in before
                    if d.key in ("classifier.drift_min_tickets", "classifier.drift_margin")
                },
            )
            if model_versions.active_version(session) != original:
                model_versions.activate(session, None, original, reason="浏览器测试复原")
            session.commit()
        engine.dispose()
