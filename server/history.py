"""The demo's past: a city's last N days of 12345 calls, made by the real operations.

``generate`` receives a few thousand calls (default: 90 days, about 3,000) written from the
seed corpus (``seed_data/calls.json`` templates placed at real addresses, the labelled
messages of ``seed_data/corpus/messages.jsonl``, and the emergency calls of
``emergency_cases.jsonl``) and moves each along the way a real ticket goes: answered or
transferred at intake, merged into an earlier report, dispatched to the unit
``routing.dispatch_unit`` names, signed, contacted, returned and re-dispatched, extended,
finished on time or late, called back, reopened, exempted, terminated. Every step is the
operation of ``dispatch.operations`` that staff would use, run as the staff account of that
role (``now=`` the simulated moment), so a ticket's events, deadlines, rates and inbox are
those of a real one. The SLA timers fire as they would have: ``dispatch.timers.tick`` runs
every ``TICK`` of simulated time, so late tickets carry their warnings, 催办 and 督办, and
those still open past their deadline are overdue on the boards today.

It lives in ``server/``, the composition root, because it drives operations of several
domains at once (intake, dispatch, callback, scoring, timers, the classifier's batch path)
and creates the handling accounts it needs: no domain package may import across the others'
layers that way, and ``server/simulate.py`` (the live counterpart, through the HTTP API) is
its sibling.

**Deterministic**: everything is drawn from ``random.Random`` seeded with the seed and the
call's index, and operations run in the order of their simulated moments; the same seed and
the same end moment give the same tickets. **Idempotent**: every call is received with the
idempotency key ``history:<seed>:<index>``; if the database already holds a history (any
seed) nothing is added and the summary says so. **One transaction**: the caller commits; a
failure leaves nothing half made. The past is not news: its real-time events and inbox
notifications are dropped rather than published after commit (the inbox rows stay). It ends
with a retraining of the classifier asked for (``dispatch.learning.request``): the demo's
scheduler runs it on start, so the model page shows a candidate trained on this past and the
gate's decision.
"""

import bisect
import contextlib
import dataclasses
import datetime as dt
import gc
import heapq
import json
import random
import unicodedata
from collections import Counter
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from dashboards import warnings
from dispatch import (
    calendar,
    citizen_tracking,
    cohandling,
    learning,
    operations,
    routing,
    timers,
)
from dispatch.states import FINAL, IN_HANDLING
from hotline import outbox, suggestions
from hotline.audit import audit
from hotline.config import DEFAULTS
from hotline.enums import (
    AreaLevel,
    CallbackChannel,
    CallbackOutcome,
    Channel,
    EmergencyDecision,
    ExemptionKind,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Role,
    Satisfaction,
    Solved,
    TicketStatus,
    TransferTarget,
    UnitKind,
    Urgency,
    WarningKind,
)
from hotline.models import (
    Area,
    CallbackAttempt,
    Category,
    EarlyWarning,
    KnowledgeArticle,
    Notification,
    OutboxMessage,
    RoutingRule,
    SlaPolicy,
    Ticket,
    TimerFiring,
    Unit,
    User,
)
from server import storylines
from server.simulate import SEED_DIR, CallGenerator

S = TicketStatus
KEY_PREFIX = "history:"
DEFAULT_DAYS = 90
DEFAULT_SEED = 12345
#: Calls on an ordinary Thursday; other days follow ``WEEKDAY_FACTOR`` (Monday busiest).
CALLS_PER_DAY = 36
WEEKDAY_FACTOR = (1.35, 1.12, 1.05, 1.0, 0.95, 0.62, 0.55)
#: Public holidays (official calendar) are quieter than an ordinary weekday.
HOLIDAY_FACTOR = 0.6
#: Share of calls by local hour of day (0–23): a morning and an afternoon peak.
HOUR_WEIGHTS = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.6, 1.6, 3.6, 5.2, 5.4, 4.6,
    2.8, 3.0, 4.4, 4.8, 4.4, 3.6, 2.4, 2.0, 1.8, 1.4, 0.9, 0.5,
)  # fmt: skip
#: Categories the catalogue gives to the street offices (weighted up among the templates).
LOCAL_CATEGORIES = {"0106", "0107", "0205"}
#: Simulated time between two runs of the SLA timers (the scheduler's catch-up).
TICK = dt.timedelta(hours=1)
#: Simulated time between two early-warning scans over the history (``warnings.backfill``).
WARNING_STEP = dt.timedelta(minutes=10)
#: Handlers and callback agents work these local hours on working days.
WORK_START, WORK_END = dt.time(8, 30), dt.time(17, 30)
CALLBACK_START, CALLBACK_END = dt.time(8, 30), dt.time(20, 0)
#: Citizens of these channels may rate online (一事一评) instead of being called: those whose
#: callback draw (answered from 0.135 up) is at least ``ONLINE_RATING_FROM``.
ONLINE_CHANNELS = frozenset({Channel.web, Channel.wechat, Channel.app})
ONLINE_RATING_FROM = 0.5

GIVEN_NAMES = (
    "建国", "丽华", "志强", "海燕", "文军", "晓敏", "国栋", "秀英", "立新", "红梅", "振华",
    "雪莲", "明辉", "春燕", "永刚", "美玲", "德胜", "桂芳", "卫东", "玉兰", "俊杰", "丹丹",
)  # fmt: skip
GENERIC_ANSWERS = {
    RequestType.consult: "已根据现行政策向来电人作了解答，并告知办理渠道和所需材料。",
    RequestType.help: "已向来电人说明求助渠道和联系方式，来电人表示自行联系。",
    RequestType.suggestion: "已记录来电人的建议并致谢，将汇总转相关部门参考。",
    RequestType.praise: "已记录来电人的表扬并致谢，将转达被表扬单位。",
}
OTHER_OUTCOMES = (
    (IntakeOutcome.already_handled, "该事项已办理完毕且无新情况，已向来电人说明办理结果。"),
    (IntakeOutcome.no_competent_unit, "属于民事纠纷，不属于行政机关职责，已建议协商或诉讼解决。"),
    (IntakeOutcome.unlawful_request, "来电人要求违反法律法规，已依法向其解释，不予受理。"),
    (IntakeOutcome.secret_or_privacy, "来电人要求查询他人个人信息，涉及个人隐私，已告知不能提供。"),
)  # fmt: skip
LEGAL_CHANNELS = (
    (TransferTarget.litigation, "所反映事项已进入诉讼程序，已告知来电人通过法院依法解决。"),
    (TransferTarget.arbitration, "属于劳动争议，已告知来电人向劳动人事争议仲裁委员会申请仲裁。"),
    (TransferTarget.petition, "属于信访事项，已告知来电人信访渠道和地址。"),
    (TransferTarget.disclosure, "属于依申请公开事项，已告知来电人向有关机关提出政府信息公开申请。"),
)  # fmt: skip
RESULTS = (
    "经现场核实，问题已处理完毕，已向诉求人反馈。",
    "已安排工作人员现场处置，问题已解决，诉求人认可。",
    "已约谈相关责任方并责令整改，整改已完成。",
    "已联系诉求人说明政策规定和办理情况，诉求人表示理解。",
    "已协调有关单位共同处理，问题已解决，后续将加强巡查。",
    "经调查核实，已依法处理，并向诉求人答复处理结果。",
)
#: Share of reviewed replies a supervisor sends back (审核退回), and why.
REPLY_RETURN_SHARE = 0.12
REVIEW_RETURNS = (
    "答复未说明具体办理情况和结果，请补充现场核查情况及处理措施。",
    "答复与诉求内容不对应，请针对诉求人反映的问题逐项答复。",
    "答复未说明不能办理的原因和政策依据，请补充。",
)
#: An assisting unit's part (协办反馈), and the lead's reason to finish without a unit's that
#: never came (an assist that never signed).
ASSIST_REPORT = "已按职责完成协办部分的现场处置，相关情况已告知主办单位。"
ASSISTS_NOTE = "协办单位未签收、未反馈，主办单位已完成全部办理。"
RETURN_NOTES = {
    ReturnReason.wrong_territory: "经核实，诉求地点不在本单位辖区，请改派属地单位。",
    ReturnReason.not_our_duty: "该事项不属于本单位职责，请改派主管部门。",
    ReturnReason.ownership_unclear: "涉事设施权属不清，需热线中心协调确定承办单位。",
    ReturnReason.overlapping_duties: "该事项涉及多个部门职能，请热线中心明确主办单位。",
}
EXEMPTIONS = (
    (ExemptionKind.unreasonable, "诉求人要求超出合理范围，经审核列为不合理诉求。"),
    (ExemptionKind.duplicate, "同一诉求人就同一事项重复反映，已合并考核。"),
    (ExemptionKind.beyond_policy, "诉求超出现行法律政策规定，承办单位已充分解释。"),
    (ExemptionKind.force_majeure, "受恶劣天气影响无法按期办理，经审核予以豁免。"),
    (ExemptionKind.requester_unreachable, "诉求人拒绝配合核实，承办单位无法办理。"),
)
#: Allocations between two young-generation garbage collections while the history is made
#: (Python's default is 700).
GC_THRESHOLD = 50_000
#: Timer attributes ``timers.tick`` writes with plain UPDATEs (see ``_tick``).
TICK_ATTRIBUTES = ("next_due_at", "timers_checked_until", "escalation_level")


@dataclasses.dataclass
class Summary:
    """What a history holds (``already`` True: it existed before this run)."""

    seed: int
    days: int
    already: bool
    tickets: int
    by_status: dict
    by_channel: dict
    by_district: dict
    facts: dict


@dataclasses.dataclass
class _Case:
    """One call and the plan of its handling."""

    index: int
    rng: random.Random
    at: dt.datetime
    body: dict
    fate: str
    ticket: Ticket | None = None
    suggestion: dict | None = None
    #: The unit that should lead it, and a wrong first one (a return follows).
    right: Unit | None = None
    wrong: Unit | None = None
    pace: str = "on_time"
    rounds: int = 0
    #: Returns upheld so far (the 推诿扯皮 story).
    returns: int = 0


def existing(session):
    """(seed, tickets) of the history already in the database, or None."""
    keys = session.scalars(
        sa.select(Ticket.idempotency_key)
        .where(Ticket.idempotency_key.like(KEY_PREFIX + "%"))
        .order_by(Ticket.id)
        .limit(1)
    ).first()
    if keys is None:
        return None
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(Ticket)
        .where(Ticket.idempotency_key.like(KEY_PREFIX + "%"))
    )
    return int(keys.split(":")[1]), count


def generate(session, *, days=DEFAULT_DAYS, seed=DEFAULT_SEED, now=None, per_day=CALLS_PER_DAY):
    """Make ``days`` days of history ending at ``now`` (default: the present) and return its
    ``Summary``. Adds nothing if a history is already there. The caller commits."""
    found = existing(session)
    if found is not None:
        return summarize(session, seed=found[0], days=days, already=True, now=now)
    now = now or dt.datetime.now(dt.UTC)
    with _few_collections():
        made = _History(session, days=days, seed=seed, now=now, per_day=per_day)
        made.run()
    # The early warnings the scheduler would have raised over those days (预警). (The hot
    # issues' rebuild over the same tickets belongs here too: dashboards.hotspots.)
    warnings.backfill(session, made.start, now, WARNING_STEP)
    # The past is not news: nothing of it goes to the boards or the notification senders.
    session.info.pop("pending_events", None)
    session.info.pop("pending_notifications", None)
    # Nor to citizens: the finish and 再次反映 texts the operations wrote to the outbox.
    session.execute(
        sa.delete(OutboxMessage).where(
            OutboxMessage.audience == outbox.CITIZEN,
            OutboxMessage.ticket_id.in_(
                sa.select(Ticket.id).where(Ticket.idempotency_key.like(KEY_PREFIX + "%"))
            ),
        )
    )
    audit(session, None, "history.generate", payload={"seed": seed, "days": days})
    # The classifier learns from this past: a retraining asked for, which the demo's
    # scheduler runs on start (a candidate, the gate's decision, on the model page).
    learning.request(session, None, "command", now=now)
    return summarize(session, seed=seed, days=days, already=False, now=now)


@contextlib.contextmanager
def _few_collections():
    """Python's cyclic garbage collector less often while the history is made: the session
    holds every ticket made so far, and each collection walked them all again (about 6% of
    the run, growing with the days)."""
    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _turns(rule):
    """The days on which ``rule`` starts and stops applying."""
    if rule.valid_from is not None:
        yield rule.valid_from
    if rule.valid_to is not None:
        yield rule.valid_to + dt.timedelta(days=1)


class _History:
    def __init__(self, session, *, days, seed, now, per_day):
        self.session = session
        self.days = days
        self.seed = seed
        self.now = now
        self.per_day = per_day
        config = current_app.config if current_app else DEFAULTS
        self.tz = ZoneInfo(config["TIMEZONE"])
        self.settings = timers.Settings.from_config(config)
        self.calendar = calendar.load(session, config["TIMEZONE"])
        self.queue = []
        self.sequence = 0
        self.generator = CallGenerator(random.Random(seed))
        with open(SEED_DIR / "corpus" / "messages.jsonl", encoding="utf-8") as f:
            self.messages = [json.loads(line) for line in f]
        with open(SEED_DIR / "corpus" / "emergency_cases.jsonl", encoding="utf-8") as f:
            # Emergencies the hotline transfers to 110/119/120/122 (a utility's emergency
            # repair is dispatched, not transferred).
            lines = {t.value for t in TransferTarget}
            self.emergencies = [
                case
                for line in f
                if (case := json.loads(line))["emergency"] and case.get("transfer_to") in lines
            ]
        self.categories = {c.code: c for c in session.scalars(sa.select(Category))}
        self.areas = {a.code: a for a in session.scalars(sa.select(Area))}
        self.articles = {
            a.category.code: a
            for a in session.scalars(
                sa.select(KnowledgeArticle)
                .where(KnowledgeArticle.published)
                .order_by(KnowledgeArticle.code)
            )
            if a.category is not None
        }
        self._actors()
        self.open_cases = []
        self.phones = []
        self.unit_choices = {}
        # The days on which some dated rule starts or stops: between two of them the
        # catalogue is the same, so a remembered choice holds for the whole stretch.
        self.catalogue_turns = sorted(
            {d for r in session.scalars(sa.select(RoutingRule)) for d in _turns(r)}
        )
        self.local_templates = [
            t for t in self.generator.templates if t["category"][:4] in LOCAL_CATEGORIES
        ]

    def _workday(self, day):
        return self.calendar.is_workday(day)[0]

    # -- who acts ------------------------------------------------------------------------------

    def _actors(self):
        session = self.session
        users = session.scalars(sa.select(User).where(User.active).order_by(User.id)).all()
        by_role = {}
        for user in users:
            by_role.setdefault(user.role, []).append(user)
        centre = session.scalars(
            sa.select(Unit).where(Unit.kind == UnitKind.hotline_centre).order_by(Unit.id)
        ).first()
        for role in (Role.operator, Role.dispatcher, Role.callback_agent, Role.supervisor):
            if not by_role.get(role):
                by_role[role] = [self._new_user(f"history-{role.value}", role, centre)]
        self.operators = by_role[Role.operator]
        self.dispatcher = by_role[Role.dispatcher][0]
        self.callback_agent = by_role[Role.callback_agent][0]
        self.supervisor = by_role[Role.supervisor][0]
        self.grid_worker = next((u for u in by_role.get(Role.grid_worker, []) if u.grids), None)
        self.handlers = {}
        for user in by_role.get(Role.unit_handler, []):
            self.handlers.setdefault(user.unit_id, user)
        self.units = session.scalars(
            sa.select(Unit)
            .where(Unit.active, Unit.kind != UnitKind.hotline_centre)
            .order_by(Unit.code)
        ).all()
        self.units_by_code = {u.code: u for u in self.units}
        names = random.Random(f"{self.seed}:names")
        for unit in self.units:
            if unit.id not in self.handlers:
                name = names.choice(self.generator.surnames) + names.choice(GIVEN_NAMES)
                self.handlers[unit.id] = self._new_user(
                    f"h-{unit.code.lower()}", Role.unit_handler, unit, name=name
                )

    def _new_user(self, username, role, unit, name=None):
        """A handling account for the history; it cannot log in until an administrator gives
        it a password (``hotline set-password``)."""
        user = self.session.scalars(sa.select(User).where(User.username == username)).first()
        if user is None:
            user = User(
                username=username,
                name=name or f"{unit.name if unit else ''}{role.label}",
                role=role,
                unit=unit,
                password_hash="!",
            )
            self.session.add(user)
            self.session.flush()
        return user

    # -- the event loop ------------------------------------------------------------------------

    def at(self, moment, step, case):
        """Run ``step(case, moment)`` at ``moment`` (dropped if after the end)."""
        if moment <= self.now:
            self.sequence += 1
            heapq.heappush(self.queue, (moment, self.sequence, step, case))

    def run(self):
        cases = self._calls()
        self._suggest(cases)
        for case in cases:
            self.at(case.at, self._receive, case)
        timers.reference.get(self.session)
        self.policies = []
        self._keep_policies()
        next_tick = self._start + TICK
        while self.queue:
            moment, _, step, case = heapq.heappop(self.queue)
            while next_tick <= moment:
                self._tick(next_tick)
                next_tick += TICK
            step(case, moment)
        self._tick(self.now)

    def _keep_policies(self):
        """Hold the time-limit rows: every operation reads its ticket's, and the session keeps
        only rows someone holds (the timers' reference data also takes them out of it)."""
        if not self.policies or any(p not in self.session for p in self.policies):
            self.policies = self.session.scalars(sa.select(SlaPolicy)).all()

    def _tick(self, moment):
        """The scheduler's run at ``moment``. Its plain UPDATEs leave the session's tickets
        stale, so the columns it writes are read back for those it touched, in one query
        (expiring them would reload each ticket on its next operation, one query each)."""
        ids = self.session.scalars(sa.select(Ticket.id).where(Ticket.next_due_at <= moment)).all()
        if not ids:
            return
        timers.tick(self.session, moment, self.settings, batch=len(ids) + 1)
        self._keep_policies()
        identity_map = self.session.identity_map
        columns = [getattr(Ticket, name) for name in TICK_ATTRIBUTES]
        for row in self.session.execute(sa.select(Ticket.id, *columns).where(Ticket.id.in_(ids))):
            ticket = identity_map.get(identity_key(Ticket, row[0]))
            if ticket is not None:
                for name, value in zip(TICK_ATTRIBUTES, row[1:], strict=True):
                    set_committed_value(ticket, name, value)

    # -- planning the calls ----------------------------------------------------------------------

    def _calls(self):
        local_now = self.now.astimezone(self.tz)
        first = local_now.date() - dt.timedelta(days=self.days - 1)
        self._start = dt.datetime.combine(first, dt.time(), self.tz).astimezone(dt.UTC)
        self.start = self._start
        cases = []
        for offset in range(self.days):
            day = first + dt.timedelta(days=offset)
            day_rng = random.Random(f"{self.seed}:day:{day.isoformat()}")
            factor = WEEKDAY_FACTOR[day.weekday()]
            if day.weekday() < 5 and not self._workday(day):
                factor *= HOLIDAY_FACTOR
            count = round(self.per_day * factor * day_rng.uniform(0.88, 1.12))
            moments = sorted(
                dt.datetime.combine(
                    day,
                    dt.time(day_rng.choices(range(24), HOUR_WEIGHTS)[0], day_rng.randrange(60)),
                    self.tz,
                )
                + dt.timedelta(seconds=day_rng.randrange(60))
                for _ in range(count)
            )
            for moment in moments:
                index = len(cases)
                rng = random.Random(f"{self.seed}:{index}")
                cases.append(self._case(index, rng, moment.astimezone(dt.UTC)))
        # The storylines (a surge, a sudden event, repeated matters), after the random calls
        # so that those stay as they were.
        planner = storylines.Planner(
            self.generator,
            seed=self.seed,
            tz=self.tz,
            first=first,
            last=local_now.date(),
            workday=self._workday,
        )
        for moment, body in planner.plan():
            index = len(cases)
            rng = random.Random(f"{self.seed}:{index}")
            cases.append(_Case(index, rng, moment, body, self._fate(rng, body)))
        # The 监察问责 stories, last: their handling follows the story, not a draw.
        for moment, body in planner.accountability():
            index = len(cases)
            cases.append(_Case(index, random.Random(f"{self.seed}:{index}"), moment, body, "story"))
        return cases

    def _case(self, index, rng, moment):
        draw = rng.random()
        if draw < 0.012:
            case = self.emergencies[rng.randrange(len(self.emergencies))]
            body = {
                "channel": "phone",
                "request_type": "help",
                "urgency": "emergency",
                "category": None,
                "content": case["text"],
                "transfer_to": case["transfer_to"],
            }
            return _Case(index, rng, moment, body, "transfer")
        if draw < 0.04 and self.grid_worker is not None:
            return _Case(index, rng, moment, self._grid_report(rng), "dispatch")
        if draw < 0.08:
            return _Case(index, rng, moment, {}, "merge")
        self.generator.rng = rng
        if rng.random() < 0.25:
            message = self.messages[rng.randrange(len(self.messages))]
            body = {
                "channel": message["channel"],
                "request_type": message["request_type"],
                "urgency": message["urgency"],
                "category": message["category"],
                "title": message["title"],
                "content": message["text"],
                "address": None,
                "area": None,
            }
            if rng.random() < 0.85:
                self._requester(rng, body)
        else:
            # Property management, illegal building and street cleanliness (the streets'
            # matters) are a large share of real calls but a few of the templates.
            local = rng.random() < 0.35
            body = self.generator.call(rng.choice(self.local_templates) if local else None)
            body.setdefault("requester_phone", None)
            if body["requester_phone"] and self.phones and rng.random() < 0.12:
                body["requester_phone"] = self.phones[rng.randrange(len(self.phones))]
        if body.get("requester_phone"):
            self.phones.append(body["requester_phone"])
        return _Case(index, rng, moment, body, self._fate(rng, body))

    def _requester(self, rng, body):
        body["requester_name"] = rng.choice(self.generator.surnames) + rng.choice(["先生", "女士"])
        body["requester_phone"] = self.generator.phone()
        if self.phones and rng.random() < 0.12:
            body["requester_phone"] = self.phones[rng.randrange(len(self.phones))]

    def _fate(self, rng, body):
        request_type = RequestType(body["request_type"])
        if body["category"] and body["category"].startswith("13") and rng.random() < 0.4:
            return "legal"
        draw = rng.random()
        if request_type == RequestType.consult and draw < 0.7:
            return "answer"
        if request_type in (RequestType.suggestion, RequestType.praise) and draw < 0.5:
            return "answer"
        if draw < 0.05:
            return "outcome"
        return "dispatch"

    def _grid_report(self, rng):
        """主动发现: the grid worker reports what they found in one of their grids."""
        grid = rng.choice(sorted(self.grid_worker.grids, key=lambda g: g.code))
        templates = [
            t for t in self.generator.templates if t["category"][:4] in {"0101", "0205", "0206"}
        ]
        template = rng.choice(templates)
        community = grid.parent
        street = community.parent
        district = street.parent
        road = rng.choice(self.generator.roads.get(district.code) or ["中心街"])
        address = f"{district.name}{street.name}{community.name}{road}{rng.randint(1, 300)}号"
        content = template["content"].replace("{place}", address)
        content = content.replace("市民来电反映", "网格员巡查发现").replace("来电人", "网格员")
        return {
            "channel": "grid",
            "request_type": "report",
            "urgency": "normal",
            "category": template["category"],
            "title": template["title"],
            "content": content,
            "address": address,
            "area": grid.code,
            "requester_phone": None,
        }

    def _suggest(self, cases):
        """The classifier's suggestions for every call at once (its batch path), as intake
        would have stored them; corpus messages without an address get the place the
        suggestion located, when it is sure of it."""
        texts = [c for c in cases if c.body.get("content")]
        if current_app and current_app.config["CLASSIFIER_ENABLED"]:
            results = suggestions.service().suggest_many(
                self.session,
                [c.body["content"] for c in texts],
                addresses=[c.body.get("address") for c in texts],
            )
        else:
            results = [None] * len(texts)
        for case, result in zip(texts, results, strict=True):
            case.suggestion = result
            body = case.body
            if body.get("area", False) is not None:
                continue  # placed by its template, or not a corpus message
            place = (result or {}).get("area") or {}
            if place.get("code") and place.get("confidence", 0) >= 0.8:
                body["area"] = place["code"]
            elif case.rng.random() < 0.85:
                # The operator asked where it is: the caller's address, typed.
                self.generator.rng = case.rng
                body["address"], body["area"] = self.generator.place()

    # -- intake --------------------------------------------------------------------------------

    def _receive(self, case, moment):
        if case.fate == "merge":
            self._repeat(case, moment)
            return
        body = case.body
        rng = case.rng
        channel = Channel(body["channel"])
        actor = self.grid_worker if channel == Channel.grid else rng.choice(self.operators)
        category = self.categories.get(body["category"]) if body.get("category") else None
        urgency = Urgency(body["urgency"])
        ticket, _ = operations.receive(
            self.session,
            actor,
            channel=channel,
            request_type=RequestType(body["request_type"]),
            urgency=urgency,
            content=body["content"],
            title=body.get("title"),
            category=category,
            requester_name=body.get("requester_name"),
            requester_phone=body.get("requester_phone"),
            address=body.get("address"),
            area=self.areas.get(body.get("area")) if body.get("area") else None,
            idempotency_key=f"{KEY_PREFIX}{self.seed}:{case.index}",
            suggestion=case.suggestion,
            emergency_decision=self._decision(
                case.suggestion, channel, urgency, transferred=case.fate == "transfer"
            ),
            now=moment,
        )
        case.ticket = ticket
        call_ends = moment + dt.timedelta(minutes=rng.uniform(2, 9))
        if case.fate == "transfer":
            self.at(call_ends, self._transfer, case)
        elif case.fate == "legal":
            self.at(call_ends, self._legal, case)
        elif case.fate == "answer":
            self.at(call_ends, self._answer, case)
        elif case.fate == "outcome":
            self.at(call_ends, self._outcome, case)
        elif case.fate == "story":
            self.at(moment + dt.timedelta(minutes=rng.uniform(4, 20)), self._story_dispatch, case)
        else:
            self.at(moment + dt.timedelta(minutes=rng.uniform(4, 75)), self._dispatch, case)

    @staticmethod
    def _decision(suggestion, channel, urgency, *, transferred=False):
        """The operator's answer to the console's emergency warning, as the console records
        it: 转接 when the call is transferred (the console's transfer action, warning or not);
        otherwise, if a warning showed, 确认紧急 when the operator set 紧急 and 忽略预警 when
        not; None when there was nothing to answer."""
        if transferred:
            return EmergencyDecision.transferred
        if channel == Channel.grid or operations.emergency_warning(suggestion) is None:
            return None
        if urgency == Urgency.emergency:
            return EmergencyDecision.kept
        return EmergencyDecision.dismissed

    def _repeat(self, case, moment):
        """并单: another caller reports a matter already on an open ticket."""
        rng = case.rng
        self.open_cases = [
            c
            for c in self.open_cases
            if c.ticket.status not in FINAL and moment - c.ticket.received_at < dt.timedelta(days=7)
        ]
        if not self.open_cases:
            return
        target = self.open_cases[rng.randrange(len(self.open_cases))].ticket
        self.generator.rng = rng
        ticket, _ = operations.receive(
            self.session,
            rng.choice(self.operators),
            channel=Channel.phone,
            request_type=target.request_type,
            urgency=target.urgency,
            content="又有市民来电反映同一问题：" + target.content,
            title=target.title,
            category=target.category,
            requester_name=rng.choice(self.generator.surnames) + rng.choice(["先生", "女士"]),
            requester_phone=self.generator.phone(),
            address=target.address,
            area=target.area,
            idempotency_key=f"{KEY_PREFIX}{self.seed}:{case.index}",
            suggestion=target.suggestion,
            emergency_decision=self._decision(target.suggestion, Channel.phone, target.urgency),
            now=moment,
        )
        case.ticket = ticket
        operations.merge(
            self.session,
            ticket.created_by,
            ticket,
            into=target,
            reason=f"与工单 {target.number} 反映同一事项",
            now=moment + dt.timedelta(minutes=rng.uniform(2, 6)),
        )

    def _transfer(self, case, moment):
        target = TransferTarget(case.body["transfer_to"])
        operations.transfer(
            self.session,
            case.ticket.created_by,
            case.ticket,
            target=target,
            reason=f"紧急情况，已三方通话转{target.label}并告知来电人注意安全。",
            now=moment,
        )

    def _legal(self, case, moment):
        target, reason = case.rng.choice(LEGAL_CHANNELS)
        operations.transfer(
            self.session, case.ticket.created_by, case.ticket, target=target, reason=reason,
            now=moment,
        )  # fmt: skip

    def _answer(self, case, moment):
        ticket = case.ticket
        article = None
        if ticket.category is not None:
            article = next(
                (self.articles[c] for c in ticket.category.ancestor_codes() if c in self.articles),
                None,
            )
        # As at the console: the article read out closes the call and is recorded with it
        # (its answer, naming it); without one, the operator's own words.
        answer = None
        if article is None:
            answer = GENERIC_ANSWERS.get(ticket.request_type, GENERIC_ANSWERS[RequestType.consult])
        operations.resolve_at_intake(
            self.session,
            ticket.created_by,
            ticket,
            outcome=IntakeOutcome.answered,
            answer=answer,
            article=article,
            now=moment,
        )

    def _outcome(self, case, moment):
        outcome, answer = case.rng.choice(OTHER_OUTCOMES)
        operations.resolve_at_intake(
            self.session, case.ticket.created_by, case.ticket, outcome=outcome, answer=answer,
            now=moment,
        )  # fmt: skip

    # -- dispatch and handling -------------------------------------------------------------------

    def _dispatch(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.category is None:
            top = ((case.suggestion or {}).get("category") or {}).get("top") or []
            ticket_category = self.categories.get(top[0]["code"]) if top else None
            if ticket_category is None:
                self._outcome(case, moment)
                return
        else:
            ticket_category = None
        category = ticket_category or ticket.category
        right = self._dispatch_unit(
            category, ticket.area, case.suggestion, moment.astimezone(self.tz).date()
        )
        if right is None:
            self._outcome(case, moment)
            return
        case.right = right
        lead = right
        if rng.random() < 0.07:
            case.wrong = self._wrong_unit(ticket, right, rng)
            lead = case.wrong or right
        assists = []
        if rng.random() < 0.04 and ticket.area is not None:
            other = routing.territorial_unit(self.session, ticket.area)
            if other is not None and other.id != lead.id:
                assists = [other]
        operations.dispatch(
            self.session,
            self.dispatcher,
            ticket,
            lead=lead,
            assists=assists,
            category=ticket_category,
            now=moment,
        )
        self.open_cases.append(case)
        pace = rng.random()
        case.pace = "on_time" if pace < 0.8 else "late" if pace < 0.93 else "very_late"
        if rng.random() < 0.03:
            self.at(moment + dt.timedelta(hours=rng.uniform(2, 120)), self._exempt, case)
        for _ in assists:
            if rng.random() < 0.7:
                self.at(moment + self._part(ticket.sign_due - moment, rng), self._sign_assist, case)
        self._start_round(case, moment)

    def _dispatch_unit(self, category, area, suggestion, day):
        """``routing.dispatch_unit`` with the catalogue of ``day`` (the local date dispatched
        on: a dated rule applies to the days it is in force), remembered: thousands of tickets
        share a few hundred (category, place, suggested units) combinations a day."""
        units = tuple(u.get("code") for u in (suggestion or {}).get("units") or [])
        top = ((suggestion or {}).get("category") or {}).get("top") or [{}]
        # The catalogue names areas down to streets, and the territorial unit is the street's.
        stretch = bisect.bisect_right(self.catalogue_turns, day)
        key = (category.code, area.code[:9] if area else None, top[0].get("code"), units, stretch)
        if key not in self.unit_choices:
            self.unit_choices[key] = routing.dispatch_unit(
                self.session, category, area, suggestion, day
            )
        return self.unit_choices[key]

    def _wrong_unit(self, ticket, right, rng):
        """A plausible first dispatch that the unit sends back: the place's street office for a
        department's matter, a department for a street's."""
        if right.kind != UnitKind.street_office and ticket.area is not None:
            unit = routing.territorial_unit(self.session, ticket.area)
            if unit is not None and unit.id != right.id:
                return unit
        departments = [u for u in self.units if u.kind == UnitKind.city_department]
        unit = rng.choice(departments)
        return unit if unit.id != right.id else None

    def _part(self, span, rng, low=0.05, high=0.75):
        return span * rng.uniform(low, high)

    def _start_round(self, case, moment):
        """A unit got the ticket (dispatch, re-dispatch, reopen): it signs, or first sends a
        wrong dispatch back."""
        ticket, rng = case.ticket, case.rng
        window = ticket.sign_due - moment
        if case.wrong is not None and ticket.lead_unit_id == case.wrong.id:
            if rng.random() < 0.5:
                self.at(moment + self._part(window, rng), self._sign, case)
            else:
                self.at(moment + self._part(window, rng, 0.3, 1.5), self._return, case)
            return
        if ticket.status == S.reopened:
            # Sent back after an unhappy callback: the unit takes it up in office hours.
            at = self._working(moment + dt.timedelta(hours=rng.uniform(0.5, 8)), ticket, rng)
            self.at(at, self._sign, case)
            return
        draw = rng.random()
        if draw < 0.06:
            share = rng.uniform(0.8, 1.0)  # signed late in the clock: the warning fired
        elif draw < 0.11:
            share = rng.uniform(1.05, 4.0)  # signed after the deadline
        else:
            share = rng.uniform(0.03, 0.6)
        self.at(moment + window * share, self._sign, case)

    def _handler(self, ticket):
        return self.handlers[ticket.lead_unit_id]

    def _sign(self, case, moment):
        ticket = case.ticket
        if ticket.status not in (S.dispatched, S.reopened):
            return
        operations.sign(self.session, self._handler(ticket), ticket, now=moment)
        if case.wrong is not None and ticket.lead_unit_id == case.wrong.id:
            self.at(moment + dt.timedelta(minutes=case.rng.uniform(20, 240)), self._return, case)
            return
        designated = ticket.lead_assignment is not None and ticket.lead_assignment.designated
        if case.rng.random() < 0.012 and case.rounds == 0 and not designated:
            self.at(moment + dt.timedelta(minutes=case.rng.uniform(20, 180)), self._return, case)
            return
        self._after_sign(case, moment)

    def _sign_assist(self, case, moment):
        ticket = case.ticket
        if ticket.status not in (S.dispatched, S.reopened, S.signed, S.contacted):
            return
        for assignment in ticket.assignments:
            if assignment.active and assignment.role.value == "assist" and not assignment.signed_at:
                operations.sign(self.session, self.handlers[assignment.unit_id], ticket, now=moment)
                # Its report comes a third of the way to the finish deadline (no draw: the
                # other steps' random numbers stay as they were).
                later = max((ticket.finish_due - moment) / 3, dt.timedelta(minutes=30))
                self.at(moment + later, self._report_assist, case)
                return

    def _report_assist(self, case, moment):
        """协办反馈 of the first signed assisting unit that has not reported yet."""
        ticket = case.ticket
        if ticket.status not in IN_HANDLING:
            return
        for a in ticket.assignments:
            if a.active and a.role.value == "assist" and a.signed_at and not a.finished_at:
                handler = self.handlers[a.unit_id]
                cohandling.report_assist(
                    self.session, handler, ticket, report=ASSIST_REPORT, now=moment
                )
                return

    def _after_sign(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.requester_phone:
            window = ticket.contact_due - ticket.clock_started_at
            share = rng.uniform(0.05, 0.7) if rng.random() < 0.93 else rng.uniform(1.05, 2.5)
            at = max(ticket.clock_started_at + window * share, moment + dt.timedelta(minutes=5))
            self.at(at, self._contact, case)
        else:
            self._plan_work(case, moment)

    def _return(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status not in (S.dispatched, S.signed):
            return
        if case.wrong is not None and ticket.lead_unit_id == case.wrong.id:
            reason = (
                ReturnReason.wrong_territory
                if case.wrong.kind == UnitKind.street_office
                else ReturnReason.not_our_duty
            )
        else:
            reason = rng.choice([ReturnReason.ownership_unclear, ReturnReason.overlapping_duties])
        operations.request_return(
            self.session,
            self._handler(ticket),
            ticket,
            return_reason=reason,
            note=RETURN_NOTES[reason],
            now=moment,
        )
        self.at(moment + dt.timedelta(hours=rng.uniform(0.5, 20)), self._decide_return, case)

    def _decide_return(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status != S.return_requested:
            return
        returning_wrong = case.wrong is not None and ticket.lead_unit_id == case.wrong.id
        if returning_wrong and rng.random() < 0.25:
            operations.designate(
                self.session,
                self.dispatcher,
                ticket,
                lead=case.right,
                note=f"经核实属{case.right.name}职责，指定其承办，不得再退。",
                now=moment,
            )
        elif returning_wrong:
            operations.decide_return(
                self.session,
                self.dispatcher,
                ticket,
                approve=True,
                note=f"同意退单，改派{case.right.name}。",
                lead=case.right,
                now=moment,
            )
        else:
            operations.decide_return(
                self.session,
                self.dispatcher,
                ticket,
                approve=False,
                note="经核实属本单位职责范围，退单理由不成立，请继续办理。",
                now=moment,
            )
            if ticket.status == S.signed:
                self._after_sign(case, moment)
            else:
                self._start_round(case, moment)
            return
        case.wrong = None
        self._start_round(case, moment)

    def _contact(self, case, moment):
        ticket = case.ticket
        if ticket.status != S.signed:
            return
        operations.contact(
            self.session,
            self._handler(ticket),
            ticket,
            note="已电话联系诉求人，了解具体情况并约定处理时间。",
            now=moment,
        )
        self._plan_work(case, moment)

    def _plan_work(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if self._story(case, "claimed_solved"):
            self._plan_finish(case, moment)
            return
        draw = rng.random()
        if case.rounds == 0 and draw < 0.015:
            self.at(moment + dt.timedelta(hours=rng.uniform(2, 48)), self._terminate, case)
        elif case.rounds == 0 and draw < 0.075:
            at = moment + (ticket.finish_due - moment) * rng.uniform(0.3, 0.8)
            self.at(self._working(at, ticket, rng), self._extend, case)
        else:
            self._plan_finish(case, moment)

    def _plan_finish(self, case, moment):
        ticket, rng = case.ticket, case.rng
        due, start = ticket.finish_due, ticket.clock_started_at
        if case.pace == "on_time" or case.rounds > 0:
            at = start + (due - start) * rng.uniform(0.25, 0.95)
            moved = self._working(at, ticket, rng)
            at = moved if moved <= due else at
        elif case.pace == "late":
            at = self._working(due + dt.timedelta(hours=rng.uniform(1, 72)), ticket, rng)
        else:
            at = self._working(due + dt.timedelta(days=rng.uniform(5, 24)), ticket, rng)
        self.at(max(at, moment + dt.timedelta(minutes=10)), self._finish, case)

    def _working(self, moment, ticket, rng):
        """``moment``, or the next working morning if a unit that keeps office hours would not
        be at work then."""
        if ticket.lead_unit is not None and ticket.lead_unit.always_on:
            return moment
        return self._office(moment, rng)

    def _office(self, moment, rng):
        """``moment`` if in office hours of a working day, else a time on the next morning."""
        local = moment.astimezone(self.tz)
        if self._workday(local.date()) and WORK_START <= local.time() <= WORK_END:
            return moment
        day = local.date() + dt.timedelta(days=1 if local.time() > WORK_END else 0)
        while not self._workday(day):
            day += dt.timedelta(days=1)
        start = dt.datetime.combine(day, WORK_START, self.tz)
        return (start + dt.timedelta(minutes=rng.uniform(0, 240))).astimezone(dt.UTC)

    def _extend(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status not in (S.signed, S.contacted):
            return
        operations.request_extension(
            self.session,
            self._handler(ticket),
            ticket,
            days=rng.choice([3, 5, 5, 7, 10]),
            reason="需协调多个部门并等待施工条件，申请延期办理。",
            now=moment,
        )
        decided = moment + dt.timedelta(hours=rng.uniform(1, 30))
        self.at(decided, self._decide_extension, case)

    def _decide_extension(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status not in (S.signed, S.contacted):
            return
        approve = rng.random() < 0.8
        operations.decide_extension(
            self.session,
            self.supervisor if rng.random() < 0.5 else self.dispatcher,
            ticket,
            approve=approve,
            note="延期理由充分，同意延期。" if approve else "延期理由不充分，请按原时限办结。",
            now=moment,
        )
        self._plan_finish(case, moment)

    def _terminate(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status not in (S.signed, S.contacted):
            return
        operations.request_termination(
            self.session,
            self._handler(ticket),
            ticket,
            reason="诉求人表示问题已自行解决，撤回诉求，申请终止办理。",
            now=moment,
        )
        review = self._working(moment + dt.timedelta(hours=rng.uniform(4, 60)), ticket, rng)
        self.at(review, self._review_termination, case)

    def _review_termination(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status != S.termination_requested:
            return
        approve = rng.random() < 0.7
        operations.review_termination(
            self.session,
            self.supervisor,
            ticket,
            approve=approve,
            note="经核实诉求人已撤回，同意终止。" if approve else "诉求人未撤回，请继续办理。",
            now=moment,
        )
        if not approve:
            self._plan_finish(case, moment)

    def _finish(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status not in (S.signed, S.contacted):
            return
        story = self._story(case, "claimed_solved")
        result = story["reply"] if story and case.rounds == 0 else rng.choice(RESULTS)
        operations.finish(
            self.session,
            self._handler(ticket),
            ticket,
            result=result,
            assists_note=ASSISTS_NOTE,
            now=moment,
        )
        if ticket.status == S.reviewing:
            # 办结审核: a supervisor decides in office hours before the citizen hears of it.
            review = self._working(moment + dt.timedelta(hours=rng.uniform(0.5, 6)), ticket, rng)
            self.at(review, self._review_reply, case)
            return
        self._after_reply(case, moment)

    def _review_reply(self, case, moment):
        """审核通过 most replies; send some back (the unit mends it and finishes again)."""
        ticket, rng = case.ticket, case.rng
        if ticket.status != S.reviewing:
            return
        if rng.random() < REPLY_RETURN_SHARE:
            operations.return_reply(
                self.session, self.supervisor, ticket, reason=rng.choice(REVIEW_RETURNS), now=moment
            )
            self._plan_finish(case, moment)
            return
        operations.approve_reply(self.session, self.supervisor, ticket, now=moment)
        self._after_reply(case, moment)

    def _after_reply(self, case, moment):
        """The reply has reached the citizen: the callback (or closing without a phone)."""
        ticket, rng = case.ticket, case.rng
        if not ticket.requester_phone:
            at = moment + dt.timedelta(hours=rng.uniform(1, 20))
            self.at(self._callback_hours(at, rng), self._close_no_phone, case)
            return
        hours = rng.uniform(0.5, 20) if rng.random() < 0.95 else rng.uniform(30, 80)
        self.at(self._callback_hours(moment + dt.timedelta(hours=hours), rng), self._callback, case)

    def _callback_hours(self, moment, rng):
        local = moment.astimezone(self.tz)
        if CALLBACK_START <= local.time() <= CALLBACK_END:
            return moment
        day = local.date() + dt.timedelta(days=1 if local.time() > CALLBACK_END else 0)
        start = dt.datetime.combine(day, CALLBACK_START, self.tz)
        return (start + dt.timedelta(minutes=rng.uniform(0, 180))).astimezone(dt.UTC)

    def _close_no_phone(self, case, moment):
        if case.ticket.status != S.finished:
            return
        operations.close(
            self.session, self.callback_agent, case.ticket, reason="诉求人未留电话", now=moment
        )

    def _callback(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status != S.finished:
            return
        story = self._story(case, "claimed_solved")
        if story and case.rounds == 0:
            # The requester says nothing was done.
            operations.record_callback(
                self.session,
                self.callback_agent,
                ticket,
                outcome=CallbackOutcome.answered,
                solved=Solved.unsolved,
                satisfaction=Satisfaction.dissatisfied,
                comment=story["comment"],
                now=moment,
            )
            review = self._office(moment + dt.timedelta(hours=rng.uniform(1, 30)), rng)
            self.at(review, self._review_unhappy, case)
            return
        draw = rng.random()
        if draw < 0.11:
            operations.record_callback(
                self.session,
                self.callback_agent,
                ticket,
                outcome=CallbackOutcome.no_answer,
                now=moment,
            )
            if ticket.status == S.finished:
                retry = moment + dt.timedelta(hours=24 + rng.uniform(0.1, 6))
                self.at(self._callback_hours(retry, rng), self._callback, case)
            return
        if draw < 0.135:
            refused = rng.random() < 0.6
            outcome = CallbackOutcome.refused if refused else CallbackOutcome.wrong_number
            operations.record_callback(
                self.session, self.callback_agent, ticket, outcome=outcome, now=moment
            )
            return
        solved, satisfaction = self._rating(rng, second_round=case.rounds > 0)
        comment = None if satisfaction == Satisfaction.satisfied else "诉求人对办理结果有意见"
        if ticket.channel in ONLINE_CHANNELS and draw >= ONLINE_RATING_FROM:
            # The citizen rated it on the 市民端 (一事一评) before the call came: the same
            # answers, through the same operation, by the channel's portal account.
            citizen_tracking.rate_online(
                self.session,
                ticket,
                ticket.requester_phone,
                solved=solved,
                satisfaction=satisfaction,
                comment=comment,
                now=moment,
            )
        else:
            operations.record_callback(
                self.session,
                self.callback_agent,
                ticket,
                outcome=CallbackOutcome.answered,
                solved=solved,
                satisfaction=satisfaction,
                comment=comment,
                now=moment,
            )
        if ticket.status == S.called_back:
            # The supervisor decides in office hours.
            review = self._office(moment + dt.timedelta(hours=rng.uniform(1, 30)), rng)
            self.at(review, self._review_unhappy, case)

    @staticmethod
    def _rating(rng, second_round):
        draw = rng.random()
        if second_round:
            solved = Solved.solved if draw < 0.9 else Solved.partly
        else:
            solved = (
                Solved.solved if draw < 0.8 else Solved.partly if draw < 0.92 else Solved.unsolved
            )
        weights = {
            Solved.solved: (0.86, 0.12, 0.02),
            Solved.partly: (0.3, 0.5, 0.2),
            Solved.unsolved: (0.05, 0.25, 0.7),
        }[solved]
        satisfaction = rng.choices(
            [Satisfaction.satisfied, Satisfaction.basically, Satisfaction.dissatisfied], weights
        )[0]
        return solved, satisfaction

    def _review_unhappy(self, case, moment):
        ticket, rng = case.ticket, case.rng
        if ticket.status != S.called_back:
            return
        if ticket.reopen_count < 2 and rng.random() < 0.75:
            operations.reopen(
                self.session,
                self.supervisor,
                ticket,
                reason="诉求人反映问题未解决，退回原承办单位重新办理。",
                now=moment,
            )
            case.rounds += 1
            case.pace = "on_time"
            self._start_round(case, moment)
        else:
            operations.close(
                self.session,
                self.supervisor,
                ticket,
                reason="承办单位已依法依规办理，诉求人要求超出政策范围，不再重办。",
                now=moment,
            )

    # -- the 监察问责 stories (server.storylines, story 4) -----------------------------------

    @staticmethod
    def _story(case, kind):
        story = case.body.get("story")
        return story if story and story["kind"] == kind else None

    def _story_dispatch(self, case, moment):
        story = case.body["story"]
        first = story["units"][0] if story["kind"] == "bounced" else story["unit"]
        operations.dispatch(
            self.session, self.dispatcher, case.ticket, lead=self.units_by_code[first], now=moment
        )
        self.open_cases.append(case)
        case.pace = "on_time"
        if story["kind"] == "bounced":
            # Sent back within minutes, without going to look.
            self.at(
                moment + dt.timedelta(minutes=case.rng.uniform(4, 14)), self._story_return, case
            )
        else:
            self._start_round(case, moment)

    def _story_return(self, case, moment):
        ticket = case.ticket
        if ticket.status not in (S.dispatched, S.signed):
            return
        operations.request_return(
            self.session,
            self._handler(ticket),
            ticket,
            return_reason=ReturnReason.ownership_unclear,
            note=case.body["story"]["notes"][ticket.lead_unit.code],
            now=moment,
        )
        self.at(moment + dt.timedelta(minutes=case.rng.uniform(20, 90)), self._story_decide, case)

    def _story_decide(self, case, moment):
        """Upheld to the other unit, once each way; then the first is designated."""
        ticket, units = case.ticket, case.body["story"]["units"]
        if ticket.status != S.return_requested:
            return
        case.returns += 1
        if case.returns < len(units):
            other = self.units_by_code[units[case.returns]]
            operations.decide_return(
                self.session,
                self.dispatcher,
                ticket,
                approve=True,
                note=f"同意退单，改派{other.name}。",
                lead=other,
                now=moment,
            )
            self.at(
                moment + dt.timedelta(minutes=case.rng.uniform(4, 14)), self._story_return, case
            )
            return
        first = self.units_by_code[units[0]]
        operations.designate(
            self.session,
            self.dispatcher,
            ticket,
            lead=first,
            note=f"两单位互相推诿，经协调明确由{first.name}牵头处置，不得再退。",
            now=moment,
        )
        self._start_round(case, moment)

    def _exempt(self, case, moment):
        kind, reason = case.rng.choice(EXEMPTIONS)
        if case.ticket.scoring_exempt:
            return
        operations.exempt(
            self.session, self.supervisor, case.ticket, kind=kind, reason=reason, now=moment
        )


# -- what the history holds ---------------------------------------------------------------------


def summarize(session, *, seed, days, already, now=None):
    now = now or dt.datetime.now(dt.UTC)
    mine = Ticket.idempotency_key.like(KEY_PREFIX + "%")

    def grouped(column):
        return dict(
            session.execute(
                sa.select(column, sa.func.count()).where(mine).group_by(column).order_by(column)
            ).all()
        )

    by_status = grouped(Ticket.status)
    by_channel = grouped(Ticket.channel)
    district_of = {a.id: a.code[:6] for a in session.scalars(sa.select(Area))}
    district_names = dict(
        session.execute(
            sa.select(Area.code, Area.name).where(Area.level == AreaLevel.district)
        ).all()
    )
    districts = Counter()
    for area_id, count in grouped(Ticket.area_id).items():
        code = district_of.get(area_id, None) if area_id is not None else None
        districts[district_names.get(code, "未定位") if code else "未定位"] += count
    ids = sa.select(Ticket.id).where(mine)

    def count(*where, model=Ticket):
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    open_overdue = count(mine, Ticket.status.in_(IN_HANDLING), Ticket.finish_due < now)
    finished_late = count(mine, Ticket.finished_at > Ticket.finish_due)
    attempts = dict(
        session.execute(
            sa.select(CallbackAttempt.outcome, sa.func.count())
            .where(CallbackAttempt.ticket_id.in_(ids))
            .group_by(CallbackAttempt.outcome)
        ).all()
    )
    online = count(
        CallbackAttempt.ticket_id.in_(ids),
        CallbackAttempt.channel == CallbackChannel.online,
        model=CallbackAttempt,
    )
    satisfaction = dict(
        session.execute(
            sa.select(Ticket.callback_satisfaction, sa.func.count())
            .where(mine, Ticket.callback_satisfaction.is_not(None))
            .group_by(Ticket.callback_satisfaction)
        ).all()
    )
    facts = {
        "派单": count(mine, Ticket.lead_unit_id.is_not(None)),
        "回访（次）": sum(attempts.values()),
        "回访接通": attempts.get(CallbackOutcome.answered, 0),
        "其中网上评价": online,
        "回访未接通/拒绝/错号": sum(attempts.values()) - attempts.get(CallbackOutcome.answered, 0),
        "满意/基本满意/不满意": "/".join(str(satisfaction.get(s, 0)) for s in Satisfaction),
        "重办": count(mine, Ticket.reopen_count > 0),
        "退单过（改派）": count(mine, Ticket.lead_history),
        "超期未办结（现在）": open_overdue,
        "超期办结": finished_late,
        "考核豁免": count(mine, Ticket.scoring_exempt),
        "督办中": count(mine, Ticket.escalation_level > 0),
        "定时器触发": count(TimerFiring.ticket_id.in_(ids), model=TimerFiring),
        "单位消息": count(Notification.ticket_id.in_(ids), model=Notification),
        "预警（诉求激增/突发事件）": "/".join(
            str(count(EarlyWarning.kind == kind, model=EarlyWarning)) for kind in WarningKind
        ),
    }
    return Summary(
        seed=seed,
        days=days,
        already=already,
        tickets=sum(by_status.values()),
        by_status={s: by_status.get(s, 0) for s in TicketStatus if by_status.get(s)},
        by_channel={c: by_channel.get(c, 0) for c in Channel if by_channel.get(c)},
        by_district=dict(sorted(districts.items(), key=lambda kv: -kv[1])),
        facts=facts,
    )


def report(summary):
    """The summary as lines of text for the terminal."""
    if summary.already:
        head = f"演示历史已存在（种子 {summary.seed}，{summary.tickets} 件工单），本次未重复生成。"
    else:
        head = (
            f"已生成近 {summary.days} 天的演示历史（种子 {summary.seed}）：{summary.tickets} 件工单"
        )
    lines = [head]

    def table(title, rows):
        lines.append(f"  {title}：")
        for label, value in rows:
            lines.append(f"    {_pad(label, 24)}{value:>9}")

    table("按状态", [(s.label, n) for s, n in summary.by_status.items()])
    table("按渠道", [(c.label, n) for c, n in summary.by_channel.items()])
    table("按区县（工单所在地）", list(summary.by_district.items()))
    table("办理情况", list(summary.facts.items()))
    return lines


def _pad(text, width):
    """``text`` padded to ``width`` terminal columns (a Chinese character takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - columns, 0)
