"""How 吹哨报到's operations are posted and a summons is shown, for the pages and the JSON API
alike: the forms reuse the ticket transitions' machinery (``dispatch.schemas``: the role is
checked first, every bad field named, the ticket's version required)."""

from dataclasses import dataclass

from dispatch import schemas, whistle, whistle_timers
from hotline.models import Unit
from hotline.schemas import coded, iso, lookup_code


@dataclass(frozen=True)
class SummonsForm(schemas.TransitionForm):
    """A transition form whose operation lives in ``dispatch.whistle``."""

    @property
    def operation(self):
        return getattr(whistle, self.name)


def _p_whistle(db, f):
    codes = f.codes("units", "被吹哨部门")
    return {
        "units": [
            u for u in (lookup_code(db, f, "units", Unit, "被吹哨部门", c) for c in codes) if u
        ],
        "reason": f.text(
            "reason", "吹哨事由", required=True, multiline=True, max_len=whistle.REASON_MAX
        ),
    }


def _p_opinion(db, f):
    return {
        "opinion": f.text(
            "opinion", "处理意见", required=True, multiline=True, max_len=whistle.OPINION_MAX
        )
    }


def _p_withdraw(db, f):
    code = f.code("unit", "被吹哨部门", required=True)
    return {
        "unit": lookup_code(db, f, "unit", Unit, "被吹哨部门", code),
        "reason": f.text("reason", "撤回原因", required=True, multiline=True, max_len=500),
    }


def _p_empty(db, f):
    return {}


FORMS = {
    form.slug: form
    for form in [
        SummonsForm("whistle", "whistle", _p_whistle),
        SummonsForm("summons-report", "report_summons", _p_empty),
        SummonsForm("summons-opinion", "give_opinion", _p_opinion, photos="optional"),
        SummonsForm("summons-withdrawal", "withdraw_summons", _p_withdraw),
    ]
}


def summons_to_dict(summons, now):
    s = summons
    late = whistle_timers.lateness(s, now)
    return {
        "id": s.id,
        "unit": coded(s.unit),
        "summoning_unit": coded(s.summoning_unit),
        "reason": s.reason,
        "state": whistle.state_of(s, now),
        "summoned_at": iso(s.summoned_at),
        "report_due": iso(s.report_due),
        "reported_at": iso(s.reported_at),
        "opinion_due": iso(s.opinion_due),
        "opinion_at": iso(s.opinion_at),
        "opinion": s.opinion,
        "cancelled_at": iso(s.cancelled_at),
        "cancel_reason": s.cancel_reason,
        "report_late": late["report_late"],
        "opinion_late": late["opinion_late"],
        "escalation_level": s.escalation_level,
    }
