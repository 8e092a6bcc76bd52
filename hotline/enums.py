"""Enumerations of the domain, each member with its Chinese label (DOMAIN.md §2)."""

import enum


class LabeledEnum(enum.StrEnum):
    """A string enum whose members carry a Chinese label: ``Member = "value", "标签"``."""

    def __new__(cls, value, label):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    @classmethod
    def parse(cls, value):
        """The member for ``value`` or None (no exception: callers build their own error)."""
        try:
            return cls(value)
        except ValueError:
            return None


class AreaLevel(LabeledEnum):
    district = "district", "区县"
    street = "street", "街道乡镇"
    community = "community", "社区村"
    grid = "grid", "网格"


class UnitKind(LabeledEnum):
    hotline_centre = "hotline_centre", "热线中心"
    city_department = "city_department", "市直部门"
    district_government = "district_government", "区政府"
    street_office = "street_office", "街道乡镇"
    utility = "utility", "公共服务企业"


class Role(LabeledEnum):
    operator = "operator", "话务员"
    dispatcher = "dispatcher", "派单员"
    unit_handler = "unit_handler", "承办人"
    grid_worker = "grid_worker", "网格员"
    callback_agent = "callback_agent", "回访员"
    supervisor = "supervisor", "督办审核员"
    leader = "leader", "领导"
    admin = "admin", "系统管理员"
    #: 质检员: scores a daily sample of each operator's intake (dispatch.inspection); reads
    #: tickets like other hotline staff who never call the requester (phones masked).
    inspector = "inspector", "质检员"
    #: A service account through which citizens' own requests arrive (the 市民端 per channel,
    #: each Open311 client): it cannot log in and has no landing page; the operations allow
    #: it only what a citizen may do, and the portal checks whose ticket it is.
    portal = "portal", "市民渠道账号"


#: Roles of service accounts, never of a person: no login, no landing page, not offered when
#: an administrator creates a user.
SERVICE_ROLES = frozenset({Role.portal})


class Channel(LabeledEnum):
    phone = "phone", "电话"
    web = "web", "网站"
    wechat = "wechat", "微信"
    app = "app", "App"
    mailbox = "mailbox", "市长信箱"
    grid = "grid", "网格主动发现"
    #: Another system's request through Open311 GeoReport v2 (``tickets.channel_client``
    #: names the client, the API key's name).
    open311 = "open311", "开放接口"


class RequestType(LabeledEnum):
    consult = "consult", "咨询"
    help = "help", "求助"
    complaint = "complaint", "投诉"
    report = "report", "举报"
    suggestion = "suggestion", "建议"
    praise = "praise", "表扬"


class Urgency(LabeledEnum):
    emergency = "emergency", "紧急"
    urgent = "urgent", "加急"
    normal = "normal", "一般"


class TicketStatus(LabeledEnum):
    received = "received", "已受理"
    resolved_at_intake = "resolved_at_intake", "直接办结"
    transferred = "transferred", "已转办"
    merged = "merged", "已并单"
    dispatched = "dispatched", "已派单"
    signed = "signed", "已签收"
    contacted = "contacted", "已响应"
    return_requested = "return_requested", "退单待审"
    termination_requested = "termination_requested", "终止待审"
    #: The unit has reported its result; the hotline reviews the reply before the citizen
    #: sees it (办结审核, ``dispatch.reply_review``).
    reviewing = "reviewing", "待审核"
    finished = "finished", "已办结"
    called_back = "called_back", "已回访"
    reopened = "reopened", "重办"
    terminated = "terminated", "已终止"
    closed = "closed", "已归档"
    #: 拆单: the call held several matters, each now a child ticket of its own; the parent
    #: has no unit and no clock and closes itself when every child is final.
    split = "split", "已拆单"


class IntakeOutcome(LabeledEnum):
    """Why a ticket was closed at intake without dispatch (DOMAIN.md §3, six outcomes)."""

    answered = "answered", "首问即答"
    already_handled = "already_handled", "同一事项已办理且无新情况"
    secret_or_privacy = "secret_or_privacy", "涉及国家秘密、商业秘密或个人隐私"
    no_competent_unit = "no_competent_unit", "不属于任何单位职责"
    unlawful_request = "unlawful_request", "违反法律法规的诉求"


class TransferTarget(LabeledEnum):
    """Where a matter goes instead of 12345: emergency lines or legal channels."""

    police_110 = "110", "110 报警"
    fire_119 = "119", "119 火警"
    ambulance_120 = "120", "120 急救"
    traffic_122 = "122", "122 交通事故"
    litigation = "litigation", "诉讼"
    arbitration = "arbitration", "仲裁"
    discipline = "discipline", "纪检监察"
    administrative_review = "administrative_review", "行政复议"
    disclosure = "disclosure", "政府信息公开"
    petition = "petition", "信访"


class AssignmentRole(LabeledEnum):
    lead = "lead", "主办"
    assist = "assist", "协办"
    copy = "copy", "抄送"


class ReturnReason(LabeledEnum):
    wrong_territory = "wrong_territory", "属地不符"
    ownership_unclear = "ownership_unclear", "权属不清"
    overlapping_duties = "overlapping_duties", "职能交叉"
    not_our_duty = "not_our_duty", "非本单位职责"


class DecisionStatus(LabeledEnum):
    pending = "pending", "待审核"
    approved = "approved", "同意"
    rejected = "rejected", "驳回"


class LimitUnit(LabeledEnum):
    minutes = "minutes", "分钟"
    hours = "hours", "小时"
    working_days = "working_days", "工作日"


class ArticleState(LabeledEnum):
    """Life of a knowledge-base article: written, checked by a reviewer, read to callers,
    and retired when its valid-until date passes (or by hand)."""

    draft = "draft", "草稿"
    in_review = "in_review", "待审核"
    published = "published", "已发布"
    expired = "expired", "已失效"


class CallbackOutcome(LabeledEnum):
    answered = "answered", "接通"
    no_answer = "no_answer", "无人接听"
    refused = "refused", "拒绝回访"
    wrong_number = "wrong_number", "号码错误"


class CallbackChannel(LabeledEnum):
    """How a callback's answer came: a call by the callback staff, or the citizen's own
    rating on the 市民端 (一事一评), which counts the same."""

    phone = "phone", "电话回访"
    online = "online", "网上评价"


class OutboxState(LabeledEnum):
    """A notification copy waiting in the outbox, delivered, or given up after the retries."""

    pending = "pending", "待发送"
    sent = "sent", "已发送"
    failed = "failed", "发送失败"


class Solved(LabeledEnum):
    solved = "solved", "解决"
    partly = "partly", "部分解决"
    unsolved = "unsolved", "未解决"


class Satisfaction(LabeledEnum):
    satisfied = "satisfied", "满意"
    basically = "basically", "基本满意"
    dissatisfied = "dissatisfied", "不满意"


class ExemptionKind(LabeledEnum):
    """Why a reviewer took a ticket out of scoring (考核豁免, DOMAIN.md §5)."""

    unreasonable = "unreasonable", "不合理诉求"
    duplicate = "duplicate", "重复诉求"
    beyond_policy = "beyond_policy", "超出法律政策范围"
    force_majeure = "force_majeure", "不可抗力"
    requester_unreachable = "requester_unreachable", "诉求人原因无法办理"
    other = "other", "其他"


class RankingClass(LabeledEnum):
    """The four classes the mayor's office ranks every month (DOMAIN.md §5)."""

    district = "district", "区县"
    street = "street", "街道乡镇"
    department = "department", "市直部门"
    utility = "utility", "公共服务企业"


class ListMark(LabeledEnum):
    red = "red", "红榜"
    black = "black", "黑榜"


class TimerKind(LabeledEnum):
    """SLA timers (DOMAIN.md §4): what fires when, and what it is called."""

    sign_warning = "sign_warning", "签收预警"
    sign_overdue = "sign_overdue", "签收超时"
    contact_warning = "contact_warning", "响应预警"
    contact_overdue = "contact_overdue", "响应超时"
    finish_warning = "finish_warning", "办结预警"
    finish_overdue = "finish_overdue", "办结超时"
    reminder = "reminder", "催办"
    escalation = "escalation", "督办"
    callback_task = "callback_task", "回访任务"
    callback_overdue = "callback_overdue", "回访超时"
    # 办结审核 (dispatch.reply_review): a reply waiting in 待审核 beyond ``review.limit_days``.
    review_overdue = "review_overdue", "审核超时"
    # 吹哨报到 (dispatch.whistle): a summoned department's own clocks.
    report_warning = "report_warning", "报到预警"
    report_overdue = "report_overdue", "报到超时"
    opinion_warning = "opinion_warning", "反馈预警"
    opinion_overdue = "opinion_overdue", "反馈超时"
    summons_escalation = "summons_escalation", "吹哨督办"


class EscalationLevel(enum.IntEnum):
    """督办 levels (``Ticket.escalation_level``): the scheduler raises a ticket one level per
    ``ESCALATE_EVERY_WORKING_DAYS`` working days overdue (DOMAIN.md §4)."""

    none = 0, "未督办"
    centre = 1, "一级督办（热线中心）"
    leadership = 2, "二级督办（区县或部门领导）"
    mayor = 3, "三级督办（市长办公室）"

    def __new__(cls, value, label):
        member = int.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class AlertLevel(LabeledEnum):
    """Colour of a notification on boards and inboxes."""

    info = "info", "提示"
    yellow = "yellow", "黄色预警"
    red = "red", "红色超时"


class EmergencyDecision(LabeledEnum):
    """What the operator did with the classifier's emergency warning at intake (recorded in
    the receive event; the ticket's urgency is only ever what a person chose)."""

    kept = "kept", "确认紧急"
    dismissed = "dismissed", "忽略预警"
    transferred = "transferred", "转接"


class HotIssueState(LabeledEnum):
    """A hot issue's (热点问题) state: watched while tickets come, marked handled by a
    supervisor, or merged into another hot issue by one."""

    open = "open", "关注中"
    handled = "handled", "已处理"
    merged = "merged", "已合并"


class WarningKind(LabeledEnum):
    """An early warning (预警) raised from the tickets: a category's calls in an area far above
    their usual level for the weekday and hour, or many calls about one place within minutes."""

    surge = "surge", "诉求激增"
    sudden = "sudden", "突发事件"


class WarningState(LabeledEnum):
    open = "open", "待确认"
    acknowledged = "acknowledged", "已确认"


class ReportPeriod(LabeledEnum):
    """The periods of the 民情分析 reports."""

    daily = "daily", "日报"
    weekly = "weekly", "周报"
    monthly = "monthly", "月报"
    quarterly = "quarterly", "季报"


class ReviewMode(LabeledEnum):
    """Which finished replies the hotline reviews before they reach the citizen (办结审核),
    per category: every one, a random share, only those the automatic check flags, or none."""

    all = "all", "全部审核"
    sample = "sample", "抽样审核"
    flagged = "flagged", "仅审核疑似不合格答复"
    none = "none", "不审核"


class MeetingState(LabeledEnum):
    """A joint meeting (联席会议) on hard cases: planned with its agenda, then held."""

    planned = "planned", "待召开"
    held = "held", "已召开"


class ReferralKind(LabeledEnum):
    """What a unit is referred to discipline inspection (纪检监察) for (四位一体督办)."""

    shirking = "shirking", "推诿扯皮"
    falsification = "falsification", "弄虚作假"


class InspectionState(LabeledEnum):
    """A sampled intake ticket in quality inspection (质检)."""

    pending = "pending", "待质检"
    done = "done", "已质检"
