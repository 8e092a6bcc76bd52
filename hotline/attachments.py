"""Photo attachments (办结佐证、现场核查、主动发现): checked, stored and served.

A photo is accepted only if its bytes are a JPEG, PNG or WebP image (the file name and the
browser's claimed type are not trusted) and it is within ``ATTACHMENT_MAX_BYTES``; a request
carries at most ``ATTACHMENT_MAX_FILES``. Files are kept under the instance folder by their
SHA-256, so a retried upload stores nothing twice, and are served only to users who may see
the ticket, as the image type detected, never as HTML.

Views call ``check`` before the operation (a bad photo refuses the whole action, nothing
written) and ``store`` after it, in the same transaction.
"""

import hashlib
import os
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, request, send_file
from flask_login import current_user, login_required

from dispatch import access
from hotline.db import get_session
from hotline.errors import ValidationFailed
from hotline.models import Attachment

bp = Blueprint("attachments", __name__)

PURPOSES = {"result": "办结佐证", "site": "现场核查", "report": "主动发现"}


@dataclass(frozen=True)
class Photo:
    filename: str
    content_type: str
    data: bytes
    sha256: str


def detect_type(data):
    """The image type ``data`` really is, from its first bytes (None: not an allowed type)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def allow_upload():
    """Raise this request's body limit (``MAX_CONTENT_LENGTH`` keeps JSON small) to room for
    the allowed photos plus the form. Call before touching ``request.form``/``files``."""
    config = current_app.config
    request.max_content_length = (
        config["ATTACHMENT_MAX_BYTES"] * config["ATTACHMENT_MAX_FILES"] + 1024 * 1024
    )


def check(files, *, field="photos", required=False):
    """Read and check uploaded ``files`` (werkzeug ``FileStorage``s; empty file inputs are
    skipped). Returns ``Photo``s, or raises ``ValidationFailed`` naming the bad file."""
    config = current_app.config
    max_bytes, max_files = config["ATTACHMENT_MAX_BYTES"], config["ATTACHMENT_MAX_FILES"]
    photos = []
    for storage in files:
        if storage is None or not storage.filename:
            continue
        name = os.path.basename(storage.filename.replace("\\", "/"))[:200] or "照片"
        data = storage.stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            _refuse(field, f"照片“{name}”超过 {_size_text(max_bytes)}", "ATTACHMENT_TOO_LARGE")
        if not data:
            _refuse(field, f"照片“{name}”是空文件", "ATTACHMENT_EMPTY")
        content_type = detect_type(data)
        if content_type is None:
            _refuse(field, f"“{name}”不是 JPEG、PNG 或 WebP 图片", "ATTACHMENT_TYPE_NOT_ALLOWED")
        photos.append(Photo(name, content_type, data, hashlib.sha256(data).hexdigest()))
    if len(photos) > max_files:
        _refuse(field, f"每次最多上传 {max_files} 张照片", "ATTACHMENT_TOO_MANY")
    if required and not photos:
        _refuse(field, "请至少上传一张照片", "ATTACHMENT_REQUIRED")
    return photos


def _size_text(size):
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{size / 1024:g} KB"


def _refuse(field, message, code):
    raise ValidationFailed(message, code=code, details={field: message})


def store(session, actor, ticket, photos, *, purpose, event=None):
    """Write ``photos`` to disk (content-addressed) and add their rows; the caller commits."""
    assert purpose in PURPOSES
    rows = []
    for photo in photos:
        path = _path(photo.sha256)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(photo.data)
            os.replace(tmp, path)
        row = Attachment(
            ticket_id=ticket.id,
            event_id=event.id if event is not None else None,
            uploaded_by_id=actor.id,
            purpose=purpose,
            filename=photo.filename,
            content_type=photo.content_type,
            size=len(photo.data),
            sha256=photo.sha256,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def _path(sha256):
    return os.path.join(current_app.config["ATTACHMENT_DIR"], sha256[:2], sha256)


@bp.get("/attachments/<id:attachment_id>")
@login_required
def download(attachment_id):
    """A photo, for users who may see its ticket (403 otherwise, as for the ticket)."""
    db = get_session()
    row = db.get(Attachment, attachment_id)
    if row is None:
        abort(404)
    if not access.can_view(db, current_user, row.ticket):
        abort(403)
    response = send_file(_path(row.sha256), mimetype=row.content_type, max_age=3600)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
