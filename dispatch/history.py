"""Everything recorded about one ticket, each kind in the order it happened: the units it went
to, its events (with who did them), extension requests, callback attempts and photos. The
JSON API's ticket detail and every ticket page read it from here."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from hotline.models import Assignment, Attachment, CallbackAttempt, Extension, TicketEvent


@dataclass(frozen=True)
class History:
    assignments: list
    events: list
    extensions: list
    attempts: list
    photos: list

    def photos_by_event(self):
        """{event id: [its photos]} (photos stored with the event that took them)."""
        grouped = {}
        for photo in self.photos:
            grouped.setdefault(photo.event_id, []).append(photo)
        return grouped


def _of(db, model, ticket, *order, options=()):
    return db.scalars(
        sa.select(model).where(model.ticket_id == ticket.id).options(*options).order_by(*order)
    ).all()


def history(db, ticket):
    """The ticket's record, one query per kind."""
    return History(
        assignments=_of(
            db, Assignment, ticket, Assignment.id, options=(selectinload(Assignment.unit),)
        ),
        events=_of(
            db,
            TicketEvent,
            ticket,
            TicketEvent.id,
            options=(selectinload(TicketEvent.actor), selectinload(TicketEvent.unit)),
        ),
        extensions=_of(db, Extension, ticket, Extension.id),
        attempts=_of(db, CallbackAttempt, ticket, CallbackAttempt.id),
        photos=_of(db, Attachment, ticket, Attachment.id),
    )
