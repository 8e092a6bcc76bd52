"""The 分类模型 settings page (``/admin/classifier-settings``): administrators read and change
the retraining's and the drift warning's settings; the change is checked, audited and read by
the learning loop's next run; nobody else may."""

import pytest
import sqlalchemy as sa

from dispatch import learning
from hotline import settings
from hotline.models import AuditLog
from tests.helpers import FORM_TOKEN

URL = "/admin/classifier-settings"
KEYS = [k for k in settings.DEFINITIONS if k.startswith("classifier.")]


def _form(client, **values):
    token = FORM_TOKEN.search(client.get(URL).get_data(as_text=True)).group(1)
    defaults = {key: str(settings.DEFINITIONS[key].default) for key in KEYS}
    return {"csrf_token": token, **defaults, **values}


def test_the_page_shows_every_setting_with_its_label(client, web_login):
    web_login(client, "admin")
    page = client.get(URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for key in KEYS:
        assert settings.DEFINITIONS[key].label in text
        assert f'name="{key}"' in text
    assert 'href="/reports/classifier"' in text
    assert "分类模型设置" in client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["supervisor", "leader", "operator"])
def test_the_page_is_for_administrators(client, web_login, username):
    web_login(client, username)
    assert client.get(URL).status_code == 403
    assert client.post(URL, data={"classifier.retrain_days": "1"}).status_code in (400, 403)


def test_saving_changes_what_the_next_retraining_uses_audited(client, db, web_login):
    web_login(client, "admin")
    response = client.post(
        URL, data=_form(client, **{"classifier.holdout_days": "21", "classifier.tolerance": "0.05"})
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "分类模型设置已保存" in page
    assert "评估期（天）：14 → 21" in page
    policy = learning.current_policy(db)
    assert (policy.holdout_days, policy.tolerance) == (21, 0.05)
    audits = db.scalars(sa.select(AuditLog).where(AuditLog.action == "settings.update")).all()
    assert len(audits) == 1


def test_a_value_out_of_bounds_is_refused_and_nothing_saved(client, db, web_login):
    web_login(client, "admin")
    response = client.post(URL, data=_form(client, **{"classifier.tolerance": "0.9"}))
    assert response.status_code == 422
    assert "允许下降幅度" in response.get_data(as_text=True)
    assert learning.current_policy(db).tolerance == 0.02
