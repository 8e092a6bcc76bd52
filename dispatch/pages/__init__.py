"""The dispatch domain's pages: the operator console (受理台), the dispatcher's queue and the unit
handler's inbox with the ticket page (派单台, 待办工单), the grid worker's phone pages (网格工作台),
the callback and supervision workbenches (回访台, 督办审核) and the photos of a ticket.

Every page makes its changes through ``hotline.web.perform`` over ``dispatch.operations``,
reading its forms with the parsers of ``dispatch.schemas`` that the JSON API uses too.
"""

from flask import abort, g

from dispatch import access
from hotline.errors import Forbidden, NotFound


def visible_ticket_or_abort(db, number):
    """The ticket of ``number`` for the current user: the 404 page if there is none, the 403
    page if it lies outside their scope."""
    try:
        return access.visible_ticket(db, g.user, number)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
