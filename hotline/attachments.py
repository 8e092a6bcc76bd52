"""Photo attachments (办结佐证、现场核查、主动发现): checked and stored with their operation.

A photo is accepted only if its bytes are a JPEG, PNG or WebP image (the file name and the
browser's claimed type are not trusted) and it is within ``ATTACHMENT_MAX_BYTES``; a request
carries at most ``ATTACHMENT_MAX_FILES``. Photos are kept by their SHA-256, so a retried
upload stores nothing twice, in the store ``ATTACHMENT_STORE`` names:

- ``database`` (the default): the ``blobs`` table, so every web host serves the same photos.
  The bytes are written in the operation's own transaction: they commit or roll back with
  its rows;
- ``files``: under ``ATTACHMENT_DIR`` (one host, or a folder every host shares).

Views ``check`` the uploads before the operation (a bad photo refuses the whole action,
nothing written); the operation ``store``s them in its own transaction. A photo and its row
live or die together. In the folder:

- the file is written (to a temporary name, then linked into place) before the commit, so a
  committed row always has its file; a write that fails (disk full, read-only) refuses the
  operation with ``ServiceUnavailable`` and leaves no partial file behind;
- a file this transaction created is removed again if the transaction rolls back, unless a
  committed row refers to the same bytes; after a commit every stored file is checked to
  still be there (a concurrent rollback of the same bytes cannot take it away).

In the database a write the database refuses (disk full) is refused the same way, inside a
savepoint, so the operation's transaction stays usable for the page that says so.

``read`` serves a photo from the database, else from ``ATTACHMENT_DIR`` (photos a database
kept in files before: ``hotline attachments import-files`` copies them in).
"""

import errno
import hashlib
import logging
import os
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline import blobs
from hotline.audit import audit
from hotline.errors import ServiceUnavailable, ValidationFailed
from hotline.models import Attachment

log = logging.getLogger(__name__)

PURPOSES = {
    "result": "办结佐证",
    "site": "现场核查",
    "report": "主动发现",
    "opinion": "报到反馈",
    "assist": "协办反馈",
}
#: What a person is told when the store cannot take the photos.
STORE_FAILED = "照片保存失败：附件存储空间已满或暂不可写，本次操作未生效，请稍后重试或联系管理员"


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


def sent(files):
    """Whether the request carried photos (a refused form must ask for them again)."""
    return any(f is not None and f.filename for f in files)


def check(files, *, field="photos", required=False):
    """Read and check uploaded ``files`` (werkzeug ``FileStorage``s; empty file inputs are
    skipped). Returns ``Photo``s, or raises ``ValidationFailed`` naming the bad file."""
    config = current_app.config
    max_bytes, max_files = config["ATTACHMENT_MAX_BYTES"], config["ATTACHMENT_MAX_FILES"]
    photos = []
    for storage in files:
        if storage is None or not storage.filename:
            continue
        name = _display_name(storage.filename)
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


def _display_name(filename):
    """A photo's file name as people see it: the last part of the path, without control
    characters (a NUL byte cannot even be stored in PostgreSQL), at most 200 characters."""
    name = os.path.basename(filename.replace("\\", "/"))
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cs"))
    return name.strip()[:200] or "照片"


def _size_text(size):
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{size / 1024:g} KB"


def _refuse(field, message, code):
    raise ValidationFailed(message, code=code, details={field: message})


def store(session, actor, ticket, photos, *, purpose, event=None):
    """Write ``photos`` (content-addressed) and add their rows to ``session``; the caller
    commits. Raises ``ServiceUnavailable`` when the store cannot take them."""
    assert purpose in PURPOSES
    config = current_app.config
    rows = []
    for photo in photos:
        if config["ATTACHMENT_STORE"] == "files":
            _write(session, config["ATTACHMENT_DIR"], photo)
        else:
            _put(session, photo)
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


def read(session, sha256):
    """The bytes of a stored photo (from the database, else the folder), or None."""
    data = None
    if current_app.config["ATTACHMENT_STORE"] == "database":
        data = blobs.get(session, sha256)
    if data is None:
        try:
            with open(path_of(current_app.config["ATTACHMENT_DIR"], sha256), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
    return data


def import_files(session, directory, *, batch=50):
    """Copy the photos of ``attachments`` rows kept under ``directory`` (a database that
    stored them in files) into the database, committing every ``batch``; a photo already there
    is skipped, so running it again copies nothing. The files stay (remove the folder once
    a backup holds the database). Returns the counts: copied, present, missing, damaged (a
    file whose bytes are not its name's)."""
    counts = {"copied": 0, "present": 0, "missing": 0, "damaged": 0}
    shas = sorted(set(session.scalars(sa.select(Attachment.sha256).distinct())))
    for start in range(0, len(shas), batch):
        chunk = shas[start : start + batch]
        stored = blobs.present(session, chunk)
        counts["present"] += len(stored)
        for sha256 in chunk:
            if sha256 in stored:
                continue
            try:
                with open(path_of(directory, sha256), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                counts["missing"] += 1
                continue
            if blobs.digest(data) != sha256:
                counts["damaged"] += 1
                continue
            blobs.put(session, data, sha256)
            counts["copied"] += 1
        session.commit()
    if counts["copied"]:
        audit(session, None, "attachments.import_files", payload={**counts, "directory": directory})
        session.commit()
    return counts


def path_of(directory, sha256):
    return os.path.join(directory, sha256[:2], sha256)


def _put(session, photo):
    """Put ``photo`` in the database's blobs unless it is there, inside a savepoint: a write
    the database refuses leaves the operation's transaction usable."""
    try:
        with session.begin_nested():
            blobs.put(session, photo.data, photo.sha256)
    except sa.exc.DBAPIError as exc:
        log.error("attachment store (database): %s", type(exc.orig).__name__)
        raise ServiceUnavailable(STORE_FAILED, code="ATTACHMENT_STORE_UNAVAILABLE") from None


def _write(session, directory, photo):
    """Put ``photo`` in the store unless it is there; remember what this transaction made."""
    path = path_of(directory, photo.sha256)
    pending = session.info.setdefault("attachment_files", [])
    # A request that ends with this transaction open rolls it back (``hotline.db``), so the
    # files go with it.
    session.info["rollback_on_close"] = True
    pending.append((path, photo, False))
    if os.path.exists(path):
        return
    tmp = f"{path}.{os.getpid()}.{id(photo):x}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(photo.data)
            f.flush()
            os.fsync(f.fileno())
        try:
            # A link, not a rename: if another request stored the same bytes meanwhile,
            # theirs stays and ours goes.
            os.link(tmp, path)
            pending[-1] = (path, photo, True)
        except FileExistsError:
            pass
    except OSError as exc:
        log.error("attachment store %s: %s", directory, errno.errorcode.get(exc.errno, exc.errno))
        raise ServiceUnavailable(STORE_FAILED, code="ATTACHMENT_STORE_UNAVAILABLE") from None
    finally:
        _remove(tmp)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        log.warning("could not remove %s", path, exc_info=True)


@event.listens_for(Session, "after_commit")
def _committed(session):
    if session.in_nested_transaction():
        return  # a savepoint released: the files wait for the transaction around it
    session.info.pop("rollback_on_close", None)
    for path, photo, _ in session.info.pop("attachment_files", ()):
        if not os.path.exists(path):
            # Another transaction that wrote the same bytes rolled back and took the file.
            try:
                with open(path, "wb") as f:
                    f.write(photo.data)
            except OSError:
                log.exception("photo %s of a committed row could not be restored", photo.sha256)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session, previous_transaction):
    if previous_transaction.nested or not session.is_active:
        # A savepoint rolled back (not used by the application), or a failed flush: the
        # rollback of the whole transaction follows, and cleans up then.
        return
    session.info.pop("rollback_on_close", None)
    _remove_created(session.info.pop("attachment_files", ()), session.scalars)


def _remove_created(pending, scalars):
    """Remove the files in ``pending`` this transaction created, unless a committed row refers
    to the same bytes (``scalars`` runs the check)."""
    created = [(path, photo) for path, photo, made in pending if made and os.path.exists(path)]
    if not created:
        return
    shas = [photo.sha256 for _, photo in created]
    try:
        kept = set(scalars(sa.select(Attachment.sha256).where(Attachment.sha256.in_(shas))))
    except Exception:  # noqa: BLE001 — without the database, keep the files rather than guess
        log.warning("could not check %d photo(s) after a rollback; kept", len(created))
        return
    for path, photo in created:
        if photo.sha256 not in kept:
            _remove(path)
