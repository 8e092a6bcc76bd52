"""Photos and their rows live or die together (issue 12 §10: on a full disk the probe got
Werkzeug's English 500, lost the typed form, and found an orphan photo and a partial .tmp).

A unit handler finishes a ticket with a photo through the ticket page while the attachment
store cannot take it: a disk that fills up mid-write, a read-only store, a store that is not
a directory (``ATTACHMENT_STORE = "files"``), a database that refuses the bytes (the
default store). Each time the page answers in Chinese with the result text kept, the ticket
is not finished, no row and no file, blob (nor a temporary file) stays behind; once the store
works again the same form succeeds.
"""

import errno
import hashlib
import io
import os
import struct
import subprocess
import zlib

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from hotline import attachments
from hotline import db as database
from hotline.db import get_session
from hotline.enums import TicketStatus
from hotline.errors import Conflict
from hotline.models import Attachment, Blob, Category, Unit, User
from server import cli_attachments

RESULT = "已更换路灯灯头，现场恢复照明 <i>完毕</i>"


def photo_bytes(size=0):
    """A valid PNG of about ``size`` bytes (padding after its end)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    image = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    return image + os.urandom(max(0, size - len(image)))


@pytest.fixture
def signed(db, user, make_ticket):
    """A streetlight ticket without a phone, dispatched to 东关街道 and signed (finishable)."""
    ticket = make_ticket(user("operator"), requester_phone=None, area="370705001")
    street = db.scalars(sa.select(Unit).where(Unit.code == "U-S-370705001")).one()
    light = db.scalars(sa.select(Category).where(Category.code == "010103")).one()
    ops.dispatch(db, user("dispatcher"), ticket, lead=street, category=light)
    ops.sign(db, user("dongguan"), ticket)
    db.flush()
    return ticket


@pytest.fixture
def store(app, monkeypatch):
    """Keep photos in files under ``path`` for the test: ``store(path)``."""

    def use(path):
        monkeypatch.setitem(app.config, "ATTACHMENT_STORE", "files")
        monkeypatch.setitem(app.config, "ATTACHMENT_DIR", str(path))
        return path

    return use


@pytest.fixture
def finish(form_token):
    """``finish(client, ticket, photo)``: the ticket page's 办结 form, with one photo."""

    def post(client, ticket, photo, filename="现场.png"):
        token = form_token(client, f"/tickets/{ticket.number}")
        return client.post(
            f"/tickets/{ticket.number}/finish",
            data={
                "csrf_token": token,
                "version": str(ticket.version),
                "result": RESULT,
                "photos": (io.BytesIO(photo), filename),
            },
            content_type="multipart/form-data",
        )

    return post


def assert_refused_and_nothing_left(response, db, ticket, directory):
    assert response.status_code == 503, response.status_code
    html = response.get_data(as_text=True)
    assert "照片保存失败" in html and "本次操作未生效" in html
    assert "已更换路灯灯头" in html and "&lt;i&gt;完毕&lt;/i&gt;" in html  # the text is kept
    db.expire_all()
    assert ticket.status == TicketStatus.signed
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0
    left = [os.path.join(d, f) for d, _, files in os.walk(directory) for f in files]
    assert left == [], left


def test_a_disk_that_fills_up_mid_write_leaves_nothing(
    client, db, signed, store, finish, web_login, tmp_path, monkeypatch
):
    directory = store(tmp_path / "attachments")
    real_write = os.write

    class FullDisk(io.FileIO):
        """The first few KB are written, then the disk is full (a partial temporary file)."""

        def write(self, data):
            real_write(self.fileno(), bytes(data[:4096]))
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(attachments, "open", lambda path, mode: FullDisk(path, "w"), raising=False)
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes(50_000))
    assert_refused_and_nothing_left(response, db, signed, directory)

    monkeypatch.undo()
    store(directory)
    again = finish(client, signed, photo_bytes(50_000))
    assert again.status_code == 302, again.get_data(as_text=True)
    db.expire_all()
    assert signed.status == TicketStatus.finished
    row = db.scalars(sa.select(Attachment)).one()
    assert os.path.isfile(attachments.path_of(str(directory), row.sha256))


def test_a_store_that_is_not_a_directory(client, db, signed, store, finish, web_login, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    store(blocker / "attachments")
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes())
    assert_refused_and_nothing_left(response, db, signed, tmp_path / "nothing-here")
    assert sorted(os.listdir(tmp_path)) == ["not-a-directory"]


def test_a_change_refused_after_its_photo_was_written_removes_the_photo(
    client, db, signed, store, finish, web_login, tmp_path, monkeypatch
):
    """The photo is written before the commit; when the change then fails (here: refused
    right after storing, as a lost race at commit would be), the file it created goes with
    the rolled-back row."""
    directory = store(tmp_path / "attachments")
    real_store = attachments.store
    written = []

    def store_then_fail(session, *args, **kwargs):
        rows = real_store(session, *args, **kwargs)
        written.extend(attachments.path_of(str(directory), row.sha256) for row in rows)
        assert all(os.path.isfile(path) for path in written)
        raise Conflict("工单已被他人同时处理，本次操作未生效，请刷新后重试", code="SIMULATED")

    monkeypatch.setattr(ops.attachments, "store", store_then_fail)
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes())
    assert response.status_code == 409
    assert "已更换路灯灯头" in response.get_data(as_text=True)
    assert written and not any(os.path.exists(path) for path in written)
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0


# -- a real small disk (tmpfs), when this machine lets the tests mount one -------------------


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory, leave):
    """Fill the file system of ``directory`` until about ``leave`` bytes are free."""
    with open(directory / "filler", "wb") as f:
        while True:
            free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
            if free <= leave:
                return
            try:
                f.write(b"\0" * min(4096, free - leave))
                f.flush()
            except OSError:
                return


@pytest.mark.slow
def test_a_real_full_disk(client, db, signed, store, finish, web_login, small_disk):
    directory = store(small_disk / "attachments")
    directory.mkdir()
    fill(small_disk, leave=8 * 1024)
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes(100_000))
    os.remove(small_disk / "filler")
    assert_refused_and_nothing_left(response, db, signed, directory)


@pytest.mark.slow
def test_a_real_read_only_disk(client, db, signed, store, finish, web_login, small_disk):
    directory = store(small_disk / "attachments")
    directory.mkdir()
    remount = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    if remount.returncode != 0:
        pytest.skip("cannot remount read-only here")
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes())
    assert_refused_and_nothing_left(response, db, signed, directory)


# -- the database store (the default) -----------------------------------------------------


def count(db, model):
    return db.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def refusing_database(db):
    """The database refuses new blobs as a full disk would, until ``allow()``."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(
            sa.text(
                "CREATE FUNCTION refuse_blob() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$"
            )
        )
        db.execute(
            sa.text(
                "CREATE TRIGGER refuse_blob BEFORE INSERT ON blobs "
                "FOR EACH ROW EXECUTE FUNCTION refuse_blob()"
            )
        )
        drop = "DROP TRIGGER refuse_blob ON blobs"
    else:
        db.execute(
            sa.text(
                "CREATE TRIGGER refuse_blob BEFORE INSERT ON blobs "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        )
        drop = "DROP TRIGGER refuse_blob"
    return lambda: db.execute(sa.text(drop))


def test_the_database_keeps_the_photo_with_its_row_and_serves_it(
    client, db, signed, finish, web_login
):
    blobs_before = count(db, Blob)
    web_login(client, "dongguan")
    data = photo_bytes(20_000)
    response = finish(client, signed, data)
    assert response.status_code == 302, response.get_data(as_text=True)
    row = db.scalars(sa.select(Attachment)).one()
    assert db.get(Blob, row.sha256).data == data
    assert count(db, Blob) == blobs_before + 1
    download = client.get(f"/attachments/{row.id}")
    assert download.status_code == 200
    assert download.data == data and download.mimetype == "image/png"
    assert download.headers["ETag"] == f'"{row.sha256}"'
    assert (
        client.get(f"/attachments/{row.id}", headers={"If-None-Match": row.sha256}).status_code
        == 304
    )


def test_the_same_photo_twice_is_stored_once(app, db, signed):
    session = get_session()
    ticket = session.get(type(signed), signed.id)
    same = photo(photo_bytes(3000))
    blobs_before = count(session, Blob)
    attachments.store(session, _worker(session), ticket, [same], purpose="result")
    attachments.store(session, _worker(session), ticket, [same], purpose="site")
    assert count(session, Attachment) == 2
    assert count(session, Blob) == blobs_before + 1


def test_a_database_that_refuses_the_photo_leaves_nothing(
    client, db, signed, finish, web_login, refusing_database, tmp_path
):
    blobs_before = count(db, Blob)
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes(50_000))
    assert_refused_and_nothing_left(response, db, signed, tmp_path)
    assert count(db, Blob) == blobs_before

    refusing_database()
    again = finish(client, signed, photo_bytes(50_000))
    assert again.status_code == 302, again.get_data(as_text=True)
    db.expire_all()
    assert signed.status == TicketStatus.finished
    assert count(db, Blob) == blobs_before + 1


def test_photos_kept_in_files_before_are_served_then_imported_once(
    app, client, db, signed, store, finish, web_login, tmp_path, monkeypatch
):
    """A database whose photos an older release kept under ATTACHMENT_DIR: they are served
    from there, ``hotline attachments import-files`` copies them in (a second run copies
    nothing), and then the folder may go."""
    directory = store(tmp_path / "attachments")
    web_login(client, "dongguan")
    data = photo_bytes(10_000)
    assert finish(client, signed, data).status_code == 302
    row = db.scalars(sa.select(Attachment)).one()
    assert db.get(Blob, row.sha256) is None
    monkeypatch.setitem(app.config, "ATTACHMENT_STORE", "database")
    assert client.get(f"/attachments/{row.id}").data == data

    runner = app.test_cli_runner()
    first = runner.invoke(cli_attachments.group, ["import-files"])
    assert first.exit_code == 0, first.output
    assert "已导入 1 张照片" in first.output
    assert db.get(Blob, row.sha256).data == data
    second = runner.invoke(cli_attachments.group, ["import-files", "--dir", str(directory)])
    assert second.exit_code == 0 and "已导入 0 张照片，1 张已在数据库中" in second.output

    os.remove(attachments.path_of(str(directory), row.sha256))
    assert client.get(f"/attachments/{row.id}").data == data


def test_import_reports_missing_and_damaged_files(app, db, signed, store, tmp_path):
    directory = store(tmp_path / "attachments")
    session = get_session()
    ticket = session.get(type(signed), signed.id)
    worker = _worker(session)
    kept, lost = photo(photo_bytes(100)), photo(photo_bytes(200))
    attachments.store(session, worker, ticket, [kept, lost], purpose="result")
    session.commit()
    os.remove(attachments.path_of(str(directory), lost.sha256))
    with open(attachments.path_of(str(directory), kept.sha256), "wb") as f:
        f.write(b"not the photo")
    result = app.test_cli_runner().invoke(cli_attachments.group, ["import-files"])
    assert result.exit_code == 1
    assert "1 张在" in result.output and "1 张文件内容与其名称不符" in result.output
    assert db.get(Blob, kept.sha256) is None and db.get(Blob, lost.sha256) is None


def test_an_unknown_store_stops_the_start(app):
    from server.app import create_app

    with pytest.raises(ValueError, match="ATTACHMENT_STORE"):
        create_app({**app.config, "ATTACHMENT_STORE": "s3"})


# -- the bookkeeping itself ---------------------------------------------------------------


def photo(data):
    return attachments.Photo("现场.png", "image/png", data, hashlib.sha256(data).hexdigest())


def test_a_failed_flush_then_the_rollback_removes_the_photo(app, db, signed, store, tmp_path):
    """A flush that fails (here a row the database refuses) rolls the session back twice:
    first inactive, then by the caller; the file goes at the second."""
    directory = store(tmp_path / "attachments")
    session = get_session()
    ticket = session.get(type(signed), signed.id)
    (row,) = attachments.store(
        session, _worker(session), ticket, [photo(photo_bytes())], purpose="result"
    )
    path = attachments.path_of(str(directory), row.sha256)
    assert os.path.isfile(path)
    session.add(Attachment(ticket_id=ticket.id, purpose="result"))  # missing columns
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    assert os.path.isfile(path)  # the transaction is not over yet
    session.rollback()
    assert not os.path.exists(path)


def test_a_request_that_ends_without_a_rollback_removes_the_photo(app, db, signed, store, tmp_path):
    """An error the page does not catch: the request's session is closed at teardown, which
    rolls it back first, so the photo of its uncommitted row goes too."""
    directory = store(tmp_path / "attachments")
    session = get_session()
    ticket = session.get(type(signed), signed.id)
    (row,) = attachments.store(
        session, _worker(session), ticket, [photo(photo_bytes())], purpose="result"
    )
    path = attachments.path_of(str(directory), row.sha256)
    assert os.path.isfile(path)
    database._close_session(None)
    assert not os.path.exists(path)


def test_a_file_name_keeps_no_control_characters(client, db, signed, finish, web_login):
    web_login(client, "dongguan")
    response = finish(client, signed, photo_bytes(), filename="现\x00场\x1b.png")
    assert response.status_code == 302, response.get_data(as_text=True)
    row = db.scalars(sa.select(Attachment)).one()
    assert row.filename == "现场.png"


def _worker(session):
    return session.scalars(sa.select(User).where(User.username == "dongguan")).one()
