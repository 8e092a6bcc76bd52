"""The 民情分析 settings page (``/admin/analysis-settings``): administrators read and change
the hot issues' and early warnings' thresholds; the change is checked, audited and read by the
next run; nobody else may."""

import pytest
import sqlalchemy as sa

from hotline import settings
from hotline.models import AuditLog, Setting
from tests.helpers import FORM_TOKEN

URL = "/admin/analysis-settings"
KEYS = [k for k in settings.DEFINITIONS if k.startswith(("hotspot.", "warning."))]


def _form(client, **values):
    token = FORM_TOKEN.search(client.get(URL).get_data(as_text=True)).group(1)
    defaults = {key: str(settings.DEFINITIONS[key].default) for key in KEYS}
    return {"csrf_token": token, **defaults, **values}


def _stored(db):
    return {row.key: row.value for row in db.scalars(sa.select(Setting))}


def _audits(db):
    return db.scalars(sa.select(AuditLog).where(AuditLog.action == "settings.update")).all()


def test_the_page_shows_every_threshold_with_its_label(client, web_login):
    web_login(client, "admin")
    page = client.get(URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for key in KEYS:
        assert settings.DEFINITIONS[key].label in text
        assert f'name="{key}"' in text
    # Decimals may be typed where the setting takes them, whole numbers elsewhere.
    assert 'name="warning.surge_ratio" value="3.0" step="any"' in text
    assert 'name="warning.sudden_count" value="5" step="1"' in text
    assert "民情分析设置" in client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["supervisor", "leader", "dispatcher"])
def test_the_page_is_for_administrators(client, web_login, username):
    web_login(client, username)
    assert client.get(URL).status_code == 403
    assert client.post(URL, data={"warning.sudden_count": "3"}).status_code in (400, 403)


def test_saving_changes_the_thresholds_audited(client, db, web_login):
    web_login(client, "admin")
    response = client.post(
        URL, data=_form(client, **{"warning.sudden_count": "8", "warning.surge_ratio": "4.5"})
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "民情分析设置已保存" in page
    assert "突发事件工单数：5 → 8" in page and "激增倍数：3.0 → 4.5" in page
    assert _stored(db) == {
        "warning.sudden_count": {"value": 8},
        "warning.surge_ratio": {"value": 4.5},
    }
    assert settings.get(db, "warning.sudden_count") == 8
    assert len(_audits(db)) == 1


def test_a_refused_change_names_the_field_keeps_what_was_typed_and_saves_nothing(
    client, db, web_login
):
    web_login(client, "admin")
    response = client.post(
        URL, data=_form(client, **{"hotspot.min_size": "1", "warning.sudden_minutes": "45"})
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert settings.DEFINITIONS["hotspot.min_size"].label in text
    assert 'name="warning.sudden_minutes" value="45"' in text
    assert _stored(db) == {} and _audits(db) == []
