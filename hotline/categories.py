"""The category tree (事项分类): how an administrator changes it, and its import and export.

Three levels, codes hierarchical: 01 (一级) → 0101 (二级) → 010101 (三级), so a category's
ancestors are its code's prefixes. Routing (``dispatch.routing``), SLA policy matching
(``dispatch.sla``), the classifier's utility flag and every filter by category rely on that,
so every operation here keeps it true:

- ``add``: a child gets its parent's code plus the next free two digits (or a code given
  that fits); a child of a utility class is a utility class too, as the seed makes it.
- ``move``: a category moves under another parent of the level above; its code and its
  whole subtree's codes are derived again from the new parent's. Tickets, routing rules, SLA
  policies and knowledge articles refer to categories by id: they follow the move, and the
  category now also falls under the new parent's rules. The old → new codes are audited.
- ``set_active``: deactivating a category deactivates its subtree (an active category never
  sits under an inactive one); intake, dispatch and reclassification refuse it
  (``CATEGORY_INACTIVE``, ``dispatch.operations``), pickers no longer offer it, tickets keep
  it and every page still shows its name. Reactivating restores the subtree, and is refused
  under an inactive parent.
- ``set_utility``: 水电气热, for the category and its subtree.

Every change is audited old → new and bumps ``reference.CATEGORIES`` in its transaction, so
the suggester and the cached lookups of every process follow within seconds.

Imports (``IMPORTER``, kind ``categories``) read either the competition's tree (附件1.csv:
一级分类, 二级分类, 三级分类 — names only: existing nodes are matched by their name path,
new ones get generated codes) or this module's own export (编码, 名称, 上级编码, 水电气热,
状态, matched by code). Running one again changes nothing.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from hotline import reference, tabular
from hotline.audit import audit_change, values_of
from hotline.errors import NotFound, ValidationFailed
from hotline.models import Category, Ticket
from hotline.schemas import Fields

#: 一级, 二级, 三级.
MAX_LEVEL = 3
LEVEL_LABELS = {1: "一级分类", 2: "二级分类", 3: "三级分类"}
NAME_MAX = 50
#: Two digits per level: 01 … 99 children under one parent.
LAST_NUMBER = 99
ACTIVE_LABEL = "启用"
INACTIVE_LABEL = "停用"

AUDITED = {
    "code": "code",
    "name": "name",
    "level": "level",
    "parent": lambda c: c.code[:-2] or None,
    "utility": "utility",
    "active": "active",
}


def _refuse(message, code, field=None):
    raise ValidationFailed(message, code=code, details={field: message} if field else {})


# -- reading ------------------------------------------------------------------------------------


def load(session, code):
    """The category with ``code`` (active or not), or a 404."""
    row = None
    if isinstance(code, str) and code:
        row = session.scalars(sa.select(Category).where(Category.code == code)).first()
    if row is None:
        raise NotFound(f"事项分类不存在：{code}", code="CATEGORY_NOT_FOUND")
    return row


def all_categories(session):
    return session.scalars(sa.select(Category).order_by(Category.code)).all()


def subtree(session, category):
    """The category and every category below it, by code."""
    return session.scalars(
        sa.select(Category)
        .where(Category.code.startswith(category.code, autoescape=True))
        .order_by(Category.code)
    ).all()


def path_names(category, by_code):
    """The names from the top of the tree down to ``category``."""
    return tuple(by_code[category.code[:n]].name for n in range(2, len(category.code) + 1, 2))


@dataclass
class Node:
    """One category of the tree as pages and the API show it."""

    category: Category
    children: list
    #: Tickets filed under this category or any below it.
    tickets: int = 0

    def as_dict(self):
        c = self.category
        return {
            "code": c.code,
            "name": c.name,
            "level": c.level,
            "level_label": LEVEL_LABELS[c.level],
            "parent": c.code[:-2] or None,
            "utility": c.utility,
            "active": c.active,
            "tickets": self.tickets,
            "children": [child.as_dict() for child in self.children],
        }


def tree(session, *, with_counts=True):
    """The whole tree (inactive categories included) as top-level ``Node``s, by code."""
    rows = all_categories(session)
    nodes = {row.code: Node(row, []) for row in rows}
    counts = {}
    if with_counts:
        counts = dict(
            session.execute(
                sa.select(Ticket.category_id, sa.func.count())
                .where(Ticket.category_id.is_not(None))
                .group_by(Ticket.category_id)
            ).all()
        )
    top = []
    for row in rows:
        node = nodes[row.code]
        parent = nodes.get(row.code[:-2])
        (parent.children if parent else top).append(node)
        own = counts.get(row.id, 0)
        for n in range(2, len(row.code) + 1, 2):
            if row.code[:n] in nodes:
                nodes[row.code[:n]].tickets += own
    return top


# -- checks ---------------------------------------------------------------------------------------


def check_name(session, name, parent, *, exclude=None):
    """The name stripped, or a refusal: empty, too long, or taken by a sibling (names under
    one parent are unique: an import matches categories by their name path)."""
    name = (name or "").strip() if isinstance(name, str) else None
    if not name:
        _refuse("请填写分类名称", "CATEGORY_NAME_REQUIRED", "name")
    if len(name) > NAME_MAX:
        _refuse(
            f"分类名称不能超过 {NAME_MAX} 字（现为 {len(name)} 字）",
            "CATEGORY_NAME_TOO_LONG",
            "name",
        )
    if any(not ch.isprintable() for ch in name):
        _refuse("分类名称含有不可见控制字符", "CATEGORY_NAME_INVALID", "name")
    siblings = sa.select(Category).where(
        Category.parent_id == parent.id if parent else Category.parent_id.is_(None),
        Category.name == name,
    )
    if exclude is not None:
        siblings = siblings.where(Category.id != exclude.id)
    taken = session.scalars(siblings).first()
    if taken is not None:
        where = f"“{parent.name}”下" if parent else "一级分类中"
        _refuse(f"{where}已有名为“{name}”的分类（{taken.code}）", "CATEGORY_NAME_TAKEN", "name")
    return name


def next_code(session, parent, *, taken=()):
    """The code of a new child of ``parent`` (None: a 一级 class): the parent's code and the
    number after its children's highest (a code freed by a move is not handed out again
    while a higher one exists), or the first free one when 99 is used."""
    prefix = parent.code if parent else ""
    codes = set(
        session.scalars(
            sa.select(Category.code).where(
                Category.code.startswith(prefix, autoescape=True),
                sa.func.length(Category.code) == len(prefix) + 2,
            )
        )
    ) | {code for code in taken if len(code) == len(prefix) + 2 and code.startswith(prefix)}
    numbers = {int(code[-2:]) for code in codes if code[-2:].isdigit()}
    following = max(numbers, default=0) + 1
    if following <= LAST_NUMBER:
        return f"{prefix}{following:02d}"
    for number in range(1, LAST_NUMBER + 1):
        if number not in numbers:
            return f"{prefix}{number:02d}"
    where = f"“{parent.name}”" if parent else "一级分类"
    _refuse(f"{where}下的编码已用完（最多 {LAST_NUMBER} 个下级分类）", "CATEGORY_CODES_EXHAUSTED")


def _check_code(session, code, parent):
    level = parent.level + 1 if parent else 1
    prefix = parent.code if parent else ""
    if (
        not isinstance(code, str)
        or not code.isascii()
        or not code.isdigit()
        or len(code) != 2 * level
        or not code.startswith(prefix)
        or code.endswith("00")
    ):
        expected = f"“{prefix}”加两位数字" if prefix else "两位数字"
        _refuse(f"分类编码应为{expected}（01–99），现为“{code}”", "CATEGORY_CODE_INVALID", "code")
    if session.scalars(sa.select(Category.id).where(Category.code == code)).first():
        _refuse(f"分类编码 {code} 已被使用", "CATEGORY_CODE_TAKEN", "code")
    return code


# -- changes --------------------------------------------------------------------------------------


def add(session, actor, *, name, parent=None, code=None, utility=None, bump=True):
    """A new active category under ``parent`` (None: a 一级 class). ``utility`` None: as its
    parent."""
    if parent is not None and parent.level >= MAX_LEVEL:
        _refuse(f"“{parent.name}”是三级分类，不能再添加下级分类", "CATEGORY_TOO_DEEP", "parent")
    if parent is not None and not parent.active:
        _refuse(f"上级分类“{parent.name}”已停用，请先启用它", "CATEGORY_PARENT_INACTIVE", "parent")
    name = check_name(session, name, parent)
    code = next_code(session, parent) if code is None else _check_code(session, code, parent)
    if utility is None:
        utility = parent.utility if parent else False
    row = Category(
        code=code,
        name=name,
        level=parent.level + 1 if parent else 1,
        parent=parent,
        utility=bool(utility),
        active=True,
    )
    session.add(row)
    session.flush()
    audit_change(
        session, actor, "category.create", target=code, before=None, after=values_of(row, AUDITED)
    )
    if bump:
        reference.bump(session, reference.CATEGORIES)
    return row


def rename(session, actor, category, name, *, bump=True):
    """A new name (unique among its siblings). Returns whether it changed."""
    name = check_name(session, name, category.parent, exclude=category)
    if name == category.name:
        return False
    before = values_of(category, AUDITED)
    category.name = name
    audit_change(
        session,
        actor,
        "category.rename",
        target=category.code,
        before=before,
        after=values_of(category, AUDITED),
    )
    if bump:
        reference.bump(session, reference.CATEGORIES)
    return True


def move(session, actor, category, parent):
    """Move ``category`` and its subtree under ``parent`` (a category of the level above),
    deriving every code of the subtree again. Returns ``{old code: new code}``."""
    if category.level == 1:
        _refuse("一级分类没有上级，不能移动", "CATEGORY_MOVE_TOP", "parent")
    if parent is None:
        _refuse("请选择新的上级分类", "CATEGORY_PARENT_REQUIRED", "parent")
    if parent.code.startswith(category.code):
        _refuse(
            f"不能把“{category.name}”移动到它自身或它的下级分类之下",
            "CATEGORY_MOVE_INTO_ITSELF",
            "parent",
        )
    wanted = category.level - 1
    if parent.level != wanted:
        _refuse(
            f"“{category.name}”是{LEVEL_LABELS[category.level]}，只能移动到{LEVEL_LABELS[wanted]}"
            f"之下（“{parent.name}”是{LEVEL_LABELS[parent.level]}）",
            "CATEGORY_MOVE_LEVEL",
            "parent",
        )
    if parent.id == category.parent_id:
        _refuse(f"“{category.name}”已在“{parent.name}”之下", "CATEGORY_MOVE_UNCHANGED", "parent")
    if category.active and not parent.active:
        _refuse(
            f"上级分类“{parent.name}”已停用，不能把启用中的分类移到其下",
            "CATEGORY_PARENT_INACTIVE",
            "parent",
        )
    check_name(session, category.name, parent, exclude=category)
    old = category.code
    new = next_code(session, parent)
    before = values_of(category, AUDITED)
    recoded = {}
    for row in subtree(session, category):
        recoded[row.code] = new + row.code[len(old) :]
        row.code = recoded[row.code]
    category.parent = parent
    session.flush()
    audit_change(
        session,
        actor,
        "category.move",
        target=new,
        before=before,
        after=values_of(category, AUDITED),
        extra={"recoded": recoded},
    )
    reference.bump(session, reference.CATEGORIES)
    return recoded


def set_active(session, actor, category, active, *, cascade=True, bump=True):
    """Deactivate ``category`` with its subtree, or reactivate it (with its subtree unless
    ``cascade`` is false: an import sets each row's state itself). Returns the codes whose
    state changed."""
    active = bool(active)
    if active and category.level > 1:
        parent = category.parent
        if parent is not None and not parent.active:
            _refuse(
                f"上级分类“{parent.name}”已停用，请先启用上级分类",
                "CATEGORY_PARENT_INACTIVE",
                "active",
            )
    rows = subtree(session, category) if (cascade or not active) else [category]
    changed = [row for row in rows if row.active != active]
    if not changed:
        return []
    before = values_of(category, AUDITED)
    for row in changed:
        row.active = active
    audit_change(
        session,
        actor,
        "category.activate" if active else "category.deactivate",
        target=category.code,
        before=before,
        after=values_of(category, AUDITED),
        extra={"subtree": [row.code for row in changed]},
    )
    if bump:
        reference.bump(session, reference.CATEGORIES)
    return [row.code for row in changed]


def set_utility(session, actor, category, utility, *, cascade=True, bump=True):
    """Mark (or unmark) ``category`` — and its subtree unless ``cascade`` is false — as a
    water, power, gas or heating class (水电气热). Returns the codes changed."""
    utility = bool(utility)
    rows = subtree(session, category) if cascade else [category]
    changed = [row for row in rows if row.utility != utility]
    if not changed:
        return []
    before = values_of(category, AUDITED)
    for row in changed:
        row.utility = utility
    audit_change(
        session,
        actor,
        "category.utility",
        target=category.code,
        before=before,
        after=values_of(category, AUDITED),
        extra={"subtree": [row.code for row in changed]},
    )
    if bump:
        reference.bump(session, reference.CATEGORIES)
    return [row.code for row in changed]


def update(session, actor, category, values):
    """Apply the changes of ``values`` (any of ``name``, ``parent`` (a Category), ``utility``,
    ``active``) in an order that keeps the tree whole: a deactivation first, an activation
    last. Returns whether anything changed."""
    changed = False
    if values.get("active") is False:
        changed |= bool(set_active(session, actor, category, False))
    if "name" in values:
        changed |= rename(session, actor, category, values["name"])
    if "parent" in values and values["parent"] is not category.parent:
        changed |= bool(move(session, actor, category, values["parent"]))
    if "utility" in values:
        changed |= bool(set_utility(session, actor, category, values["utility"]))
    if values.get("active") is True:
        changed |= bool(set_active(session, actor, category, True))
    return changed


# -- import and export -----------------------------------------------------------------------------

PATH_COLUMNS = (
    tabular.Column("level1", "一级分类", aliases=("一级", "一级类别")),
    tabular.Column("level2", "二级分类", aliases=("二级", "二级类别")),
    tabular.Column("level3", "三级分类", aliases=("三级", "三级类别")),
)
CODE_COLUMNS = (
    tabular.Column("code", "编码", aliases=("分类编码",)),
    tabular.Column("name", "名称", aliases=("分类名称",)),
    tabular.Column("parent", "上级编码"),
    tabular.Column("utility", "水电气热"),
    tabular.Column("status", "状态"),
)
STATUS = {ACTIVE_LABEL: True, "有效": True, "正常": True, INACTIVE_LABEL: False, "无效": False}


def export(session):
    """Every category (inactive ones too) as the XLSX this import reads back."""
    rows = [
        {
            "code": c.code,
            "name": c.name,
            "parent": c.code[:-2],
            "utility": c.utility,
            "status": ACTIVE_LABEL if c.active else INACTIVE_LABEL,
        }
        for c in all_categories(session)
    ]
    return tabular.write_xlsx(CODE_COLUMNS, rows, title="事项分类")


def load_tables(session, actor, sources, options):
    """The ``Importer.load`` of categories: every table checked first, then applied."""
    tables = [tabular.read(data, name, PATH_COLUMNS + CODE_COLUMNS) for name, data in sources]
    problems = tabular.Problems()
    plans = []
    for table in tables:
        headers = set(table.headers)
        if headers & ({c.header for c in PATH_COLUMNS} | _aliases(PATH_COLUMNS)):
            plans.append(("path", table))
        elif headers & ({"名称"} | _aliases(CODE_COLUMNS[1:2])):
            plans.append(("code", table))
        else:
            problems.add(
                table.file,
                1,
                None,
                "无法识别的表头：应为“一级分类、二级分类、三级分类”"
                "或“编码、名称、上级编码、水电气热、状态”",
            )
    problems.check()
    result = tabular.ImportResult(kind="categories")
    importer = _TreeImport(session, actor, problems, result)
    for kind, table in plans:
        (importer.check_paths if kind == "path" else importer.check_codes)(table)
    problems.check()
    importer.apply()
    if importer.changed:
        reference.bump(session, reference.CATEGORIES)
    return result


def _aliases(columns):
    return {alias for column in columns for alias in column.aliases}


class _TreeImport:
    """The tree as it will be after an import, checked row by row before any change."""

    def __init__(self, session, actor, problems, result):
        self.session, self.actor = session, actor
        self.problems, self.result = problems, result
        rows = all_categories(session)
        self.by_code = {row.code: row for row in rows}
        #: name path → code, for the tree as it will be.
        self.paths = {path_names(row, self.by_code): row.code for row in rows}
        #: code → what the file wants: {"name", "utility", "active", "row"} (new or changed).
        self.wanted = {}
        #: Codes given to new categories by this import, in creation order.
        self.new = {}
        self.seen = set()
        self.changed = False

    # -- 附件1 format: names only -------------------------------------------------------------

    def check_paths(self, table):
        headers = [c.header for c in PATH_COLUMNS]
        for number, values in table.rows:
            names = [values.get(c.key, "") for c in PATH_COLUMNS]
            while names and not names[-1]:
                names.pop()
            if not names:
                continue
            gap = next((i for i, name in enumerate(names) if not name), None)
            if gap is not None:
                self.problems.add(
                    table.file, number, headers[gap], "上级分类为空（下级分类须有上级）"
                )
                continue
            bad = next((i for i, name in enumerate(names) if self._name_problem(name)), None)
            if bad is not None:
                self.problems.add(table.file, number, headers[bad], self._name_problem(names[bad]))
                continue
            for depth in range(1, len(names) + 1):
                self._place(table.file, number, headers[depth - 1], tuple(names[:depth]))

    def _place(self, file, number, header, path):
        code = self.paths.get(path)
        if code is not None:
            if code not in self.seen and code not in self.new:
                self.seen.add(code)
                self.result.unchanged += 1
            return
        parent_code = self.paths[path[:-1]] if len(path) > 1 else None
        parent = self.by_code.get(parent_code)
        if parent is not None and not parent.active and parent_code not in self.new:
            self.problems.add(file, number, header, f"上级分类“{parent.name}”已停用")
            return
        code = self._fresh_code(parent_code)
        if code is None:
            self.problems.add(file, number, header, "该上级分类下的编码已用完（最多 99 个）")
            return
        self.paths[path] = code
        self.new[code] = {"name": path[-1], "utility": None, "active": True}
        self.result.created += 1
        self.result.note(f"新增 {LEVEL_LABELS[len(path)]} {code} {' › '.join(path)}")

    def _fresh_code(self, parent_code):
        prefix = parent_code or ""
        taken = {
            int(code[-2:])
            for code in (*self.by_code, *self.new)
            if len(code) == len(prefix) + 2 and code.startswith(prefix)
        }
        following = max(taken, default=0) + 1
        if following <= LAST_NUMBER:
            return f"{prefix}{following:02d}"
        free = [n for n in range(1, LAST_NUMBER + 1) if n not in taken]
        return f"{prefix}{free[0]:02d}" if free else None

    @staticmethod
    def _name_problem(name):
        if len(name) > NAME_MAX:
            return f"名称不能超过 {NAME_MAX} 字（现为 {len(name)} 字）"
        if any(not ch.isprintable() for ch in name):
            return "名称含有不可见控制字符"
        return None

    # -- our own format: codes ----------------------------------------------------------------

    def check_codes(self, table):
        header = {c.key: c.header for c in CODE_COLUMNS}
        given = {}
        rows = []
        for number, values in table.rows:
            code, parent = values.get("code", ""), values.get("parent", "")
            name = values.get("name", "")
            ok = True
            if not name:
                self.problems.add(table.file, number, header["name"], "请填写分类名称")
                ok = False
            elif self._name_problem(name):
                self.problems.add(table.file, number, header["name"], self._name_problem(name))
                ok = False
            for key, text in (("code", code), ("parent", parent)):
                if text and not (
                    text.isascii()
                    and text.isdigit()
                    and len(text) in (2, 4, 6)
                    and not text.endswith("00")
                ):
                    message = "编码应为 2、4 或 6 位数字（每级两位，01–99）"
                    self.problems.add(table.file, number, header[key], message)
                    ok = False
            if ok and code and parent and code[:-2] != parent:
                self.problems.add(
                    table.file,
                    number,
                    header["parent"],
                    f"上级编码应为编码去掉末两位（“{code[:-2] or '空'}”），现为“{parent}”",
                )
                ok = False
            if ok and not code and len(parent) == 2 * MAX_LEVEL:
                self.problems.add(table.file, number, header["parent"], "三级分类不能再有下级")
                ok = False
            utility = self._flag(table.file, number, header["utility"], values.get("utility", ""))
            status = values.get("status", "")
            active = None
            if status:
                active = STATUS.get(status)
                if active is None:
                    self.problems.add(
                        table.file,
                        number,
                        header["status"],
                        f"应填“启用”或“停用”（现为“{status}”）",
                    )
                    ok = False
            if ok and code:
                if code in given:
                    self.problems.add(
                        table.file, number, header["code"], f"编码 {code} 与第 {given[code]} 行重复"
                    )
                    continue
                given[code] = number
            if ok:
                rows.append(
                    (number, code, parent or (code[:-2] if code else ""), name, utility, active)
                )
        # Parents first (a row may name a parent another row creates); rows with a code before
        # those without, which take the next code left.
        rows.sort(key=lambda r: (len(r[1]) or len(r[2]) + 2, not r[1], r[1]))
        for number, code, parent_code, name, utility, active in rows:
            self._take_code_row(
                table.file, number, header, code, parent_code, name, utility, active
            )

    def _flag(self, file, number, column, text):
        if not text:
            return None
        return tabular.yes_no(self.problems, file, number, column, text)

    def _exists(self, code):
        return code in self.by_code or code in self.new

    def _take_code_row(self, file, number, header, code, parent_code, name, utility, active):
        if parent_code and not self._exists(parent_code):
            self.problems.add(file, number, header["parent"], f"上级编码 {parent_code} 不存在")
            return
        parent_path = self._path_of(parent_code) if parent_code else ()
        if not code:
            code = self.paths.get(parent_path + (name,))
            if code is None:
                code = self._fresh_code(parent_code or None)
                if code is None:
                    self.problems.add(file, number, header["code"], "该上级分类下的编码已用完")
                    return
        level = len(code) // 2
        if code in self.new:
            self.problems.add(file, number, header["code"], f"编码 {code} 在文件中重复")
            return
        existing = self.by_code.get(code)
        taken = self.paths.get(parent_path + (name,))
        if taken is not None and taken != code:
            self.problems.add(
                file, number, header["name"], f"同一上级下已有名为“{name}”的分类（{taken}）"
            )
            return
        if parent_code and self._active_of(parent_code) is False and active is True:
            self.problems.add(file, number, header["status"], "上级分类已停用，下级不能启用")
            return
        if existing is None:
            if parent_code and self._active_of(parent_code) is False:
                active = False
            self.new[code] = {
                "name": name,
                "utility": utility,
                "active": True if active is None else active,
                "row": number,
            }
            self.paths[parent_path + (name,)] = code
            self.result.created += 1
            self.result.note(f"新增 {LEVEL_LABELS[level]} {code} {name}")
            return
        old_path = path_names(existing, self.by_code)
        changes = {}
        if existing.name != name:
            changes["name"] = name
            self.paths.pop(old_path, None)
            self.paths[parent_path + (name,)] = code
        if utility is not None and utility != existing.utility:
            changes["utility"] = utility
        if active is not None and active != existing.active:
            changes["active"] = active
        if changes:
            self.wanted[code] = changes
            self.result.updated += 1
            described = "，".join(_describe(key, existing, value) for key, value in changes.items())
            self.result.note(f"更新 {code} {existing.name}：{described}")
        elif code not in self.seen:
            self.seen.add(code)
            self.result.unchanged += 1

    def _path_of(self, code):
        for path, known in self.paths.items():
            if known == code:
                return path
        return ()

    def _active_of(self, code):
        if code in self.new:
            return self.new[code]["active"]
        if code in self.wanted and "active" in self.wanted[code]:
            return self.wanted[code]["active"]
        return self.by_code[code].active

    # -- applying ------------------------------------------------------------------------------

    def apply(self):
        session, actor = self.session, self.actor
        created = {}
        for code in sorted(self.new, key=lambda c: (len(c), c)):
            wanted = self.new[code]
            parent = created.get(code[:-2]) or self.by_code.get(code[:-2])
            row = Category(
                code=code,
                name=wanted["name"],
                level=len(code) // 2,
                parent=parent,
                utility=wanted["utility"]
                if wanted["utility"] is not None
                else bool(parent and parent.utility),
                active=wanted["active"],
            )
            session.add(row)
            created[code] = row
        session.flush()
        for code in sorted(created, key=lambda c: (len(c), c)):
            audit_change(
                session,
                actor,
                "category.create",
                target=code,
                before=None,
                after=values_of(created[code], AUDITED),
            )
        # Deactivations first (they take subtrees along), then renames, flags, activations.
        for code in sorted(self.wanted):
            if self.wanted[code].get("active") is False:
                set_active(session, actor, self.by_code[code], False, bump=False)
        for code in sorted(self.wanted):
            if "name" in self.wanted[code]:
                row = self.by_code[code]
                before = values_of(row, AUDITED)
                row.name = self.wanted[code]["name"]
                audit_change(
                    session,
                    actor,
                    "category.rename",
                    target=code,
                    before=before,
                    after=values_of(row, AUDITED),
                )
        for code in sorted(self.wanted):
            wanted = self.wanted[code]
            if "utility" in wanted:
                set_utility(
                    session, actor, self.by_code[code], wanted["utility"], cascade=False, bump=False
                )
        for code in sorted(self.wanted, key=lambda c: (len(c), c)):
            if self.wanted[code].get("active") is True:
                set_active(session, actor, self.by_code[code], True, cascade=False, bump=False)
        self.changed = bool(created or self.wanted)


def _describe(key, existing, value):
    if key == "name":
        return f"名称 “{existing.name}” → “{value}”"
    if key == "utility":
        return f"水电气热 {'是' if existing.utility else '否'} → {'是' if value else '否'}"
    return f"状态 {ACTIVE_LABEL if existing.active else INACTIVE_LABEL} → " + (
        ACTIVE_LABEL if value else INACTIVE_LABEL
    )


IMPORTER = tabular.Importer(
    kind="categories",
    label="事项分类",
    load=load_tables,
    export=export,
    columns=CODE_COLUMNS,
    accepts=(
        "XLSX 或 CSV：本系统导出的“编码、名称、上级编码、水电气热、状态”，"
        "或只有名称的“一级分类、二级分类、三级分类”（如附件1.csv，编码自动生成）"
    ),
)


# -- parsing (the API's JSON body and the pages' forms) --------------------------------------------


def parse_values(session, data, *, creating):
    """The changes a request asks for, checked: ``name``, ``parent`` (a code → the
    Category), ``code`` (creating only), ``utility``, ``active`` (changing only). Raises
    ValidationFailed naming every bad field."""
    fields = Fields(data)
    values = {}
    if creating or "name" in data:
        values["name"] = fields.text("name", "分类名称", required=True, max_len=NAME_MAX)
    if creating or "parent" in data:
        code = fields.code("parent", "上级分类", required=not creating)
        values["parent"] = None
        if code is not None:
            parent = session.scalars(sa.select(Category).where(Category.code == code)).first()
            if parent is None:
                fields.fail("parent", f"上级分类不存在：{code}")
            values["parent"] = parent
    if creating:
        values["code"] = fields.code("code", "分类编码")
    if creating or "utility" in data:
        values["utility"] = fields.boolean("utility", "水电气热", required=not creating)
    if not creating and "active" in data:
        values["active"] = fields.boolean("active", "是否启用", required=True)
    fields.check()
    return values
