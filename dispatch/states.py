"""The ticket state machine (DOMAIN.md §3): which operation is allowed from which states and
for which roles. This table is the one place these rules live; operations check it first and
the tests walk it.
"""

from dataclasses import dataclass

from hotline.enums import Role as R
from hotline.enums import TicketStatus as S
from hotline.enums import TimerKind


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    from_states: frozenset
    roles: frozenset


def _t(name, label, from_states, roles):
    return Transition(name, label, frozenset(from_states), frozenset(roles))


#: States in which a unit holds the ticket.
IN_HANDLING = {
    S.dispatched,
    S.signed,
    S.contacted,
    S.return_requested,
    S.reopened,
    S.termination_requested,
}
#: States in which a ticket's 吹哨报到 summonses stay open (dispatch.whistle): the lead has
#: signed and still holds it; leaving them ends the open summonses (whistle_timers).
SUMMONS_STATES = {S.signed, S.contacted, S.return_requested, S.termination_requested}
#: States from which the hotline may name the handling unit (指定承办, a meeting's decision).
DESIGNATABLE = {S.received, S.dispatched, S.signed, S.contacted, S.return_requested, S.reopened}
#: States no operation leaves (scoring exemption aside).
FINAL = {S.resolved_at_intake, S.transferred, S.merged, S.terminated, S.closed}
#: States in which category, urgency and request type may still be corrected: not yet
#: finished (once a unit has reported its result, the ticket is judged as it was handled).
RECLASSIFIABLE = {S.received} | IN_HANDLING

TRANSITIONS = {
    t.name: t
    for t in [
        # A citizen's own request (市民端, Open311) comes through a portal service account.
        _t("receive", "受理", [], [R.operator, R.grid_worker, R.portal]),
        _t("resolve_at_intake", "直接办结", [S.received], [R.operator, R.dispatcher]),
        _t("transfer", "转办", [S.received], [R.operator, R.dispatcher]),
        _t("merge", "并单", [S.received], [R.operator, R.dispatcher]),
        _t("dispatch", "派单", [S.received], [R.dispatcher]),
        # 拆单: one call with several matters becomes child tickets (dispatch.cohandling).
        _t("split", "拆单", [S.received], [R.operator, R.dispatcher]),
        # Assisting units may sign while the lead works on; the operation checks which.
        _t("sign", "签收", [S.dispatched, S.reopened, S.signed, S.contacted], [R.unit_handler]),
        # A grid worker acts for their street office only on a ticket they accepted (接单);
        # the operations check that.
        _t("accept", "接单", [S.dispatched, S.signed, S.contacted, S.reopened], [R.grid_worker]),
        _t("check_in", "现场核查", [S.signed, S.contacted], [R.grid_worker]),
        _t("escalate", "上报", [S.signed, S.contacted], [R.grid_worker]),
        _t("contact", "联系诉求人", [S.signed], [R.unit_handler, R.grid_worker]),
        _t("request_return", "退单申请", [S.dispatched, S.signed], [R.unit_handler]),
        _t("decide_return", "退单审核", [S.return_requested], [R.dispatcher]),
        _t("designate", "指定承办", DESIGNATABLE, [R.dispatcher]),
        # A joint meeting's (联席会议) decision on a hard case: designating with the meeting's
        # own finish deadline. Only ``dispatch.meetings.decide_item`` applies it (no form, no
        # API route), so a deadline never bypasses 延期审核 without a meeting on record.
        _t("apply_meeting_decision", "会议决定指定", DESIGNATABLE, [R.supervisor]),
        _t("request_extension", "延期申请", [S.signed, S.contacted], [R.unit_handler]),
        _t("decide_extension", "延期审核", [S.signed, S.contacted], [R.dispatcher, R.supervisor]),
        # 办结 goes to 待审核 when the category's review rule says so (dispatch.reply_review).
        _t("finish", "办结", [S.signed, S.contacted], [R.unit_handler, R.grid_worker]),
        _t("approve_reply", "审核通过", [S.reviewing], [R.supervisor]),
        _t("return_reply", "审核退回", [S.reviewing], [R.supervisor]),
        # 协办反馈: an assisting unit files its part into the lead's ticket; the operation
        # (dispatch.cohandling) checks the unit assists and has signed.
        _t("report_assist", "协办反馈", IN_HANDLING, [R.unit_handler]),
        # The citizen's own rating online (一事一评) is a callback like a call; the portal
        # checks the ticket is the citizen's.
        _t("record_callback", "回访", [S.finished], [R.callback_agent, R.portal]),
        _t("reopen", "重办", [S.called_back], [R.supervisor]),
        _t("close", "归档", [S.finished, S.called_back], [R.callback_agent, R.supervisor]),
        # The citizen, unhappy with the result, asks again online within the window
        # (citizen.reopen_days after finishing): back to 已回访 for a supervisor, as an unhappy
        # callback. The one way out of 已归档 besides the scoring exemption.
        _t("rerequest", "不满意再次反映", [S.finished, S.closed], [R.portal]),
        _t("request_termination", "终止申请", [S.signed, S.contacted], [R.unit_handler]),
        _t("review_termination", "终止审核", [S.termination_requested], [R.supervisor]),
        _t("exempt", "考核豁免", list(S), [R.supervisor]),
        # 吹哨报到 (dispatch.whistle): the street office or district government leading the
        # ticket summons departments; each reports and gives its opinion; the lead may
        # withdraw a summons. The operations check whose unit does what.
        _t("whistle", "吹哨", [S.signed, S.contacted], [R.unit_handler]),
        _t("report_summons", "报到", SUMMONS_STATES, [R.unit_handler]),
        _t("give_opinion", "反馈意见", SUMMONS_STATES, [R.unit_handler]),
        _t("withdraw_summons", "撤回吹哨", SUMMONS_STATES, [R.unit_handler]),
        # Correcting a wrong category or urgency (e.g. a classifier's false 紧急) recomputes
        # the deadlines of the running clock.
        _t("reclassify", "调整分类和紧急程度", RECLASSIFIABLE, [R.dispatcher, R.supervisor]),
    ]
}


#: Changes to tickets that follow from administration, not from handling one ticket: nobody
#: asks for them on a ticket, so they stay out of the table above (whose tests walk every
#: state with every role); named here for the operations' checks and the ticket's history.
ADMINISTRATIVE = {
    t.name: t
    for t in [
        # A unit being deactivated hands its open tickets to another (dispatch.units).
        _t("reassign", "停用改派", IN_HANDLING, [R.admin]),
        # A split call (已拆单) closes when its last child ticket reaches a final state
        # (dispatch.cohandling); nobody asks for it.
        _t("close_split", "子单全部办结", [S.split], []),
        # A summoned department being deactivated ends its open summonses (dispatch.whistle).
        _t("end_summons", "吹哨报到结束", SUMMONS_STATES, [R.admin]),
    ]
}


def event_label(action):
    """An event's name in Chinese: its transition's (派单 …) or its timer's (签收预警 …)."""
    if action in TRANSITIONS:
        return TRANSITIONS[action].label
    if action in ADMINISTRATIVE:
        return ADMINISTRATIVE[action].label
    kind = TimerKind.parse(action)
    return kind.label if kind is not None else action
