"""A ticket's record told for people: each event as a sentence (names, not codes; what a timer
or the scheduler did in words) and the rounds of handling a reopen starts, each with its units,
deadlines, result and callback kept (``dispatch.history`` has the raw rows).

Rounds are derived from the events, assignments and callback attempts: a ``reopen`` event
starts a new round; no column records them.
"""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dispatch.deadlines import deadline_state, duration_words
from hotline.enums import (
    AssignmentRole,
    CallbackOutcome,
    Channel,
    DecisionStatus,
    EscalationLevel,
    ExemptionKind,
    IntakeOutcome,
    RequestType,
    ReturnReason,
    Satisfaction,
    Solved,
    TimerKind,
    TransferTarget,
    Urgency,
)
from hotline.suggestions import unit_names

#: Actions whose payload starts a clock (sign / contact / finish deadlines).
CLOCK_STARTS = {"dispatch", "designate", "apply_meeting_decision", "decide_return", "reopen"}
_CLOCKS = (("sign", "签收"), ("contact", "响应"), ("finish", "办结"))
_CLOSED = {
    "rated": "已归档",
    "unreachable": "无法联系诉求人，已归档",
    "refused": "诉求人拒绝回访，已归档",
    "accepted_unhappy": "不满意但不再重办，已归档",
    "no_phone": "诉求人未留电话，已归档",
}
_FIELDS = {"category": "事项分类", "urgency": "紧急程度", "request_type": "诉求类型"}
_ENUMS = {"urgency": Urgency, "request_type": RequestType}
#: The console's answers to the classifier's emergency warning.
WARNING_DECISIONS = {
    "kept": "话务员确认为紧急",
    "dismissed": "话务员判断不紧急，已忽略",
    "transferred": "话务员已转接",
    "unanswered": "话务员未处理预警",
}


def _label(enum_cls, value, default="—"):
    member = enum_cls.parse(value) if isinstance(value, str) else None
    return member.label if member is not None else (value or default)


class Teller:
    """Sentences for the events of one ticket (unit names looked up once)."""

    def __init__(self, db, events, timezone):
        self.tz = ZoneInfo(timezone)
        codes = set()
        for e in events:
            payload = e.payload or {}
            for key in ("lead_unit", "returning_unit", "from_unit", "to_unit"):
                if payload.get(key):
                    codes.add(payload[key])
            for key in ("assist_units", "copied_to"):
                codes.update(payload.get(key) or [])
        self.names = unit_names(db, sorted(codes))

    def when(self, value):
        if not value:
            return "—"
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def unit(self, code):
        return self.names.get(code) or code

    def units(self, codes):
        return "、".join(self.unit(c) for c in codes)

    def sentence(self, event):
        """What ``event`` did, in one Chinese sentence ("" when its name says it all)."""
        p = event.payload or {}
        action = event.action
        kind = TimerKind.parse(action)
        if kind is not None:
            return self._timer(kind, p)
        method = getattr(self, f"_{action}", None)
        return method(p) if method else ""

    # -- people's operations ------------------------------------------------------------------

    def _receive(self, p):
        channel = _label(Channel, p.get("channel"))
        text = f"通过“{channel}”受理，诉求类型“{_label(RequestType, p.get('request_type'))}”"
        warning = p.get("urgency_warning")
        if warning and "citizen_saw_warning" in warning:
            # 市民端: the citizen was (or was not) told to call the emergency line.
            if warning["citizen_saw_warning"]:
                text += "；市民已看到拨打紧急电话的提示，仍选择提交"
            elif warning.get("shown"):
                text += "；系统提示可能为紧急情况，市民页面未显示该提示"
        elif warning and warning.get("shown"):
            evidence = f"（来电提及“{warning['evidence']}”）" if warning.get("evidence") else ""
            decision = WARNING_DECISIONS.get(warning.get("decision"), "")
            text += f"；系统提示可能为紧急情况{evidence}，{decision}"
        return text

    def _assignment(self, p):
        text = f"主办：{self.unit(p['lead_unit'])}" if p.get("lead_unit") else ""
        if p.get("assist_units"):
            text += f"；协办：{self.units(p['assist_units'])}"
        if p.get("copied_to"):
            text += f"；抄送：{self.units(p['copied_to'])}"
        return text

    def _deadlines(self, p):
        if not p.get("finish_due"):
            return ""
        return f"；签收时限 {self.when(p.get('sign_due'))}，办结时限 {self.when(p['finish_due'])}"

    def _dispatch(self, p):
        return "派单，" + self._assignment(p) + self._deadlines(p)

    def _designate(self, p):
        return "指定承办，" + self._assignment(p) + self._deadlines(p)

    def _apply_meeting_decision(self, p):
        return "联席会议决定指定承办，" + self._assignment(p) + self._deadlines(p)

    def _decide_return(self, p):
        returning = self.unit(p.get("returning_unit"))
        if p.get("approved"):
            return f"同意{returning}退单并改派，" + self._assignment(p) + self._deadlines(p)
        return f"驳回{returning}的退单申请，原单位继续办理"

    def _reopen(self, p):
        return f"第 {p.get('reopen_count', '')} 次重办，" + self._assignment(p) + self._deadlines(p)

    def _reassign(self, p):
        moved = f"{self.unit(p.get('from_unit'))}停用，"
        role = _label(AssignmentRole, p.get("role"))
        if p.get("lead_unit"):
            return moved + "改派，" + self._assignment(p) + self._deadlines(p)
        text = moved + f"其{role}改由{self.unit(p.get('to_unit'))}承担"
        if p.get("already_held_as"):
            text += f"（该单位已是{_label(AssignmentRole, p['already_held_as'])}单位）"
        return text

    def _request_return(self, p):
        return f"申请退单，原因：{_label(ReturnReason, p.get('return_reason'))}"

    def _request_extension(self, p):
        return f"申请延期 {p.get('days')} 个工作日"

    def _decide_extension(self, p):
        if p.get("approved"):
            old, new = self.when(p.get("old_finish_due")), self.when(p.get("new_finish_due"))
            return f"同意延期 {p.get('days')} 个工作日，办结时限由 {old} 改为 {new}"
        return "驳回延期申请"

    def _sign(self, p):
        role = "协办单位签收" if p.get("role") == AssignmentRole.assist.value else "主办单位签收"
        return role + ("（已超过签收时限）" if p.get("late") else "")

    def _contact(self, p):
        return "已联系诉求人（已超过响应时限）" if p.get("late") else ""

    def _finish(self, p):
        text = "办结，已超过办结时限" if p.get("late") else "按时办结"
        if p.get("callback_due"):
            text += f"；回访时限 {self.when(p['callback_due'])}"
        if p.get("review"):
            poor = (p.get("reply_quality") or {}).get("poor")
            text += "；办理结果待热线审核" + ("（自动检查：疑似不合格）" if poor else "")
        return text

    def _approve_reply(self, p):
        due = p.get("callback_due")
        return "办理结果审核通过，已发送诉求人" + (f"；回访时限 {self.when(due)}" if due else "")

    def _return_reply(self, p):
        return "办理结果退回承办单位修改，办理时限不变"

    def _record_callback(self, p):
        text = f"回访：{_label(CallbackOutcome, p.get('outcome'))}"
        if p.get("attempt"):
            text = f"第 {p['attempt']} 次" + text
        if p.get("solved"):
            text += f"，{_label(Solved, p['solved'])}，{_label(Satisfaction, p['satisfaction'])}"
        if p.get("next_attempt_at"):
            text += f"；{self.when(p['next_attempt_at'])} 后再次回访"
        if p.get("closed"):
            text += f"；{_CLOSED.get(p['closed'], '已归档')}"
        return text

    def _rerequest(self, p):
        return "诉求人网上不满意再次反映（未解决，不满意），待督办审核决定是否重办"

    def _close(self, p):
        return _CLOSED.get(p.get("closed"), "已归档")

    def _transfer(self, p):
        return f"转{_label(TransferTarget, p.get('target'))}"

    def _merge(self, p):
        return f"并入工单 {p.get('into')}"

    def _resolve_at_intake(self, p):
        return f"受理时直接办结（{_label(IntakeOutcome, p.get('outcome'))}）"

    def _exempt(self, p):
        if p.get("exempt"):
            return f"不计入考核，类型：{_label(ExemptionKind, p.get('kind'))}"
        return "恢复计入考核"

    def _accept(self, p):
        return "网格员接单" + ("并代街道签收" if p.get("signed") else "")

    def _check_in(self, p):
        distance = p.get("distance_m")
        if distance is None:
            return f"现场核查，拍照 {p.get('photos', 0)} 张"
        return f"现场核查，距所在网格 {round(distance)} 米，拍照 {p.get('photos', 0)} 张"

    def _escalate(self, p):
        return "网格员上报，交回街道办理"

    def _reclassify(self, p):
        parts = []
        for name, change in (p.get("changes") or {}).items():
            parts.append(
                f"{_FIELDS.get(name, name)}由“{self._value(name, change.get('from'))}”"
                f"改为“{self._value(name, change.get('to'))}”"
            )
        text = "；".join(parts)
        if p.get("finish_due"):
            text += (
                f"；按“{p.get('sla_policy', '')}”从原起算时间重新计算时限：签收 "
                f"{self.when(p.get('sign_due'))}，响应 {self.when(p.get('contact_due'))}，"
                f"办结 {self.when(p['finish_due'])}"
            )
            if p.get("extended_days"):
                text += f"（含已批准延期 {p['extended_days']} 个工作日）"
        return text

    def _value(self, name, value):
        if isinstance(value, dict):
            return value.get("name") or value.get("code")
        if name in _ENUMS:
            return _label(_ENUMS[name], value, "未定")
        return value or "未定"

    # 吹哨报到 (dispatch.whistle): the summoned department is named in the payload.
    def _whistle(self, p):
        report, opinion = self.when(p.get("report_due")), self.when(p.get("opinion_due"))
        return f"向{p.get('unit_name')}吹哨，报到时限 {report}，反馈时限 {opinion}"

    def _report_summons(self, p):
        return f"{p.get('unit_name')}已报到" + ("（超过报到时限）" if p.get("late") else "")

    def _give_opinion(self, p):
        return f"{p.get('unit_name')}已反馈处理意见" + ("（超过反馈时限）" if p.get("late") else "")

    def _withdraw_summons(self, p):
        return f"撤回对{p.get('unit_name')}的吹哨"

    def _end_summons(self, p):
        return f"{p.get('unit_name')}已停用，对其的吹哨报到结束"

    # -- the scheduler ------------------------------------------------------------------------

    def _timer(self, kind, p):
        due = self.when(p.get("due_at"))
        K = TimerKind
        if kind in (K.sign_warning, K.contact_warning, K.finish_warning):
            clock = kind.label[:2]
            text = f"{clock}时限即将到期，系统已向承办单位发出预警"
        elif kind in (K.sign_overdue, K.contact_overdue, K.finish_overdue):
            text = f"已超过{kind.label[:2]}时限（{due}），系统已通知承办单位"
        elif kind == K.reminder:
            text = "办结时限已过仍未办结，热线中心已催办"
        elif kind == K.escalation:
            level = p.get("level")
            try:
                name = EscalationLevel(level).label
            except ValueError:
                name = f"{level} 级督办"
            text = f"超过办结时限仍未办结，已提级至{name}"
        elif kind in _SUMMONS_TIMERS:
            text = _SUMMONS_TIMERS[kind].format(unit=p.get("unit_name") or p.get("unit"), due=due)
            if kind == K.summons_escalation:
                try:
                    text += f"，已提级至{EscalationLevel(p.get('level')).label}"
                except ValueError:
                    pass
        elif kind == K.callback_task:
            text = "已生成回访任务，请回访诉求人"
        else:
            text = f"回访时限（{due}）已过，尚未回访"
        lateness = p.get("lateness_seconds") or 0
        if lateness >= 300:
            text += f"（系统于到期后 {duration_words(dt.timedelta(seconds=lateness))}补发）"
        return text


_SUMMONS_TIMERS = {
    TimerKind.report_warning: "{unit}报到时限即将到期，系统已提醒",
    TimerKind.report_overdue: "{unit}未在报到时限（{due}）内报到",
    TimerKind.opinion_warning: "{unit}反馈时限即将到期，系统已提醒",
    TimerKind.opinion_overdue: "{unit}未在反馈时限（{due}）内反馈处理意见",
    TimerKind.summons_escalation: "{unit}超过反馈时限仍未反馈",
}


def assignment_state(assignment):
    """How a unit's part stands, in words: an assisting unit that never signed is 待签收,
    never 承办中."""
    a = assignment
    if not a.active:
        if a.return_status == DecisionStatus.approved:
            return "已退单"
        if a.role != AssignmentRole.copy and a.signed_at is None:
            return "未签收，已结束"
        return "已结束"
    if a.role == AssignmentRole.copy:
        return "抄送（无需签收）"
    if a.return_status == DecisionStatus.pending:
        return "申请退单中"
    if a.signed_at is None:
        return "待签收"
    if a.finished_at is not None:
        # An assisting unit's moment is its report (协办反馈, dispatch.cohandling).
        return "已办结" if a.role == AssignmentRole.lead else "已反馈"
    return "办理中" if a.role == AssignmentRole.lead else "协办中"


@dataclass
class Round:
    """One round of handling: from the first dispatch (or a reopen) to the next reopen."""

    number: int
    current: bool
    started_at: dt.datetime | None = None
    #: The reason given by the reopen that started this round.
    reopen_reason: str | None = None
    assignments: list = field(default_factory=list)
    #: [(label, due, DeadlineState)] as for the ticket's own deadlines.
    deadlines: list = field(default_factory=list)
    result: str | None = None
    finished_at: dt.datetime | None = None
    attempts: list = field(default_factory=list)

    @property
    def lead(self):
        leads = [a for a in self.assignments if a.role == AssignmentRole.lead]
        return leads[-1].unit if leads else None


def rounds(record, ticket, now, current_deadlines):
    """The rounds of handling of ``ticket`` (``record`` is its ``history``), oldest first.
    The current round's deadlines are ``current_deadlines`` (coloured by the live timers);
    earlier rounds' come from their events, with the moments each step was done."""
    segments = [[]]
    for e in record.events:
        if e.action == "reopen":
            segments.append([])
        segments[-1].append(e)
    result = []
    for i, events in enumerate(segments):
        start = events[0].created_at if i else None
        end = segments[i + 1][0].created_at if i + 1 < len(segments) else None

        def inside(moment, start=start, end=end):
            return (start is None or moment >= start) and (end is None or moment < end)

        r = Round(number=i + 1, current=end is None, started_at=start)
        if i:
            r.reopen_reason = events[0].reason
        r.assignments = [a for a in record.assignments if inside(a.dispatched_at)]
        r.attempts = [c for c in record.attempts if inside(c.attempted_at)]
        due, done = {}, {}
        for e in events:
            p = e.payload or {}
            restarts = e.action in CLOCK_STARTS or (e.action == "reassign" and p.get("finish_due"))
            if restarts or (e.action == "reclassify" and p.get("finish_due")):
                if e.action != "decide_return" or p.get("approved"):
                    for clock, _ in _CLOCKS:
                        due[clock] = p.get(f"{clock}_due")
                    if e.action != "reclassify":
                        done = {}
            elif e.action == "decide_extension" and p.get("approved"):
                due["finish"] = p.get("new_finish_due")
            elif e.action == "sign" and p.get("role") == AssignmentRole.lead.value:
                done["sign"] = e.created_at
            elif e.action == "accept" and p.get("signed"):
                done["sign"] = e.created_at
            elif e.action == "contact":
                done["contact"] = e.created_at
            elif e.action == "finish":
                done["finish"] = e.created_at
                r.result = e.reason
                r.finished_at = e.created_at
        if r.current:
            r.deadlines = current_deadlines
            r.result = ticket.result or r.result
        else:
            for clock, label in _CLOCKS:
                moment = dt.datetime.fromisoformat(due[clock]) if due.get(clock) else None
                state = deadline_state(
                    moment, warn_at=None, done_at=done.get(clock), now=now, stopped=True
                )
                r.deadlines.append((label, moment, state))
        result.append(r)
    return result
