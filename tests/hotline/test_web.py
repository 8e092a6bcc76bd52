"""Page infrastructure (hotline/web.py): each role's home page, the menu of the role's pages,
and ``page_for`` refusing other roles."""

import pytest

ROLE_HOMES = {
    "operator": "/console",
    "dispatcher": "/dispatch",
    "dongguan": "/inbox",
    "grid": "/grid",
    "callback": "/callbacks",
    "supervisor": "/supervision",
    "leader": "/boards",
    "admin": "/admin/",
    "inspector": "/inspection",
}


@pytest.mark.parametrize("username, home", ROLE_HOMES.items())
def test_each_role_lands_on_its_own_page(client, db, username, home, web_login):
    response = web_login(client, username)
    assert response.status_code == 302
    assert response.headers["Location"] == home
    assert client.get("/").headers["Location"] == home
    assert client.get(home).status_code == 200


def test_menu_lists_only_the_pages_of_the_role(client, db, web_login):
    web_login(client, "leader")
    page = client.get("/reports/ranking").get_data(as_text=True)
    assert "月度排名" in page and "三率查询" in page
    assert "受理台" not in page and "派单台" not in page


def test_page_for_refuses_a_logged_in_user_of_another_role_with_403(client, db, web_login):
    web_login(client, "operator")
    response = client.get("/reports/ranking")
    assert response.status_code == 403
    assert "您无权访问此页面或工单" in response.get_data(as_text=True)
