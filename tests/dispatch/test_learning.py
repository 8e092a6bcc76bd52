"""The classifier's learning loop (dispatch.learning): which tickets' values count as
confirmed, asking for a retraining (once, administrators only, audited), and the runs: one
at a time, the weekly schedule, promotion, a candidate kept back, a failure."""

import pytest
import sqlalchemy as sa

from dispatch import learning
from hotline.errors import Forbidden
from hotline.models import AuditLog, ModelRetrain

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
