"""User accounts (用户管理): every change to a user is one function here, called alike by the
administration's pages, the JSON API, the import and the ``hotline`` command. Each checks its
input (a Chinese message and a stable code per refusal), changes the row, audits old → new
values (``hotline.audit.audit_change``; a password or its hash is never written anywhere but
``users.password_hash``) and flushes; the caller commits.

Bindings (what a user's work is limited to), by role:

============  =============================================  ==============================
role          binding                                        rule
============  =============================================  ==============================
承办人         unit (单位)                                    required; an active unit
网格员         grids (网格)                                   at least one grid-level area
any role      unit                                           optional (an operator's centre,
                                                             a grid worker's street office)
any role      district (区县)                                optional; a district-level area
                                                             (limits a leader to it)
============  =============================================  ==============================

Grids belong to grid workers only: a change of role away from 网格员 drops them.

Passwords (``PASSWORD_RULES``, checked in ``check_password_rules`` only): at least
``PASSWORD_MIN`` characters with letters and digits, not the username. An administrator's
reset gives a temporary password (chosen or generated, shown once) that the user must replace
at their next login (``User.must_change_password``; ``hotline.auth`` holds every page until
then). Deactivation, a reset and a password change end the user's sessions at once.
"""

import re
import secrets
import string

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from hotline import auth, schemas, tabular
from hotline.audit import audit, audit_change, changes, values_of
from hotline.cache import RowCache
from hotline.enums import SERVICE_ROLES, AreaLevel, Channel, Role
from hotline.errors import Conflict, HotlineError, NotFound, ValidationFailed
from hotline.models import Area, Unit, User, UserSession

#: Shortest password accepted.
PASSWORD_MIN = 8
#: Longest password accepted (hashing a megabyte is a denial of service, not a password).
PASSWORD_MAX = 128
#: The password rules in words, shown on every password form.
PASSWORD_RULES = f"密码至少 {PASSWORD_MIN} 位，须同时包含字母和数字，且不能与用户名相同"
#: Length of a generated temporary password.
TEMPORARY_LENGTH = 12
USERNAME_MAX = 64
NAME_MAX = 64
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$", re.ASCII)
USERNAME_RULES = "用户名为 2–64 位字母、数字、下划线、点或连字符，以字母或数字开头"

#: What an audit row records of a user (old → new).
AUDITED = {
    "username": "username",
    "name": "name",
    "role": "role",
    "unit": lambda u: u.unit.code if u.unit else None,
    "grids": lambda u: sorted(g.code for g in u.grids),
    "district": lambda u: u.district.code if u.district else None,
    "phone": "phone",
    "active": "active",
    "must_change_password": "must_change_password",
}


def _refuse(field, message, code):
    raise ValidationFailed(message, code=code, details={field: message})


# -- passwords -----------------------------------------------------------------------------------


def check_password_rules(password, username=None):
    """Refuse a password people could guess, saying which rule it breaks (``PASSWORD_RULES``)."""
    problem = None
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        problem = f"密码至少 {PASSWORD_MIN} 位"
    elif len(password) > PASSWORD_MAX:
        problem = f"密码不能超过 {PASSWORD_MAX} 位"
    elif not any(ch.isascii() and ch.isalpha() for ch in password) or not any(
        ch.isascii() and ch.isdigit() for ch in password
    ):
        problem = "密码须同时包含字母和数字"
    elif username and password.lower() == username.lower():
        problem = "密码不能与用户名相同"
    elif any(ch.isspace() or not ch.isprintable() for ch in password):
        problem = "密码不能包含空格或不可见字符"
    if problem:
        raise ValidationFailed(
            f"{problem}（{PASSWORD_RULES}）",
            code="PASSWORD_TOO_WEAK",
            details={"password": problem},
        )


def temporary_password():
    """A random password that meets the rules (letters and digits, easy to read aloud: no
    0/O or 1/l/I)."""
    letters = "".join(c for c in string.ascii_letters if c not in "OlI")
    digits = "23456789"
    while True:
        word = "".join(secrets.choice(letters + digits) for _ in range(TEMPORARY_LENGTH))
        if any(c in digits for c in word) and any(c in letters for c in word):
            return word


def _password_changed(db, actor, user, action, before_flag, *, keep=None):
    """End the user's sessions (all, or all but ``keep``'s key hash) and audit."""
    ended = auth.end_sessions(db, user, auth.END_PASSWORD, keep=keep)
    diff = changes(
        {"must_change_password": before_flag}, {"must_change_password": user.must_change_password}
    )
    audit(
        db,
        actor,
        action,
        target=user.username,
        payload={"changes": diff, "sessions_ended": ended},
    )
    return ended


def set_password(db, actor, user, password):
    """Give ``user`` a new password (``hotline set-password``); every session of theirs ends
    (they log in again with it). Audited without the password; the caller commits."""
    check_password_rules(password, user.username)
    before = user.must_change_password
    user.set_password(password)
    _password_changed(db, actor, user, "user.password", before)


def reset_password(db, actor, user, password=None):
    """重置密码: an administrator gives ``user`` a temporary password — ``password``, or a
    generated one — which they must change at their next login; every session of theirs
    ends at once. Returns the temporary password (shown once; never stored in clear)."""
    password = password or temporary_password()
    check_password_rules(password, user.username)
    before = user.must_change_password
    user.set_password(password)
    user.must_change_password = True
    _password_changed(db, actor, user, "user.reset_password", before)
    return password


def change_own_password(db, user, old_password, new_password, *, keep_session=None):
    """修改密码: the user replaces their own password, giving the old one. Ends their other
    sessions (``keep_session``: the key hash of the session that asked, which stays open);
    clears ``must_change_password``."""
    if not isinstance(old_password, str) or not user.check_password(old_password):
        # A 422 (not 401): the session is fine, the form is not.
        _refuse("old_password", "原密码不正确", "OLD_PASSWORD_WRONG")
    check_password_rules(new_password, user.username)
    if new_password == old_password:
        _refuse("password", "新密码不能与原密码相同", "PASSWORD_UNCHANGED")
    before = user.must_change_password
    user.set_password(new_password)
    user.must_change_password = False
    return _password_changed(db, user, user, "user.password", before, keep=keep_session)


# -- lookups and bindings -------------------------------------------------------------------------


def get(db, username):
    """The user named ``username``, or a 404."""
    user = db.scalars(sa.select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"用户不存在：{username}", code="USER_NOT_FOUND")
    return user


def _unit(db, code, errors, *, current=None):
    unit = db.scalars(sa.select(Unit).where(Unit.code == code)).first()
    if unit is None:
        errors.setdefault("unit", f"单位不存在：{code}")
    elif not unit.active and unit is not current:
        errors.setdefault("unit", f"单位已停用：{unit.name}（{code}）")
    else:
        return unit
    return None


def _area(db, code, level, field, errors):
    area = db.scalars(sa.select(Area).where(Area.code == code)).first()
    if area is None:
        errors.setdefault(field, f"{level.label}不存在：{code}")
    elif area.level != level:
        errors.setdefault(field, f"{area.name}（{code}）是{area.level.label}，不是{level.label}")
    else:
        return area
    return None


def resolve_bindings(db, role, *, unit=None, grids=(), district=None, current=None):
    """Codes → rows for a user of ``role``, checked against the role's rules (module
    docstring). Refuses with every problem at once (code ``USER_BINDING_INVALID``, details by
    field). ``current``: the user being edited (keeps a unit that has since been deactivated)."""
    errors = {}
    if role in SERVICE_ROLES:
        raise ValidationFailed(
            f"“{role.label}”由系统维护，不能手工创建或改为此角色",
            code="USER_BINDING_INVALID",
            details={"role": "不能选择系统账号角色"},
        )
    unit_row = _unit(db, unit, errors, current=current.unit if current else None) if unit else None
    grid_rows = []
    for code in dict.fromkeys(grids or ()):
        row = _area(db, code, AreaLevel.grid, "grids", errors)
        if row is not None:
            grid_rows.append(row)
    district_row = _area(db, district, AreaLevel.district, "district", errors) if district else None
    if role == Role.unit_handler and not unit and "unit" not in errors:
        errors["unit"] = "承办人须绑定一个承办单位"
    if role == Role.grid_worker and not grids and "grids" not in errors:
        errors["grids"] = "网格员须绑定至少一个网格"
    if role != Role.grid_worker and grids:
        errors.setdefault("grids", f"只有网格员可绑定网格（当前角色：{role.label}）")
    if errors:
        first = next(iter(errors.values()))
        raise ValidationFailed(first, code="USER_BINDING_INVALID", details=errors)
    return unit_row, grid_rows, district_row


def _check_username(db, username):
    if not isinstance(username, str) or not _USERNAME.match(username):
        _refuse("username", USERNAME_RULES, "USERNAME_INVALID")
    taken = db.scalar(sa.select(User.id).where(sa.func.lower(User.username) == username.lower()))
    if taken:
        raise Conflict(
            f"用户名已存在：{username}", code="USERNAME_TAKEN", details={"username": "用户名已存在"}
        )


def _check_name(name):
    if not isinstance(name, str) or not name.strip():
        _refuse("name", "请填写姓名", "USER_NAME_REQUIRED")
    if len(name.strip()) > NAME_MAX:
        _refuse("name", f"姓名不能超过 {NAME_MAX} 字", "USER_NAME_TOO_LONG")
    return name.strip()


# -- creating and editing -------------------------------------------------------------------------


def create_user(
    db,
    actor,
    *,
    username,
    name,
    role,
    password,
    unit=None,
    grids=(),
    district=None,
    phone=None,
    must_change_password=False,
):
    """新建用户 with ``role`` and its bindings (codes). ``must_change_password``: the password
    is a temporary one (an administrator's or an import's). Audited; the caller commits."""
    _check_username(db, username)
    name = _check_name(name)
    check_password_rules(password, username)
    unit_row, grid_rows, district_row = resolve_bindings(
        db, role, unit=unit, grids=grids, district=district
    )
    user = User(
        username=username,
        name=name,
        role=role,
        unit=unit_row,
        grids=grid_rows,
        district=district_row,
        phone=phone or None,
        active=True,
        must_change_password=must_change_password,
    )
    user.set_password(password)
    db.add(user)
    db.flush()
    audit_change(
        db, actor, "user.create", target=username, before=None, after=values_of(user, AUDITED)
    )
    return user


#: What ``update_user`` may change.
EDITABLE = ("name", "role", "unit", "grids", "district", "phone")


def update_user(db, actor, user, values):
    """编辑用户: ``values`` holds the fields to change (``EDITABLE``; bindings as codes, None
    to clear). A change of role keeps the bindings the new role may hold and drops grids from
    a user who is no longer a grid worker. Returns the changes ``{field: [old, new]}``;
    audited; the caller commits."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"不能修改的字段：{'、'.join(sorted(unknown))}", code="USER_FIELD_UNKNOWN"
        )
    before = values_of(user, AUDITED)
    name = _check_name(values["name"]) if "name" in values else user.name
    role = values.get("role", user.role)
    unit = values["unit"] if "unit" in values else before["unit"]
    district = values["district"] if "district" in values else before["district"]
    if "grids" in values:
        grids = values["grids"] or []
    else:
        grids = before["grids"] if role == Role.grid_worker else []
    if role != Role.admin and user.role == Role.admin:
        _last_admin_guard(db, user, "改变其角色")
    unit_row, grid_rows, district_row = resolve_bindings(
        db, role, unit=unit, grids=grids, district=district, current=user
    )
    user.name, user.role = name, role
    user.unit, user.grids, user.district = unit_row, grid_rows, district_row
    if "phone" in values:
        user.phone = values["phone"] or None
    db.flush()
    return audit_change(
        db,
        actor,
        "user.update",
        target=user.username,
        before=before,
        after=values_of(user, AUDITED),
    )


def _last_admin_guard(db, user, what):
    """Refuse to leave the system without an active administrator."""
    others = db.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.role == Role.admin, User.active, User.id != user.id)
    )
    if not others:
        raise Conflict(f"{user.name}是唯一启用的系统管理员，不能{what}", code="LAST_ADMIN")


def deactivate(db, actor, user):
    """停用: ``user`` can no longer log in; every session of theirs ends at once (their API
    tokens stop working too: they belong to an inactive user). Audited; the caller commits.
    Deactivating an inactive user changes nothing."""
    if actor is not None and actor.id == user.id:
        raise Conflict("不能停用自己的账号", code="USER_SELF_DEACTIVATE")
    if not user.active:
        return 0
    if user.role == Role.admin:
        _last_admin_guard(db, user, "停用")
    user.active = False
    ended = auth.end_sessions(db, user, auth.END_DEACTIVATED)
    audit_change(
        db,
        actor,
        "user.deactivate",
        target=user.username,
        before={"active": True},
        after={"active": False},
        extra={"sessions_ended": ended},
    )
    return ended


def activate(db, actor, user):
    """启用: ``user`` may log in again (with their password; no old session revives).
    Audited; the caller commits."""
    if user.active:
        return
    user.active = True
    audit_change(
        db,
        actor,
        "user.activate",
        target=user.username,
        before={"active": False},
        after={"active": True},
    )


# -- reading --------------------------------------------------------------------------------------


def open_sessions(db, user_ids):
    """{user id: number of open sessions} for ``user_ids``."""
    if not user_ids:
        return {}
    rows = db.execute(
        sa.select(UserSession.user_id, sa.func.count())
        .where(UserSession.user_id.in_(list(user_ids)), UserSession.ended_at.is_(None))
        .group_by(UserSession.user_id)
    )
    return dict(rows.all())


def last_logins(db, user_ids):
    """{user id: the moment of their latest login} for ``user_ids``."""
    if not user_ids:
        return {}
    rows = db.execute(
        sa.select(UserSession.user_id, sa.func.max(UserSession.created_at))
        .where(UserSession.user_id.in_(list(user_ids)))
        .group_by(UserSession.user_id)
    )
    return dict(rows.all())


#: Loads what a list of users shows in three queries, not three per user.
LIST_OPTIONS = (
    selectinload(User.unit),
    selectinload(User.grids),
    selectinload(User.district),
)


def search(*, text=None, role=None, unit=None, active=None):
    """The query of users matching a list's filters: ``text`` in the name or username,
    ``role`` (Role), ``unit`` (a unit code), ``active`` (True/False/None for all)."""
    query = sa.select(User).where(User.role.not_in(SERVICE_ROLES))
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(User.name.like(pattern, escape="\\"), User.username.like(pattern, escape="\\"))
        )
    if role is not None:
        query = query.where(User.role == role)
    if unit:
        query = query.join(Unit, Unit.id == User.unit_id).where(Unit.code == unit)
    if active is not None:
        query = query.where(User.active == active)
    return query


# -- parsing (the pages and the JSON API read the same fields) ------------------------------------

#: Most grids one grid worker may hold.
GRIDS_MAX = 200


def parse_grids(fields):
    value = fields.raw("grids")
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 32 for v in value
    ):
        return fields.fail("grids", "网格须为网格编码的列表") or []
    if len(value) > GRIDS_MAX:
        return fields.fail("grids", f"一个网格员最多绑定 {GRIDS_MAX} 个网格") or []
    return value


def parse_user(fields, *, creating):
    """The values of a user's form or JSON body: on creation every field (``username``,
    ``name``, ``role`` required; ``password`` optional: generated when absent), on an edit
    only those present (``unit``/``district``/``phone`` may be null or blank to clear)."""
    values = {}
    if creating:
        values["username"] = fields.text("username", "用户名", required=True, max_len=USERNAME_MAX)
        password = fields.raw("password")
        if password is not None and not isinstance(password, str):
            fields.fail("password", "密码须为文本")
        values["password"] = password or None
    if creating or "name" in fields.data:
        values["name"] = fields.text("name", "姓名", required=True, max_len=NAME_MAX)
    if creating or "role" in fields.data:
        values["role"] = fields.choice("role", "角色", Role, required=True)
    for name, label in (("unit", "单位"), ("district", "区县")):
        if creating or name in fields.data:
            blank = fields.raw(name) in (None, "")
            values[name] = None if blank else fields.code(name, label)
    if creating or "grids" in fields.data:
        values["grids"] = parse_grids(fields)
    if creating or "phone" in fields.data:
        values["phone"] = fields.phone("phone", "电话")
    fields.check()
    return values


def list_filters(args, errors):
    """A user list's query arguments (pages and API): ``q`` (name or username), ``role``,
    ``unit`` (code), ``active`` (``1``/``0``/``all``; default: active only). Bad values go to
    ``errors``."""
    text = (args.get("q") or "").strip()[:64] or None
    role = None
    if args.get("role"):
        role = Role.parse(args["role"])
        if role is None:
            errors["role"] = "角色取值无效"
    unit = (args.get("unit") or "").strip() or None
    if unit and not re.fullmatch(r"[0-9A-Za-z_-]{1,32}", unit):
        errors["unit"] = "单位编码格式不正确"
    active = {"1": True, "0": False, "all": None, "": True}.get(args.get("active", ""), "bad")
    if active == "bad":
        errors["active"] = "状态取值无效，可选：1（启用）、0（停用）、all（全部）"
        active = True
    return {"text": text, "role": role, "unit": unit, "active": active}


def user_to_dict(user, *, open_sessions=0, last_login=None):
    """A user for the administration's API (never the password or its hash)."""
    return {
        "username": user.username,
        "name": user.name,
        "role": {"value": user.role.value, "label": user.role.label},
        "unit": {"code": user.unit.code, "name": user.unit.name} if user.unit else None,
        "grids": [
            {"code": g.code, "name": g.name} for g in sorted(user.grids, key=lambda g: g.code)
        ],
        "district": (
            {"code": user.district.code, "name": user.district.name} if user.district else None
        ),
        "phone": user.phone,
        "active": user.active,
        "must_change_password": user.must_change_password,
        "created_at": user.created_at.isoformat() if user.created_at else None,
        "last_login_at": last_login.isoformat() if last_login else None,
        "open_sessions": open_sessions,
    }


# -- import and export (hotline import users FILE, 用户管理 › 导入用户) ---------------------------

COLUMNS = (
    tabular.Column("username", "用户名", required=True),
    tabular.Column("name", "姓名", required=True),
    tabular.Column("role", "角色", required=True),
    tabular.Column("unit", "单位编码", aliases=("单位",)),
    tabular.Column("grids", "网格编码", aliases=("网格",)),
    tabular.Column("district", "区县编码", aliases=("区县",)),
    tabular.Column("phone", "电话"),
    tabular.Column("status", "状态"),
    tabular.Column("password", "初始密码"),
)
_HEADERS = {c.key: c.header for c in COLUMNS}
#: The roles a person can have (what the administration offers; service accounts apart).
PERSON_ROLES = [role for role in Role if role not in SERVICE_ROLES]
#: A status cell: 启用 (or blank) / 停用.
STATUS = {"": True, "启用": True, "正常": True, "停用": False, "已停用": False}


def _role_of(text):
    for role in PERSON_ROLES:
        if text in (role.value, role.label):
            return role
    return None


def _parse_row(db, file, number, cells, units, problems):
    """One row as the values ``create_user``/``update_user`` take, or None (its problems
    added)."""
    before = len(problems.errors)

    def bad(key, message):
        problems.add(file, number, _HEADERS[key], message)

    username = cells.get("username", "")
    if not _USERNAME.match(username):
        bad("username", USERNAME_RULES)
    name = cells.get("name", "")
    if not name:
        bad("name", "请填写姓名")
    elif len(name) > NAME_MAX:
        bad("name", f"姓名不能超过 {NAME_MAX} 字")
    role = _role_of(cells.get("role", ""))
    if role is None:
        bad("role", "角色无效，可填：" + "、".join(r.label for r in PERSON_ROLES))
    unit_text = cells.get("unit", "")
    unit = None
    if unit_text:
        found = units["code"].get(unit_text) or units["name"].get(unit_text, [])
        found = found if isinstance(found, list) else [found]
        if not found:
            bad("unit", f"单位不存在：{unit_text}（填单位编码或完整名称）")
        elif len(found) > 1:
            bad("unit", f"有 {len(found)} 个单位名为“{unit_text}”，请改填单位编码")
        else:
            unit = found[0].code
    grids = tabular.split_list(cells.get("grids", ""))
    district = cells.get("district", "") or None
    phone = None
    if cells.get("phone"):
        fields = schemas.Fields({"phone": cells["phone"]})
        phone = fields.phone("phone", "电话")
        if fields.errors:
            bad("phone", fields.errors["phone"])
    status = cells.get("status", "")
    if status not in STATUS:
        bad("status", f"状态应填“启用”或“停用”（现为“{status}”）")
    if role is not None and len(problems.errors) == before:
        existing = db.scalars(sa.select(User).where(User.username == username)).first()
        try:
            resolve_bindings(db, role, unit=unit, grids=grids, district=district, current=existing)
        except ValidationFailed as refused:
            for key, message in refused.details.items():
                bad(key, message)
    if len(problems.errors) > before:
        return None
    return {
        "username": username,
        "values": {
            "name": name,
            "role": role,
            "unit": unit,
            "grids": grids,
            "district": district,
            "phone": phone,
        },
        "active": STATUS[status],
        "password": cells.get("password", ""),
    }


def load_table(db, actor, sources, options):
    """Create or update users by username, all or nothing. A new user needs 初始密码 (checked
    against the rules) and must change it at first login; an existing user's password is
    never touched by an import (the column is ignored for them)."""
    problems = tabular.Problems()
    units = {"code": {}, "name": {}}
    for unit in db.scalars(sa.select(Unit)):
        units["code"][unit.code] = unit
        units["name"].setdefault(unit.name, []).append(unit)
    existing = {u.username: u for u in db.scalars(sa.select(User))}
    lower = {name.lower(): name for name in existing}
    seen = {}
    rows = []
    for file, data in sources:
        table = tabular.read(data, file, COLUMNS)
        for number, cells in table.rows:
            row = _parse_row(db, file, number, cells, units, problems)
            if row is None:
                continue
            username = row["username"]
            if username.lower() in seen:
                problems.add(
                    file, number, "用户名", f"与第 {seen[username.lower()]} 行的用户名重复"
                )
                continue
            seen[username.lower()] = number
            if username not in existing:
                if username.lower() in lower:
                    problems.add(
                        file,
                        number,
                        "用户名",
                        f"已有用户 {lower[username.lower()]}（仅大小写不同）",
                    )
                    continue
                if not row["password"]:
                    problems.add(file, number, "初始密码", "新用户须填写初始密码")
                    continue
                try:
                    check_password_rules(row["password"], username)
                except ValidationFailed as refused:
                    problems.add(file, number, "初始密码", refused.details["password"])
                    continue
            rows.append((file, number, row))
    problems.check()
    result = tabular.ImportResult(kind="users")
    for file, number, row in rows:
        try:
            _apply_row(db, actor, existing.get(row["username"]), row, result)
        except HotlineError as refused:
            problems.add(file, number, None, refused.message)
    problems.check()
    return result


def _apply_row(db, actor, user, row, result):
    values = row["values"]
    if user is None:
        user = create_user(
            db,
            actor,
            username=row["username"],
            password=row["password"],
            must_change_password=True,
            **values,
        )
        if not row["active"]:
            deactivate(db, actor, user)
        result.created += 1
        result.note(f"新增 用户 {user.username} {user.name}（{user.role.label}）")
        return
    diff = dict(update_user(db, actor, user, values))
    if row["active"] != user.active:
        (activate if row["active"] else deactivate)(db, actor, user)
        diff["active"] = [not row["active"], row["active"]]
    if not diff:
        result.unchanged += 1
        return
    result.updated += 1
    labels = {
        "name": "姓名",
        "role": "角色",
        "unit": "单位",
        "grids": "网格",
        "district": "区县",
        "phone": "电话",
        "active": "状态",
    }
    changed = "、".join(labels.get(k, k) for k in diff)
    result.note(f"更新 用户 {user.username} {user.name}：{changed}")


def export_table(db):
    """Every user, in the columns the import reads (never a password)."""
    rows = []
    for user in db.scalars(
        sa.select(User).where(User.role.not_in(SERVICE_ROLES)).order_by(User.username)
    ):
        rows.append(
            {
                "username": user.username,
                "name": user.name,
                "role": user.role.label,
                "unit": user.unit.code if user.unit else "",
                "grids": sorted(g.code for g in user.grids),
                "district": user.district.code if user.district else "",
                "phone": user.phone or "",
                "status": "启用" if user.active else "停用",
                "password": "",
            }
        )
    return tabular.write_xlsx(COLUMNS, rows, title="用户")


IMPORTER = tabular.Importer(
    kind="users",
    label="用户",
    load=load_table,
    export=export_table,
    columns=COLUMNS,
)


# -- service accounts (Role.portal): the channels citizens' own requests arrive through ----------

#: The 市民端's accounts, one per channel a citizen uses: channel → (username, name).
PORTAL_ACCOUNTS = {
    Channel.web: ("portal-web", "市民端（网站）"),
    Channel.wechat: ("portal-wechat", "市民端（微信）"),
    Channel.app: ("portal-app", "市民端（App）"),
}
#: A password hash no password matches (service accounts never log in; ``auth`` refuses them
#: by role as well).
NO_PASSWORD = "!"


#: Service accounts by username: asked at every citizen's submission, never edited.
_service_accounts = RowCache(ttl=300)


def service_account(db, username, name):
    """The service account ``username`` (``Role.portal``), made on first use. Two processes
    making it at once: the unique username keeps one, and the loser reads it."""
    query = sa.select(User).where(User.username == username)
    user = _service_accounts.get(db, username, lambda s: s.scalars(query).first())
    if user is not None:
        return user
    try:
        with db.begin_nested():
            user = User(username=username, name=name, role=Role.portal, password_hash=NO_PASSWORD)
            db.add(user)
    except IntegrityError:
        user = db.scalars(query).one()
    return user


def portal_account(db, channel):
    """The account the 市民端 receives a citizen's request of ``channel`` with."""
    username, name = PORTAL_ACCOUNTS[channel]
    return service_account(db, username, name)
