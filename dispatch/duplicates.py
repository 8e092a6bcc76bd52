"""Possible duplicates of a call being taken (并单): tickets of the last
``DUPLICATE_WINDOW_DAYS`` days with the same requester phone, or at the same place with a
similar text.

Similarity is the Jaccard index of the two texts' word sets (``knowledge.terms``).
``SIMILARITY_THRESHOLD`` was calibrated on the call templates of ``seed_data/calls.json``
with every template set at the same place: of the 43,071 pairs of *different* templates only
41 (0.1 %) reach 0.25 (the highest 0.36), while a template against its own first two thirds
(a shorter retelling of the same matter) scores 0.54 or more. Candidates are only ever
compared within one place, which keeps such rare false matches rarer still; the operator
decides.
"""

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from classifier.normalize import normalize
from dispatch import access
from dispatch.states import FINAL
from hotline.db import utcnow
from hotline.enums import TicketStatus
from hotline.knowledge import terms
from hotline.models import Area, Ticket

SIMILARITY_THRESHOLD = 0.25
#: Tickets read per look-up (newest first); a place with more in a month is a hot spot the
#: operator sees anyway.
SCAN_LIMIT = 300
#: Candidates returned.
LIMIT = 10

SAME_PHONE = "同一来电号码"
#: Codes this long (community, grid) name a small place; a coarser area must match exactly.
COMMUNITY_CODE_LENGTH = 12

_NOT_ADDRESS = re.compile(r"[\s\W_]+")


def normalise_address(address):
    """An address without spaces, punctuation, full-width forms or traditional characters."""
    if not address:
        return ""
    return _NOT_ADDRESS.sub("", unicodedata.normalize("NFKC", normalize(address)))


def similarity(a_terms, b_terms):
    a, b = set(a_terms), set(b_terms)
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@dataclass
class Candidate:
    ticket: Ticket
    similarity: float
    reasons: list = field(default_factory=list)
    same_phone: bool = False
    same_place: bool = False

    @property
    def mergeable(self):
        """并单 only into a ticket still open (merge refuses final states)."""
        return self.ticket.status not in FINAL


def find(
    session,
    actor,
    *,
    phone=None,
    address=None,
    area=None,
    content=None,
    now=None,
    window_days=None,
    exclude_id=None,
    limit=LIMIT,
):
    """Ranked ``Candidate``s for a new call: same phone first, then by similarity, newest
    first. ``area`` is an ``Area`` row (or None); only tickets ``actor`` may see are offered."""
    now = now or utcnow()
    if window_days is None:
        window_days = current_app.config["DUPLICATE_WINDOW_DAYS"]
    address_key = normalise_address(address)
    matches = []
    if phone:
        matches.append(Ticket.requester_phone == phone)
    if area is not None:
        if len(area.code) >= COMMUNITY_CODE_LENGTH:
            prefix = area.code[:COMMUNITY_CODE_LENGTH]
            matches.append(
                Ticket.area_id.in_(
                    sa.select(Area.id).where(Area.code.startswith(prefix, autoescape=True))
                )
            )
        else:
            matches.append(Ticket.area_id == area.id)
    if address_key:
        # A cheap prefilter in SQL (the address's tail: house number and road); the exact
        # rule, equal normalised addresses, is applied below.
        matches.append(Ticket.address.contains(address_key[-6:], autoescape=True))
    if not matches:
        return []
    query = (
        sa.select(Ticket)
        .where(
            Ticket.received_at >= now - dt.timedelta(days=window_days),
            # A merged ticket points at the one to merge into, which is offered itself.
            Ticket.status != TicketStatus.merged,
            sa.or_(*matches),
        )
        .options(selectinload(Ticket.area))
        .order_by(Ticket.received_at.desc(), Ticket.id.desc())
        .limit(SCAN_LIMIT)
    )
    condition = access.scope_condition(actor)
    if condition is not None:
        query = query.where(condition)
    if exclude_id is not None:
        query = query.where(Ticket.id != exclude_id)
    words = terms(content) if content else []
    prefix = area.code[:COMMUNITY_CODE_LENGTH] if area is not None else None
    candidates = []
    for ticket in session.scalars(query):
        score = round(similarity(words, terms(ticket.content)), 2)
        candidate = Candidate(ticket, score)
        if phone and ticket.requester_phone == phone:
            candidate.same_phone = True
            candidate.reasons.append(SAME_PHONE)
        same_place = (
            (address_key and normalise_address(ticket.address) == address_key)
            or (area is not None and ticket.area_id == area.id)
            or (
                area is not None
                and len(area.code) >= COMMUNITY_CODE_LENGTH
                and ticket.area is not None
                and ticket.area.code.startswith(prefix)
            )
        )
        if same_place and score >= SIMILARITY_THRESHOLD:
            candidate.same_place = True
            candidate.reasons.append(f"同一地点且内容相似 (相似度 {score:.2f})")
        if candidate.reasons:
            candidates.append(candidate)
    candidates.sort(key=lambda c: (not c.same_phone, not c.same_place, -c.similarity, -c.ticket.id))
    return candidates[:limit]


def candidate_to_dict(candidate, actor):
    ticket = candidate.ticket
    return {
        "number": ticket.number,
        "title": ticket.title,
        "status": {"value": ticket.status.value, "label": ticket.status.label},
        "received_at": ticket.received_at.isoformat(),
        "address": ticket.address,
        "area": {"code": ticket.area.code, "name": ticket.area.name} if ticket.area else None,
        "requester_phone": access.visible_phone(actor, ticket.requester_phone, ticket.number),
        "similarity": candidate.similarity,
        "reasons": candidate.reasons,
        "mergeable": candidate.mergeable,
    }
