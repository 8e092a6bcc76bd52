"""Settings an administrator changes at run time (系统设置), kept in the ``settings`` table
and audited: each key is defined here once, with its Chinese label, type, bounds and code
default; a key without a row has its default.

Reading is cheap (every process keeps the values until ``hotline.reference`` says they
changed); ``update`` checks every value before it writes any and audits old → new.
"""

import threading
from dataclasses import dataclass

import sqlalchemy as sa

from hotline import reference
from hotline.audit import audit_change
from hotline.db import utcnow
from hotline.errors import Forbidden, ValidationFailed
from hotline.models import AuditLog, Setting, User


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    #: int, float, str, or "point" (a [lng, lat] pair)
    kind: object
    default: object
    group: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    max_len: int = 100


DEFINITIONS = {
    d.key: d
    for d in [
        # The monthly ranking (DOMAIN.md §5); a frozen month keeps the values it was frozen with.
        Definition(
            "ranking.weight_response",
            "响应率权重",
            int,
            10,
            "考核排名",
            "综合得分中响应率所占权重",
            0,
            100,
        ),
        Definition(
            "ranking.weight_resolution",
            "解决率权重",
            int,
            45,
            "考核排名",
            "综合得分中解决率所占权重",
            0,
            100,
        ),
        Definition(
            "ranking.weight_satisfaction",
            "满意率权重",
            int,
            45,
            "考核排名",
            "综合得分中满意率所占权重",
            0,
            100,
        ),
        Definition(
            "ranking.partly_solved_percent",
            "部分解决折算（%）",
            int,
            50,
            "考核排名",
            "“部分解决”按完全解决的百分之几计",
            0,
            100,
        ),
        Definition(
            "ranking.basically_satisfied_percent",
            "基本满意折算（%）",
            int,
            80,
            "考核排名",
            "“基本满意”按满意的百分之几计",
            0,
            100,
        ),
        Definition(
            "ranking.min_sample",
            "最少样本量",
            int,
            10,
            "考核排名",
            "派单量少于此数的单位不参与排名",
            1,
            10_000,
        ),
        Definition(
            "ranking.list_size",
            "红黑榜人数",
            int,
            5,
            "考核排名",
            "红榜、黑榜各列出的单位数上限",
            0,
            100,
        ),
        # The city (导入城市, hotline/city.py): read by address matching, ticket numbering and
        # the pages; an onboarded city sets them instead of changing code.
        Definition(
            "city.name",
            "城市名称",
            str,
            "潍坊市",
            "城市",
            "如“北京市”；地址识别据此认出市名（“北京市”“北京”）",
            max_len=20,
        ),
        Definition(
            "city.ticket_prefix",
            "工单编号前缀",
            str,
            "WF",  # config TICKET_NUMBER_PREFIX stands in for it until set (hotline/city.py)
            "城市",
            "1–8 个大写英文字母，如 WF、BJ；新受理的工单起生效",
            max_len=8,
        ),
        Definition(
            "city.map_center",
            "地图中心",
            "point",
            [119.1526, 36.7812],
            "城市",
            "经度,纬度（GCJ-02），如 116.4074,39.9042",
        ),
        # The citizens' own channels (市民端, dispatch.citizens).
        Definition(
            "citizen.reopen_days",
            "不满意再次反映期限（天）",
            int,
            15,
            "市民端",
            "工单办结后多少天内，市民可在网上对结果不满意再次反映（进入督办审核）",
            1,
            90,
        ),
        Definition(
            "citizen.rating_link_days",
            "评价链接有效期（天）",
            int,
            7,
            "市民端",
            "办结短信中评价链接的有效天数",
            1,
            30,
        ),
        Definition(
            "citizen.codes_per_phone_daily",
            "每个手机号每日验证码上限",
            int,
            10,
            "市民端",
            "同一手机号每天最多发送的短信验证码条数",
            1,
            100,
        ),
        Definition(
            "citizen.codes_per_address_daily",
            "每个网络地址每日验证码上限",
            int,
            30,
            "市民端",
            "同一网络地址（IP）每天最多请求的短信验证码条数",
            1,
            10000,
        ),
        # 民情分析 (dashboards.hotspots, dashboards.warnings): how hot issues are grouped and
        # when an early warning is raised.
        Definition(
            "hotspot.window_days",
            "热点归并时间窗（天）",
            int,
            90,
            "民情分析",
            "只把这么多天内受理的工单归为同一热点问题",
            7,
            365,
        ),
        Definition(
            "hotspot.min_size",
            "热点问题最少工单数",
            int,
            3,
            "民情分析",
            "同一事项的工单达到此数才列为热点问题",
            2,
            100,
        ),
        Definition(
            "warning.surge_hours",
            "激增预警统计时段（小时）",
            int,
            3,
            "民情分析",
            "统计最近几个小时内某类诉求在某区域的工单量",
            1,
            24,
        ),
        Definition(
            "warning.surge_weeks",
            "激增预警基线（周）",
            int,
            4,
            "民情分析",
            "与此前几周同类日子（工作日或休息日）同一时段的平均量比较",
            1,
            12,
        ),
        Definition(
            "warning.surge_min_count",
            "激增预警最少工单数",
            int,
            5,
            "民情分析",
            "时段内工单少于此数不预警",
            2,
            1000,
        ),
        Definition(
            "warning.surge_ratio",
            "激增倍数",
            float,
            3.0,
            "民情分析",
            "工单量至少是往常的几倍才预警",
            1.5,
            50,
        ),
        Definition(
            "warning.surge_significance",
            "激增显著性水平",
            float,
            0.001,
            "民情分析",
            "按泊松分布，往常水平下出现这么多工单的概率低于此值才预警",
            0.0000001,
            0.05,
        ),
        Definition(
            "warning.sudden_count",
            "突发事件工单数",
            int,
            5,
            "民情分析",
            "同一地点在规定分钟内有这么多工单即预警",
            2,
            100,
        ),
        Definition(
            "warning.sudden_minutes",
            "突发事件时间窗（分钟）",
            int,
            60,
            "民情分析",
            "统计同一地点工单的时间窗",
            5,
            720,
        ),
        Definition(
            "warning.cooldown_hours",
            "同一预警合并时长（小时）",
            int,
            6,
            "民情分析",
            "同一事由在此时长内再次达到条件，并入已有预警而不另发",
            1,
            72,
        ),
        # 监察问责 (dashboards.accountability): when a unit's month is a case of 推诿扯皮 or
        # 弄虚作假.
        Definition(
            "accountability.bounce_units",
            "来回推诿：退单单位数",
            int,
            2,
            "监察问责",
            "同一工单被这么多个不同单位退单（或同一单位退单两次），即列为来回推诿",
            2,
            10,
        ),
        Definition(
            "accountability.rejected_returns",
            "退单被驳回件数",
            int,
            3,
            "监察问责",
            "一个单位当月退单被驳回达到此数，列为推诿扯皮线索",
            1,
            1000,
        ),
        Definition(
            "accountability.quick_return_minutes",
            "短时退单时限（分钟）",
            int,
            30,
            "监察问责",
            "派单后这么多分钟内即申请退单，视为未经核实的退单",
            1,
            1440,
        ),
        Definition(
            "accountability.quick_return_count",
            "短时退单件数",
            int,
            3,
            "监察问责",
            "一个单位当月短时退单达到此数，列为推诿扯皮线索",
            1,
            1000,
        ),
        Definition(
            "accountability.unsolved_claims",
            "报称解决、回访未解决件数",
            int,
            3,
            "监察问责",
            "办结答复称已解决、回访诉求人却称未解决，当月达到此数列为弄虚作假线索",
            1,
            1000,
        ),
        Definition(
            "accountability.onsite_without_check_in",
            "称到现场、无现场核查件数",
            int,
            2,
            "监察问责",
            "网格工单的办结答复称到现场，却没有现场核查（定位和照片）记录，当月达到此数列为线索",
            1,
            1000,
        ),
        Definition(
            "accountability.contact_without_phone",
            "无电话却报已联系件数",
            int,
            1,
            "监察问责",
            "诉求人未留电话、联系记录也未说明其他联系方式，当月达到此数列为弄虚作假线索",
            1,
            1000,
        ),
        # The texts citizens receive (hotline.outbox.TEMPLATES: the placeholders each may use).
        Definition(
            "notify.template.citizen_code",
            "短信验证码",
            str,
            "【12345】您的验证码是{code}，{minutes}分钟内有效。请勿告诉他人。",
            "通知模板",
            "可用占位符：{code} 验证码，{minutes} 有效分钟数",
            max_len=200,
        ),
        Definition(
            "notify.template.citizen_received",
            "受理通知",
            str,
            "【12345】您的诉求已受理，工单号{number}，我们将于{reply_by}前答复您。",
            "通知模板",
            "可用占位符：{number} 工单号，{reply_by} 承诺答复时间",
            max_len=200,
        ),
        Definition(
            "notify.template.citizen_finished",
            "办结通知",
            str,
            "【12345】您反映的问题（工单号{number}）已办结：{reply} 请对办理结果评价：{rating_url}",
            "通知模板",
            "可用占位符：{number} 工单号，{reply} 答复内容，{rating_url} 评价链接",
            max_len=300,
        ),
        Definition(
            "notify.template.citizen_reopened",
            "再次反映通知",
            str,
            "【12345】您对工单{number}办理结果的再次反映已收到，我们将督促承办单位重新办理。",
            "通知模板",
            "可用占位符：{number} 工单号",
            max_len=200,
        ),
        # 质检 (dispatch.inspection): how many of each operator's tickets a day are sampled.
        Definition(
            "inspection.daily_per_operator",
            "每名话务员每日抽检工单数",
            int,
            3,
            "质检",
            "每天从每名话务员受理的工单中随机抽取的件数（当天受理不足此数时全部抽取）",
            0,
            100,
        ),
        Definition(
            "inspection.percent",
            "抽检比例（%）",
            int,
            0,
            "质检",
            "另按当天受理量的百分比抽取，与上一项取较大者；0 表示只按件数抽取",
            0,
            100,
        ),
        # 吹哨报到 (dispatch.whistle): a summoned department's limits, in clock hours (a
        # department comes when a street calls, nights and holidays included, as the SLA's
        # hour limits do); a summons keeps the limits it was blown with.
        Definition(
            "whistle.report_hours",
            "报到时限（小时）",
            int,
            1,
            "吹哨报到",
            "被吹哨部门须在吹哨后多少小时内报到（按自然时间计）",
            1,
            72,
        ),
        Definition(
            "whistle.opinion_hours",
            "反馈时限（小时）",
            int,
            24,
            "吹哨报到",
            "被吹哨部门须在吹哨后多少小时内反馈处理意见（按自然时间计）",
            1,
            720,
        ),
        Definition(
            "whistle.escalate_hours",
            "反馈超时督办间隔（小时）",
            int,
            24,
            "吹哨报到",
            "反馈超时后每满这么多小时仍未反馈，督办提高一级（共三级）",
            1,
            720,
        ),
        # 办结审核 (dispatch.reply_review): which replies the hotline reviews before the
        # citizen sees them, where a category has no rule of its own.
        Definition(
            "review.default_mode",
            "默认审核方式",
            str,
            "flagged",
            "办结审核",
            "all 全部审核，sample 抽样审核，flagged 仅审核疑似不合格答复，none 不审核",
            max_len=10,
        ),
        Definition(
            "review.sample_percent",
            "默认抽样比例（%）",
            int,
            20,
            "办结审核",
            "抽样审核时随机抽取的答复比例（自动检查判为疑似不合格的答复一律审核）",
            1,
            100,
        ),
        Definition(
            "review.limit_days",
            "审核时限（工作日）",
            int,
            1,
            "办结审核",
            "答复待审核超过多少个工作日，提醒热线中心尽快审核（审核期间承办单位的时限不计超时）",
            1,
            10,
        ),
        # The classifier's learning loop (dispatch.learning): the weekly retraining from the
        # centre's confirmed tickets and its promotion gate (the model page's drift warning,
        # classifier.drift_*, is defined with the page).
        Definition(
            "classifier.retrain_days",
            "重新训练间隔（天）",
            int,
            7,
            "分类模型",
            "距上次训练满多少天自动用本中心确认过的工单重新训练分类模型；0 为不自动训练"
            "（仍可手动重新训练）",
            0,
            365,
        ),
        Definition(
            "classifier.holdout_days",
            "评估期（天）",
            int,
            14,
            "分类模型",
            "最近多少天的工单留作评估：新模型只用此前的工单训练，与在用模型在这些天上比较",
            1,
            90,
        ),
        Definition(
            "classifier.tolerance",
            "允许下降幅度",
            float,
            0.02,
            "分类模型",
            "任一主要指标（分类宏平均 F1 和准确率、诉求类型准确率、承办单位前三命中率、"
            "紧急识别召回率）比在用模型低出、或紧急误报率高出此数即不启用新模型；"
            "0.02 即 2 个百分点",
            0,
            0.2,
        ),
        Definition(
            "classifier.min_training",
            "最少训练工单数",
            int,
            200,
            "分类模型",
            "评估期之前确认过的工单少于此数时不训练",
            1,
            1_000_000,
        ),
        Definition(
            "classifier.min_holdout",
            "最少评估工单数",
            int,
            50,
            "分类模型",
            "评估期内确认过的工单少于此数时不评估、不启用",
            1,
            1_000_000,
        ),
        # The knowledge base (首问即答): hotline.knowledge_admin's review-due reminders.
        Definition(
            "knowledge.review_days_before",
            "知识库复核提前天数",
            int,
            14,
            "知识库",
            "已发布条目在有效期届满前多少天提醒热线中心复核（每个有效期提醒一次）",
            1,
            365,
        ),
        # 个人信息保护 (hotline.retention): how long requesters' personal data is kept after a
        # ticket is closed, and the daily job's switch.
        Definition(
            "retention.enabled",
            "自动脱敏（1 开启，0 关闭）",
            int,
            # Off until an administrator turns it on: redaction cannot be undone, so a city
            # upgrading looks at the dry run first.
            0,
            "个人信息保护",
            "开启时每天自动清除超过保存期限的已归档工单中的诉求人个人信息；关闭后只能手动运行",
            0,
            1,
        ),
        Definition(
            "retention.months",
            "个人信息保存期限（月）",
            int,
            24,
            "个人信息保护",
            "工单归档满多少个月后，清除诉求人姓名、电话、详细地址及文字中的个人信息"
            "（工单、分类、地点、承办单位、时间和结果保留用于统计）",
            1,
            240,
        ),
        # The model page's drift warning (分类模型, hotline.acceptance.drift).
        Definition(
            "classifier.drift_margin",
            "采纳率下降预警幅度",
            float,
            0.10,
            "分类模型",
            "某项建议的采纳率比上一周下降超过此值（0.10 即 10 个百分点）时，分类模型页面提示",
            0.0,
            1.0,
        ),
        Definition(
            "classifier.drift_min_tickets",
            "采纳率预警最少工单数",
            int,
            30,
            "分类模型",
            "两周各自至少有这么多件有建议且已确定的工单，才比较采纳率",
            1,
            100_000,
        ),
    ]
}


class _Cache:
    def __init__(self):
        self._lock = threading.Lock()
        self._values = None
        self._stamp = None

    def values(self, session):
        stamp = reference.stamp(session, reference.SETTINGS)
        if self._values is None or stamp != self._stamp:
            stored = dict(session.execute(sa.select(Setting.key, Setting.value)).all())
            values = {
                key: _stored_value(definition, stored.get(key))
                for key, definition in DEFINITIONS.items()
            }
            with self._lock:
                self._values, self._stamp = values, stamp
        return self._values

    def clear(self):
        with self._lock:
            self._values = None


_cache = _Cache()


def _stored_value(definition, stored):
    if stored is None or "value" not in stored:
        return definition.default
    return stored["value"]


def get(session, key):
    """The value of ``key`` in force now."""
    return _cache.values(session)[key]


def group(session, prefix):
    """``{key without prefix: value}`` of every key starting with ``prefix``."""
    values = _cache.values(session)
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def current(session):
    """Every definition with its value in force, in definition order."""
    values = _cache.values(session)
    return [(definition, values[key]) for key, definition in DEFINITIONS.items()]


def parse(definition, raw):
    """``raw`` (text from a form, or a JSON value) as the setting's type, or a Chinese reason
    why not."""
    kind = definition.kind
    if kind in (int, float):
        if isinstance(raw, bool):
            raise ValueError("须为数字")
        try:
            value = kind(raw) if not isinstance(raw, str) else kind(raw.strip())
        except (TypeError, ValueError):
            raise ValueError("须为整数" if kind is int else "须为数字") from None
        if isinstance(raw, float) and kind is int and not raw.is_integer():
            raise ValueError("须为整数")
        if definition.minimum is not None and value < definition.minimum:
            raise ValueError(f"不能小于 {definition.minimum:g}")
        if definition.maximum is not None and value > definition.maximum:
            raise ValueError(f"不能大于 {definition.maximum:g}")
        return value
    if kind is str:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("不能为空")
        value = raw.strip()
        if len(value) > definition.max_len:
            raise ValueError(f"不能超过 {definition.max_len} 个字")
        return value
    if kind == "point":
        if isinstance(raw, str):
            raw = raw.replace("，", ",").split(",")
        try:
            lng, lat = (float(part) for part in raw)
        except (TypeError, ValueError):
            raise ValueError("须为“经度,纬度”") from None
        if not (73 <= lng <= 136 and 3 <= lat <= 54):
            raise ValueError("经纬度不在中国境内")
        return [lng, lat]
    raise TypeError(kind)


def update(session, actor, raw_values, *, check=None):
    """Set several settings at once: every value is checked before any is written (one
    refusal names every bad field); unchanged values are left alone. ``check(values)`` may
    refuse a combination (e.g. weights that add up to nothing). Audited old → new; the caller
    commits. Returns the changes."""
    errors, parsed = {}, {}
    for key, raw in raw_values.items():
        definition = DEFINITIONS.get(key)
        if definition is None:
            errors[key] = "没有这个设置项"
            continue
        try:
            parsed[key] = parse(definition, raw)
        except ValueError as exc:
            errors[key] = f"{definition.label}{exc}"
    if errors:
        raise ValidationFailed(
            "设置未保存：" + "；".join(errors.values()), code="SETTINGS_INVALID", details=errors
        )
    before = dict(_cache.values(session))
    after = {**before, **parsed}
    if check is not None:
        check(after)
    changed = {key: value for key, value in parsed.items() if before[key] != value}
    now = utcnow()
    for key, value in changed.items():
        row = session.get(Setting, key)
        if row is None:
            session.add(
                Setting(
                    key=key,
                    value={"value": value},
                    updated_at=now,
                    updated_by_id=actor.id if actor else None,
                )
            )
        else:
            row.value = {"value": value}
            row.updated_at = now
            row.updated_by_id = actor.id if actor else None
    if changed:
        session.flush()
        reference.bump(session, reference.SETTINGS)
        _cache.clear()
        audit_change(
            session,
            actor,
            "settings.update",
            target=",".join(sorted(changed))[:100],
            before={k: before[k] for k in changed},
            after=changed,
        )
    return changed


def clear():
    _cache.clear()


#: The settings' audit rows a section's history looks at (newest first).
HISTORY_SCAN = 500


@dataclass(frozen=True)
class Section:
    """A page's worth of settings (考核设置, 民情分析设置 …): the keys starting with one of
    ``prefixes``, named on the page and in the API without ``strip`` (the ranking's settings
    are ``weight_response`` there, ``ranking.weight_response`` here). ``editors`` change them,
    ``check`` may refuse a combination; ``what`` names the section in messages."""

    prefixes: tuple
    what: str
    editors: frozenset
    strip: str = ""
    check: object = None

    def _name(self, key):
        return key.removeprefix(self.strip)

    def keys(self):
        return [key for key in DEFINITIONS if key.startswith(self.prefixes)]

    def names(self):
        return [self._name(key) for key in self.keys()]

    def describe(self, session):
        """Each setting: its name, Chinese label, help, value in force, code default, bounds
        and whether it takes decimals, in definition order."""
        return [
            {
                "name": self._name(definition.key),
                "label": definition.label,
                "help": definition.help,
                "value": value,
                "default": definition.default,
                "minimum": definition.minimum,
                "maximum": definition.maximum,
                "decimal": definition.kind is float,
            }
            for definition, value in current(session)
            if definition.key.startswith(self.prefixes)
        ]

    def require_editor(self, actor):
        if actor.role not in self.editors:
            raise Forbidden(
                f"只有系统管理员可以修改{self.what}",
                code="ROLE_NOT_ALLOWED",
                details={"role": actor.role.value},
            )

    def update(self, session, actor, raw_values):
        """Change some of the section's settings (``{name: value}``; text from a form or JSON
        values). Every value is checked before any is written; names of other sections are
        refused. Audited; the caller commits. Returns ``{name: new value}`` of what changed."""
        self.require_editor(actor)
        known = set(self.names())
        unknown = [name for name in raw_values if name not in known]
        if unknown:
            raise ValidationFailed(
                f"没有这个{self.what}项：{unknown[0]}",
                code="SETTINGS_INVALID",
                details={name: "没有这个设置项" for name in unknown},
            )
        try:
            changed = update(
                session,
                actor,
                {self.strip + name: value for name, value in raw_values.items()},
                check=self.check,
            )
        except ValidationFailed as exc:
            # The fields by the names the page and the API use.
            exc.details = {self._name(key): why for key, why in (exc.details or {}).items()}
            raise
        return {self._name(key): value for key, value in changed.items()}

    def history(self, session, limit=50):
        """The section's changes, newest first: [{at, by (name or None), username, changes:
        [(label, old, new)]}] from the audit log."""
        rows = session.execute(
            sa.select(AuditLog, User.name, User.username)
            .outerjoin(User, User.id == AuditLog.actor_id)
            .where(AuditLog.action == "settings.update")
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
            .limit(HISTORY_SCAN)
        ).all()
        order = list(DEFINITIONS)
        found = []
        for row, name, username in rows:
            changes = [
                (DEFINITIONS[key].label if key in DEFINITIONS else key, old, new)
                for key, (old, new) in sorted(
                    (row.payload or {}).get("changes", {}).items(),
                    key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
                )
                if key.startswith(self.prefixes)
            ]
            if changes:
                found.append(
                    {"at": row.created_at, "by": name, "username": username, "changes": changes}
                )
            if len(found) >= limit:
                break
        return found
