"""Intake suggestions: the classifier fed with this city's areas, categories and catalogue.

One ``SuggestionService`` per process builds a ``classifier.pipeline.Suggester`` from the
active model version (``hotline.model_versions``: the database names it, every host follows)
and the reference tables, and rebuilds it when an administrator activates another version
(noticed within ``MODEL_CHECK_SECONDS``) or changes areas, categories, units or the
catalogue (``hotline.reference``: noticed within seconds, no restart), when the city's local
date changes (the catalogue it holds is the rules in force today: a rule dated from tomorrow
takes effect after midnight), and at least every ``REFERENCE_TTL`` seconds (that one in a
thread of its own, the callers served by the previous suggester meanwhile).
"""

import hashlib
import hmac
import json
import logging
import threading
import time

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from classifier.artefact import ActiveModel
from classifier.gazetteer import Gazetteer
from classifier.geo import GridLocator
from classifier.normalize import normalize
from classifier.pipeline import CategoryInfo, Suggester
from classifier.router import CatalogueRouter, Router, record_from_codes
from hotline import city, model_versions, reference
from hotline.config import DEFAULTS
from hotline.db import get_session, local_today
from hotline.enums import AreaLevel
from hotline.models import Area, Category, RoutingRule, Unit
from hotline.models.rules import precedence

REFERENCE_TTL = 600
#: Seconds between two looks at which model version the database names active.
MODEL_CHECK_SECONDS = 3.0
#: The reference data a suggester is built from (and the city's names, 城市设置: a change of
#: another setting does not rebuild it).
SUGGESTER_REFERENCES = (reference.AREAS, reference.CATEGORIES, reference.UNITS, reference.ROUTING)

log = logging.getLogger(__name__)


class SuggestionService:
    def __init__(self, models_dir):
        self.models_dir = models_dir
        # Asked through the caller's session (a script's own, not the request's: on SQLite
        # a second connection would wait for the first's write lock).
        self.active = ActiveModel(
            lambda session: model_versions.current(session, models_dir),
            lambda version, session: model_versions.load(session, models_dir, version),
            check_every=MODEL_CHECK_SECONDS,
        )
        self._lock = threading.Lock()
        self._built = (None, 0.0, None)  # (model version, reference stamp), built at, suggester

    def suggest(self, session, text, *, address=None, lng=None, lat=None, release=False):
        """The suggestion for one complaint with the model version, or None if no model is
        active. ``release``: the caller only reads, so a (re)build may end ``session``'s
        transaction before building (see ``_suggester``)."""
        suggester, version = self._suggester(session, release=release)
        if suggester is None:
            return None
        result = suggester.suggest(text, address=address, lng=lng, lat=lat)
        result["model_version"] = version
        return result

    def suggest_many(self, session, texts, *, addresses=None):
        """Suggestions for many complaints at once, through the classifier's batch path (the
        models run once over all texts), each with the model version; None for each when no
        model is active. For programs that receive many tickets (the demo's history)."""
        suggester, version = self._suggester(session)
        if suggester is None:
            return [None] * len(texts)
        results = suggester.suggest_many(texts, addresses=addresses)
        for result in results:
            result["model_version"] = version
        return results

    def _suggester(self, session, *, release=False):
        """The suggester of the active model, built when missing or stale. ``release``: end
        ``session``'s transaction once the reference rows are read (the preload's own
        session: on SQLite every transaction holds the write lock, which other workers must
        not wait for while the gazetteer is built)."""
        version, bundle, _ = self.active.get(session)
        if bundle is None:
            return None, None
        today = local_today(_timezone())
        key = (
            version,
            reference.stamp(session, *SUGGESTER_REFERENCES),
            city.names(session),
            today,
        )
        built_key, built_at, suggester = self._built
        if built_key == key and time.monotonic() - built_at > REFERENCE_TTL:
            # Only the age says rebuild (nothing it was built from has changed that the
            # counters know of): callers keep the one built while another thread builds the
            # next, instead of every caller of this process waiting seconds for it.
            self._refresh_beside(key, bundle)
        elif built_key != key:
            with self._lock:
                built_key, built_at, suggester = self._built
                if built_key != key:
                    data = reference_data(session, today)
                    if release:
                        session.rollback()
                    suggester = _build(bundle, *data)
                    self._built = (key, time.monotonic(), suggester)
        return suggester, version

    def _refresh_beside(self, key, bundle):
        """Rebuild the suggester of ``key`` in a thread of its own (one at a time), reading
        the reference rows through a session of its own."""
        if not self._lock.acquire(blocking=False):
            return  # a build is under way
        app = current_app._get_current_object()

        def build():
            try:
                with app.app_context():
                    session = get_session()
                    data = reference_data(session, key[3])
                    session.rollback()
                    suggester = _build(bundle, *data)
                    if self._built[0] == key:  # not replaced by a newer build meanwhile
                        self._built = (key, time.monotonic(), suggester)
            except Exception:
                log.exception("could not rebuild the classifier's suggester; keeping the old one")
            finally:
                self._lock.release()

        threading.Thread(target=build, daemon=True, name="suggester-refresh").start()

    def learned_units(self, session, category_code, area_code, k=3):
        """The learned router's top ``k`` units for ``category_code`` at ``area_code`` (what
        history says, whatever the catalogue): ``[Suggestion(unit code, confidence,
        reason)]``; None when no model is active or it has no learned router."""
        suggester, _ = self._suggester(session)
        learned = getattr(getattr(suggester, "router", None), "learned", None)
        if learned is None or not learned.classes_:
            return None
        return learned.suggest(record_from_codes(category_code, area_code), k=k)

    def locate(self, session, address):
        """What the suggester's gazetteer reads in the address text: a
        ``classifier.gazetteer.Resolution`` (its ``code`` None when nothing or several places
        match: ``candidates``), or None when no model is active."""
        suggester, _ = self._suggester(session)
        if suggester is None or suggester.gazetteer is None:
            return None
        return suggester.gazetteer.resolve(normalize(address))


def _timezone():
    return current_app.config["TIMEZONE"] if current_app else DEFAULTS["TIMEZONE"]


def build_suggester(session, bundle):
    """A Suggester of ``bundle`` over the reference tables read through ``session``."""
    return _build(bundle, *reference_data(session, local_today(_timezone())))


def reference_data(session, day):
    """The rows a suggester is built from: areas, the routing rules in force on the local
    date ``day`` (one per category and area: the one that decides, see
    ``hotline.models.rules.precedence``), categories, and the city's names (北京市, 北京)."""
    parent = aliased(Area)
    rows = session.execute(
        sa.select(Area.code, Area.name, Area.level, Area.aliases, Area.polygon, parent.code)
        .outerjoin(parent, Area.parent_id == parent.id)
        .order_by(Area.code)
    ).all()
    rule_area = aliased(Area)
    in_force = session.execute(
        sa.select(Category.code, rule_area.code, Unit.code, RoutingRule.valid_from, RoutingRule.id)
        .select_from(RoutingRule)
        .join(Category, RoutingRule.category_id == Category.id)
        .outerjoin(rule_area, RoutingRule.area_id == rule_area.id)
        .join(Unit, RoutingRule.unit_id == Unit.id)
        .where(Unit.active, RoutingRule.in_force_on(day))
    ).all()
    deciding = {}
    for category, area, unit, _, _ in sorted(in_force, key=lambda r: precedence(r[3], r[4])):
        deciding[(category, area)] = unit  # the later in precedence overwrites
    rules = [(category, area, unit) for (category, area), unit in deciding.items()]
    categories = session.execute(
        sa.select(Category.code, Category.name, Category.utility, Category.active)
    ).all()
    return rows, rules, categories, city.names(session)


def build_gazetteer(rows, city_names):
    """The gazetteer over the area rows of ``reference_data``."""
    return Gazetteer(
        (
            {
                "code": code,
                "name": name,
                "level": level.value,
                "parent": parent_code,
                "aliases": aliases or [],
            }
            for code, name, level, aliases, _, parent_code in rows
        ),
        city_names=city_names,
    )


def build_grid_locator(rows):
    """The grid locator (point in polygon) over the area rows of ``reference_data``."""
    return GridLocator(
        (code, polygon)
        for code, _, level, _, polygon, _ in rows
        if level == AreaLevel.grid and polygon
    )


def _build(bundle, rows, rules, categories, city_names):
    gazetteer = build_gazetteer(rows, city_names)
    grids = build_grid_locator(rows)
    catalogue = CatalogueRouter(
        {"category": category, "area": area, "unit": unit} for category, area, unit in rules
    )
    return ActiveCategoriesOnly(
        bundle,
        gazetteer=gazetteer,
        grids=grids,
        router=Router(catalogue, getattr(bundle, "router", None)),
        categories={code: CategoryInfo(name, utility) for code, name, utility, _ in categories},
        active_codes={code for code, _, _, active in categories if active},
    )


class ActiveCategoriesOnly(Suggester):
    """The classifier's suggester, whose suggested categories are only those an operator may
    choose: a deactivated category is left out, and so is a code the model learnt that no
    category has any more (moved under another parent: its code changed; the model learns
    the new one when it is trained again)."""

    def __init__(self, bundle, *, active_codes, **kwargs):
        super().__init__(bundle, **kwargs)
        self.active_codes = frozenset(active_codes)

    def suggest_many(self, *args, **kwargs):
        # ``suggest`` is a batch of one: it comes through here too.
        return [self._only_active(r) for r in super().suggest_many(*args, **kwargs)]

    def _only_active(self, result):
        category = result.get("category") if result else None
        if not category or not category.get("top"):
            return result
        kept = [entry for entry in category["top"] if entry["code"] in self.active_codes]
        if len(kept) != len(category["top"]):
            # Without its first choice the model has no answer to stand by.
            dropped_first = category["top"][0]["code"] not in self.active_codes
            result["category"] = {
                **category,
                "top": kept,
                "abstain": category.get("abstain", False) or dropped_first,
            }
        return result


def for_intake(session, text, *, address=None, lng=None, lat=None, offered=None):
    """The suggestion stored with a new ticket: ``offered`` (what ``POST /api/v1/suggest``
    answered the console for this very text, see ``reusable``) when it proves to be that,
    else computed now. A failing classifier must never lose a call: the ticket is then
    received without one and the error is logged."""
    if not current_app or not current_app.config["CLASSIFIER_ENABLED"]:
        # Outside an application (a script driving the operations) there is no model.
        return None
    try:
        if offered is not None:
            reused = reusable(offered, text, address=address, lng=lng, lat=lat)
            if reused is not None:
                return reused
        return service().suggest(session, text, address=address, lng=lng, lat=lat)
    except Exception:
        log.exception("classifier failed at intake; ticket received without suggestion")
        return None


# -- handing a suggestion back ------------------------------------------------------------
# The console asks for the suggestion while the operator types; receiving the call then sends
# it back instead of making the server classify the same text again. The server signs what it
# answered (HMAC-SHA256 with the application's SECRET_KEY over the text, address, position
# and the suggestion with its model version and time), so a suggestion handed back is used only
# when it was made by this server, for exactly this text, by the model still active, within
# ``SUGGESTION_REUSE_SECONDS``. Anything else is ignored and the suggestion computed again.

#: The member of a suggestion carrying its signature.
SEAL = "seal"


def _seal_key():
    return hmac.new(
        current_app.config["SECRET_KEY"].encode(), b"hotline.suggestion.v1", hashlib.sha256
    ).digest()


def _plain(value):
    """``value`` with whole floats as integers: JavaScript hands 1.0 back as 1."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _signature(suggestion, text, address, lng, lat):
    body = {k: v for k, v in suggestion.items() if k != SEAL}
    message = json.dumps(
        _plain([text, address, lng, lat, body]), sort_keys=True, ensure_ascii=False, default=str
    )
    return hmac.new(_seal_key(), message.encode(), hashlib.sha256).hexdigest()


def sealed(suggestion, text, *, address=None, lng=None, lat=None, now=None):
    """``suggestion`` with the time it was made and its signature (``seal``) for this text."""
    result = {k: v for k, v in suggestion.items() if k != SEAL}
    result["sealed_at"] = int(now if now is not None else time.time())
    result[SEAL] = _signature(result, text, address, lng, lat)
    return result


def reusable(offered, text, *, address=None, lng=None, lat=None, now=None):
    """The suggestion ``offered`` back by a client (without its seal) when its signature
    matches this text, address and position, its model version is the active one and it is
    recent; else None (the caller computes it again)."""
    if not isinstance(offered, dict) or not isinstance(offered.get(SEAL), str):
        return None
    expected = _signature(offered, text, address, lng, lat)
    if not hmac.compare_digest(expected, offered[SEAL]):
        return None
    made = offered.get("sealed_at")
    now = now if now is not None else time.time()
    max_age = current_app.config["SUGGESTION_REUSE_SECONDS"]
    if not isinstance(made, int) or not (now - max_age <= made <= now + 60):
        return None
    version, _, _ = service().active.get(get_session())
    if version is None or offered.get("model_version") != version:
        return None
    return {k: v for k, v in offered.items() if k not in (SEAL, "sealed_at")}


def dispatch_confidence(suggestion):
    """How sure ``suggestion`` is of where the ticket goes: the weakest of the category's top
    probability, the place's confidence and the first unit's (0 for a missing part; None
    without a suggestion). The dispatcher's queue puts the least sure first."""
    if not suggestion:
        return None
    category = suggestion.get("category") or {}
    top = category.get("top") or []
    area = suggestion.get("area") or {}
    units = suggestion.get("units") or []
    return min(
        0.0 if category.get("abstain") or not top else top[0]["probability"],
        area.get("confidence", 0.0) if area.get("code") else 0.0,
        units[0]["confidence"] if units else 0.0,
    )


#: The levels of a resolved place, coarsest first, with the suggestion's key for each.
PLACE_LEVELS = [
    ("district", "区县"),
    ("street", "街道乡镇"),
    ("community", "社区村"),
    ("grid", "网格"),
]


def place_names(db, place):
    """The levels of a suggested place (``suggestion["area"]``) with their names:
    [{"level", "label", "code", "name"}], coarsest first; [] for no place."""
    if not place:
        return []
    codes = {place.get(level) for level, _ in PLACE_LEVELS} - {None}
    names = dict(db.execute(sa.select(Area.code, Area.name).where(Area.code.in_(codes))).all())
    return [
        {"level": level, "label": label, "code": place[level], "name": names.get(place[level])}
        for level, label in PLACE_LEVELS
        if place.get(level)
    ]


def unit_names(db, codes):
    """{code: name} of the units ``codes``."""
    if not codes:
        return {}
    return dict(db.execute(sa.select(Unit.code, Unit.name).where(Unit.code.in_(codes))).all())


def init_app(app):
    app.extensions["hotline.suggestions"] = SuggestionService(app.config["CLASSIFIER_MODELS_DIR"])
    if app.config["CLASSIFIER_ENABLED"] and app.config["CLASSIFIER_PRELOAD"]:
        # Load the active model and build the gazetteer while the worker starts, not on the
        # first caller's request (about a second). A thread: the worker serves meanwhile.
        threading.Thread(target=_preload, args=(app,), daemon=True, name="preload").start()


def _preload(app):
    with app.app_context():
        try:
            # An older release's model folder goes into the database first (once).
            model_versions.import_at_start(get_session(), app.config["CLASSIFIER_MODELS_DIR"])
            app.extensions["hotline.suggestions"]._suggester(get_session(), release=True)
        except Exception:
            log.exception("could not preload the classifier; it will load on first use")


def service():
    return current_app.extensions["hotline.suggestions"]
