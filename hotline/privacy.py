"""个人信息查看留痕: every time a page, an API answer or an export shows someone a
requester's full phone number, the view is recorded in the audit log (who, when, from where,
which tickets), so the centre can answer "who looked at this citizen's number".

Code that reveals a number calls ``viewed(actor, ticket_number)``; after the response is
made, one audit row (``pii.view``) records every ticket of that request. Views are what GET
requests show (pages, API reads, exports); the answer to a change (receiving a ticket with
the number just typed, a callback on a ticket whose page was opened) is not a new view. A
request that failed (4xx/5xx) or redirected showed nothing and records nothing.
"""

import logging

from flask import g, has_request_context, request

from hotline.audit import audit
from hotline.db import get_session

log = logging.getLogger(__name__)

#: Ticket numbers kept in one audit row (an export of thousands records the count).
MAX_NUMBERS = 500


def viewed(actor, ticket_number, what="phone"):
    """``actor`` is being shown the full ``what`` of ticket ``ticket_number``."""
    if not has_request_context() or actor is None:
        return
    views = g.setdefault("pii_views", {})
    key = (actor.id, what)
    numbers = views.setdefault(key, {"actor": actor, "numbers": []})["numbers"]
    if ticket_number not in numbers:
        numbers.append(ticket_number)


def init_app(app):
    @app.after_request
    def _record(response):
        views = g.pop("pii_views", None)
        if not views or request.method not in ("GET", "HEAD") or response.status_code >= 300:
            return response
        db = get_session()
        try:
            for (_, what), view in views.items():
                numbers = view["numbers"]
                audit(
                    db,
                    view["actor"],
                    "pii.view",
                    target=(numbers[0] or "")[:100]
                    if len(numbers) == 1
                    else f"{len(numbers)} 张工单",
                    payload={
                        "what": what,
                        "count": len(numbers),
                        "tickets": numbers[:MAX_NUMBERS],
                        "path": request.path[:200],
                    },
                )
            db.commit()
        except Exception:  # noqa: BLE001 — the page was shown; the failure must be seen in logs
            db.rollback()
            log.exception("could not record a personal-data view (%s)", request.path)
        return response
