"""What the searchable pickers offer (选择器): categories and areas by name, for every form.

People choose a category or an area by its name, never by typing its code. Each form renders a
plain ``<select>`` (``templates/_pickers.html``) whose option values are the codes (what the
server parses, as the JSON API does) and whose labels are the names; ``static/picker.js`` turns
every ``<select data-picker>`` into a search box that matches Chinese, pinyin initials
(``ldgz`` → 路灯故障), full pinyin or part of a name, so the same page works without script.

- ``category_groups``: the selectable categories, grouped under their parent's path: every
  active leaf of the three-level tree, and every second-level class (the classifier's model
  predicts at that level, so its suggestions must be choosable; only a 一级 class with
  children is too coarse to be offered).
- ``area_levels``: the area tree 区县 → 街道乡镇 → 社区村 → 网格, one list per level, grouped
  under the parent's path; ``picker.js`` narrows each level to the children of the level above.
- ``chosen_area``: a posted area cascade (one value per level) → the most specific code.

Categories are read on every request that shows a picker (a few hundred short rows), so an
administrator's edit shows on the next page; what is built from them — the tree, the pinyin
(``pypinyin``) and the options' HTML — is kept per process keyed by the rows themselves, so
there is nothing to invalidate: other rows, another key. The area tree (tens of thousands of
rows in a big city) is kept per process until the areas change (``hotline.reference``: an
administrator's edit shows in every process within seconds).
"""

import functools
import re
from dataclasses import dataclass

import sqlalchemy as sa
from flask import has_request_context, request
from markupsafe import Markup, escape
from pypinyin import Style, lazy_pinyin

from hotline import reference
from hotline.cache import Stamped
from hotline.db import get_session
from hotline.enums import AreaLevel
from hotline.errors import ValidationFailed
from hotline.models import Area, Category

#: Between the names of a path: 城乡建设 › 市政设施 › 路灯故障.
PATH_SEPARATOR = " › "
#: Area levels coarsest first, as the cascade shows them.
AREA_LEVELS = (AreaLevel.district, AreaLevel.street, AreaLevel.community, AreaLevel.grid)

_NOT_SEARCHABLE = re.compile(r"[^0-9a-z]")


@dataclass(frozen=True)
class Choice:
    """One option of a picker."""

    code: str
    name: str
    #: 1 (一级 / 区县) to 3 (三级) or 4 (网格).
    level: int
    #: The names from the top of the tree down to this one.
    path: tuple[str, ...]
    #: The parent's code (None at the top).
    parent: str | None

    @property
    def label(self):
        """The full path, 城乡建设 › 市政设施 › 路灯故障."""
        return PATH_SEPARATOR.join(self.path)

    @property
    def initials(self):
        """Pinyin initials of the name: 路灯故障 → ``ldgz``."""
        return pinyin(self.name)[0]

    @property
    def spelling(self):
        """Full pinyin of the name without tones: 路灯故障 → ``ludengguzhang``."""
        return pinyin(self.name)[1]

    @functools.cached_property
    def _html(self):
        # Pinyin is letters and digits only: nothing to escape.
        start = f'<option value="{escape(self.code)}" data-py="{self.initials}"'
        return start, f' data-pinyin="{self.spelling}"', f">{escape(self.name)}</option>"

    def option(self, selected=False):
        """Its ``<option>``: the code as value, the name as label, pinyin for the script."""
        start, search, end = self._html
        return start + search + (" selected" if selected else "") + end


@dataclass(frozen=True)
class Group:
    """Options under one parent (an ``<optgroup>``); ``label`` is the parent's path, empty at
    the top of the tree."""

    label: str
    options: tuple[Choice, ...]

    @property
    def initials(self):
        """Pinyin initials of each name of the parent path, space-separated: ``cxjs szss``
        (so ``szss`` finds every option under 市政设施)."""
        return " ".join(pinyin(name)[0] for name in self.label.split(PATH_SEPARATOR) if name)

    @functools.cached_property
    def opening(self):
        if not self.label:
            return ""
        return f'<optgroup label="{escape(self.label)}" data-py="{self.initials}">'


def options_html(groups, selected="", *, path=False):
    """The ``<option>``s of ``groups``, in ``<optgroup>``s under a parent, with ``selected``
    marked (``path``: every option whose code begins it, i.e. the chosen area's ancestors on
    their own levels)."""
    selected = selected or ""

    def chosen(code):
        return bool(selected) and (selected.startswith(code) if path else selected == code)

    parts = []
    for group in groups:
        parts.append(group.opening)
        parts.extend(choice.option(chosen(choice.code)) for choice in group.options)
        parts.append("</optgroup>" if group.label else "")
    return Markup("\n".join(part for part in parts if part))


def offered(groups, code):
    """Whether ``code`` is one of the options of ``groups``."""
    return any(choice.code == code for group in groups for choice in group.options)


@functools.lru_cache(maxsize=50_000)
def pinyin(name):
    """(initials, full spelling) of ``name`` in lower-case letters and digits: 曹家巷社区第1网格
    → (``cjxsqd1wg``, ``caojiaxiangshequdi1wangge``). Letters and digits in the name are kept;
    punctuation and spaces are dropped. Polyphonic characters read as in common words (重庆 is
    chongqing)."""
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER))
    spelling = "".join(lazy_pinyin(name))
    return (
        _NOT_SEARCHABLE.sub("", initials.lower()),
        _NOT_SEARCHABLE.sub("", spelling.lower()),
    )


def _per_request(key, build):
    """``build()`` once per request (a page may hold several pickers of one kind); every
    call outside a request builds afresh."""
    if not has_request_context():
        return build()
    # The request's own environ, not ``g``: an application context may outlive a request.
    cache = request.environ.setdefault("hotline.pickers", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def grouped(choices):
    """``choices`` in ``Group``s under their parent's path, in the order given."""
    groups = {}
    for choice in choices:
        groups.setdefault(PATH_SEPARATOR.join(choice.path[:-1]), []).append(choice)
    return tuple(Group(label, tuple(options)) for label, options in groups.items())


def category_groups(db=None):
    """The selectable categories (active leaves and second-level classes), ordered by code,
    grouped under their parent's path: 城乡建设 [市政设施, 供水 …], 城乡建设 › 市政设施 [道路破损,
    路灯故障 …]."""
    return _per_request("categories", lambda: _category_groups(db or get_session()))


def _category_groups(db):
    rows = db.execute(
        sa.select(Category.code, Category.name, Category.level)
        .where(Category.active)
        .order_by(Category.code)
    ).all()
    return _category_tree(tuple(tuple(row) for row in rows))


@functools.lru_cache(maxsize=4)
def _category_tree(rows):
    names = {code: name for code, name, _ in rows}
    # Codes are hierarchical (01 → 0101 → 010101): a parent is the code less two digits.
    parents = {code[:-2] for code, _, _ in rows if len(code) > 2}
    offered = []
    for code, name, level in rows:
        if code in parents and level < 2:
            continue
        ancestors = [code[:n] for n in range(2, len(code), 2)]
        if any(a not in names for a in ancestors):
            continue  # under a deactivated branch: not offered
        offered.append(
            Choice(
                code=code,
                name=name,
                level=level,
                path=tuple(names[a] for a in ancestors) + (name,),
                parent=ancestors[-1] if ancestors else None,
            )
        )
    return grouped(offered)


def category_label(code, db=None):
    """The path of names of the category ``code``, a deactivated one included (a ticket keeps
    its category and every page shows it by name), or the code itself when there is none."""
    codes = [code[:n] for n in range(2, len(code) + 1, 2)] if code else []
    names = dict(
        (db or get_session())
        .execute(sa.select(Category.code, Category.name).where(Category.code.in_(codes)))
        .all()
    )
    if code not in names:
        return code
    return PATH_SEPARATOR.join(names[c] for c in codes if c in names)


def area_levels(db=None):
    """{AreaLevel: (Group, …)}: every area of each level, ordered by code, grouped under the
    parent's path (奎文区 › 东关街道)."""
    return _per_request("areas", lambda: _area_levels(db or get_session()))


#: The area tree of each database, rebuilt when the areas change.
_area_levels_cache = Stamped(reference.AREAS)


def _area_levels(db):
    def build():
        rows = db.execute(
            sa.select(Area.id, Area.code, Area.name, Area.level, Area.parent_id).order_by(Area.code)
        ).all()
        return _area_tree(rows)

    return _area_levels_cache.get(db, build)


def _area_tree(rows):
    by_id = {row[0]: row for row in rows}
    depth = {level: index + 1 for index, level in enumerate(AREA_LEVELS)}
    paths = {}
    levels = {level: [] for level in AREA_LEVELS}
    for area_id, code, name, level, parent_id in rows:  # by code: parents come first
        parent = by_id.get(parent_id)
        path = (paths.get(parent_id, (parent[2],)) if parent else ()) + (name,)
        paths[area_id] = path
        levels[level].append(
            Choice(
                code=code,
                name=name,
                level=depth[level],
                path=path,
                parent=parent[1] if parent else None,
            )
        )
    return {level: grouped(choices) for level, choices in levels.items()}


def chosen_area(values):
    """The code of the most specific area of a posted cascade (one value per level, blanks
    for levels not chosen): ``["370705", "370705001", ""]`` → ``"370705001"``; ``""`` when
    nothing was chosen. A single value (the JSON API, a script) is returned as it is.

    Codes are hierarchical, so the levels chosen must lie on one path; a street of another
    district raises ValidationFailed (field ``area``) instead of silently taking either."""
    codes = sorted({v.strip() for v in values if v and v.strip()}, key=len)
    if not codes:
        return ""
    most = codes[-1]
    if any(not most.startswith(code) for code in codes[:-1]):
        raise ValidationFailed(
            "所选的区县、街道、社区和网格不在同一路径上，请重新选择区域",
            code="AREA_PATH_INCONSISTENT",
            details={"area": "所选区域的上下级不一致，请重新选择"},
        )
    return most


def init_app(app):
    """Let every template list the choices (``templates/_pickers.html``)."""
    app.add_template_global(category_groups, "picker_categories")
    app.add_template_global(category_label, "picker_category_label")
    app.add_template_global(area_levels, "picker_areas")
    app.add_template_global(AREA_LEVELS, "picker_area_levels")
    app.add_template_global(options_html, "picker_options")
    app.add_template_global(offered, "picker_offered")
