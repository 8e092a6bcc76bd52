"""Reading the audit log (审计日志): the filters the audit page and the API share, the Chinese
names of actions, and the rows as people read them (who, when, from where, what, old → new).
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from hotline.audit import audit
from hotline.db import local_datetime
from hotline.errors import ValidationFailed
from hotline.models import AuditLog, User
from hotline.tabular import Column, write_xlsx

#: Actions named in full.
ACTION_LABELS = {
    "auth.login": "登录",
    "auth.login_failed": "登录失败",
    "auth.login_throttled": "登录受限（失败过多）",
    "auth.logout": "退出登录",
    "pii.view": "查看个人信息（完整电话）",
    "tickets.export": "导出工单",
    "audit.export": "导出审计日志",
    "seed.load": "载入初始数据",
    "history.generate": "生成演示历史",
    "classifier.activate": "启用分类模型",
    "backup.create": "备份数据",
    "backup.restore": "恢复备份",
    "ticket.reclassify": "工单改分类",
    "settings.update": "修改系统设置",
    "token.create": "创建接口令牌",
    "token.revoke": "吊销接口令牌",
    "user.password": "设置密码",
    "outbox.retry": "重新发送通知",
    "inspection.inspect": "质检评分",
    "inspection.claim": "领取质检样本",
    "inspection.release": "放弃领取质检样本",
    "inspection.export": "导出质检成绩",
    "retention.redact": "个人信息到期脱敏",
    "retention.dry_run": "个人信息脱敏试运行",
    "pii.lookup": "查询诉求人个人信息",
    "pii.export": "导出诉求人个人信息",
}
#: Otherwise: what was changed + how (``unit.create`` → 承办单位 · 新增).
SUBJECTS = {
    "user": "用户",
    "unit": "承办单位",
    "area": "区划网格",
    "areas": "区划网格",
    "category": "事项分类",
    "routing": "派单目录",
    "rule": "派单目录",
    "knowledge": "知识库",
    "article": "知识库",
    "sla": "办理时限",
    "sla_policy": "办理时限",
    "calendar": "工作日历",
    "settings": "系统设置",
    "import": "数据导入",
    "export": "数据导出",
    "ranking": "考核排名",
    "token": "接口令牌",
    "session": "登录会话",
}
VERBS = {
    "create": "新增",
    "update": "修改",
    "edit": "修改",
    "rename": "改名",
    "move": "移动",
    "delete": "删除",
    "deactivate": "停用",
    "activate": "启用",
    "reactivate": "启用",
    "reset_password": "重置密码",
    "password": "修改密码",
    "polygon": "更新边界",
    "publish": "发布",
    "submit": "提交审核",
    "return": "退回",
    "expire": "失效",
    "freeze": "冻结发布",
    "define": "设定年度",
    "undefine": "取消年度设定",
    "utility": "水电气热标记",
}
#: The audit page shows this many rows per page; an export holds at most MAX_EXPORT rows.
PAGE_SIZE = 50
MAX_EXPORT = 50_000


def action_label(action):
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    subject, _, rest = action.partition(".")
    verb = rest.rsplit(".", 1)[-1] if rest else ""
    if subject in SUBJECTS:
        if subject in ("import", "export") and rest:
            return f"{SUBJECTS[subject]} · {rest}"
        return f"{SUBJECTS[subject]} · {VERBS.get(verb, verb or '变更')}"
    return action


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page or API asked for; every field optional."""

    actor: str | None = None  # username
    action: str | None = None  # an action, or a prefix ending with "." (e.g. "user.")
    target: str | None = None  # text contained in the target
    remote_addr: str | None = None
    start: dt.datetime | None = None  # UTC, included
    end: dt.datetime | None = None  # UTC, excluded

    @classmethod
    def from_args(cls, args, timezone):
        """Parse query arguments ``actor``, ``action``, ``target``, ``ip``, ``from``, ``to``
        (local dates, both days included). Refuses bad ones, naming each."""
        errors = {}

        def text(name, limit=100):
            value = (args.get(name) or "").strip()
            if "\x00" in value:
                errors[name] = "包含不可见控制字符"
                return None
            if len(value) > limit:
                errors[name] = f"不能超过 {limit} 个字"
                return None
            return value or None

        def day(name):
            value = text(name, 10)
            if not value:
                return None
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                errors[name] = "日期格式应为 YYYY-MM-DD"
                return None

        first, last = day("from"), day("to")
        if first and last and last < first:
            errors["to"] = "结束日期不能早于开始日期"
        if errors:
            raise ValidationFailed(
                "查询条件有误：" + "；".join(f"{k}{v}" for k, v in errors.items()),
                details=errors,
            )
        zone = ZoneInfo(timezone)

        def moment(day_):
            local = dt.datetime(day_.year, day_.month, day_.day, tzinfo=zone)
            return local.astimezone(dt.UTC)

        return cls(
            actor=text("actor"),
            action=text("action"),
            target=text("target"),
            remote_addr=text("ip", 45),
            start=moment(first) if first else None,
            end=moment(last + dt.timedelta(days=1)) if last else None,
        )

    def query(self):
        actor = aliased(User)
        query = sa.select(AuditLog, actor).outerjoin(actor, AuditLog.actor_id == actor.id)
        if self.actor:
            query = query.where(actor.username == self.actor)
        if self.action:
            if self.action.endswith("."):
                query = query.where(AuditLog.action.startswith(self.action, autoescape=True))
            else:
                query = query.where(AuditLog.action == self.action)
        if self.target:
            query = query.where(AuditLog.target.contains(self.target, autoescape=True))
        if self.remote_addr:
            query = query.where(AuditLog.remote_addr == self.remote_addr)
        if self.start:
            query = query.where(AuditLog.created_at >= self.start)
        if self.end:
            query = query.where(AuditLog.created_at < self.end)
        return query

    def as_args(self):
        return {k: v for k, v in self.__dict__.items() if v and k not in ("start", "end")}


def rows(session, audit_filter, *, limit, offset=0):
    """(total, [(AuditLog, User or None)]) newest first."""
    query = audit_filter.query()
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    found = session.execute(
        query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit).offset(offset)
    ).all()
    return total, found


#: Older entries (the time-rule operations) keep old and new values side by side.
_SIDE_BY_SIDE = (("old", "new"), ("before", "after"))


def changes_of(entry):
    """[(field, old, new)] of a change entry (``audit_change``'s ``changes``, or old and new
    values side by side), else []."""
    payload = entry.payload or {}
    if "changes" in payload:
        return [
            (name, pair[0], pair[1])
            for name, pair in (payload["changes"] or {}).items()
            if isinstance(pair, list | tuple) and len(pair) == 2
        ]
    for old_key, new_key in _SIDE_BY_SIDE:
        old, new = payload.get(old_key), payload.get(new_key)
        if isinstance(old, dict | None) and isinstance(new, dict | None) and (old or new):
            old, new = old or {}, new or {}
            return [
                (name, old.get(name), new.get(name))
                for name in sorted(set(old) | set(new))
                if old.get(name) != new.get(name)
            ]
        if old_key in payload and new_key in payload and not isinstance(old, dict):
            return [("值", old, new)]
    return []


def _side_by_side_keys(payload):
    for pair in _SIDE_BY_SIDE:
        if all(k in payload for k in pair) or any(isinstance(payload.get(k), dict) for k in pair):
            return set(pair)
    return set()


#: Names of the payload's other keys, as people read them.
DETAIL_LABELS = {
    "what": "内容",
    "count": "数量",
    "tickets": "工单",
    "path": "页面",
    "via": "方式",
    "sessions": "结束会话数",
    "sessions_ended": "结束会话数",
    "filters": "筛选条件",
    "rows": "行数",
    "label": "名称",
    "role": "角色",
    "created": "新增",
    "updated": "更新",
    "unchanged": "未变",
    "deactivated": "停用",
    "recoded": "编码变化",
    "subtree": "涉及分类",
}
DETAIL_VALUES = {"phone": "完整电话", "api": "接口", "web": "网页"}


def details_of(entry):
    """The payload besides the changes, as (label, text) pairs."""
    payload = entry.payload or {}
    shown_as_changes = {"changes"} | _side_by_side_keys(payload)
    return [
        (DETAIL_LABELS.get(k, k), _detail_text(v))
        for k, v in payload.items()
        if k not in shown_as_changes
    ]


def _detail_text(value):
    if isinstance(value, dict):
        return "，".join(f"{k}={_text(v)}" for k, v in value.items()) or "（无）"
    if isinstance(value, str):
        return DETAIL_VALUES.get(value, value)
    return _text(value)


def to_dict(entry, actor, timezone):
    return {
        "id": entry.id,
        "at": entry.created_at.isoformat(),
        "local_time": f"{local_datetime(entry.created_at, timezone):%Y-%m-%d %H:%M:%S}",
        "actor": {"username": actor.username, "name": actor.name} if actor else None,
        "action": entry.action,
        "action_label": action_label(entry.action),
        "target": entry.target,
        "remote_addr": entry.remote_addr,
        "changes": [{"field": f, "old": o, "new": n} for f, o, n in changes_of(entry)],
        "payload": {k: v for k, v in (entry.payload or {}).items() if k != "changes"},
    }


def known_actions(session):
    """Every action that occurs, with its label, for the filter's picker."""
    found = session.scalars(sa.select(AuditLog.action).distinct()).all()
    return sorted(((a, action_label(a)) for a in found), key=lambda p: p[1])


EXPORT_COLUMNS = (
    Column("at", "时间"),
    Column("name", "操作人"),
    Column("username", "用户名"),
    Column("remote_addr", "来源地址"),
    Column("label", "操作"),
    Column("action", "操作代码"),
    Column("target", "对象"),
    Column("changes", "变更（旧 → 新）"),
    Column("details", "其他"),
)


def export(session, actor, audit_filter, timezone):
    """An XLSX of the filtered rows (at most ``MAX_EXPORT``, newest first); the export itself
    is audited (the caller commits). Returns (bytes, number of rows)."""
    _, found = rows(session, audit_filter, limit=MAX_EXPORT)
    table = [
        {
            "at": f"{local_datetime(entry.created_at, timezone):%Y-%m-%d %H:%M:%S}",
            "name": who.name if who else "系统",
            "username": who.username if who else "",
            "remote_addr": entry.remote_addr or "",
            "label": action_label(entry.action),
            "action": entry.action,
            "target": entry.target or "",
            "changes": "；".join(f"{f}: {_text(o)} → {_text(n)}" for f, o, n in changes_of(entry)),
            "details": "；".join(f"{k}: {_text(v)}" for k, v in details_of(entry)),
        }
        for entry, who in found
    ]
    data = write_xlsx(EXPORT_COLUMNS, table, title="审计日志")
    audit(
        session,
        actor,
        "audit.export",
        target=f"{len(table)} 条",
        payload={"filters": audit_filter.as_args(), "rows": len(table)},
    )
    return data, len(table)


def _text(value):
    if value is None:
        return "（空）"
    if isinstance(value, list):
        return "、".join(str(v) for v in value) or "（空）"
    return str(value)
