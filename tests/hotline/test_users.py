"""User accounts (hotline/users.py): the operations, the password rules and the users import."""

import io

import openpyxl
import pytest
import sqlalchemy as sa

from hotline import auth, tabular, users
from hotline.enums import Role
from hotline.errors import Conflict, HotlineError, ValidationFailed
from hotline.models import AuditLog, User, UserSession
from hotline.users import IMPORTER

GRID_A, GRID_B = "370705001001001", "370705001001002"


def audits(db, action, target=None):
    query = sa.select(AuditLog).where(AuditLog.action == action)
    if target:
        query = query.where(AuditLog.target == target)
    return db.scalars(query.order_by(AuditLog.id)).all()


def create(db, actor, **overrides):
    values = {
        "username": "zhang.san",
        "name": "张三",
        "role": Role.unit_handler,
        "password": "temp-pass-1",
        "unit": "U-CGJ",
    }
    values.update(overrides)
    return users.create_user(db, actor, **values)


def open_session(db, user, key="k"):
    db.add(UserSession(user_id=user.id, key_hash=auth.key_hash(key + user.username)))
    db.flush()


# -- password rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1", "密码至少 8 位"),
        (None, "密码至少 8 位"),
        ("onlyletters", "密码须同时包含字母和数字"),
        ("1234567890", "密码须同时包含字母和数字"),
        ("Zhang.San1", None),
        ("with space 1", "密码不能包含空格或不可见字符"),
        ("x1" * 65, "密码不能超过 128 位"),
    ],
)
def test_password_rules_are_stated_in_chinese(password, problem):
    if problem is None:
        users.check_password_rules(password, "zhang.san")
        return
    with pytest.raises(ValidationFailed) as caught:
        users.check_password_rules(password, "zhang.san")
    assert caught.value.code == "PASSWORD_TOO_WEAK"
    assert caught.value.details == {"password": problem}
    assert users.PASSWORD_RULES in caught.value.message


def test_a_password_equal_to_the_username_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        users.check_password_rules("Zhangsan01", "zhangsan01")
    assert caught.value.details == {"password": "密码不能与用户名相同"}


def test_temporary_passwords_meet_the_rules():
    words = {users.temporary_password() for _ in range(50)}
    assert len(words) == 50
    for word in words:
        users.check_password_rules(word, "someone")


# -- create ---------------------------------------------------------------------------------------


def test_create_a_unit_handler_is_audited_without_the_password(db, user):
    admin = user("admin")
    created = create(db, admin, phone="13905361234", must_change_password=True)
    assert created.unit.code == "U-CGJ" and created.must_change_password
    assert created.check_password("temp-pass-1")
    (row,) = audits(db, "user.create", "zhang.san")
    assert row.actor_id == admin.id
    changes = row.payload["changes"]
    assert changes["role"] == [None, "unit_handler"]
    assert changes["unit"] == [None, "U-CGJ"]
    assert changes["phone"] == [None, "13905361234"]
    assert "temp-pass-1" not in str(row.payload) and "password_hash" not in changes


@pytest.mark.parametrize(
    ("overrides", "code", "field", "message"),
    [
        (
            {"role": Role.unit_handler, "unit": None},
            "USER_BINDING_INVALID",
            "unit",
            "承办人须绑定一个承办单位",
        ),
        ({"unit": "U-NOPE"}, "USER_BINDING_INVALID", "unit", "单位不存在：U-NOPE"),
        (
            {"role": Role.grid_worker, "unit": None},
            "USER_BINDING_INVALID",
            "grids",
            "网格员须绑定至少一个网格",
        ),
        (
            {"role": Role.grid_worker, "grids": ["370705001"]},
            "USER_BINDING_INVALID",
            "grids",
            "东关街道（370705001）是街道乡镇，不是网格",
        ),
        (
            {"role": Role.dispatcher, "grids": [GRID_A]},
            "USER_BINDING_INVALID",
            "grids",
            "只有网格员可绑定网格（当前角色：派单员）",
        ),
        (
            {"role": Role.leader, "unit": None, "district": "370705001"},
            "USER_BINDING_INVALID",
            "district",
            "东关街道（370705001）是街道乡镇，不是区县",
        ),
        ({"username": "a"}, "USERNAME_INVALID", "username", users.USERNAME_RULES),
        ({"username": "张三"}, "USERNAME_INVALID", "username", users.USERNAME_RULES),
        ({"username": "water"}, "USERNAME_TAKEN", "username", "用户名已存在"),
        ({"username": "WATER"}, "USERNAME_TAKEN", "username", "用户名已存在"),
        ({"name": "  "}, "USER_NAME_REQUIRED", "name", "请填写姓名"),
        (
            {"password": "zhang.san1", "username": "zhang.san1"},
            "PASSWORD_TOO_WEAK",
            "password",
            "密码不能与用户名相同",
        ),
    ],
)
def test_create_refusals_name_the_field_and_change_nothing(
    db, user, overrides, code, field, message
):
    before = db.scalar(sa.select(sa.func.count()).select_from(User))
    with pytest.raises(HotlineError) as caught:
        create(db, user("admin"), **overrides)
    assert caught.value.code == code
    assert caught.value.details[field] == message
    assert db.scalar(sa.select(sa.func.count()).select_from(User)) == before
    assert audits(db, "user.create") == []


def test_an_inactive_unit_cannot_be_bound_but_stays_on_its_users(db, user):
    water = user("water")
    water.unit.active = False
    db.flush()
    with pytest.raises(ValidationFailed) as caught:
        create(db, user("admin"), unit="U-WATER")
    assert caught.value.details["unit"].startswith("单位已停用")
    # Editing a handler of the deactivated unit keeps it.
    users.update_user(db, user("admin"), water, {"phone": "13905361234"})
    assert water.unit.code == "U-WATER"


# -- edit -----------------------------------------------------------------------------------------


def test_edit_audits_old_and_new_values(db, user):
    admin = user("admin")
    grid = user("grid")
    diff = users.update_user(
        db, admin, grid, {"name": "杨磊磊", "grids": [GRID_B], "phone": "0536-8123456"}
    )
    assert diff == {
        "grids": [[GRID_A, GRID_B], [GRID_B]],
        "name": ["杨磊", "杨磊磊"],
        "phone": [None, "0536-8123456"],
    }
    (row,) = audits(db, "user.update", "grid")
    assert row.payload["changes"] == diff


def test_a_change_of_role_drops_grids_and_an_empty_edit_is_not_audited(db, user):
    admin, grid = user("admin"), user("grid")
    diff = users.update_user(db, admin, grid, {"role": Role.dispatcher})
    assert diff["role"] == ["grid_worker", "dispatcher"]
    assert diff["grids"] == [[GRID_A, GRID_B], []]
    assert grid.grids == []
    assert users.update_user(db, admin, grid, {"name": grid.name}) == {}
    assert len(audits(db, "user.update", "grid")) == 1


def test_a_refused_edit_changes_nothing(db, user):
    water = user("water")
    with pytest.raises(ValidationFailed):
        users.update_user(db, user("admin"), water, {"name": "新名字", "role": Role.grid_worker})
    db.refresh(water)
    assert water.name == "孙立伟" and water.role == Role.unit_handler
    assert audits(db, "user.update") == []


def test_the_last_administrator_stays(db, user):
    admin = user("admin")
    with pytest.raises(Conflict) as caught:
        users.update_user(db, admin, admin, {"role": Role.dispatcher})
    assert caught.value.code == "LAST_ADMIN"
    other = create(db, admin, username="admin2", role=Role.admin, unit=None)
    with pytest.raises(Conflict) as caught:
        users.deactivate(db, admin, admin)
    assert caught.value.code == "USER_SELF_DEACTIVATE"
    users.deactivate(db, admin, other)
    with pytest.raises(Conflict) as caught:
        users.deactivate(db, None, admin)
    assert caught.value.code == "LAST_ADMIN"


# -- deactivate, activate -------------------------------------------------------------------------


def test_deactivate_ends_sessions_and_activate_revives_none(db, user):
    admin, water = user("admin"), user("water")
    open_session(db, water, "a")
    open_session(db, water, "b")
    assert users.deactivate(db, admin, water) == 2
    assert not water.active
    (row,) = audits(db, "user.deactivate", "water")
    assert row.payload == {"changes": {"active": [True, False]}, "sessions_ended": 2}
    assert users.deactivate(db, admin, water) == 0  # already: nothing more
    users.activate(db, admin, water)
    assert water.active
    (row,) = audits(db, "user.activate", "water")
    assert row.payload == {"changes": {"active": [False, True]}}
    still_open = db.scalar(
        sa.select(sa.func.count())
        .select_from(UserSession)
        .where(UserSession.user_id == water.id, UserSession.ended_at.is_(None))
    )
    assert still_open == 0


# -- passwords ------------------------------------------------------------------------------------


def test_reset_password_generates_one_sets_the_flag_and_ends_sessions(db, user):
    admin, water = user("admin"), user("water")
    open_session(db, water)
    temporary = users.reset_password(db, admin, water)
    assert water.check_password(temporary) and water.must_change_password
    (row,) = audits(db, "user.reset_password", "water")
    assert row.payload == {
        "changes": {"must_change_password": [False, True]},
        "sessions_ended": 1,
    }
    assert temporary not in str(row.payload)


def test_reset_password_to_a_chosen_weak_one_is_refused(db, user):
    water = user("water")
    old_hash = water.password_hash
    with pytest.raises(ValidationFailed):
        users.reset_password(db, user("admin"), water, "weakpass")
    assert water.password_hash == old_hash and not water.must_change_password


def test_change_own_password_keeps_this_session_and_ends_the_others(db, user):
    water = user("water")
    users.reset_password(db, user("admin"), water, "Temp-2026x")
    db.add(UserSession(user_id=water.id, key_hash=auth.key_hash("this")))
    db.add(UserSession(user_id=water.id, key_hash=auth.key_hash("other")))
    db.flush()
    ended = users.change_own_password(
        db, water, "Temp-2026x", "Mine-2026y", keep_session=auth.key_hash("this")
    )
    assert ended == 1 and not water.must_change_password
    assert water.check_password("Mine-2026y")
    open_keys = db.scalars(
        sa.select(UserSession.key_hash).where(
            UserSession.user_id == water.id, UserSession.ended_at.is_(None)
        )
    ).all()
    assert open_keys == [auth.key_hash("this")]
    row = audits(db, "user.password", "water")[-1]
    assert row.payload == {
        "changes": {"must_change_password": [True, False]},
        "sessions_ended": 1,
    }
    assert row.actor_id == water.id


@pytest.mark.parametrize(
    ("old", "new", "code", "field"),
    [
        ("wrong-1234", "Mine-2026y", "OLD_PASSWORD_WRONG", "old_password"),
        ("demo-12345", "demo-12345", "PASSWORD_UNCHANGED", "password"),
        ("demo-12345", "short", "PASSWORD_TOO_WEAK", "password"),
    ],
)
def test_change_own_password_refusals(db, user, old, new, code, field):
    water = user("water")
    old_hash = water.password_hash
    with pytest.raises(ValidationFailed) as caught:
        users.change_own_password(db, water, old, new)
    assert caught.value.code == code and field in caught.value.details
    assert water.password_hash == old_hash


# -- import and export ----------------------------------------------------------------------------

HEADER = "用户名,姓名,角色,单位编码,网格编码,区县编码,电话,状态,初始密码\n"


def csv_source(*lines, name="users.csv"):
    return [(name, (HEADER + "\n".join(lines) + "\n").encode("utf-8"))]


GOOD = (
    "li.si,李四,承办人,U-CGJ,,,13905361234,启用,Start-2026a",
    f"wang.wu,王五,grid_worker,东关街道办事处,{GRID_A}、{GRID_B},370705,,,Start-2026b",
    "water,孙立伟,承办人,U-WATER,,,0536-8123456,停用,ignored",
)


def test_import_dry_run_changes_nothing(db):
    result = tabular.run(db, None, IMPORTER, csv_source(*GOOD), dry_run=True)
    assert (result.created, result.updated, result.unchanged) == (2, 1, 0)
    assert db.scalars(sa.select(User).where(User.username == "li.si")).first() is None
    assert db.scalars(sa.select(User).where(User.username == "water")).one().active


def test_import_creates_updates_and_is_idempotent(db, user):
    admin = user("admin")
    old_hash = user("water").password_hash
    result = tabular.run(db, admin, IMPORTER, csv_source(*GOOD))
    assert (result.created, result.updated, result.unchanged) == (2, 1, 0)
    assert "新增 用户 li.si 李四（承办人）" in result.changes
    assert any(line.startswith("更新 用户 water") and "状态" in line for line in result.changes)
    assert not any("Start-2026" in line for line in result.changes)
    li = user("li.si")
    assert li.must_change_password and li.check_password("Start-2026a")
    wang = user("wang.wu")
    assert wang.unit.code == "U-S-370705001" and sorted(g.code for g in wang.grids) == [
        GRID_A,
        GRID_B,
    ]
    water = user("water")
    assert not water.active and water.password_hash == old_hash
    assert audits(db, "user.create", "li.si")[0].actor_id == admin.id
    assert audits(db, "import.users")

    again = tabular.run(db, admin, IMPORTER, csv_source(*GOOD))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_import_reports_every_row_error_and_saves_nothing(db):
    lines = (
        "li.si,李四,承办人,U-CGJ,,,,,Start-2026a",
        "li.si,李四,承办人,U-CGJ,,,,,Start-2026a",
        "new.one,新人,承办人,,,,,,Start-2026c",
        "new.two,新人二,厨师,U-CGJ,,,,,Start-2026d",
        "new.three,新人三,承办人,U-CGJ,,,,,",
        "new.four,新人四,承办人,U-CGJ,,,12,暂停,weak",
        f"new.five,新人五,网格员,,{GRID_A} 370705,,,,Start-2026e",
    )
    with pytest.raises(tabular.ImportRefused) as caught:
        tabular.run(db, None, IMPORTER, csv_source(*lines))
    found = {(e.row, e.column): e.message for e in caught.value.errors}
    assert found[(3, "用户名")] == "与第 2 行的用户名重复"
    assert found[(4, "单位编码")] == "承办人须绑定一个承办单位"
    assert found[(5, "角色")].startswith("角色无效")
    assert found[(6, "初始密码")] == "新用户须填写初始密码"
    assert (7, "电话") in found and (7, "状态") in found
    assert found[(8, "网格编码")].endswith("（370705）是区县，不是网格")
    assert db.scalars(sa.select(User).where(User.username == "li.si")).first() is None


def test_import_checks_a_new_users_password(db):
    with pytest.raises(tabular.ImportRefused) as caught:
        tabular.run(db, None, IMPORTER, csv_source("li.si,李四,承办人,U-CGJ,,,,,onlyletters"))
    (error,) = caught.value.errors
    assert (error.row, error.column, error.message) == (2, "初始密码", "密码须同时包含字母和数字")


def test_export_reads_back_unchanged_and_holds_no_password(db):
    data = IMPORTER.export(db)
    book = openpyxl.load_workbook(io.BytesIO(data))
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == [c.header for c in users.COLUMNS]
    grid = next(r for r in rows if r[0] == "grid")
    assert grid[2] == "网格员" and grid[4] == f"{GRID_A}、{GRID_B}" and grid[7] == "启用"
    assert all(r[8] in (None, "") for r in rows[1:])
    result = tabular.run(db, None, IMPORTER, [("用户.xlsx", data)], dry_run=True)
    assert (result.created, result.updated) == (0, 0)
    assert result.unchanged == len(rows) - 1
