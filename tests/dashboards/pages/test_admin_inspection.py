"""The 质检 settings page (``/admin/inspection-settings``): administrators change how many of
each operator's tickets are sampled a day; checked, audited, read by the next sample; nobody
else may."""

import pytest
import sqlalchemy as sa

from hotline import settings
from hotline.models import AuditLog
from tests.helpers import FORM_TOKEN

URL = "/admin/inspection-settings"


def _form(client, **values):
    token = FORM_TOKEN.search(client.get(URL).get_data(as_text=True)).group(1)
    return {
        "csrf_token": token,
        "inspection.daily_per_operator": "3",
        "inspection.percent": "0",
        **values,
    }


def test_the_page_shows_both_settings(client, web_login):
    web_login(client, "admin")
    text = client.get(URL).get_data(as_text=True)
    assert "每名话务员每日抽检工单数" in text and "抽检比例（%）" in text
    assert 'name="inspection.daily_per_operator" value="3" step="1" min="0" max="100"' in text
    assert "质检设置" in client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["inspector", "supervisor", "operator"])
def test_the_page_is_for_administrators(client, web_login, username):
    web_login(client, username)
    assert client.get(URL).status_code == 403


def test_saving_is_audited_and_read_by_the_sampler(client, db, web_login):
    web_login(client, "admin")
    response = client.post(URL, data=_form(client, **{"inspection.daily_per_operator": "5"}))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "质检设置已保存" in page and "每名话务员每日抽检工单数：3 → 5" in page
    assert settings.get(db, "inspection.daily_per_operator") == 5
    assert db.scalars(sa.select(AuditLog).where(AuditLog.action == "settings.update")).all()


def test_a_value_out_of_range_is_refused(client, db, web_login):
    web_login(client, "admin")
    response = client.post(URL, data=_form(client, **{"inspection.percent": "101"}))
    assert response.status_code == 422
    assert "抽检比例（%）不能大于 100" in response.get_data(as_text=True)
    assert settings.get(db, "inspection.percent") == 0
