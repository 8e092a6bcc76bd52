"""The classifier's retraining runs (``dispatch.learning``) as the JSON API and the pages read
them: the list's query and one run as a dict."""

import sqlalchemy as sa

from dispatch import learning
from hotline.models import ModelRetrain, User
from hotline.schemas import Fields, Page, check_query, iso

#: Runs per page of the list, and the most a client may ask for.
PAGE_SIZE = 20
PAGE_MAX = 100


def list_query(args):
    """The page of runs asked for (``page``, ``per_page``), or ValidationFailed."""
    errors = {}
    page = Page.from_args(
        args, size=PAGE_SIZE, size_arg="per_page", max_size=PAGE_MAX, errors=errors
    )
    check_query(errors)
    return page


def request_values(data):
    """A request for a retraining takes no field: an empty body (or none)."""
    Fields(data).check()


def runs(session, page):
    """(total, rows) of the runs, newest first."""
    return page.of(session, sa.select(ModelRetrain), ModelRetrain.id.desc())


def requesters(session, rows):
    """{user id: User} of the people who asked for ``rows`` (one query)."""
    ids = {row.requested_by_id for row in rows if row.requested_by_id is not None}
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(ids)))}


def retrain_to_dict(row, requester=None):
    """One run: its status and trigger (with their Chinese labels), who asked and when, its
    moments, the candidate and the version it was compared with, the reason, the figures as
    stored (``ModelRetrain.figures``) and as a table candidate beside active
    (``learning.figure_rows``)."""
    figures = row.figures or {}
    return {
        "id": row.id,
        "status": {"value": row.status, "label": learning.STATUS_LABELS.get(row.status)},
        "trigger": {"value": row.trigger, "label": learning.TRIGGER_LABELS.get(row.trigger)},
        "requested_at": iso(row.requested_at),
        "requested_by": (
            {"username": requester.username, "name": requester.name} if requester else None
        ),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "candidate_version": row.candidate_version,
        "active_version": row.active_version,
        "reason": row.reason,
        "figures": figures,
        "table": learning.figure_rows(figures),
    }
