"""The tickets' metrics read at scrape time (``hotline.metrics``, cached between scrapes):
open tickets by state and the overdue count (超期, ``sla.overdue``: still with a unit after
the finish deadline).

One query, one pass over the open tickets: it selects them by ``status`` (the index
``ix_tickets_status_received_at``) and counts the overdue among them on the way, so its cost
grows with the open tickets, not with the whole history (measured in the README's "Health,
metrics and logs").
"""

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily

from dispatch import sla
from dispatch.states import FINAL
from hotline.enums import TicketStatus
from hotline.models import Ticket

#: Every state a ticket can still leave.
OPEN = [s for s in TicketStatus if s not in FINAL]


def ticket_families(session, now):
    rows = session.execute(
        sa.select(
            Ticket.status,
            sa.func.count(),
            sa.func.sum(sa.case((sla.overdue(now), 1), else_=0)),
        )
        .where(Ticket.status.in_(OPEN))
        .group_by(Ticket.status)
    ).all()
    counts = {status: (n, overdue or 0) for status, n, overdue in rows}
    by_state = GaugeMetricFamily(
        "hotline_open_tickets", "Tickets not in a final state, by state", labels=["state"]
    )
    for status in OPEN:
        by_state.add_metric([status.value], counts.get(status, (0, 0))[0])
    overdue = GaugeMetricFamily(
        "hotline_overdue_tickets", "Tickets still with a unit after their finish deadline (超期)"
    )
    overdue.add_metric([], sum(o for _, o in counts.values()))
    return [by_state, overdue]
