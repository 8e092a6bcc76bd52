"""A ticket's photos (办结佐证、现场核查、主动发现), served only to users who may see the ticket,
as the image type detected when they were stored, never as HTML."""

import io
import logging

from flask import Blueprint, abort, send_file
from flask_login import current_user, login_required

from dispatch import access
from hotline import attachments
from hotline.db import get_session
from hotline.models import Attachment

log = logging.getLogger(__name__)


def create_blueprint():
    bp = Blueprint("attachments", __name__)
    bp.add_url_rule("/attachments/<id:attachment_id>", view_func=download)
    return bp


@login_required
def download(attachment_id):
    """A photo, for users who may see its ticket (403 otherwise, as for the ticket)."""
    db = get_session()
    row = db.get(Attachment, attachment_id)
    if row is None:
        abort(404)
    if not access.can_view(db, current_user, row.ticket):
        abort(403)
    data = attachments.read(db, row.sha256)
    if data is None:
        log.error("photo %s of attachment %s is in no store", row.sha256, row.id)
        abort(404)
    response = send_file(io.BytesIO(data), mimetype=row.content_type, max_age=3600, etag=row.sha256)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
