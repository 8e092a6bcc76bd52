"""A ticket's photos (办结佐证、现场核查、主动发现), served only to users who may see the ticket,
as the image type detected when they were stored, never as HTML."""

from flask import Blueprint, abort, current_app, send_file
from flask_login import current_user, login_required

from dispatch import access
from hotline.attachments import path_of
from hotline.db import get_session
from hotline.models import Attachment


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
    path = path_of(current_app.config["ATTACHMENT_DIR"], row.sha256)
    response = send_file(path, mimetype=row.content_type, max_age=3600)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
