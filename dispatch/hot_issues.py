"""Which hot issue (热点问题) a ticket is part of, for the dispatcher's pages: "part of hot
issue N" on a ticket and in the queue. The hot issues are ``dashboards.hotspots``' work;
dispatch does not import it, so this reads the hotline models directly and links by URL
path. Who may open a hot issue's page is decided here, once (``dashboards`` uses it).
"""

from dataclasses import dataclass

import sqlalchemy as sa

from hotline.enums import Role
from hotline.models import HotIssue, HotIssueTicket

#: Roles that see hot issues (a district leader: their district's only).
VIEW_ROLES = frozenset({Role.leader, Role.supervisor, Role.dispatcher, Role.admin})
#: The hot issue pages' address (``dashboards.pages.hotspots``).
PATH = "/hotspots/{id}"


@dataclass(frozen=True)
class HotIssueRef:
    id: int
    title: str
    size: int
    state_label: str

    @property
    def path(self):
        return PATH.format(id=self.id)


def of_tickets(session, ticket_ids):
    """``{ticket id: HotIssueRef}`` of those of ``ticket_ids`` that are part of a hot issue
    (one query; a ticket's membership always names a hot issue not merged away, since a
    merge moves the tickets)."""
    ids = [i for i in ticket_ids if i is not None]
    if not ids:
        return {}
    rows = session.execute(
        sa.select(
            HotIssueTicket.ticket_id, HotIssue.id, HotIssue.title, HotIssue.size, HotIssue.state
        )
        .join(HotIssue, HotIssue.id == HotIssueTicket.hot_issue_id)
        .where(HotIssueTicket.ticket_id.in_(ids))
    ).all()
    return {
        r.ticket_id: HotIssueRef(id=r.id, title=r.title, size=r.size, state_label=r.state.label)
        for r in rows
    }


def of_ticket(session, user, ticket):
    """The hot issue ``ticket`` is part of, for a user who may see hot issues; else None."""
    if user.role not in VIEW_ROLES:
        return None
    return of_tickets(session, [ticket.id]).get(ticket.id)
