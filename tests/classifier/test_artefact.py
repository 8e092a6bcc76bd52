"""Versioned model artefacts: save, load, list, meta, the ACTIVE pointer and live switching."""

import datetime as dt
import json
import os

import joblib
import numpy as np
import pytest

from classifier import artefact
from classifier.bundle import ModelBundle
from classifier.segment import Segmenter
from classifier.text_model import CategoryModel

TEXTS = {
    "路灯": [
        "小区门口路灯不亮",
        "路灯坏了好几天",
        "街上的路灯一直闪",
        "路灯杆被撞歪了",
        "新修的路没有路灯",
        "一排路灯都不亮了",
    ],
    "噪声": [
        "楼上装修噪音太大",
        "工地夜间施工噪音",
        "广场舞音响太吵",
        "饭店排风扇噪声大",
        "歌厅唱歌到半夜太吵",
        "夜里施工噪音扰民",
    ],
    "公交": [
        "公交车班次太少",
        "公交司机态度差",
        "公交车到站不停",
        "公交站牌时刻表过时",
        "末班公交车提前发车",
        "公交车空调不开",
    ],
}


def _bundle(labels=None):
    labels = labels or list(TEXTS)
    texts = [t for label in labels for t in TEXTS[label]]
    y = [label for label in labels for _ in TEXTS[label]]
    model = CategoryModel(Segmenter(stop_words=())).fit(texts, y)
    return ModelBundle(model, label_names={label: f"名称{label}" for label in labels})


@pytest.fixture(scope="module")
def bundle():
    return _bundle()


@pytest.fixture(scope="module")
def other_bundle():
    return _bundle(["路灯", "噪声"])


def _meta(sha="a" * 64, **extra):
    return {"source": "test.csv", "training_rows": 18, "training_sha256": sha, **extra}


# -- save, load, list -------------------------------------------------------------------------


def test_save_writes_a_version_with_meta(bundle, tmp_path):
    models = tmp_path / "models"  # does not exist yet
    meta = _meta("0123456789abcdef" + "0" * 48, metrics={"accuracy": 0.9})
    before = dict(meta)
    version = artefact.save(bundle, models, meta)
    assert meta == before  # the caller's dict is not changed
    assert version.split("-")[1] == "01234567"
    stamp = dt.datetime.strptime(version.split("-")[0], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=1)
    assert sorted(p.name for p in (models / version).iterdir()) == ["meta.json", "model.joblib"]

    written = json.loads((models / version / "meta.json").read_text(encoding="utf-8"))
    assert written == artefact.read_meta(models, version)
    assert written["version"] == version
    assert written["classes"] == ["公交", "噪声", "路灯"]
    assert written["training_sha256"] == "0123456789abcdef" + "0" * 48
    assert written["training_rows"] == 18
    assert written["source"] == "test.csv"
    assert written["metrics"] == {"accuracy": 0.9}
    created = dt.datetime.fromisoformat(written["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=1)
    assert created.strftime("%Y%m%dT%H%M%S") == version.split("-")[0]
    assert set(written["libraries"]) == {"python", "scikit-learn", "numpy", "scipy", "jieba"}
    assert written["libraries"]["numpy"] == np.__version__
    # Chinese is stored as text, not as \u escapes
    assert "公交" in (models / version / "meta.json").read_text(encoding="utf-8")
    # not activated unless asked
    assert artefact.active_version(models) is None
    assert not (models / artefact.ACTIVE).exists()


def test_load_round_trip(bundle, tmp_path):
    version = artefact.save(bundle, tmp_path, _meta())
    loaded, meta = artefact.load(tmp_path, version)
    assert isinstance(loaded, ModelBundle)
    assert meta == artefact.read_meta(tmp_path, version)
    assert loaded.label_names == bundle.label_names
    assert loaded.request_type is None and loaded.router is None
    texts = ["路灯晚上不亮", "楼上噪音", "公交车", ""]
    assert np.array_equal(
        loaded.category.probabilities(texts), bundle.category.probabilities(texts)
    )
    # the file is a plain joblib dump
    assert isinstance(joblib.load(tmp_path / version / "model.joblib"), ModelBundle)


def test_load_unknown_version_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        artefact.load(tmp_path, "20990101T000000-deadbeef")


def test_versions_lists_only_complete_versions_in_order(bundle, other_bundle, tmp_path):
    assert artefact.versions(tmp_path / "missing") == []
    assert artefact.versions(tmp_path) == []
    first = artefact.save(bundle, tmp_path, _meta("b" * 64))
    second = artefact.save(other_bundle, tmp_path, _meta("c" * 64))
    (tmp_path / "not-a-version").mkdir()  # no meta.json
    (tmp_path / "stray.txt").write_text("x")
    assert artefact.versions(tmp_path) == sorted([first, second])
    assert artefact.read_meta(tmp_path, second)["classes"] == ["噪声", "路灯"]


def test_save_without_digest_still_names_the_version(bundle, tmp_path):
    version = artefact.save(bundle, tmp_path, {"source": "x"})
    assert version.split("-")[1] == "xxxxxxxx"
    assert artefact.read_meta(tmp_path, version)["source"] == "x"


# -- the active version -----------------------------------------------------------------------


def test_set_active_and_active_version(bundle, other_bundle, tmp_path):
    assert artefact.active_version(tmp_path) is None
    first = artefact.save(bundle, tmp_path, _meta("d" * 64), activate=True)
    assert artefact.active_version(tmp_path) == first
    assert (tmp_path / artefact.ACTIVE).read_text() == first + "\n"
    second = artefact.save(other_bundle, tmp_path, _meta("e" * 64))
    assert artefact.active_version(tmp_path) == first
    artefact.set_active(tmp_path, second)
    assert artefact.active_version(tmp_path) == second
    artefact.set_active(tmp_path, first)
    assert artefact.active_version(tmp_path) == first
    # the switch leaves no temporary file behind
    assert sorted(os.listdir(tmp_path)) == sorted([artefact.ACTIVE, first, second])


def test_set_active_unknown_version_raises_and_keeps_the_active_one(bundle, tmp_path):
    version = artefact.save(bundle, tmp_path, _meta("f" * 64), activate=True)
    with pytest.raises(FileNotFoundError, match="20990101T000000-deadbeef"):
        artefact.set_active(tmp_path, "20990101T000000-deadbeef")
    # a folder without a model file is not a version either
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        artefact.set_active(tmp_path, "empty")
    assert artefact.active_version(tmp_path) == version


def test_active_model_follows_a_switch_without_restart(bundle, other_bundle, tmp_path):
    holder = artefact.ActiveModel.in_folder(tmp_path, check_every=0)
    assert holder.get() == (None, None, None)

    first = artefact.save(bundle, tmp_path, _meta("1" * 64), activate=True)
    version, loaded, meta = holder.get()
    assert version == first
    assert meta["version"] == first
    assert loaded.category.classes_ == ["公交", "噪声", "路灯"]
    assert holder.get()[1] is loaded  # not reloaded while ACTIVE is unchanged

    second = artefact.save(other_bundle, tmp_path, _meta("2" * 64))
    assert holder.get()[0] == first  # saving alone does not switch
    artefact.set_active(tmp_path, second)
    version, loaded, meta = holder.get()
    assert version == second
    assert meta["version"] == second
    assert loaded.category.classes_ == ["噪声", "路灯"]

    artefact.set_active(tmp_path, first)
    assert holder.get()[0] == first


def test_active_model_checks_at_most_every_interval(bundle, other_bundle, tmp_path):
    first = artefact.save(bundle, tmp_path, _meta("3" * 64), activate=True)
    second = artefact.save(other_bundle, tmp_path, _meta("4" * 64))
    holder = artefact.ActiveModel.in_folder(tmp_path, check_every=3600)
    assert holder.get()[0] == first
    artefact.set_active(tmp_path, second)
    assert holder.get()[0] == first  # not looked at again within the hour
    holder._checked_at -= 3600
    assert holder.get()[0] == second


def test_active_model_asks_again_after_a_switch_here(bundle, other_bundle, tmp_path):
    first = artefact.save(bundle, tmp_path, _meta("5" * 64), activate=True)
    second = artefact.save(other_bundle, tmp_path, _meta("6" * 64))
    asked = []

    def which():
        asked.append(1)
        return artefact.active_version(tmp_path)

    holder = artefact.ActiveModel(which, lambda v: artefact.load(tmp_path, v), check_every=3600)
    assert holder.get()[0] == first
    artefact.set_active(tmp_path, second)
    holder.recheck()
    assert holder.get()[0] == second
    assert len(asked) == 2
