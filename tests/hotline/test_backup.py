"""``hotline backup`` / ``hotline restore`` (hotline/backup.py): a round trip of a small
history with photos on the suite's database kind (SQLite, or PostgreSQL with pg_dump and
pg_restore), and every refusal before anything is touched."""

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from dispatch import operations
from hotline import backup, migrate
from hotline.enums import Channel, RequestType, Urgency
from hotline.models import AuditLog, Blob, ModelVersion, User
from server.app import create_app
from server.cli import main
from tests.dispatch.common import photo
from tests.helpers import BASE_POSTGRES_URL, POSTGRES_URL

PHOTOS = 4


def _database(tmp_path, name):
    """A URL of an empty database of its own: a file, or a PostgreSQL database beside the
    suite's."""
    if not POSTGRES_URL:
        return f"sqlite:///{tmp_path / f'{name}.sqlite'}"
    base = make_url(POSTGRES_URL)
    url = base.set(database=f"{base.database}_{name}")
    admin = sa.create_engine(
        make_url(BASE_POSTGRES_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


def _config(url, root):
    return {
        "DATABASE_URL": url,
        # The files store: the photos go into the backup's attachments.tar (with the default
        # database store they are blobs in the dump, which the round trip compares too).
        "ATTACHMENT_STORE": "files",
        "ATTACHMENT_DIR": str(root / "attachments"),
        "CLASSIFIER_MODELS_DIR": str(root / "models"),
    }


def hotline(config, *args):
    """Run the ``hotline`` command with ``config`` as its environment."""
    env = {f"HOTLINE_{k}": v for k, v in config.items()}
    env.update(HOTLINE_SECRET_KEY="backup-test", HOTLINE_CLASSIFIER_PRELOAD="false")
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture(scope="module")
def source(tmp_path_factory, models_dir):
    """A database with 3 days of history made by ``hotline seed --history-days 3``, tickets
    with photos received through the operation, and a blob and model version kept in the
    database."""
    root = tmp_path_factory.mktemp("source")
    config = _config(_database(root, "bk_source"), root)
    shutil.copytree(models_dir, config["CLASSIFIER_MODELS_DIR"])
    assert hotline(config, "db", "upgrade").exit_code == 0
    seeded = hotline(config, "seed", "--history-days", "3")
    assert seeded.exit_code == 0, seeded.output
    app = create_app({**config, "SECRET_KEY": "x", "CLASSIFIER_PRELOAD": False})
    with app.app_context():
        factory = app.extensions["hotline.db"]
        with factory(info={"publisher": None, "notifier": None}) as session:
            operator = session.scalars(sa.select(User).where(User.username == "operator")).one()
            for n in range(PHOTOS // 2):
                operations.receive(
                    session,
                    operator,
                    channel=Channel.phone,
                    request_type=RequestType.complaint,
                    urgency=Urgency.normal,
                    content=f"市民来电反映第{n}处路灯不亮，附现场照片。",
                    address="奎文区东关街道胜利东街100号",
                    suggestion=None,
                    photos=[photo(f"{n}a.png", b"a%d" % n), photo(f"{n}b.png", b"b%d" % n)],
                )
            data = b"model bytes"
            sha = hashlib.sha256(data).hexdigest()
            session.add(Blob(sha256=sha, size=len(data), data=data))
            session.flush()
            session.add(ModelVersion(version="v-backup-test", sha256=sha, meta={"n": 1}))
            session.commit()
    app.extensions["hotline.db"].kw["bind"].dispose()
    return config


def fingerprint(config):
    """What must survive a round trip: counts and hashes of tickets, events, attachments
    (rows and files) and blobs, computed independently of the manifest."""
    engine = sa.create_engine(config["DATABASE_URL"])

    def digest(sql):
        rows = conn.execute(sa.text(sql)).all()
        text = "\n".join("|".join(str(v) for v in row) for row in rows)
        return len(rows), hashlib.sha256(text.encode()).hexdigest()

    with engine.connect() as conn:
        found = {
            "tickets": digest(
                "SELECT id, number, status, version, content, requester_phone FROM tickets "
                "ORDER BY id"
            ),
            "events": digest(
                "SELECT id, ticket_id, action, from_status, to_status FROM ticket_events "
                "ORDER BY id"
            ),
            "attachments": digest(
                "SELECT id, ticket_id, event_id, sha256, size FROM attachments ORDER BY id"
            ),
            "blobs": digest("SELECT sha256, size FROM blobs ORDER BY sha256"),
            "model_versions": digest("SELECT version, sha256 FROM model_versions ORDER BY 1"),
        }
        shas = conn.execute(sa.text("SELECT sha256 FROM attachments")).scalars().all()
        blob_data = conn.execute(sa.text("SELECT data FROM blobs")).scalars().all()
    engine.dispose()
    root = Path(config["ATTACHMENT_DIR"])
    files = {sha: hashlib.sha256((root / sha[:2] / sha).read_bytes()).hexdigest() for sha in shas}
    assert all(sha == made for sha, made in files.items())  # every row's file, intact
    found["files"] = sorted(files)
    found["blob_bytes"] = sorted(hashlib.sha256(bytes(d)).hexdigest() for d in blob_data)
    return found


def audit_actions(config):
    engine = sa.create_engine(config["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(AuditLog.action, AuditLog.payload)).all()
    engine.dispose()
    return [(a, p) for a, p in rows if a.startswith("backup.")]


def revision(config):
    engine = sa.create_engine(config["DATABASE_URL"])
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return found


@pytest.fixture(scope="module")
def made(source, tmp_path_factory):
    """A backup of ``source`` made by ``hotline backup DIRECTORY``."""
    directory = tmp_path_factory.mktemp("backups")
    result = hotline(source, "backup", str(directory))
    assert result.exit_code == 0, result.output
    (path,) = directory.glob("hotline-backup-*.tar")
    return path


@pytest.fixture
def target(tmp_path):
    return _config(_database(tmp_path, "bk_target"), tmp_path)


def test_round_trip_keeps_tickets_events_attachments_and_blobs(source, made, target):
    before = fingerprint(source)
    assert before["tickets"][0] > 10 and before["events"][0] > before["tickets"][0]
    assert before["attachments"][0] == PHOTOS and before["blobs"][0] == 1

    assert made.stat().st_mode & 0o777 == 0o600  # every citizen's data: the owner's only
    with tarfile.open(made) as tar:
        assert tar.getnames()[0] == "manifest.json"
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["format"] == backup.FORMAT_VERSION
    assert manifest["database"] == ("postgresql" if POSTGRES_URL else "sqlite")
    assert manifest["alembic_revision"] == revision(source)
    assert manifest["counts"] == {
        "tickets": before["tickets"][0],
        "ticket_events": before["events"][0],
        "attachments": PHOTOS,
        "blobs": 1,
        "model_versions": 1,
    }
    kinds = {p["kind"]: p for p in manifest["parts"]}
    assert set(kinds) == {"database", "attachments", "models"}
    assert kinds["attachments"]["files"] == PHOTOS
    (created,) = audit_actions(source)
    assert created[0] == "backup.create" and created[1]["path"] == str(made)

    result = hotline(target, "restore", str(made))
    assert result.exit_code == 0, result.output
    assert "核对一致" in result.output

    after = fingerprint(target)
    assert after == before
    active = Path(source["CLASSIFIER_MODELS_DIR"], "ACTIVE").read_text()
    assert Path(target["CLASSIFIER_MODELS_DIR"], "ACTIVE").read_text() == active
    # The backup is audited in the source after the dump (so not in it), the restore in the
    # restored database.
    assert [a for a, _ in audit_actions(target)] == ["backup.restore"]


def test_a_non_empty_target_is_refused_unless_forced(source, made, target):
    assert hotline(target, "db", "upgrade").exit_code == 0
    assert hotline(target, "seed").exit_code == 0

    refused = hotline(target, "restore", str(made))
    assert refused.exit_code == 1
    assert "目标数据库不为空" in refused.output and "--force" in refused.output
    assert "工单 0" in refused.output and "用户 " in refused.output
    assert fingerprint(target)["tickets"][0] == 0

    forced = hotline(target, "restore", "--force", str(made))
    assert forced.exit_code == 0, forced.output
    assert "已覆盖原有内容" in forced.output
    assert fingerprint(target) == fingerprint(source)


def _rewrite(path, out, change):
    """A copy of the backup at ``path`` with ``change(name, bytes)`` applied to its members."""
    with tarfile.open(path) as tar, tarfile.open(out, "w") as copy:
        for member in tar.getmembers():
            data = change(member.name, tar.extractfile(member).read())
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))
    return out


@pytest.mark.parametrize("part", ["database", "attachments.tar"])
def test_a_corrupted_part_is_refused_before_anything_is_touched(
    source, made, target, tmp_path, part
):
    assert hotline(target, "db", "upgrade").exit_code == 0
    assert hotline(target, "seed").exit_code == 0
    untouched = fingerprint(target)

    def flip(name, data):
        if name.startswith(part):
            middle = len(data) // 2
            return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        return data

    broken = _rewrite(made, tmp_path / "broken.tar", flip)
    refused = hotline(target, "restore", "--force", str(broken))
    assert refused.exit_code == 1
    assert "校验失败" in refused.output and "未做任何改动" in refused.output
    assert part.split(".")[0] in refused.output
    assert fingerprint(target) == untouched
    assert audit_actions(target) == []
    assert not list(Path(target["ATTACHMENT_DIR"]).glob("**/*.png"))


def test_a_truncated_or_foreign_file_is_refused(made, target, tmp_path):
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(made.read_bytes()[:5000])
    refused = hotline(target, "restore", str(truncated))
    assert refused.exit_code == 1 and "备份" in refused.output

    foreign = tmp_path / "foreign.tar"
    with tarfile.open(foreign, "w") as tar:
        tar.add(__file__, arcname="notes.py")
    refused = hotline(target, "restore", str(foreign))
    assert refused.exit_code == 1 and "缺少 manifest.json" in refused.output


def test_counts_that_differ_from_the_manifest_roll_the_restore_back(made, target, tmp_path):
    """A manifest that promises one ticket more than the dump holds: the restore is checked
    against it and leaves the target as it was (PostgreSQL: rolled back in its transaction;
    SQLite: the copy is checked before it is written)."""
    assert hotline(target, "db", "upgrade").exit_code == 0
    assert hotline(target, "seed").exit_code == 0
    untouched = fingerprint(target)

    def inflate(name, data):
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["counts"]["tickets"] += 1
            return json.dumps(manifest).encode()
        return data

    lying = _rewrite(made, tmp_path / "lying.tar", inflate)
    refused = hotline(target, "restore", "--force", str(lying))
    assert refused.exit_code == 1
    assert "tickets" in refused.output and ("回滚" in refused.output or "清单" in refused.output)
    assert fingerprint(target) == untouched
    assert audit_actions(target) == []


def test_an_older_backup_is_migrated_after_the_restore(tmp_path, target):
    old = _config(_database(tmp_path, "bk_old"), tmp_path / "old")
    migrate.upgrade(old["DATABASE_URL"], "0014")
    path = tmp_path / "old.tar"
    assert hotline(old, "backup", str(path)).exit_code == 0
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["alembic_revision"] == "0014"
    assert manifest["counts"]["blobs"] is None  # no such table before 0015

    result = hotline(target, "restore", str(path))
    assert result.exit_code == 0, result.output
    head = ScriptDirectory.from_config(
        migrate.alembic_config(target["DATABASE_URL"])
    ).get_current_head()
    assert f"从 0014 升级到 {head}" in result.output
    assert revision(target) == head
    (restored,) = audit_actions(target)
    assert restored[1]["upgraded_to"] == head


def test_a_backup_from_a_newer_version_is_refused(made, target, tmp_path):
    def newer(name, data):
        if name == "manifest.json":
            return json.dumps({**json.loads(data), "alembic_revision": "9999"}).encode()
        return data

    refused = hotline(target, "restore", str(_rewrite(made, tmp_path / "newer.tar", newer)))
    assert refused.exit_code == 1 and "请先升级程序" in refused.output


def test_backup_refuses_an_existing_file_and_a_missing_folder(source, made, tmp_path):
    assert "不会覆盖" in hotline(source, "backup", str(made)).output
    assert "备份目录不存在" in hotline(source, "backup", str(tmp_path / "no" / "x.tar")).output
    assert ".tar" in hotline(source, "backup", str(tmp_path / "x.zip")).output
