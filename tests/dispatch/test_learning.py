"""The classifier's learning loop (dispatch.learning): which tickets' values count as
confirmed, asking for a retraining (once, administrators only, audited), and the runs: one
at a time, the weekly schedule, promotion, a candidate kept back, a failure."""

import datetime as dt
import threading
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from classifier import learning as model_learning
from dispatch import learning
from dispatch import operations as ops
from hotline import model_versions, settings, users
from hotline.enums import (
    Channel,
    EmergencyDecision,
    RequestType,
    ReturnReason,
    TransferTarget,
    Urgency,
)
from hotline.errors import Forbidden
from hotline.models import AuditLog, Category, ModelRetrain, ModelVersion, User
from hotline.users import portal_account
from tests.dispatch.common import DONGGUAN, STREETLIGHT, local
from tests.dispatch.conftest import unit


def category(db, code):
    return db.scalars(sa.select(Category).where(Category.code == code)).one()


# -- asking for a retraining ------------------------------------------------------------------


def test_request_adds_one_pending_run_and_asking_again_returns_it(db, user):
    admin = user("admin")
    first = learning.request(db, admin, "page")
    assert (first.status, first.trigger, first.requested_by_id) == ("pending", "page", admin.id)
    again = learning.request(db, None, "command")
    assert again.id == first.id
    assert db.scalar(sa.select(sa.func.count()).select_from(ModelRetrain)) == 1
    audited = db.scalars(
        sa.select(AuditLog).where(AuditLog.action == "classifier.retrain_request")
    ).all()
    assert [(a.actor_id, a.target, a.payload) for a in audited] == [
        (admin.id, str(first.id), {"trigger": "page"})
    ]


def test_a_running_run_is_returned_instead_of_a_second(db):
    row = learning.request(db, None, "command")
    row.status = "running"
    db.flush()
    assert learning.request(db, None, "page").id == row.id
    row.status = "kept"
    db.flush()
    assert learning.request(db, None, "page").id != row.id


@pytest.mark.parametrize("name", ["supervisor", "dispatcher", "operator", "leader"])
def test_only_administrators_ask_for_a_retraining(db, user, name):
    with pytest.raises(Forbidden) as refused:
        learning.request(db, user(name), "page")
    assert refused.value.code == "ROLE_NOT_ALLOWED"
    assert db.scalar(sa.select(sa.func.count()).select_from(ModelRetrain)) == 0


# -- which values count as confirmed ----------------------------------------------------------

KUIWEN_STREET = "370705001"  # 东关街道 (a street: no grid to narrow to)


def _example_of(found, ticket):
    (example,) = [e for e in found.examples if e.received_at == ticket.received_at]
    return example


def test_an_operators_ticket_teaches_its_category_type_typed_area_and_signed_unit(
    db, user, make_ticket
):
    ticket = make_ticket(
        user("operator"), category=STREETLIGHT, area=KUIWEN_STREET, now=local(16, 9)
    )
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=local(16, 10))
    before_signing = _example_of(learning.examples(db), ticket)
    assert before_signing.unit is None  # dispatched is not yet confirmed
    ops.sign(db, user("dongguan"), ticket, now=local(16, 11))

    example = _example_of(learning.examples(db), ticket)
    assert example.text == ticket.content
    assert example.received_at == local(16, 9)
    assert (example.category, example.request_type, example.area, example.unit) == (
        STREETLIGHT,
        "complaint",
        KUIWEN_STREET,
        DONGGUAN,
    )
    assert (example.emergency, example.channel) == (None, "phone")


def test_a_suggested_area_and_a_unit_that_asks_to_return_are_not_confirmed(db, user, make_ticket):
    ticket = make_ticket(
        user("operator"),
        category=STREETLIGHT,
        suggestion={"area": {"code": KUIWEN_STREET, "confidence": 0.99}},
        now=local(16, 9),
    )
    assert ticket.area_source == "suggested"
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=local(16, 10))
    ops.sign(db, user("dongguan"), ticket, now=local(16, 11))
    ops.request_return(
        db,
        user("dongguan"),
        ticket,
        return_reason=ReturnReason.not_our_duty,
        note="不属于本单位职责",
        now=local(16, 12),
    )
    example = _example_of(learning.examples(db), ticket)
    assert (example.category, example.area, example.unit) == (STREETLIGHT, None, None)


def test_a_citizens_request_teaches_its_type_and_its_text_is_unlabelled_until_dispatched(
    db, user, make_ticket
):
    ticket = make_ticket(
        portal_account(db, Channel.web),
        channel=Channel.web,
        request_type=RequestType.help,
        now=local(16, 9),
    )
    found = learning.examples(db)
    example = _example_of(found, ticket)
    assert (example.category, example.request_type) == (None, "help")
    assert ticket.content in [u.text for u in found.unlabelled]
    ops.dispatch(
        db,
        user("dispatcher"),
        ticket,
        lead=unit(db, DONGGUAN),
        category=category(db, STREETLIGHT),
        now=local(16, 10),
    )
    found = learning.examples(db)
    assert _example_of(found, ticket).category == STREETLIGHT
    assert ticket.content not in [u.text for u in found.unlabelled]


def test_a_grid_reports_type_is_the_forms_default_until_reclassified(db, user, make_ticket):
    ticket = make_ticket(
        user("grid"),
        channel=Channel.grid,
        area="370705001001002",
        request_type=RequestType.help,
        category=category(db, STREETLIGHT),
        now=local(16, 9),
    )
    example = _example_of(learning.examples(db), ticket)
    assert (example.category, example.request_type) == (STREETLIGHT, None)


def test_an_open311_service_counts_once_dispatched_and_its_type_once_reclassified(
    db, user, make_ticket
):
    client = users.service_account(db, "open311-test", "开放接口·测试")
    ticket = make_ticket(client, channel=Channel.open311, category=STREETLIGHT, now=local(16, 9))
    found = learning.examples(db)
    assert found.examples == []  # nothing confirmed
    assert [u.text for u in found.unlabelled] == [ticket.content]
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN), now=local(16, 10))
    example = _example_of(learning.examples(db), ticket)
    assert (example.category, example.request_type) == (STREETLIGHT, None)
    ops.reclassify(
        db,
        user("supervisor"),
        ticket,
        request_type=RequestType.report,
        reason="市民举报",
        now=local(16, 11),
    )
    example = _example_of(learning.examples(db), ticket)
    assert (example.category, example.request_type, example.emergency) == (
        STREETLIGHT,
        "report",
        False,
    )


EMERGENCY_SUGGESTION = {"urgency": {"tier": "emergency", "transfer_to": "119", "evidence": "起火"}}


@pytest.mark.parametrize(
    ("decision", "urgency", "expected"),
    [
        (EmergencyDecision.kept, Urgency.emergency, True),
        (EmergencyDecision.dismissed, Urgency.normal, False),
        (None, Urgency.emergency, True),  # staff chose 紧急 where the classifier saw none
        (None, Urgency.normal, None),  # nobody was asked
    ],
)
def test_emergency_is_the_operators_answer(db, user, make_ticket, decision, urgency, expected):
    ticket = make_ticket(
        user("operator"),
        urgency=urgency,
        emergency_decision=decision,
        suggestion=EMERGENCY_SUGGESTION if decision else None,
        now=local(16, 9),
    )
    assert _example_of(learning.examples(db), ticket).emergency is expected


def test_a_transfer_to_an_emergency_line_is_an_emergency(db, user, make_ticket):
    ticket = make_ticket(user("operator"), now=local(16, 9))
    ops.transfer(
        db,
        user("operator"),
        ticket,
        target=TransferTarget.fire_119,
        reason="已转119",
        now=local(16, 9, 5),
    )
    assert _example_of(learning.examples(db), ticket).emergency is True


def test_merged_duplicates_are_left_out_and_since_limits_the_period(db, user, make_ticket):
    first = make_ticket(user("operator"), category=STREETLIGHT, now=local(16, 9))
    repeat = make_ticket(user("operator"), category=STREETLIGHT, now=local(17, 9))
    ops.merge(db, user("operator"), repeat, into=first, now=local(17, 9, 5))
    later = make_ticket(user("operator"), category=STREETLIGHT, now=local(18, 9))
    found = learning.examples(db)
    assert [e.received_at for e in found.examples] == [first.received_at, later.received_at]
    since = learning.examples(db, since=local(18, 0))
    assert [e.received_at for e in since.examples] == [later.received_at]


# -- running: claim, train, decide ----------------------------------------------------------

NOW = local(20, 3)
SMALL = SimpleNamespace(holdout_days=14, min_training=1, min_holdout=1, tolerance=0.02)


@pytest.fixture
def loop(committed_app, tmp_path, monkeypatch):
    """The committed app's session factory, a models folder of the test's own and a stand-in
    for ``classifier.learning.retrain``: ``loop.answer(status)`` sets what it decides (the
    candidate is the suite's model trained again: its bundle reloaded), ``loop.calls`` what
    it was given."""
    factory = committed_app.extensions["hotline.db"]
    state = SimpleNamespace(factory=factory, models_dir=str(tmp_path), calls=[], status=None)

    def retrain(examples, active_bundle, *, now, policy, unlabelled=(), active_until=None):
        state.calls.append(
            {"examples": list(examples), "now": now, "policy": policy, "active": active_bundle}
        )
        if state.status == "error":
            raise RuntimeError("内存不足")
        if state.before_deciding:
            state.before_deciding()
        return SimpleNamespace(
            status=state.status,
            reason="分类宏平均 F1 0.80 → 0.83",
            bundle=active_bundle if state.status in ("promoted", "kept") else None,
            meta={"source": "retrain", "training_rows": len(examples)},
            figures={"candidate": {"category_macro_f1": 0.83}, "active": {}, "tolerance": 0.02},
        )

    state.before_deciding = None
    monkeypatch.setattr(learning.model_learning, "retrain", retrain)

    def run(now=NOW):
        return learning.run_due(factory, now, models_dir=state.models_dir, policy=SMALL)

    state.run = run
    with committed_app.app_context():
        yield state


def _session(loop):
    return loop.factory()


def _pending(loop, trigger="command"):
    with _session(loop) as session:
        row = learning.request(session, None, trigger, now=NOW - dt.timedelta(minutes=5))
        session.commit()
        return row.id


def _row(loop, run_id):
    with _session(loop) as session:
        return session.get(ModelRetrain, run_id)


def _active(loop):
    with _session(loop) as session:
        return model_versions.active_version(session)


def _versions(loop):
    with _session(loop) as session:
        return {row.version for row in model_versions.versions(session)}


def test_a_promoted_candidate_becomes_the_active_version(loop):
    run_id = _pending(loop)
    before = _active(loop)
    loop.status = "promoted"

    run = loop.run()

    assert (run.id, run.status, run.active_version) == (run_id, "promoted", before)
    assert _active(loop) == run.candidate_version != before
    row = _row(loop, run_id)
    assert (row.status, row.candidate_version, row.active_version) == (
        "promoted",
        run.candidate_version,
        before,
    )
    assert row.started_at == NOW and row.finished_at >= NOW
    assert row.figures["candidate"] == {"category_macro_f1": 0.83}
    (call,) = loop.calls
    assert call["now"] == NOW and call["policy"] is SMALL and call["active"] is not None
    with _session(loop) as session:
        (switch,) = model_versions.activations(session, limit=1)
        assert switch.reason == "自动评估通过：分类宏平均 F1 0.80 → 0.83"
        assert switch.activated_by_id is None
        audited = session.scalars(
            sa.select(AuditLog).where(AuditLog.action == "classifier.retrain")
        ).one()
        assert audited.payload["status"] == "promoted"
    assert loop.run() is None  # nothing pending, and the schedule ran just now


def test_a_candidate_kept_back_is_registered_and_the_active_version_stays(loop):
    run_id = _pending(loop)
    before, versions = _active(loop), _versions(loop)
    loop.status = "kept"

    run = loop.run()

    assert run.status == "kept" and _active(loop) == before
    assert _versions(loop) == versions | {run.candidate_version}
    assert _row(loop, run_id).candidate_version == run.candidate_version


def test_a_skipped_run_registers_nothing(loop):
    run_id = _pending(loop)
    versions = _versions(loop)
    loop.status = "skipped"
    run = loop.run()
    assert (run.id, run.status, run.candidate_version) == (run_id, "skipped", None)
    assert _versions(loop) == versions


def test_a_failure_finishes_the_run_as_failed_and_activates_nothing(loop):
    run_id = _pending(loop)
    before, versions = _active(loop), _versions(loop)
    loop.status = "error"

    run = loop.run()

    assert run.status == "failed" and "内存不足" in run.reason
    row = _row(loop, run_id)
    assert (row.status, row.candidate_version) == ("failed", None)
    assert row.finished_at is not None
    assert _active(loop) == before and _versions(loop) == versions


def test_a_candidate_is_not_promoted_over_a_version_activated_while_it_trained(loop):
    _pending(loop)
    before = _active(loop)
    loop.status = "promoted"

    def someone_rolls_back():
        with _session(loop) as session:
            version = sorted(_versions(loop) - {before})
            if not version:
                return
            model_versions.activate(session, None, version[0], reason="管理员切换")
            session.commit()

    # A second version to switch to: one kept-back run first.
    loop.status = "kept"
    loop.run()
    _pending(loop)
    loop.status = "promoted"
    loop.before_deciding = someone_rolls_back
    run = loop.run(NOW + dt.timedelta(minutes=1))
    assert run.status == "kept" and "训练期间在用模型已切换" in run.reason
    assert _active(loop) != run.candidate_version


def test_the_schedule_runs_every_n_days_from_the_last_finished_run(loop):
    loop.status = "skipped"
    first = loop.run()  # no run has ever finished: the schedule is due at once
    assert first.trigger == "schedule"
    finished = _row(loop, first.id).finished_at
    assert loop.run(finished + dt.timedelta(days=6, hours=23)) is None
    second = loop.run(finished + dt.timedelta(days=7))
    assert second.trigger == "schedule" and second.id != first.id


def test_no_schedule_when_the_setting_is_0_but_a_request_still_runs(loop):
    with _session(loop) as session:
        settings.update(session, None, {"classifier.retrain_days": 0})
        session.commit()
    loop.status = "skipped"
    assert loop.run() is None
    run_id = _pending(loop)
    assert loop.run().id == run_id


def test_a_run_started_long_ago_is_taken_over_but_not_a_recent_one(loop):
    run_id = _pending(loop)
    with _session(loop) as session:
        row = session.get(ModelRetrain, run_id)
        row.status, row.started_at = "running", NOW - dt.timedelta(hours=1)
        session.commit()
    loop.status = "skipped"
    assert loop.run() is None
    assert not loop.calls
    run = loop.run(NOW + learning.STALE_AFTER)
    assert run.id == run_id and run.status == "skipped"


def test_a_run_whose_claim_was_taken_over_writes_nothing(loop):
    run_id = _pending(loop)
    versions = _versions(loop)
    loop.status = "promoted"

    def taken_over():
        with _session(loop) as session:
            session.get(ModelRetrain, run_id).started_at = NOW + dt.timedelta(hours=4)
            session.commit()

    loop.before_deciding = taken_over
    assert loop.run() is None
    assert _row(loop, run_id).status == "running"
    assert _versions(loop) == versions


def test_two_schedulers_at_once_run_it_once(loop):
    _pending(loop)
    loop.status = "skipped"
    entered = threading.Barrier(2)
    results = []

    def racer():
        entered.wait()
        results.append(loop.run())

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is None for r in results) == [False, True]
    assert len(loop.calls) == 1
    with _session(loop) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ModelRetrain)) == 1


def test_a_real_retraining_on_a_few_tickets_reaches_a_decision(committed_app, tmp_path):
    """The whole loop with the real ``classifier.learning.retrain`` (a small policy, so a
    handful of tickets is enough to train and judge)."""
    factory = committed_app.extensions["hotline.db"]
    texts = [
        ("010103", "小区门口的路灯坏了好几天，晚上一片漆黑"),
        ("010103", "胜利东街路灯不亮，夜里出行不安全"),
        ("010103", "东关街道路灯损坏无人维修"),
        ("010103", "我家楼下的路灯一直闪烁，请派人修理"),
    ]
    with committed_app.app_context(), factory() as session:
        operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
        for i, (code, text) in enumerate(texts * 3):
            ops.receive(
                session,
                operator,
                channel=Channel.phone,
                request_type=RequestType.complaint,
                urgency=Urgency.normal,
                content=f"{text}（第{i}次）",
                category=category(session, code),
                suggestion=None,
                now=NOW - dt.timedelta(days=23 - 2 * i),
            )
        learning.request(session, None, "command")
        session.commit()
        before = model_versions.active_version(session)
    policy = model_learning.Policy(holdout_days=10, min_training=3, min_holdout=2)

    with committed_app.app_context():
        run = learning.run_due(factory, NOW, models_dir=str(tmp_path), policy=policy)

    assert run.status in ("promoted", "kept"), run.reason
    assert run.active_version == before
    assert run.figures["holdout"]["tickets"] == 5 and run.figures["training"]["tickets"] == 7
    assert set(run.figures["candidate"]) >= {"category_macro_f1", "category_accuracy"}
    with factory() as session:
        assert session.get(ModelVersion, run.candidate_version).meta["retrain"] == run.id
        active = model_versions.active_version(session)
    assert active == (run.candidate_version if run.status == "promoted" else before)
