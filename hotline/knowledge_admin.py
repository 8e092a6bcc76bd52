"""Knowledge-base administration (知识库管理): how an article is written, checked, published,
kept up to date and retired, and the import and export of the whole base.

``hotline.knowledge`` searches the articles in force at the console; this module changes them.
Every change is one function here, called by the pages (``hotline.admin.knowledge``), the API
(``hotline.api.knowledge_admin``), the proposal page of a ticket (``dispatch.pages``) and the
scheduler alike. Each checks who may do it and from which state, audits old → new values
(target: the article's code), raises ``reference.KNOWLEDGE`` so every process's index follows
within seconds, and flushes; the caller commits.

=================  ==========================  ==========  ===================================
action             from                        to          who
=================  ==========================  ==========  ===================================
create (新建)      —                           draft       editors (admin, supervisor)
propose (提议)     a finished 咨询 ticket      in_review   the handler of its lead unit
update (修改)      draft                       draft       editors
submit (提交审核)  draft                       in_review   editors
publish (发布)     in_review                   published   reviewers, never one who wrote it
return (退回)      in_review                   draft       reviewers, with a reason
renew (复核续期)   published                   published   reviewers: a new valid-until date
expire (停用)      draft, in_review, published expired     editors, with a reason; and the
                                                           scheduler when valid-until passed
reopen (重新编辑)  expired                     draft       editors
=================  ==========================  ==========  ===================================

Four eyes: whoever wrote the text under review — its author (``proposed_by_id``) and everyone
who created, edited, submitted or imported it since it was last published (read from the
audit log) — may not publish it.

Validity: an article is offered up to and including its ``valid_until`` day (local). On the
day after, ``hotline.knowledge`` stops offering it at once, and the scheduler's job
(``run_due``, every ``JOB_INTERVAL_SECONDS``) records it as expired. The same job sends the
review-due reminder (到期复核提醒): ``knowledge.review_days_before`` days before
``valid_until`` an item in the hotline centre's inbox, once per article and valid-until date
(``review_reminded_at``, cleared whenever the date changes).

Import (``hotline import knowledge``, the admin import page): columns 编码*, 标题*, 事项分类编码,
关键词, 答复内容*, 依据来源, 有效期至, 状态. Matched by code, all or nothing. An empty 状态 makes a
new article 已发布 (an administrator imports a base already checked elsewhere; the importer is
recorded as its reviewer) and leaves an existing one in its state; a filled one sets it.
"""

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from hotline import knowledge, notify, reference, settings, tabular
from hotline.audit import audit, audit_change, values_of
from hotline.db import utcnow
from hotline.enums import AlertLevel, ArticleState, RequestType, Role, TicketStatus, UnitKind
from hotline.errors import Conflict, Forbidden, NotFound, ValidationFailed
from hotline.models import AuditLog, Category, KnowledgeArticle, Ticket, Unit, User
from hotline.schemas import Fields, Page, iso, labelled

A = ArticleState
#: Who writes and edits articles, and who reviews them (督办审核员 and administrators).
EDITORS = frozenset({Role.admin, Role.supervisor})
REVIEWERS = frozenset({Role.admin, Role.supervisor})
#: Who proposes an article from a consultation their unit answered.
PROPOSERS = frozenset({Role.unit_handler})
#: A ticket whose unit's answer may become an article: answered (办结) and not reopened.
PROPOSABLE_STATES = frozenset(
    {TicketStatus.finished, TicketStatus.called_back, TicketStatus.closed}
)

TITLE_MAX = 200
KEYWORDS_MAX = 500
ANSWER_MAX = 5000
SOURCE_MAX = 300
REASON_MAX = 500
CODE_PREFIX = "KB-"
#: How often the scheduler runs the knowledge job, in seconds.
JOB_INTERVAL_SECONDS = 600
#: Inbox item kind of a review-due reminder.
REMINDER_KIND = "knowledge_review"


@dataclass(frozen=True)
class Transition:
    label: str
    from_states: frozenset
    roles: frozenset


TRANSITIONS = {
    "update": Transition("修改", frozenset({A.draft}), EDITORS),
    "submit": Transition("提交审核", frozenset({A.draft}), EDITORS),
    "publish": Transition("审核发布", frozenset({A.in_review}), REVIEWERS),
    "return": Transition("退回修改", frozenset({A.in_review}), REVIEWERS),
    "renew": Transition("复核续期", frozenset({A.published}), REVIEWERS),
    "expire": Transition("停用", frozenset({A.draft, A.in_review, A.published}), EDITORS),
    "reopen": Transition("重新编辑", frozenset({A.expired}), EDITORS),
}
#: Audit actions (``knowledge.<name>``) and their Chinese names, for the history.
ACTION_LABELS = {
    "create": "新建草稿",
    "propose": "由工单提议",
    "import": "导入",
    "remind": "到期复核提醒",
    **{name: t.label for name, t in TRANSITIONS.items()},
}
#: Actions that write the text a reviewer checks (four eyes).
WRITING_ACTIONS = ("create", "propose", "update", "submit", "import")
#: The audited values of an article and their Chinese names.
FIELD_LABELS = {
    "title": "标题",
    "category": "事项分类",
    "keywords": "关键词",
    "answer": "答复内容",
    "source": "依据来源",
    "valid_until": "有效期至",
    "state": "状态",
}
_AUDITED = {
    "title": "title",
    "category": lambda a: a.category.code if a.category else None,
    "keywords": "keywords",
    "answer": "answer",
    "source": "source",
    "valid_until": "valid_until",
    "state": "state",
}
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$", re.ASCII)


def _values(article):
    return values_of(article, _AUDITED)


def _audit(session, actor, action, article, before, *, extra=None):
    return audit_change(
        session,
        actor,
        f"knowledge.{action}",
        target=article.code,
        before=before,
        after=_values(article),
        extra=extra,
    )


def _changed(session):
    reference.bump(session, reference.KNOWLEDGE)


# -- who may do what ----------------------------------------------------------------------------


def require_role(actor, roles, what):
    if actor is None or actor.role not in roles:
        role = actor.role.label if actor is not None else "未登录用户"
        raise Forbidden(
            f"“{role}”角色无权{what}",
            code="ROLE_NOT_ALLOWED",
            details={"role": actor.role.value if actor is not None else None},
        )


def allowed(actor, name, article):
    """Whether ``actor``'s role may do ``name`` on ``article`` in its state (what a page
    offers; the operation checks again, authorship included)."""
    transition = TRANSITIONS[name]
    return actor.role in transition.roles and article.state in transition.from_states


def _check(actor, name, article):
    transition = TRANSITIONS[name]
    require_role(actor, transition.roles, f"对知识库条目执行“{transition.label}”")
    if article.state not in transition.from_states:
        allowed_from = "、".join(s.label for s in transition.from_states)
        raise Conflict(
            f"条目 {article.code} 当前为“{article.state.label}”，"
            f"只有“{allowed_from}”的条目可以{transition.label}",
            code="ARTICLE_STATE_CONFLICT",
            details={"state": article.state.value},
        )


def _locked(session, article):
    """``article`` re-read under a row lock (PostgreSQL): two reviewers acting at once see
    each other's change instead of both passing the state check."""
    return session.execute(
        sa.select(KnowledgeArticle)
        .where(KnowledgeArticle.id == article.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def writers(session, article):
    """Ids of the users who wrote the text now under review: the author and whoever
    created, edited, submitted or imported it since it was last published."""
    found = {article.proposed_by_id} - {None}
    rows = session.execute(
        sa.select(AuditLog.action, AuditLog.actor_id)
        .where(
            AuditLog.target == article.code,
            AuditLog.action.in_([f"knowledge.{a}" for a in (*WRITING_ACTIONS, "publish", "renew")]),
        )
        .order_by(AuditLog.id.desc())
    ).all()
    for action, actor_id in rows:
        if action in ("knowledge.publish", "knowledge.renew"):
            break
        if actor_id is not None:
            found.add(actor_id)
    return found


def may_publish(session, actor, article):
    """Whether ``actor`` may publish ``article`` now (role, state and four eyes)."""
    return allowed(actor, "publish", article) and actor.id not in writers(session, article)


# -- parsing ------------------------------------------------------------------------------------


def parse_date(text):
    """A date typed as 2026-12-31 (also 2026/12/31, 2026.12.31, 2026年12月31日), or None
    when it is not one."""
    match = _DATE.match(text.strip())
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def split_keywords(text):
    """Keywords as the index reads them: phrases separated by single spaces (typed with
    spaces, commas or 、)."""
    return " ".join(dict.fromkeys(tabular.split_list(text or "")))


def article_values(session, data, *, partial=False, today=None):
    """The article fields of a JSON body or a posted form (``hotline.schemas.form_values``):
    ``title``, ``category`` (code, empty: general), ``keywords``, ``answer``, ``source``,
    ``valid_until`` (YYYY-MM-DD). ``partial``: only the fields given (a PATCH); otherwise
    every field, absent ones empty. Raises ValidationFailed naming every bad field."""
    fields = Fields(data)
    values = {}

    def given(name):
        return not partial or name in data

    if given("title"):
        values["title"] = fields.text("title", "标题", required=True, max_len=TITLE_MAX)
    if given("answer"):
        values["answer"] = fields.text(
            "answer", "答复内容", required=True, multiline=True, max_len=ANSWER_MAX
        )
    if given("keywords"):
        keywords = fields.text("keywords", "关键词", max_len=KEYWORDS_MAX, multiline=True)
        values["keywords"] = split_keywords(keywords)
    if given("source"):
        values["source"] = fields.text("source", "依据来源", max_len=SOURCE_MAX)
    if given("category"):
        code = fields.raw("category")
        values["category"] = None
        if code not in (None, ""):
            category = None
            if isinstance(code, str):
                category = session.scalars(
                    sa.select(Category).where(Category.code == code.strip())
                ).first()
            if category is None:
                fields.fail("category", f"事项分类不存在：{code}")
            elif not category.active:
                fields.fail("category", f"事项分类已停用：{category.name}")
            values["category"] = category
    if given("valid_until"):
        raw = fields.raw("valid_until")
        values["valid_until"] = None
        if raw not in (None, ""):
            day = parse_date(raw) if isinstance(raw, str) else None
            if day is None:
                fields.fail("valid_until", "有效期至须为日期，如 2026-12-31")
            elif day < (today or knowledge.local_today()):
                fields.fail("valid_until", "有效期至不能早于今天")
            values["valid_until"] = day
    fields.check()
    return values


def reason_value(data, label="理由"):
    fields = Fields(data)
    reason = fields.text("reason", label, required=True, multiline=True, max_len=REASON_MAX)
    fields.check()
    return reason


def renew_value(data, today=None):
    fields = Fields(data)
    raw = fields.raw("valid_until")
    day = None
    if raw not in (None, ""):
        day = parse_date(raw) if isinstance(raw, str) else None
        if day is None:
            fields.fail("valid_until", "有效期至须为日期，如 2026-12-31")
        elif day < (today or knowledge.local_today()):
            fields.fail("valid_until", "有效期至不能早于今天")
    fields.check()
    return day


# -- changes ------------------------------------------------------------------------------------


def next_code(session):
    """The next free KB-NNN code."""
    codes = session.scalars(
        sa.select(KnowledgeArticle.code).where(KnowledgeArticle.code.like(f"{CODE_PREFIX}%"))
    ).all()
    numbers = [int(c[len(CODE_PREFIX) :]) for c in codes if c[len(CODE_PREFIX) :].isdigit()]
    return f"{CODE_PREFIX}{max(numbers, default=0) + 1:03d}"


def _insert(session, article):
    """Add ``article`` under the next free code (another editor may take one at once)."""
    for _ in range(5):
        article.code = next_code(session)
        try:
            with session.begin_nested():
                session.add(article)
                session.flush()
            return article
        except IntegrityError:
            continue  # the savepoint's rollback took the row out again: next code
    raise Conflict("条目编码冲突，请重试", code="ARTICLE_CODE_CONFLICT")


def _apply(article, values):
    for name, value in values.items():
        if name == "category":
            article.category = value
            article.category_id = value.id if value is not None else None
        elif name == "keywords":
            article.keywords = value or ""
        else:
            setattr(article, name, value)


def create_draft(session, actor, values):
    """新建: a draft written by ``actor`` (its author)."""
    require_role(actor, EDITORS, "新建知识库条目")
    article = KnowledgeArticle(state=A.draft, proposed_by_id=actor.id, hit_count=0)
    _apply(article, {"keywords": "", **values})
    article.updated_at = utcnow()
    _insert(session, article)
    _audit(session, actor, "create", article, None)
    _changed(session)
    return article


def update_draft(session, actor, article, values):
    """修改: change a draft's fields. A new valid-until date earns a new reminder."""
    article = _locked(session, article)
    _check(actor, "update", article)
    before = _values(article)
    old_valid_until = article.valid_until
    _apply(article, values)
    if article.valid_until != old_valid_until:
        article.review_reminded_at = None
    diff = _audit(session, actor, "update", article, before)
    if diff:
        article.updated_at = utcnow()
        session.flush()
        _changed(session)
    return article


def submit(session, actor, article):
    """提交审核: a draft goes to the reviewers."""
    article = _locked(session, article)
    _check(actor, "submit", article)
    before = _values(article)
    article.state = A.in_review
    article.updated_at = utcnow()
    _audit(session, actor, "submit", article, before)
    _changed(session)
    return article


def publish(session, actor, article, *, today=None):
    """审核发布: a reviewer who wrote none of it publishes the article; it is offered at
    intake from now on (every process within seconds)."""
    article = _locked(session, article)
    _check(actor, "publish", article)
    if actor.id in writers(session, article):
        raise Forbidden(
            "不能审核发布自己撰写或修改的条目，请由其他审核人发布",
            code="ARTICLE_OWN_REVIEW",
        )
    today = today or knowledge.local_today()
    if article.valid_until is not None and article.valid_until < today:
        raise ValidationFailed(
            f"条目有效期已于 {article.valid_until} 届满，不能发布（请退回修改有效期）",
            code="ARTICLE_PAST_VALIDITY",
            details={"valid_until": "有效期已过"},
        )
    before = _values(article)
    now = utcnow()
    article.state = A.published
    article.reviewed_by_id = actor.id
    article.reviewed_at = now
    article.updated_at = now
    _audit(session, actor, "publish", article, before)
    _changed(session)
    return article


def send_back(session, actor, article, reason):
    """退回修改: the reviewer returns the article to draft, saying why."""
    article = _locked(session, article)
    _check(actor, "return", article)
    before = _values(article)
    article.state = A.draft
    article.updated_at = utcnow()
    _audit(session, actor, "return", article, before, extra={"reason": reason})
    _changed(session)
    return article


def renew(session, actor, article, valid_until):
    """复核续期: a reviewer confirms a published article still holds, with its new
    valid-until date (None: until withdrawn); the text is unchanged, so no four eyes."""
    article = _locked(session, article)
    _check(actor, "renew", article)
    before = _values(article)
    now = utcnow()
    if article.valid_until != valid_until:
        article.review_reminded_at = None
    article.valid_until = valid_until
    article.reviewed_by_id = actor.id
    article.reviewed_at = now
    article.updated_at = now
    _audit(session, actor, "renew", article, before)
    _changed(session)
    return article


def expire(session, actor, article, reason):
    """停用: withdraw the article (no longer offered); old tickets keep pointing at it."""
    article = _locked(session, article)
    _check(actor, "expire", article)
    before = _values(article)
    article.state = A.expired
    article.updated_at = utcnow()
    _audit(session, actor, "expire", article, before, extra={"reason": reason})
    _changed(session)
    return article


def reopen(session, actor, article):
    """重新编辑: an expired article becomes a draft again (same code, counts kept), to be
    edited, submitted and reviewed like a new one."""
    article = _locked(session, article)
    _check(actor, "reopen", article)
    before = _values(article)
    article.state = A.draft
    article.reviewed_by_id = None
    article.reviewed_at = None
    article.review_reminded_at = None
    article.updated_at = utcnow()
    _audit(session, actor, "reopen", article, before)
    _changed(session)
    return article


# -- proposals from tickets ---------------------------------------------------------------------


def proposal_refusal(actor, ticket):
    """Why ``actor`` may not propose an article from ``ticket`` (a HotlineError), or None."""
    if actor.role not in PROPOSERS:
        return Forbidden("只有承办单位的承办人可以由工单提议知识库条目", code="ROLE_NOT_ALLOWED")
    if ticket.request_type != RequestType.consult:
        return Conflict(
            "只有“咨询”类工单的答复可以提议为知识库条目", code="PROPOSAL_NOT_CONSULTATION"
        )
    if ticket.status not in PROPOSABLE_STATES or not (ticket.result or "").strip():
        return Conflict("工单尚未办结答复，不能提议为知识库条目", code="PROPOSAL_NOT_FINISHED")
    if actor.unit_id is None or ticket.lead_unit_id != actor.unit_id:
        return Forbidden(
            "只有答复该工单的主办单位可以提议知识库条目", code="PROPOSAL_NOT_YOUR_UNIT"
        )
    return None


def can_propose(actor, ticket):
    return proposal_refusal(actor, ticket) is None


def proposed_from(session, ticket):
    """The article already proposed from ``ticket`` (any state), or None."""
    return session.scalars(
        sa.select(KnowledgeArticle).where(KnowledgeArticle.source_ticket_number == ticket.number)
    ).first()


def proposal_defaults(ticket):
    """The proposal form filled from the ticket: its title, category and the unit's reply."""
    return {
        "title": ticket.title,
        "category": ticket.category.code if ticket.category else "",
        "keywords": "",
        "answer": (ticket.result or "").strip(),
        "source": "",
        "valid_until": "",
    }


def propose(session, actor, ticket, values):
    """由工单提议: the handler of the unit that answered a consultation proposes its answer
    as an article; it goes straight to the reviewers, citing the ticket."""
    refusal = proposal_refusal(actor, ticket)
    if refusal is not None:
        raise refusal
    existing = proposed_from(session, ticket)
    if existing is not None:
        raise Conflict(
            f"该工单已提议过知识库条目 {existing.code}（{existing.state.label}）",
            code="PROPOSAL_EXISTS",
        )
    article = KnowledgeArticle(
        state=A.in_review,
        proposed_by_id=actor.id,
        source_ticket_number=ticket.number,
        hit_count=0,
    )
    _apply(article, {"keywords": "", **values})
    article.updated_at = utcnow()
    _insert(session, article)
    _audit(session, actor, "propose", article, None, extra={"ticket": ticket.number})
    _changed(session)
    return article


# -- the scheduler's job ------------------------------------------------------------------------


@dataclass
class JobResult:
    expired: int = 0
    reminded: int = 0


def hotline_centre(session):
    """The hotline centre's unit, whose inbox receives the review reminders."""
    return session.scalars(
        sa.select(Unit).where(Unit.kind == UnitKind.hotline_centre, Unit.active).order_by(Unit.id)
    ).first()


def expire_due(session, now=None, timezone=None):
    """Record as expired every published article whose valid-until day has passed (no
    actor: the system). Returns how many."""
    now = now or utcnow()
    today = knowledge.local_today(now, timezone)
    due = session.scalars(
        sa.select(KnowledgeArticle)
        .where(KnowledgeArticle.state == A.published, KnowledgeArticle.valid_until < today)
        .options(selectinload(KnowledgeArticle.category))
        .order_by(KnowledgeArticle.id)
    ).all()
    count = 0
    for article in due:
        # Conditional: a second scheduler (or an editor) may have changed it meanwhile.
        before = _values(article)
        updated = session.execute(
            sa.update(KnowledgeArticle)
            .where(KnowledgeArticle.id == article.id, KnowledgeArticle.state == A.published)
            .values(state=A.expired, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not updated:
            continue
        session.refresh(article)
        _audit(
            session,
            None,
            "expire",
            article,
            before,
            extra={"reason": f"有效期已于 {article.valid_until} 届满，系统自动停用"},
        )
        count += 1
    if count:
        _changed(session)
    return count


def remind_due(session, now=None, timezone=None):
    """Put a review-due reminder in the hotline centre's inbox for every published article
    whose valid-until date is at most ``knowledge.review_days_before`` days away, once per
    article and date. Returns how many."""
    now = now or utcnow()
    today = knowledge.local_today(now, timezone)
    days = settings.get(session, "knowledge.review_days_before")
    due = session.scalars(
        sa.select(KnowledgeArticle)
        .where(
            KnowledgeArticle.state == A.published,
            KnowledgeArticle.valid_until.is_not(None),
            KnowledgeArticle.valid_until >= today,
            KnowledgeArticle.valid_until <= today + dt.timedelta(days=days),
            KnowledgeArticle.review_reminded_at.is_(None),
        )
        .order_by(KnowledgeArticle.valid_until, KnowledgeArticle.id)
    ).all()
    if not due:
        return 0
    centre = hotline_centre(session)
    if centre is None:
        return 0  # nobody to tell; try again when the centre exists
    messages = []
    for article in due:
        updated = session.execute(
            sa.update(KnowledgeArticle)
            .where(KnowledgeArticle.id == article.id, KnowledgeArticle.review_reminded_at.is_(None))
            .values(review_reminded_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not updated:
            continue
        left = (article.valid_until - today).days
        when = "今天到期" if left == 0 else f"还有 {left} 天"
        messages.append(
            notify.Message(
                unit_id=centre.id,
                unit_code=centre.code,
                kind=REMINDER_KIND,
                level=AlertLevel.yellow,
                title=f"知识库条目待复核：{article.title}"[:200],
                body=(
                    f"知识库条目 {article.code}「{article.title}」有效期至 "
                    f"{article.valid_until}（{when}）。请审核人复核：仍然适用的续期，"
                    "已不适用的停用或重新编辑。"
                )[:1000],
            )
        )
        audit(
            session,
            None,
            "knowledge.remind",
            target=article.code,
            payload={"valid_until": article.valid_until.isoformat(), "unit": centre.code},
        )
    notify.deliver(session, messages, now)
    return len(messages)


def run_due(session_factory, now=None, timezone=None):
    """The scheduler's knowledge job: expire what passed its date, then remind of what is
    due for review; one transaction. Safe to run often and from several schedulers. The
    scheduler runs outside any request: it passes the city's ``timezone``."""
    with session_factory() as session:
        with session.begin():
            result = JobResult(
                expired=expire_due(session, now, timezone),
                reminded=remind_due(session, now, timezone),
            )
    return result


# -- reading ------------------------------------------------------------------------------------


def get_article(session, code):
    article = session.scalars(
        sa.select(KnowledgeArticle)
        .where(KnowledgeArticle.code == code)
        .options(selectinload(KnowledgeArticle.category))
    ).first()
    if article is None:
        raise NotFound(f"知识库条目不存在：{code}", code="ARTICLE_NOT_FOUND")
    return article


def parse_filters(args, errors, session=None):
    """The list's filters from query ``args``: ``state``, ``category`` (code, its subtree),
    ``q`` (words of the title, keywords or answer, or a code), ``due`` ("1": published and
    due for review). Bad values go to ``errors``."""
    filters = {"state": None, "category": "", "q": "", "due": False}
    if args.get("state"):
        filters["state"] = ArticleState.parse(args["state"])
        if filters["state"] is None:
            errors["state"] = "状态应为 draft、in_review、published 或 expired"
    category = (args.get("category") or "").strip()
    if category:
        if not (category.isascii() and category.isalnum() and len(category) <= 32):
            errors["category"] = "事项分类编码格式不正确"
        else:
            filters["category"] = category
    q = (args.get("q") or "").strip()
    if len(q) > 100:
        errors["q"] = "搜索内容不能超过 100 字"
    filters["q"] = q[:100]
    filters["due"] = args.get("due") in ("1", "true")
    return filters


def article_query(session, filters, *, today=None):
    query = sa.select(KnowledgeArticle)
    if filters.get("state") is not None:
        query = query.where(KnowledgeArticle.state == filters["state"])
    if filters.get("category"):
        code = filters["category"]
        query = query.join(Category, Category.id == KnowledgeArticle.category_id).where(
            sa.or_(Category.code == code, Category.code.like(f"{code}%"))
        )
    if filters.get("q"):
        pattern = "%" + filters["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern += "%"
        query = query.where(
            sa.or_(
                KnowledgeArticle.code.ilike(pattern, escape="\\"),
                KnowledgeArticle.title.ilike(pattern, escape="\\"),
                KnowledgeArticle.keywords.ilike(pattern, escape="\\"),
                KnowledgeArticle.answer.ilike(pattern, escape="\\"),
            )
        )
    if filters.get("due"):
        query = query.where(due_for_review(session, today))
    return query


def due_for_review(session, today=None):
    """SQL condition: published and its valid-until date within the reminder's days."""
    today = today or knowledge.local_today()
    days = settings.get(session, "knowledge.review_days_before")
    return sa.and_(
        KnowledgeArticle.state == A.published,
        KnowledgeArticle.valid_until.is_not(None),
        KnowledgeArticle.valid_until <= today + dt.timedelta(days=days),
    )


def list_articles(session, filters, page):
    """(total, articles of ``page``) ordered by code."""
    return page.of(
        session,
        article_query(session, filters),
        KnowledgeArticle.code,
        options=(selectinload(KnowledgeArticle.category),),
    )


def close_counts(session, article_ids):
    """{article id: tickets closed at intake with its answer (一键办结)}."""
    if not article_ids:
        return {}
    rows = session.execute(
        sa.select(Ticket.answer_article_id, sa.func.count())
        .where(Ticket.answer_article_id.in_(list(article_ids)))
        .group_by(Ticket.answer_article_id)
    ).all()
    return dict(rows)


def review_queue(session):
    """Articles waiting for a reviewer, oldest first."""
    return session.scalars(
        sa.select(KnowledgeArticle)
        .where(KnowledgeArticle.state == A.in_review)
        .options(selectinload(KnowledgeArticle.category))
        .order_by(KnowledgeArticle.updated_at, KnowledgeArticle.id)
    ).all()


def counts_by_state(session):
    rows = session.execute(
        sa.select(KnowledgeArticle.state, sa.func.count()).group_by(KnowledgeArticle.state)
    ).all()
    found = dict(rows)
    return {state: found.get(state, 0) for state in ArticleState}


@dataclass(frozen=True)
class HistoryEntry:
    at: dt.datetime
    actor: str
    action: str
    label: str
    changes: list
    reason: str | None
    ticket: str | None


def history(session, article):
    """The article's audit rows, oldest first, with who acted (系统 for the scheduler)."""
    rows = session.execute(
        sa.select(AuditLog, User.name)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .where(AuditLog.target == article.code, AuditLog.action.like("knowledge.%"))
        .order_by(AuditLog.id)
    ).all()
    entries = []
    for row, name in rows:
        action = row.action.removeprefix("knowledge.")
        payload = row.payload or {}
        changed = payload.get("changes") or {}
        order = [f for f in FIELD_LABELS if f in changed] + [
            f for f in changed if f not in FIELD_LABELS
        ]
        changes = [
            (
                FIELD_LABELS.get(field, field),
                _shown(field, changed[field][0]),
                _shown(field, changed[field][1]),
            )
            for field in order
        ]
        reason = payload.get("reason")
        if action == "remind":
            reason = f"有效期至 {payload.get('valid_until')}，已提醒热线中心"
        entries.append(
            HistoryEntry(
                at=row.created_at,
                actor=name or "系统",
                action=action,
                label=ACTION_LABELS.get(action, action),
                changes=changes,
                reason=reason,
                ticket=payload.get("ticket"),
            )
        )
    return entries


def _shown(field, value):
    if value is None or value == "":
        return "（空）"
    if field == "state":
        state = ArticleState.parse(value)
        return state.label if state else value
    return str(value)


def people(session, ids):
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all())


def article_to_dict(article, closes=0, names=None):
    names = names or {}
    return {
        "code": article.code,
        "title": article.title,
        "category": (
            {"code": article.category.code, "name": article.category.name}
            if article.category
            else None
        ),
        "keywords": article.keywords.split() if article.keywords else [],
        "answer": article.answer,
        "source": article.source,
        "state": labelled(article.state),
        "valid_until": article.valid_until.isoformat() if article.valid_until else None,
        "author": names.get(article.proposed_by_id),
        "source_ticket": article.source_ticket_number,
        "reviewed_by": names.get(article.reviewed_by_id),
        "reviewed_at": iso(article.reviewed_at),
        "review_reminded_at": iso(article.review_reminded_at),
        "hits": article.hit_count,
        "closes": closes,
        "updated_at": iso(article.updated_at),
    }


def admin_warnings(session):
    """For the administration's home page: articles waiting for review, and published ones
    due for review."""
    found = []
    waiting = session.scalar(
        sa.select(sa.func.count())
        .select_from(KnowledgeArticle)
        .where(KnowledgeArticle.state == A.in_review)
    )
    if waiting:
        found.append((f"知识库有 {waiting} 篇条目待审核", "/admin/knowledge/review"))
    due = session.scalar(
        sa.select(sa.func.count()).select_from(KnowledgeArticle).where(due_for_review(session))
    )
    if due:
        found.append((f"知识库有 {due} 篇已发布条目临近有效期，需复核", "/admin/knowledge/?due=1"))
    return found


# -- import and export --------------------------------------------------------------------------

COLUMNS = (
    tabular.Column("code", "编码", required=True),
    tabular.Column("title", "标题", required=True),
    tabular.Column("category", "事项分类编码", aliases=("分类编码",)),
    tabular.Column("keywords", "关键词"),
    tabular.Column("answer", "答复内容", required=True, aliases=("答复",)),
    tabular.Column("source", "依据来源", aliases=("依据",)),
    tabular.Column("valid_until", "有效期至"),
    tabular.Column("state", "状态"),
)
_HEADERS = {c.key: c.header for c in COLUMNS}
_CODE = re.compile(r"^[0-9A-Za-z_-]{1,32}$", re.ASCII)


def _state_of(text):
    text = text.strip()
    for state in ArticleState:
        if text in (state.value, state.label):
            return state
    return None


def load_import(session, actor, sources, options):
    """Check every row of every file, then create or update articles by code."""
    require_role(actor, {Role.admin}, "导入知识库")
    problems = tabular.Problems()
    categories = dict(session.execute(sa.select(Category.code, Category)).all())
    today = knowledge.local_today()
    rows, seen = [], {}
    for name, data in sources:
        table = tabular.read(data, name, COLUMNS)
        for number, cells in table.rows:
            row = _import_row(problems, table.file, number, cells, categories, today)
            code = cells.get("code", "")
            if code in seen:
                problems.add(
                    table.file, number, _HEADERS["code"], f"编码 {code} 与第 {seen[code]} 行重复"
                )
            seen.setdefault(code, number)
            rows.append(row)
    problems.check()
    existing = {
        a.code: a
        for a in session.scalars(
            sa.select(KnowledgeArticle).options(selectinload(KnowledgeArticle.category))
        )
    }
    result = tabular.ImportResult("knowledge")
    now = utcnow()
    for values in rows:
        code = values.pop("code")
        state = values.pop("state")
        article = existing.get(code)
        if article is None:
            state = state or A.published
            article = KnowledgeArticle(code=code, proposed_by_id=actor.id, hit_count=0)
            _apply(article, values)
            article.state = state
            if state == A.published:
                article.reviewed_by_id, article.reviewed_at = actor.id, now
            article.updated_at = now
            session.add(article)
            session.flush()
            _audit(session, actor, "import", article, None)
            result.created += 1
            result.note(f"新增 知识库条目 {code} {article.title}（{state.label}）")
            continue
        before = _values(article)
        old_valid_until = article.valid_until
        _apply(article, values)
        if state is not None and state != article.state:
            article.state = state
            if state == A.published:
                article.reviewed_by_id, article.reviewed_at = actor.id, now
        if article.valid_until != old_valid_until:
            article.review_reminded_at = None
        diff = _audit(session, actor, "import", article, before)
        if diff:
            article.updated_at = now
            result.updated += 1
            fields = "、".join(FIELD_LABELS[f] for f in diff)
            result.note(f"更新 知识库条目 {code} {article.title}：{fields}")
        else:
            result.unchanged += 1
    session.flush()
    if result.created or result.updated:
        _changed(session)
    return result


def _import_row(problems, file, number, cells, categories, today):
    code = cells.get("code", "")
    if not _CODE.match(code):
        problems.add(file, number, _HEADERS["code"], "编码应为 1–32 位字母、数字、- 或 _")
    values = {"code": code}
    for key, limit in (("title", TITLE_MAX), ("answer", ANSWER_MAX)):
        text = cells.get(key, "")
        if not text:
            problems.add(file, number, _HEADERS[key], "不能为空")
        elif len(text) > limit:
            problems.add(file, number, _HEADERS[key], f"不能超过 {limit} 字（现为 {len(text)} 字）")
        values[key] = text
    keywords = split_keywords(cells.get("keywords", ""))
    if len(keywords) > KEYWORDS_MAX:
        problems.add(file, number, _HEADERS["keywords"], f"不能超过 {KEYWORDS_MAX} 字")
    values["keywords"] = keywords
    source = cells.get("source", "")
    if len(source) > SOURCE_MAX:
        problems.add(file, number, _HEADERS["source"], f"不能超过 {SOURCE_MAX} 字")
    values["source"] = source or None
    category = None
    if cells.get("category"):
        category = categories.get(cells["category"])
        if category is None:
            problems.add(file, number, _HEADERS["category"], f"事项分类不存在：{cells['category']}")
    values["category"] = category
    state = None
    if cells.get("state"):
        state = _state_of(cells["state"])
        if state is None:
            labels = "、".join(s.label for s in ArticleState)
            problems.add(
                file, number, _HEADERS["state"], f"应为 {labels} 之一（现为“{cells['state']}”）"
            )
    values["state"] = state
    valid_until = None
    if cells.get("valid_until"):
        valid_until = parse_date(cells["valid_until"])
        if valid_until is None:
            problems.add(file, number, _HEADERS["valid_until"], "应为日期，如 2026-12-31")
        elif valid_until < today and state in (None, A.published):
            problems.add(
                file,
                number,
                _HEADERS["valid_until"],
                f"有效期已于 {valid_until} 届满，不能作为已发布条目导入（可将状态填为已失效）",
            )
    values["valid_until"] = valid_until
    return values


def export(session):
    """Every article as the import reads it back (state by its Chinese name)."""
    articles = session.scalars(
        sa.select(KnowledgeArticle)
        .options(selectinload(KnowledgeArticle.category))
        .order_by(KnowledgeArticle.code)
    ).all()
    rows = [
        {
            "code": a.code,
            "title": a.title,
            "category": a.category.code if a.category else "",
            "keywords": a.keywords,
            "answer": a.answer,
            "source": a.source or "",
            "valid_until": a.valid_until.isoformat() if a.valid_until else "",
            "state": a.state.label,
        }
        for a in articles
    ]
    return tabular.write_xlsx(COLUMNS, rows, title="知识库")


IMPORTER = tabular.Importer(
    kind="knowledge",
    label="知识库",
    load=load_import,
    export=export,
    columns=COLUMNS,
)


def page_of(args, errors):
    return Page.from_args(args, size=50, size_arg="per_page", max_size=200, errors=errors)
