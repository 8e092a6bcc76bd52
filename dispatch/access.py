"""Who may see which tickets, and whose phone numbers are shown in full.

A unit handler sees the tickets its unit holds or was summoned to (吹哨报到); a grid worker
those located in their grids or reported by them; a leader bound to a district that
district's tickets; hotline staff all.
"""

import sqlalchemy as sa

from hotline import privacy
from hotline.enums import Role
from hotline.errors import Forbidden, NotFound
from hotline.models import Area, Assignment, Summons, Ticket, user_grids
from hotline.privacy import mask_phone  # noqa: F401 (pages and exports mask with it here)

#: Roles that must call the requester and therefore see the full number.
FULL_PHONE_ROLES = frozenset(
    {
        Role.operator,
        Role.dispatcher,
        Role.unit_handler,
        Role.grid_worker,
        Role.callback_agent,
        Role.supervisor,
    }
)


def scope_condition(actor):
    """A WHERE condition limiting a ticket query to what ``actor`` may see (None: all)."""
    if actor.role == Role.unit_handler:
        return sa.or_(
            sa.exists().where(
                Assignment.ticket_id == Ticket.id,
                Assignment.unit_id == actor.unit_id,
                Assignment.active,
            ),
            # A department summoned to the ticket (吹哨报到, dispatch.whistle), also after its
            # part ended: its report and opinion are in the ticket's record.
            sa.exists().where(Summons.ticket_id == Ticket.id, Summons.unit_id == actor.unit_id),
        )
    if actor.role == Role.grid_worker:
        in_my_grids = sa.exists().where(
            user_grids.c.user_id == actor.id, user_grids.c.area_id == Ticket.area_id
        )
        return sa.or_(in_my_grids, Ticket.created_by_id == actor.id)
    if actor.role == Role.leader and actor.district_id is not None:
        district_code = sa.select(Area.code).where(Area.id == actor.district_id).scalar_subquery()
        return sa.exists().where(
            Area.id == Ticket.area_id, sa.func.substr(Area.code, 1, 6) == district_code
        )
    return None


def can_view(session, actor, ticket):
    condition = scope_condition(actor)
    if condition is None:
        return True
    return session.scalar(sa.select(sa.literal(True)).where(Ticket.id == ticket.id, condition))


def visible_phone(actor, phone, ticket_number):
    """The phone of ticket ``ticket_number`` as ``actor`` may see it: in full for the roles
    that must call the requester (the view is recorded: ``hotline.privacy``), masked for
    the others."""
    if actor.role not in FULL_PHONE_ROLES:
        return mask_phone(phone)
    if phone:
        privacy.viewed(actor, ticket_number)
    return phone


def visible_ticket(session, actor, number):
    """The ticket numbered ``number`` if ``actor`` may see it: NotFound if there is none,
    Forbidden if it lies outside their scope."""
    ticket = session.scalars(sa.select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        raise NotFound(f"工单不存在：{number}", code="TICKET_NOT_FOUND")
    if not can_view(session, actor, ticket):
        raise Forbidden("您无权查看该工单", code="TICKET_FORBIDDEN")
    return ticket


def visible_numbers(session, actor, numbers):
    """Of the ticket ``numbers``, those ``actor`` may open (one query): a page links only
    these to their ticket page."""
    wanted = {n for n in numbers if n}
    if not wanted:
        return set()
    query = scoped(sa.select(Ticket.number).where(Ticket.number.in_(wanted)), actor)
    return set(session.scalars(query))


def scoped(query, actor):
    """``query`` (over tickets) limited to what ``actor`` may see."""
    condition = scope_condition(actor)
    return query if condition is None else query.where(condition)
