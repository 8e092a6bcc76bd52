"""Model versions in the database (``hotline.model_versions``): registered once, activated and
rolled back with a reason, copied to a process's folder from the database, an older folder
imported once."""

import pytest
import sqlalchemy as sa

from classifier import artefact
from hotline import model_versions
from hotline.errors import Conflict, Forbidden, NotFound
from hotline.models import AuditLog, Blob, ModelActivation, ModelVersion


@pytest.fixture
def suite_version(db):
    return model_versions.active_version(db)


@pytest.fixture
def saved(models_dir, tmp_path):
    """``saved(n)``: a new version of the suite's model in a folder of its own."""
    bundle, meta = artefact.load(models_dir, artefact.active_version(models_dir))

    def save(n, folder=None):
        folder = folder or tmp_path / f"trained-{n}"
        return folder, artefact.save(bundle, folder, {**meta, "training_sha256": str(n) * 64})

    return save


def test_registering_twice_stores_once(db, saved, user):
    folder, version = saved(1)
    blobs_before = db.scalar(sa.select(sa.func.count()).select_from(Blob))
    row = model_versions.register(db, user("admin"), folder, version)
    again = model_versions.register(db, user("admin"), folder, version)
    assert again is row and row.meta["version"] == version
    assert db.get(Blob, row.sha256).data == (folder / version / "model.joblib").read_bytes()
    assert db.scalar(sa.select(sa.func.count()).select_from(Blob)) <= blobs_before + 1
    assert db.scalars(sa.select(AuditLog.action)).all() == ["classifier.register"]


def test_activate_and_roll_back(db, saved, suite_version, user):
    folder, version = saved(2)
    model_versions.register(db, None, folder, version)
    admin = user("admin")
    assert model_versions.activate(db, admin, version, reason="  新版本  ") == suite_version
    assert model_versions.active_version(db) == version
    assert model_versions.roll_back(db, admin, reason="误判增多") == (suite_version, version)
    assert model_versions.active_version(db) == suite_version
    rows = db.scalars(sa.select(ModelActivation).order_by(ModelActivation.id)).all()
    assert [(r.version, r.previous, r.reason, r.activated_by_id) for r in rows[-2:]] == [
        (version, suite_version, "新版本", admin.id),
        (suite_version, version, "误判增多", admin.id),
    ]
    payloads = db.scalars(
        sa.select(AuditLog.payload)
        .where(AuditLog.action == "classifier.activate")
        .order_by(AuditLog.id)
    ).all()
    assert payloads == [
        {"previous": suite_version, "reason": "新版本"},
        {"previous": version, "reason": "误判增多"},
    ]


def test_only_administrators_switch(db, suite_version, user):
    with pytest.raises(Forbidden):
        model_versions.activate(db, user("supervisor"), suite_version)
    with pytest.raises(NotFound):
        model_versions.activate(db, user("admin"), "20990101T000000-deadbeef")


def test_no_rollback_without_a_version_before(db):
    db.execute(sa.delete(ModelActivation))
    with pytest.raises(Conflict):
        model_versions.roll_back(db, None, reason="x")


def test_a_process_copies_a_version_from_the_database(db, saved, tmp_path):
    folder, version = saved(3)
    model_versions.register(db, None, folder, version)
    mine = tmp_path / "this-host"
    bundle, meta = model_versions.load(db, mine, version)
    assert (mine / version / "model.joblib").read_bytes() == (
        folder / version / "model.joblib"
    ).read_bytes()
    assert meta == db.get(ModelVersion, version).meta
    assert [p.name for p in mine.iterdir()] == [version]  # no temporary folder left
    assert bundle.category.classes_


def test_a_damaged_file_in_the_database_is_not_copied(db, saved, tmp_path):
    folder, version = saved(4)
    row = model_versions.register(db, None, folder, version)
    db.execute(sa.update(Blob).where(Blob.sha256 == row.sha256).values(data=b"damaged"))
    with pytest.raises(NotFound, match="缺失或损坏"):
        model_versions.local_copy(db, tmp_path / "this-host", version)
    assert not (tmp_path / "this-host" / version).exists()


def test_an_older_folder_is_served_then_imported_once(db, saved, tmp_path, suite_version):
    db.execute(sa.delete(ModelActivation))
    old = tmp_path / "old-models"
    _, version = saved(5, old)
    artefact.set_active(old, version)
    # not imported yet: the folder's version is served
    assert model_versions.current(db, old) == version
    model_versions.import_at_start(db, old)
    assert model_versions.active_version(db) == version
    assert db.get(ModelVersion, version) is not None
    model_versions.import_at_start(db, old)  # a second process: nothing to do
    assert db.scalar(sa.select(sa.func.count()).select_from(ModelActivation)) == 1
