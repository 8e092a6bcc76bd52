"""Backup and restore (备份与恢复): ``hotline backup`` and ``hotline restore``.

A backup is **one tar file** (``hotline-backup-20261205T150000Z.tar``), easy to copy off the
host and to check as a whole. It holds, in this order:

=====================  ==================================================================
``manifest.json``      format version, created_at, app version, alembic revision, database
                       kind, every part's file name, size and SHA-256, and the counts:
                       tickets, ticket events, attachments, blobs, model versions, and a
                       digest over every attachment's ``id sha256`` (ordered by id)
``database.dump``      PostgreSQL: ``pg_dump --format=custom`` of the snapshot the counts
                       were read in (``pg_export_snapshot``), a consistent copy while the
                       application runs
``database.sqlite``    SQLite: a copy made with SQLite's online backup API, also consistent
``attachments.tar``    the files under ``ATTACHMENT_DIR`` (only when it has any: the files
                       store, or a database from before photos moved into ``blobs``),
                       copied *after* the dump, so every row in the dump has its file
``models.tar``         ``CLASSIFIER_MODELS_DIR``'s versions and ``ACTIVE`` (when present)
=====================  ==================================================================

Photos and model versions kept in the database (``blobs``, ``model_versions``) are in the
dump itself.

A restore checks, **before it touches anything**: the manifest, every part's size and
SHA-256, that the database kind matches the target's, that this program knows the backup's
migration (a backup from a newer version is refused) and that the target database is empty —
or, with ``force``, says exactly what it overwrites (its migration, tickets, events,
attachments, users). Then the database is replaced all-or-nothing:

- PostgreSQL: ``DROP SCHEMA public CASCADE``, the dump (``pg_restore`` to SQL, fed to ``psql``)
  and a check of the counts and the attachment digest against the manifest run in **one
  transaction**; anything wrong rolls it all back and the target is as it was.
- SQLite: the copy is checked (``PRAGMA integrity_check``, counts, digest) first, then
  written over the target with the backup API in one step.

Attachment and model files are unpacked beside their folders first and moved in only after
the database is restored (they are named by content, so files already there stay). Last, the
database is migrated to this program's newest revision when the backup is older, and the
restore is audited in the restored database (the backup in the backed-up one).
"""

import datetime as dt
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from hotline import migrate
from hotline.db import make_engine, utcnow
from hotline.errors import HotlineError
from hotline.models import AuditLog

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_PARTS = {"postgresql": "database.dump", "sqlite": "database.sqlite"}
ATTACHMENTS_PART = "attachments.tar"
MODELS_PART = "models.tar"
#: The counts a manifest holds, by table (a table missing in an old database counts None).
COUNTED_TABLES = {
    "tickets": "tickets",
    "ticket_events": "ticket_events",
    "attachments": "attachments",
    "blobs": "blobs",
    "model_versions": "model_versions",
}
#: What a non-empty target is described by, with the Chinese names people read.
TARGET_TABLES = {
    "tickets": "工单",
    "ticket_events": "工单事件",
    "attachments": "附件",
    "users": "用户",
}
_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class BackupFailed(HotlineError):
    """A backup or restore that could not be done; the message says what and what was left."""

    status = 500
    code = "BACKUP_FAILED"


class RestoreRefused(HotlineError):
    """A restore refused before anything was touched."""

    status = 409
    code = "RESTORE_REFUSED"


@dataclass
class Result:
    path: Path
    manifest: dict
    lines: list = field(default_factory=list)


# --- backup -------------------------------------------------------------------------------


def create(config, destination):
    """Write a backup of the configured database, attachments and models to ``destination``
    (an existing directory: a file named by the time is made in it; else the file's path,
    ending in ``.tar``). Returns a ``Result``; the backup is audited."""
    url = config["DATABASE_URL"]
    kind = database_kind(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    target = Path(destination)
    if target.is_dir():
        target = target / f"hotline-backup-{now:%Y%m%dT%H%M%SZ}.tar"
    elif target.suffix != ".tar":
        raise BackupFailed(f"备份文件名须以 .tar 结尾，或指定一个已存在的目录：{destination}")
    if target.exists():
        raise BackupFailed(f"备份文件已存在，不会覆盖：{target}")
    if not target.parent.is_dir():
        raise BackupFailed(f"备份目录不存在：{target.parent}")

    try:
        manifest, parts, damaged = _write(config, url, kind, now, target)
    except OSError as error:
        # Disk full, a folder not readable: nothing is left behind but the message.
        raise BackupFailed(
            f"备份失败，未生成备份文件：{error.strerror or error}"
            + (f"（{error.filename}）" if error.filename else "")
        ) from None

    size, digest = _hash_file(target)
    _audit(
        url,
        "backup.create",
        target=target.name,
        payload={
            "path": str(target.resolve()),
            "size": size,
            "sha256": digest,
            "alembic_revision": manifest["alembic_revision"],
            "counts": manifest["counts"],
        },
    )
    lines = [
        f"已备份到 {target}（{_size_text(size)}，SHA-256 {digest}）",
        f"数据库 {kind}，迁移版本 {manifest['alembic_revision']}；" + _counts_text(manifest),
    ]
    for part in parts:
        files = f"，{part['files']} 个文件" if "files" in part else ""
        lines.append(f"  {part['name']}\t{_size_text(part['size'])}{files}\t{part['sha256']}")
    for path in damaged:
        lines.append(f"警告：附件文件内容与其名称（SHA-256）不符，已损坏，未备份：{path}")
    return Result(target, manifest, lines)


def _write(config, url, kind, now, target):
    """The parts in a temporary folder beside ``target``, then the tar (under a temporary
    name, renamed when complete); returns (manifest, parts, damaged attachment files)."""
    with tempfile.TemporaryDirectory(prefix=".hotline-backup-", dir=target.parent) as work:
        work = Path(work)
        parts = []
        database_part = work / DATABASE_PARTS[kind]
        if kind == "postgresql":
            state, tool_versions = _dump_postgres(url, database_part)
        else:
            state, tool_versions = _copy_sqlite(url, database_part), {}
        parts.append(_part(database_part, "database"))
        # After the dump: every attachment row in it already has its file.
        files, damaged = _pack_attachments(config["ATTACHMENT_DIR"], work / ATTACHMENTS_PART)
        if files:
            parts.append(_part(work / ATTACHMENTS_PART, "attachments", files=files))
        versions = _pack_models(config["CLASSIFIER_MODELS_DIR"], work / MODELS_PART)
        if versions is not None:
            parts.append(_part(work / MODELS_PART, "models", files=versions))
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": now.isoformat(),
            "app_version": app_version(),
            "alembic_revision": state["revision"],
            "database": kind,
            "host": socket.gethostname(),
            "tools": tool_versions,
            "parts": parts,
            "counts": state["counts"],
            "attachments_digest": state["attachments_digest"],
            "damaged_files": damaged,
        }
        partial = target.with_name(f".{target.name}.partial")
        try:
            # Readable by its owner only, whatever the umask: it holds every citizen's data.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with (
                os.fdopen(fd, "wb") as out,
                tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
                tar.addfile(info, io.BytesIO(data))
                for part in parts:
                    tar.add(work / part["name"], arcname=part["name"], recursive=False)
            with open(partial, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return manifest, parts, damaged


def _dump_postgres(url, path):
    """``pg_dump`` of one snapshot, whose counts are read in the same snapshot."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            server_major = _server_major(conn)
        pg_dump = find_tool("pg_dump", server_major)
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            state = read_state(conn)
            # The transaction stays open (and so the snapshot exported) while pg_dump runs.
            _run(
                [pg_dump.path, "--format=custom", f"--snapshot={snapshot}", "--file", str(path)],
                url,
                "pg_dump",
            )
            conn.rollback()
    except sa.exc.OperationalError as error:
        raise BackupFailed(f"无法连接数据库：{_first_line(error)}") from None
    finally:
        engine.dispose()
    return state, {"pg_dump": pg_dump.version, "server_major": server_major}


def _copy_sqlite(url, path):
    source_path = _sqlite_path(url)
    if not os.path.exists(source_path):
        raise BackupFailed(f"数据库文件不存在：{source_path}")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    copy = sqlite3.connect(path)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return _state_of(f"sqlite:///{path}")


def read_state(conn):
    """The alembic revision, the counts and the attachment digest, as a manifest holds them."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" not in tables:
        raise BackupFailed("数据库还没有建表（未运行 hotline db upgrade），没有可备份的内容")
    revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    counts = {
        name: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        if table in tables
        else None
        for name, table in COUNTED_TABLES.items()
    }
    digest = hashlib.sha256()
    rows = conn.exec_driver_sql("SELECT id, sha256 FROM attachments ORDER BY id")
    for row_id, sha in rows:
        digest.update(f"{row_id} {sha}\n".encode())
    return {"revision": revision, "counts": counts, "attachments_digest": digest.hexdigest()}


def _pack_attachments(directory, path):
    """The attachment files (``ab/abcd…``, named by their SHA-256) into ``path``; returns how
    many (0: none, and no part) and the files left out because their bytes no longer match
    their name (damaged in the store: a restore would refuse them)."""
    root = Path(directory)
    if not root.is_dir():
        return 0, []
    count = 0
    damaged = []
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for sub in sorted(root.iterdir()):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for file in sorted(sub.iterdir()):
                # Temporary files of an upload in progress are left out.
                if not (file.is_file() and _SHA256_NAME.match(file.name)):
                    continue
                if file.name[:2] != sub.name or _hash_file(file)[1] != file.name:
                    damaged.append(str(file))  # its bytes are not the photo it names
                    continue
                tar.add(file, arcname=f"{sub.name}/{file.name}", recursive=False)
                count += 1
    if not count:
        path.unlink()
    return count, damaged


def _pack_models(directory, path):
    """The model versions (``<version>/model.joblib`` and ``meta.json``) and ``ACTIVE`` into
    ``path``; returns how many versions (None: no folder or nothing in it, and no part)."""
    root = Path(directory)
    if not root.is_dir():
        return None
    versions = sorted(
        d.name for d in root.iterdir() if d.is_dir() and (d / "model.joblib").is_file()
    )
    active = root / "ACTIVE"
    if not versions and not active.is_file():
        return None
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for version in versions:
            for name in ("model.joblib", "meta.json"):
                file = root / version / name
                if file.is_file():
                    tar.add(file, arcname=f"{version}/{name}", recursive=False)
        if active.is_file():
            tar.add(active, arcname="ACTIVE", recursive=False)
    return len(versions)


def _part(path, kind, **extra):
    size, digest = _hash_file(path)
    return {"name": path.name, "kind": kind, "size": size, "sha256": digest, **extra}


# --- restore ------------------------------------------------------------------------------


def read_backup(path, work):
    """Open the backup at ``path``, unpack it into ``work`` and check everything a restore
    relies on; returns the manifest. Raises ``RestoreRefused`` naming the first problem."""
    path = Path(path)
    if not path.is_file():
        raise RestoreRefused(f"备份文件不存在：{path}")
    try:
        with tarfile.open(path, "r:") as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            if MANIFEST not in names:
                raise RestoreRefused(f"{path.name} 不是热线系统的备份：缺少 {MANIFEST}")
            manifest = _parse_manifest(tar.extractfile(MANIFEST).read(), path.name)
            expected = {p["name"] for p in manifest["parts"]} | {MANIFEST}
            unexpected = sorted(set(names) - expected)
            if unexpected or len(names) != len(set(names)):
                raise RestoreRefused(
                    f"备份包含清单之外的内容：{'、'.join(unexpected) or '重复文件'}"
                )
            missing = sorted(expected - set(names))
            if missing:
                raise RestoreRefused(f"备份不完整，缺少：{'、'.join(missing)}")
            tar.extractall(work, filter="data")
    except (tarfile.TarError, EOFError) as error:
        raise RestoreRefused(f"备份文件已损坏，无法读取：{path.name}（{error}）") from None
    except OSError as error:
        raise RestoreRefused(
            f"无法解开备份到临时目录 {work}：{error.strerror or error}"
            "（可用 TMPDIR 指定有足够空间的目录）"
        ) from None
    for part in manifest["parts"]:
        size, digest = _hash_file(Path(work) / part["name"])
        if size != part["size"] or digest != part["sha256"]:
            raise RestoreRefused(
                f"备份文件 {part['name']} 校验失败（清单：{part['size']} 字节，SHA-256 "
                f"{part['sha256'][:12]}…；实际：{size} 字节，{digest[:12]}…），"
                "备份已损坏，未做任何改动",
                details={"part": part["name"]},
            )
    return manifest


def _parse_manifest(data, name):
    try:
        manifest = json.loads(data)
    except ValueError:
        raise RestoreRefused(f"{name} 的清单 {MANIFEST} 无法解析") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise RestoreRefused(f"不支持的备份格式版本 {found!r}（本程序读取第 {FORMAT_VERSION} 版）")
    needed = ("alembic_revision", "database", "parts", "counts", "attachments_digest")
    if any(k not in manifest for k in needed) or manifest["database"] not in DATABASE_PARTS:
        raise RestoreRefused(f"{name} 的清单不完整")
    for part in manifest["parts"]:
        name_ = part.get("name", "")
        if "/" in name_ or name_.startswith(".") or not isinstance(part.get("size"), int):
            raise RestoreRefused(f"清单中的文件名或大小不合法：{name_!r}")
    return manifest


def restore(config, path, *, force=False):
    """Restore the backup at ``path`` into the configured database, attachment and model
    folders (see the module's docstring for the order and the checks). Returns a
    ``Result``; raises ``RestoreRefused`` (nothing touched) or ``BackupFailed``."""
    url = config["DATABASE_URL"]
    kind = database_kind(url)
    path = Path(path)
    attachment_dir = Path(config["ATTACHMENT_DIR"])
    models_dir = Path(config["CLASSIFIER_MODELS_DIR"])
    with tempfile.TemporaryDirectory(prefix=".hotline-restore-") as work:
        work = Path(work)
        manifest = read_backup(path, work)
        if manifest["database"] != kind:
            raise RestoreRefused(
                f"备份来自 {manifest['database']} 数据库，目标是 {kind}：只能恢复到同一种数据库"
            )
        scripts = ScriptDirectory.from_config(migrate.alembic_config(url))
        head = scripts.get_current_head()
        revision = manifest["alembic_revision"]
        try:
            known = scripts.get_revision(revision) is not None
        except Exception:  # noqa: BLE001 — alembic raises several kinds for an unknown id
            known = False
        if not known:
            raise RestoreRefused(
                f"备份的数据库迁移版本 {revision} 是本程序不认识的（本程序最新为 {head}）："
                "备份来自更新的程序版本，请先升级程序再恢复"
            )
        if kind == "sqlite":
            Path(_sqlite_path(url)).parent.mkdir(parents=True, exist_ok=True)
        occupied = describe_target(url)
        if occupied and not force:
            raise RestoreRefused(
                f"目标数据库不为空（{occupied}），恢复会覆盖其全部内容；确认要覆盖时加 --force",
                details={"target": occupied},
            )
        parts = {p["kind"]: p for p in manifest["parts"]}
        staged = []
        try:
            if "attachments" in parts:
                staged.append(_stage(work / ATTACHMENTS_PART, attachment_dir, check_names=True))
            if "models" in parts:
                staged.append(_stage(work / MODELS_PART, models_dir, check_names=False))
            database_part = work / parts["database"]["name"]
            if kind == "postgresql":
                tools = _restore_postgres(url, database_part, manifest)
            else:
                tools = {}
                _restore_sqlite(url, database_part, manifest)
        except BaseException:
            for staging, _ in staged:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        moved = [_move_in(staging, destination) for staging, destination in staged]

    lines = [
        f"已从 {path.name} 恢复（备份于 {manifest['created_at']}，程序版本 "
        f"{manifest.get('app_version')}）到 {kind} 数据库",
        "核对一致：" + _counts_text(manifest),
    ]
    if occupied:
        lines.insert(1, f"已覆盖原有内容：{occupied}")
    for (name, added, kept), label in zip(moved, _staged_labels(parts), strict=True):
        lines.append(f"{label}：放入 {added} 个文件到 {name}（已存在相同的 {kept} 个）")
    if revision != head:
        try:
            migrate.upgrade(url)
        except Exception as error:
            raise BackupFailed(
                f"数据库已恢复到迁移版本 {revision}，但升级到 {head} 失败：{_first_line(error)}；"
                "请查看日志后运行 hotline db upgrade"
            ) from error
        lines.append(f"数据库迁移已从 {revision} 升级到 {head}")
    _audit(
        url,
        "backup.restore",
        target=path.name,
        payload={
            "path": str(path.resolve()),
            "created_at": manifest["created_at"],
            "alembic_revision": revision,
            "upgraded_to": head if revision != head else None,
            "counts": manifest["counts"],
            "overwritten": occupied or None,
            **({"tools": tools} if tools else {}),
        },
    )
    return Result(path, manifest, lines)


def _staged_labels(parts):
    return [
        label for kind, label in (("attachments", "附件"), ("models", "分类模型")) if kind in parts
    ]


def describe_target(url):
    """What the target database holds, for people ("" when it is empty)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if not tables:
                return ""
            said = []
            if "alembic_version" in tables:
                version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                said.append(f"迁移版本 {version}")
            for table, label in TARGET_TABLES.items():
                if table in tables:
                    count = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                    said.append(f"{label} {count}")
            return "，".join(said) + f"，共 {len(tables)} 张表"
    except sa.exc.OperationalError as error:
        raise RestoreRefused(f"无法连接目标数据库：{_first_line(error)}") from None
    finally:
        engine.dispose()


def _stage(part, destination, *, check_names):
    """Unpack ``part`` into a folder beside ``destination`` (same file system, so moving in is
    a rename); attachment files must hash to their names."""
    try:
        destination.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=destination))
    except OSError as error:
        raise RestoreRefused(
            f"无法写入 {destination}：{error.strerror or error}，未做任何改动"
        ) from None
    try:
        with tarfile.open(part, "r:") as tar:
            tar.extractall(staging, filter="data")
        if check_names:
            for file in staging.glob("*/*"):
                if _hash_file(file)[1] != file.name:
                    raise RestoreRefused(f"附件文件 {file.name} 的内容与其校验值不符，备份已损坏")
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise RestoreRefused(
            f"无法写入 {destination}：{error.strerror or error}，未做任何改动"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, destination


def _move_in(staging, destination):
    """Move every staged file into place; files already there are kept (named by content,
    or an immutable model version). ``ACTIVE`` is replaced: the backup's active model."""
    added = kept = 0
    try:
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            relative = file.relative_to(staging)
            target = destination / relative
            if relative.name == "ACTIVE" and len(relative.parts) == 1:
                os.replace(file, target)
                continue
            if target.exists():
                kept += 1
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
            added += 1
    except OSError as error:
        raise BackupFailed(
            f"数据库已恢复，但向 {destination} 放入文件时出错：{error.strerror or error}"
            f"（已放入 {added} 个）；已放入的保留，请修复后再次运行恢复（加 --force）"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(destination), added, kept


def _restore_postgres(url, part, manifest):
    """Replace the target's schema with the dump and check the counts, in one transaction."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            server_major = _server_major(conn)
    except sa.exc.OperationalError as error:
        raise RestoreRefused(f"无法连接目标数据库：{_first_line(error)}") from None
    finally:
        engine.dispose()
    dumped_with = (manifest.get("tools") or {}).get("pg_dump", "")
    pg_restore = find_tool("pg_restore", max(server_major, _major(dumped_with) or 0))
    psql = find_tool("psql", server_major)
    env = _pg_env(url)
    psql_command = [psql.path, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", env.pop("_DSN")]
    restore_command = [pg_restore.path, "--no-owner", "--no-privileges", "--file=-", str(part)]
    # Their messages go to files: a pipe nobody reads could fill and stop both.
    with tempfile.TemporaryFile() as reader_log, tempfile.TemporaryFile() as writer_log:
        reader = subprocess.Popen(
            restore_command, stdout=subprocess.PIPE, stderr=reader_log, env=env
        )
        writer = subprocess.Popen(
            psql_command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=writer_log,
            env=env,
        )
        broken = False
        try:
            writer.stdin.write(_POSTGRES_PROLOGUE)
            shutil.copyfileobj(reader.stdout, writer.stdin, _CHUNK)
        except BrokenPipeError:
            broken = True  # psql stopped at an error: its message says which
            reader.kill()
        reader.wait()
        try:
            # The checks and the COMMIT are sent only when pg_restore gave the whole dump;
            # otherwise psql reaches the end without COMMIT and the transaction rolls back.
            if reader.returncode == 0 and not broken:
                writer.stdin.write(_postgres_checks(manifest).encode() + b"COMMIT;\n")
            writer.stdin.close()
        except BrokenPipeError:
            pass
        writer.wait()
        reader_log.seek(0)
        writer_log.seek(0)
        reader_error = reader_log.read().decode(errors="replace")
        writer_error = writer_log.read().decode(errors="replace")
    if writer.returncode != 0:
        raise BackupFailed(
            f"恢复到 PostgreSQL 失败，事务已回滚，目标数据库未改动：{_tail(writer_error)}"
        )
    if reader.returncode != 0:
        raise BackupFailed(f"pg_restore 读取备份失败，目标数据库未改动：{_tail(reader_error)}")
    _compare(_state_of(url), manifest, "恢复后的数据库", BackupFailed)
    return {"pg_restore": pg_restore.version, "psql": psql.version}


#: Before the dump's SQL, in the restore's transaction: the old schema goes (with every table
#: a newer version may have added), waiting at most 30 s for the application's locks.
_POSTGRES_PROLOGUE = (
    b"SET client_min_messages = warning;\n"
    b"BEGIN;\n"
    b"SET LOCAL lock_timeout = '30s';\n"
    b"DROP SCHEMA IF EXISTS public CASCADE;\n"
    b"CREATE SCHEMA public;\n"
)


def _postgres_checks(manifest):
    """SQL that raises (and so rolls the restore back) unless the restored rows are the ones
    the manifest counted."""
    conditions = []
    for name, table in COUNTED_TABLES.items():
        expected = manifest["counts"].get(name)
        if expected is not None:
            conditions.append(
                f"IF (SELECT count(*) FROM public.{table}) <> {int(expected)} THEN "
                f"RAISE EXCEPTION '恢复后 {name} 为 % 条，清单为 {int(expected)} 条', "
                f"(SELECT count(*) FROM public.{table}); END IF;"
            )
    digest = re.sub(r"[^0-9a-f]", "", manifest["attachments_digest"])
    conditions.append(
        "IF encode(sha256(convert_to(coalesce((SELECT string_agg(id || ' ' || sha256 || "
        "E'\\n', '' ORDER BY id) FROM public.attachments), ''), 'UTF8')), 'hex') "
        f"<> '{digest}' THEN RAISE EXCEPTION '恢复后附件摘要与清单不符'; END IF;"
    )
    return "DO $check$ BEGIN\n" + "\n".join(conditions) + "\nEND $check$;\n"


def _restore_sqlite(url, part, manifest):
    copy = sqlite3.connect(part)
    try:
        problems = copy.execute("PRAGMA integrity_check").fetchall()
        if problems != [("ok",)]:
            raise RestoreRefused(f"备份中的 SQLite 数据库损坏：{problems[0][0]}")
    finally:
        copy.close()
    _compare(_state_of(f"sqlite:///{part}"), manifest, "备份中的数据库", RestoreRefused)
    target_path = _sqlite_path(url)
    Path(target_path).parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        # One step (all pages at once) under the target's write lock: all or nothing.
        source.backup(target)
    except sqlite3.Error as error:
        raise BackupFailed(f"写入 SQLite 数据库 {target_path} 失败，未改动：{error}") from None
    finally:
        target.close()
        source.close()
    _compare(_state_of(url), manifest, f"恢复后的 {target_path}", BackupFailed)


def _state_of(url):
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return read_state(conn)
    finally:
        engine.dispose()


def _compare(state, manifest, where, error):
    differences = [
        f"{name} {state['counts'].get(name)}（清单 {expected}）"
        for name, expected in manifest["counts"].items()
        if state["counts"].get(name) != expected
    ]
    if state["attachments_digest"] != manifest["attachments_digest"]:
        differences.append("附件摘要")
    if differences:
        raise error(f"{where}与备份清单不符：{'，'.join(differences)}")


# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    path: str
    version: str


def find_tool(name, server_major):
    """The PostgreSQL client ``name`` for a server of ``server_major``: Debian's
    ``/usr/lib/postgresql/<major>/bin`` first, else the one on ``PATH``; refused if older
    than the server (pg_dump cannot dump a newer server)."""
    candidates = [f"/usr/lib/postgresql/{server_major}/bin/{name}", shutil.which(name)]
    for path in filter(None, candidates):
        if not os.access(path, os.X_OK):
            continue
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if (_major(version) or 0) >= server_major:
            return Tool(path, version)
    raise BackupFailed(
        f"找不到与 PostgreSQL {server_major} 服务器匹配的 {name}："
        f"请安装 postgresql-client-{server_major}（apt install postgresql-client-{server_major}）"
    )


def _major(version_text):
    found = re.search(r"(\d+)(?:\.\d+)?", version_text or "")
    return int(found.group(1)) if found else None


def _server_major(conn):
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar()) // 10000


def _pg_env(url):
    """libpq's environment for the tools: the password never goes on a command line."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    dsn = parsed.set(drivername="postgresql", password=None)
    env["_DSN"] = dsn.render_as_string(hide_password=False)
    return env


def _run(command, url, label):
    env = _pg_env(url)
    dsn = env.pop("_DSN")
    done = subprocess.run(
        [*command, f"--dbname={dsn}"], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise BackupFailed(f"{label} 失败：{_tail(done.stderr)}")


def database_kind(url):
    if url.startswith("postgresql"):
        return "postgresql"
    if url.startswith("sqlite"):
        return "sqlite"
    raise BackupFailed(f"不支持备份这种数据库：{url.split(':', 1)[0]}")


def _sqlite_path(url):
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupFailed("内存中的 SQLite 数据库无法备份或恢复")
    return database


def app_version():
    try:
        return importlib.metadata.version("hotline12345")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _hash_file(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _audit(url, action, *, target, payload):
    """An audit row (by the system: the command line has no user). Written with the columns
    every revision has, not ``hotline.audit.audit``'s model: the backup before an upgrade
    runs the new program on the old schema."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(AuditLog.__table__).values(
                    actor_id=None,
                    action=action,
                    target=target,
                    payload=payload,
                    created_at=utcnow(),
                    remote_addr=None,
                )
            )
    finally:
        engine.dispose()


def _counts_text(manifest):
    counts = manifest["counts"]
    labels = {
        "tickets": "工单",
        "ticket_events": "事件",
        "attachments": "附件",
        "blobs": "数据库文件",
        "model_versions": "模型版本",
    }
    return "，".join(
        f"{label} {counts.get(name)}"
        for name, label in labels.items()
        if counts.get(name) is not None
    )


def _size_text(size):
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _first_line(error):
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


def _tail(text, lines=5):
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "；".join(kept[-lines:]) or "（无输出）"
