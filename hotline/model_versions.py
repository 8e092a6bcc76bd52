"""Classifier model versions, shared by every web host through the database.

One home for "register a version, activate one, roll back, which is active":

- a trained version (``classifier.artefact.save``'s folder) is *registered*: its
  ``model.joblib`` into ``blobs``, its meta into ``model_versions``;
- *activating* a version adds a ``model_activations`` row (the newest row is the active
  version) with the one before it and a reason; a *rollback* is activating the version that
  was active before, with its reason. Every step is audited;
- each process keeps a local copy in its ``CLASSIFIER_MODELS_DIR`` (written from the
  database the first time it needs a version) and follows the active version within seconds
  (``hotline.suggestions``: ``classifier.artefact.ActiveModel`` asks ``current`` at most every
  few seconds).

A database without any activation follows the local folder's ``ACTIVE`` (what an older
release kept there): ``import_folder`` copies such a folder's versions in and activates its
active one (``hotline classifier import``; a web process does it when it starts).
"""

import json
import logging
import os
import shutil
from pathlib import Path

import sqlalchemy as sa

from classifier import artefact
from hotline import blobs
from hotline.audit import audit
from hotline.enums import Role
from hotline.errors import Conflict, Forbidden, NotFound
from hotline.models import ModelActivation, ModelVersion

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
#: Longest reason kept with an activation.
REASON_MAX = 500


def active_version(session):
    """The version the database names active, or None."""
    return session.scalar(
        sa.select(ModelActivation.version).order_by(ModelActivation.id.desc()).limit(1)
    )


def current(session, models_dir):
    """The version to serve: the database's active one; while the database names none, the
    local folder's ``ACTIVE`` (not yet imported)."""
    return active_version(session) or artefact.active_version(models_dir)


def versions(session):
    """Every registered version (``ModelVersion`` rows, oldest first)."""
    return session.scalars(sa.select(ModelVersion).order_by(ModelVersion.version)).all()


def activations(session, limit=50):
    """The latest switches, newest first (``ModelActivation`` rows)."""
    return session.scalars(
        sa.select(ModelActivation).order_by(ModelActivation.id.desc()).limit(limit)
    ).all()


def save(session, actor, bundle, models_dir, meta, *, active=False, reason=None):
    """Save a freshly trained ``bundle`` (``classifier.artefact.save`` into this process's
    folder), register it and, with ``active``, make it the active version. The caller
    commits. Returns the version."""
    version = artefact.save(bundle, models_dir, meta)
    register(session, actor, models_dir, version)
    if active:
        activate(session, actor, version, reason=reason or "训练后启用")
    return version


def register(session, actor, models_dir, version):
    """Register the version saved in ``models_dir`` (its file into ``blobs``, its meta into
    ``model_versions``); a version already registered is left as it is. Audited; the caller
    commits. Returns the ``ModelVersion``."""
    row = session.get(ModelVersion, version)
    if row is not None:
        return row
    folder = Path(models_dir) / version
    data = (folder / MODEL_FILE).read_bytes()
    meta = json.loads((folder / META_FILE).read_text())
    sha256 = blobs.put(session, data)
    row = ModelVersion(
        version=version,
        sha256=sha256,
        meta=meta,
        created_by_id=actor.id if actor is not None else None,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        actor,
        "classifier.register",
        target=version,
        payload={"sha256": sha256, "size": len(data), "source": meta.get("source")},
    )
    return row


def activate(session, actor, version, *, reason=None):
    """Make ``version`` the active model (every process switches within seconds).
    Administrators only (``actor`` None: the command line). Audited; the caller commits.
    Returns the version active before."""
    if actor is not None and actor.role != Role.admin:
        raise Forbidden("只有系统管理员可以切换分类模型", code="ROLE_NOT_ALLOWED")
    if session.get(ModelVersion, version) is None:
        raise NotFound(f"模型版本不存在：{version}", code="MODEL_NOT_FOUND")
    reason = (reason or "").strip()[:REASON_MAX] or None
    previous = active_version(session)
    session.add(
        ModelActivation(
            version=version,
            previous=previous,
            reason=reason,
            activated_by_id=actor.id if actor is not None else None,
        )
    )
    session.flush()
    audit(
        session,
        actor,
        "classifier.activate",
        target=version,
        payload={"previous": previous, "reason": reason},
    )
    return previous


def roll_back(session, actor, *, reason):
    """Activate again the version that was active before the current one (``reason``: why,
    kept with the switch). Returns ``(version, previous)``."""
    newest = session.scalars(
        sa.select(ModelActivation).order_by(ModelActivation.id.desc()).limit(1)
    ).first()
    if newest is None or newest.previous is None:
        raise Conflict("没有可回退的上一个模型版本", code="NO_PREVIOUS_MODEL")
    previous = activate(session, actor, newest.previous, reason=reason)
    return newest.previous, previous


def load(session, models_dir, version):
    """``(bundle, meta)`` of ``version`` from this process's copy, written from the database
    first when the copy is missing."""
    local_copy(session, models_dir, version)
    return artefact.load(models_dir, version)


def local_copy(session, models_dir, version):
    """The folder of this process's copy of ``version``: written from the database when
    missing (to a temporary folder, checked against its SHA-256, then renamed into place, so
    a half-written copy is never read). Raises ``NotFound`` for a version nobody has."""
    target = Path(models_dir) / version
    if (target / MODEL_FILE).exists() and (target / META_FILE).exists():
        return target
    row = session.get(ModelVersion, version)
    if row is None:
        raise NotFound(f"模型版本不存在：{version}", code="MODEL_NOT_FOUND")
    data = blobs.get(session, row.sha256)
    if data is None or blobs.digest(data) != row.sha256:
        raise NotFound(f"模型版本 {version} 的文件缺失或损坏", code="MODEL_NOT_FOUND")
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(models_dir) / f".{version}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / MODEL_FILE).write_bytes(data)
        (tmp / META_FILE).write_text(json.dumps(row.meta, ensure_ascii=False, indent=2))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MODEL_FILE).exists():  # not another process's copy: a failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("model version %s copied from the database to %s", version, models_dir)
    return target


def import_folder(session, actor, models_dir):
    """Register the versions of a folder an older release kept (``<version>/model.joblib``
    and ``meta.json``, ``ACTIVE``) and, while the database names no active version, activate
    the folder's. Running it again changes nothing. The caller commits. Returns
    ``(registered versions, activated version or None)``."""
    known = set(session.scalars(sa.select(ModelVersion.version)))
    registered = []
    for version in artefact.versions(models_dir):
        if version not in known and (Path(models_dir) / version / MODEL_FILE).exists():
            register(session, actor, models_dir, version)
            registered.append(version)
    activated = None
    folder_active = artefact.active_version(models_dir)
    if folder_active and active_version(session) is None:
        if session.get(ModelVersion, folder_active) is not None:
            activate(session, actor, folder_active, reason=f"从模型目录导入（{models_dir}）")
            activated = folder_active
    return registered, activated


def import_at_start(session, models_dir):
    """A web process's start: import the local folder when the database names no active
    version yet and the folder does. Another process doing the same at the same moment
    wins; nothing is done twice."""
    if not artefact.active_version(models_dir) or active_version(session) is not None:
        session.rollback()
        return
    try:
        registered, activated = import_folder(session, None, models_dir)
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()  # another process imported the same versions first
        return
    if registered or activated:
        log.info("imported versions %s from %s (active: %s)", registered, models_dir, activated)
