"""``hotline classifier …``: train on a city's table (CSV, XLSX), evaluate, list, activate."""

import csv
import hashlib
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import Workbook

from classifier import artefact, training
from dispatch import learning
from hotline.models import AuditLog, ModelActivation, ModelVersion
from server.cli import main
from server.cli_classifier import format_metrics

PLACES = ["胜利东街", "东风街", "中学街社区", "工福街社区", "院校街社区", "北海路", "四平路"]
ISSUES = {
    "城乡建设": [
        ("路灯不亮", "的路灯坏了好几天，晚上出门黑漆漆的"),
        ("井盖丢失", "的井盖丢了，路过的人很容易掉进去"),
        ("路面坑洼", "的路面坑坑洼洼，下雨天全是积水"),
    ],
    "环境保护": [
        ("施工噪音", "附近工地夜间施工，噪音吵得睡不着觉"),
        ("油烟污染", "的饭店油烟直排，熏得不敢开窗"),
        ("污水直排", "有工厂往河里排污水，臭味很大"),
    ],
    "交通运输": [
        ("公交晚点", "的公交车经常晚点，等车要四十分钟"),
        ("出租车拒载", "的出租车司机拒载乘客，态度很差"),
        ("公交站牌", "的公交站牌被撞坏了，线路信息看不清"),
    ],
}
#: (主题, 详情, 分类) — 63 rows, 21 per class.
ROWS = [
    (place + subject, place + detail, label)
    for label, issues in ISSUES.items()
    for subject, detail in issues
    for place in PLACES
]
HEADER = ["留言主题", "留言详情", "一级分类"]
TRAIN_ARGS = ["--text-columns", "留言主题,留言详情", "--label-column", "一级分类"]


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory):
    """A fresh SQLite file migrated by ``hotline db upgrade`` (copied for each test)."""
    url = "sqlite:///" + str(tmp_path_factory.mktemp("cli-db") / "cli.sqlite")
    result = CliRunner().invoke(
        main,
        ["db", "upgrade"],
        env={"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "cli-test"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture
def cli_database(migrated_database, tmp_path):
    """This test's own database (the model versions it registers are its own)."""
    path = tmp_path / "cli.sqlite"
    shutil.copyfile(migrated_database.removeprefix("sqlite:///"), path)
    return f"sqlite:///{path}"


class Stored:
    """What the database holds of the model versions (``hotline.model_versions``)."""

    def __init__(self, url):
        self.url = url

    def _read(self, statement):
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(statement).all()
        finally:
            engine.dispose()

    def versions(self):
        return [v for (v,) in self._read(sa.select(ModelVersion.version).order_by("version"))]

    def active(self):
        rows = self._read(
            sa.select(ModelActivation.version).order_by(ModelActivation.id.desc()).limit(1)
        )
        return rows[0][0] if rows else None

    def meta(self, version):
        return self._read(sa.select(ModelVersion.meta).where(ModelVersion.version == version))[0][0]

    def activations(self):
        return [
            tuple(r)
            for r in self._read(
                sa.select(
                    ModelActivation.version, ModelActivation.previous, ModelActivation.reason
                ).order_by(ModelActivation.id)
            )
        ]


@pytest.fixture
def stored(cli_database):
    return Stored(cli_database)


@pytest.fixture
def models(tmp_path):
    return tmp_path / "models"


@pytest.fixture
def hotline(cli_database, models):
    """``hotline("classifier", "list")`` → the click Result."""

    def invoke(*args):
        return CliRunner().invoke(
            main,
            list(args),
            env={
                "HOTLINE_DATABASE_URL": cli_database,
                "HOTLINE_SECRET_KEY": "cli-test",
                "HOTLINE_CLASSIFIER_MODELS_DIR": str(models),
                "HOTLINE_REDIS_URL": "",
            },
        )

    return invoke


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "history.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    return path


@pytest.fixture
def table_xlsx(tmp_path):
    path = tmp_path / "history.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(list(row))
    book.save(path)
    return path


def expected_sha256():
    h = hashlib.sha256()
    for subject, detail, label in ROWS:
        h.update(f"{label}\t{subject}。{detail}\n".encode())
    return h.hexdigest()


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def saved_version(output):
    match = re.search(r"已保存模型版本 (\S+?)(（已启用）)?$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def check_report(output, labels, supports=None):
    """The printed metrics: headline, one line per class, the confusion matrix."""
    headline = re.search(r"^accuracy (\d\.\d{4})   macro-F1 (\d\.\d{4})$", output, re.MULTILINE)
    assert headline, output
    accuracy, macro_f1 = float(headline.group(1)), float(headline.group(2))
    assert 0.0 <= macro_f1 <= 1.0 and 0.0 <= accuracy <= 1.0
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class "))
    assert lines[header].split() == ["class", "precision", "recall", "f1", "support"]
    per_class = lines[header + 1 : header + 1 + len(labels)]
    assert [line.split()[0] for line in per_class] == sorted(labels)
    counts = [int(line.split()[-1]) for line in per_class]
    if supports is not None:
        assert counts == supports
    start = lines.index("confusion (rows: truth, columns: prediction, same order as above)")
    matrix = [[int(n) for n in line.split()] for line in lines[start + 1 : start + 1 + len(labels)]]
    assert all(len(row) == len(labels) for row in matrix)
    assert [sum(row) for row in matrix] == counts
    correct = sum(matrix[i][i] for i in range(len(labels)))
    assert accuracy == pytest.approx(correct / sum(counts), abs=5e-5)
    return accuracy, macro_f1


# -- train ------------------------------------------------------------------------------------


def test_train_on_csv(stored, hotline, models, table_csv):
    output = ok(hotline("classifier", "train", "--input", str(table_csv), *TRAIN_ARGS))
    version = saved_version(output)
    assert "（已启用）" not in output
    assert stored.versions() == [version]
    assert stored.active() is None  # --no-activate is the default
    assert version.split("-")[1] == expected_sha256()[:8]

    meta = stored.meta(version)
    assert meta["training_rows"] == 63
    assert meta["training_sha256"] == expected_sha256()
    assert meta["text_columns"] == ["留言主题", "留言详情"]
    assert meta["label_column"] == "一级分类"
    assert meta["unlabelled_rows"] == 0
    assert meta["source"] == str(table_csv)
    assert meta["classes"] == sorted(ISSUES)
    metrics = meta["metrics"]
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["labels"] == sorted(ISSUES)
    # the stratified 20 % holdout: 13 of 63 rows
    assert sum(c["support"] for c in metrics["per_class"].values()) == 13
    assert metrics["accuracy"] >= 0.6, metrics

    assert "留出集评估：" in output
    accuracy, macro_f1 = check_report(output, list(ISSUES))
    assert accuracy == pytest.approx(metrics["accuracy"], abs=5e-5)
    assert macro_f1 == pytest.approx(metrics["macro_f1"], abs=5e-5)

    bundle, _ = artefact.load(models, version)
    assert bundle.category.predict(["四平路的公交车等了一个小时都不来"])[0].top[0][0] == "交通运输"
    # the history has no emergency labels: with no active version, the emergency model is
    # learned from the seed corpus, never the rules alone
    assert bundle.urgency is not None
    assert meta["urgency"]["training_rows"] > 1000
    assert "from_version" not in meta["urgency"]


def test_train_keeps_the_active_versions_emergency_model(stored, hotline, models, table_csv):
    first = saved_version(
        ok(hotline("classifier", "train", "--input", str(table_csv), *TRAIN_ARGS, "--activate"))
    )
    second = saved_version(
        ok(hotline("classifier", "train", "--input", str(table_csv), *TRAIN_ARGS))
    )
    assert stored.meta(second)["urgency"]["from_version"] == first
    old, _ = artefact.load(models, first)
    new, _ = artefact.load(models, second)
    assert (new.urgency.weights == old.urgency.weights).all()
    assert (new.urgency.veto, new.urgency.alone) == (old.urgency.veto, old.urgency.alone)


def test_train_on_xlsx_with_activate(stored, hotline, models, table_xlsx):
    output = ok(
        hotline("classifier", "train", "--input", str(table_xlsx), *TRAIN_ARGS, "--activate")
    )
    version = saved_version(output)
    assert output.count("（已启用）") == 1
    assert stored.active() == version
    meta = stored.meta(version)
    # the same rows as the CSV: the same digest
    assert meta["training_sha256"] == expected_sha256()
    assert meta["training_rows"] == 63
    assert set(meta["metrics"]) >= {"accuracy", "macro_f1", "per_class", "confusion"}
    check_report(output, list(ISSUES))


def test_train_with_unlabelled_and_descriptions(stored, hotline, models, table_csv, tmp_path):
    unlabelled = tmp_path / "unlabelled.csv"
    with open(unlabelled, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["留言主题", "留言详情"])
        writer.writerows([("路灯闪烁", "路灯一闪一闪"), ("噪声", "夜里有噪声")])
    descriptions = tmp_path / "categories.csv"
    with open(descriptions, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["一级分类", "二级分类"])
        writer.writerows(
            [
                ("城乡建设", "市政设施"),
                ("城乡建设", "市政设施维护"),
                ("交通运输", "公交运营"),
                ("其他类", "市政设施"),  # not a label of the data: ignored
            ]
        )
    output = ok(
        hotline(
            "classifier",
            "train",
            "--input",
            str(table_csv),
            *TRAIN_ARGS,
            "--unlabelled",
            str(unlabelled),
            "--descriptions",
            str(descriptions),
            "--description-columns",
            "一级分类,二级分类",
        )
    )
    version = saved_version(output)
    meta = stored.meta(version)
    assert meta["unlabelled_rows"] == 2
    assert meta["training_rows"] == 63
    # the descriptions joined the training documents: their word is in the vocabulary
    bundle, _ = artefact.load(models, version)
    assert "市政设施" in bundle.category.features[0].vocabulary


def test_train_without_descriptions_lacks_their_words(hotline, models, table_csv):
    version = saved_version(
        ok(hotline("classifier", "train", "--input", str(table_csv), *TRAIN_ARGS))
    )
    bundle, _ = artefact.load(models, version)
    assert "市政设施" not in bundle.category.features[0].vocabulary


def test_train_descriptions_need_two_columns(stored, hotline, models, table_csv, tmp_path):
    descriptions = tmp_path / "categories.csv"
    descriptions.write_text("一级分类\n城乡建设\n", encoding="utf-8")
    result = hotline(
        "classifier",
        "train",
        "--input",
        str(table_csv),
        *TRAIN_ARGS,
        "--descriptions",
        str(descriptions),
        "--description-columns",
        "一级分类",
    )
    assert result.exit_code == 2
    assert "--description-columns" in result.output
    assert stored.versions() == []


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["--text-columns", "留言主题,不存在的列", "--label-column", "一级分类"], "不存在的列"),
        (["--text-columns", "留言主题", "--label-column", "分类标签"], "分类标签"),
    ],
)
def test_train_unknown_column(stored, hotline, models, table_csv, args, missing):
    result = hotline("classifier", "train", "--input", str(table_csv), *args)
    assert result.exit_code != 0
    assert f"no column(s) {missing}" in result.output
    assert "has 留言主题, 留言详情, 一级分类" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean error, not a crash
    assert stored.versions() == []


def test_train_missing_input_file(hotline, tmp_path):
    result = hotline("classifier", "train", "--input", str(tmp_path / "nope.csv"), *TRAIN_ARGS)
    assert result.exit_code == 2
    assert "nope.csv" in result.output


# -- list and activate ------------------------------------------------------------------------


def _train(hotline, path, *extra):
    return saved_version(
        ok(hotline("classifier", "train", "--input", str(path), *TRAIN_ARGS, *extra))
    )


def test_list_and_activate(stored, hotline, models, table_csv, table_xlsx, cli_database):
    assert ok(hotline("classifier", "list")) == ""
    first = _train(hotline, table_csv)
    second = _train(hotline, table_xlsx)
    assert first != second

    def listed():
        lines = ok(hotline("classifier", "list")).split("\n\n")[0].splitlines()
        return {line[2:].split()[0]: line[0] for line in lines}, lines

    marks, lines = listed()
    assert marks == {first: " ", second: " "}
    assert f"  {first}  {table_csv}  63 条" in lines

    assert ok(hotline("classifier", "activate", second)) == f"已启用模型版本 {second}\n"
    assert stored.active() == second
    marks, lines = listed()
    assert marks == {first: " ", second: "*"}
    assert f"* {second}  {table_xlsx}  63 条" in lines

    ok(hotline("classifier", "activate", first))
    assert listed()[0] == {first: "*", second: " "}
    assert stored.activations() == [(second, None, None), (first, second, None)]
    switches = ok(hotline("classifier", "list")).split("最近的切换：\n")[1].splitlines()
    assert [line.split()[2:5] for line in switches] == [[second, "→", first], ["—", "→", second]]

    engine = sa.create_engine(cli_database)
    with engine.connect() as conn:
        targets = conn.scalars(
            sa.select(AuditLog.target)
            .where(AuditLog.action == "classifier.activate")
            .order_by(AuditLog.id)
        ).all()
    engine.dispose()
    assert targets[-2:] == [second, first]


def test_activate_unknown_version(stored, hotline, models, table_csv):
    version = _train(hotline, table_csv, "--activate")
    result = hotline("classifier", "activate", "20990101T000000-deadbeef")
    assert result.exit_code == 1
    assert "模型版本不存在：20990101T000000-deadbeef" in result.output
    assert "Traceback" not in result.output
    assert stored.active() == version


def test_a_rollback_activates_the_version_before_with_its_reason(
    stored, hotline, table_csv, table_xlsx
):
    result = hotline("classifier", "rollback", "--reason", "无")
    assert result.exit_code == 1 and "没有可回退的上一个模型版本" in result.output
    first = _train(hotline, table_csv, "--activate")
    second = _train(hotline, table_xlsx, "--activate")
    output = ok(hotline("classifier", "rollback", "--reason", "新版本误判增多"))
    assert output == f"已回退到模型版本 {first}（停用 {second}）\n"
    assert stored.active() == first
    assert stored.activations() == [
        (first, None, "训练后启用"),
        (second, first, "训练后启用"),
        (first, second, "新版本误判增多"),
    ]
    ok(hotline("classifier", "activate", second, "--reason", "修正后重新启用"))
    assert stored.activations()[-1] == (second, first, "修正后重新启用")


def test_the_database_serves_a_version_this_folder_never_had(
    stored, hotline, models, table_csv, tmp_path
):
    """Another host's version: a command here writes its copy from the database."""
    version = _train(hotline, table_csv, "--activate")
    shutil.rmtree(models)
    output = ok(hotline("classifier", "eval", "--input", str(table_csv), *TRAIN_ARGS))
    assert output.startswith(f"模型 {version}，63 条")
    assert (models / version / "model.joblib").is_file()
    assert artefact.read_meta(models, version) == stored.meta(version)


def test_an_older_folder_is_imported_once(stored, hotline, models, models_dir, cli_database):
    version = _copy_default_model(models_dir, models)
    assert stored.versions() == []
    assert ok(hotline("classifier", "import")) == f"已导入 1 个模型版本，已启用 {version}\n"
    assert stored.versions() == [version] and stored.active() == version
    assert ok(hotline("classifier", "import")) == "已导入 0 个模型版本\n"
    assert stored.activations() == [(version, None, f"从模型目录导入（{models}）")]
    engine = sa.create_engine(cli_database)
    with engine.connect() as conn:
        actions = conn.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)).all()
    engine.dispose()
    assert actions == ["classifier.register", "classifier.activate"]


def test_any_command_imports_an_older_folder_first(stored, hotline, models, models_dir):
    version = _copy_default_model(models_dir, models)
    assert ok(hotline("classifier", "list")).startswith(f"* {version}")
    assert stored.active() == version


# -- eval -------------------------------------------------------------------------------------


def test_eval_trained_model(hotline, models, table_csv, table_xlsx):
    version = _train(hotline, table_csv, "--activate")
    output = ok(hotline("classifier", "eval", "--input", str(table_xlsx), *TRAIN_ARGS))
    assert output.splitlines()[0] == f"模型 {version}，63 条"
    accuracy, _ = check_report(output, list(ISSUES), supports=[21, 21, 21])
    assert accuracy >= 0.9  # its own training data

    # the same numbers as the library computes
    bundle, _ = artefact.load(models, version)
    texts, labels = training.read_table(table_xlsx, ["留言主题", "留言详情"], "一级分类")
    assert format_metrics(training.evaluate(bundle.category, texts, labels)) in output


def test_eval_named_version_and_unknown_column(hotline, models, table_csv):
    version = _train(hotline, table_csv)  # not active
    result = hotline("classifier", "eval", "--input", str(table_csv), *TRAIN_ARGS)
    assert result.exit_code == 1
    assert "没有启用的模型" in result.output
    named = ok(
        hotline("classifier", "eval", "--input", str(table_csv), *TRAIN_ARGS, "--version", version)
    )
    assert named.startswith(f"模型 {version}，63 条")

    bad = hotline(
        "classifier",
        "eval",
        "--input",
        str(table_csv),
        "--text-columns",
        "正文",
        "--label-column",
        "一级分类",
        "--version",
        version,
    )
    assert bad.exit_code != 0
    assert "no column(s) 正文" in bad.output
    assert "Traceback" not in bad.output


def _copy_default_model(models_dir, models):
    """The session's default model, copied (not retrained) into this test's folder."""
    version = artefact.active_version(models_dir)
    shutil.copytree(Path(models_dir) / version, models / version)
    artefact.set_active(models, version)
    return version


def test_eval_as_top_name_with_the_default_model(hotline, models, models_dir, tmp_path):
    version = _copy_default_model(models_dir, models)
    tiny = tmp_path / "tiny.csv"
    rows = [
        ("奎文区胜利东街的路灯坏了一个星期，晚上出门黑漆漆的", "城乡建设"),
        ("小区里的自来水停了两天，一直没人来修", "城乡建设"),
        ("附近工地半夜施工，噪音吵得睡不着觉", "环境保护"),
        ("河边有工厂偷排污水，河水发黑发臭", "环境保护"),
        ("3路公交车经常不按时发车，等车要一个小时", "交通运输"),
        ("出租车司机绕路多收费，还拒绝打表", "交通运输"),
    ]
    with open(tiny, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["内容", "类别"])
        writer.writerows(rows)

    as_codes = hotline(
        "classifier",
        "eval",
        "--input",
        str(tiny),
        "--text-columns",
        "内容",
        "--label-column",
        "类别",
    )
    output = ok(
        hotline(
            "classifier",
            "eval",
            "--input",
            str(tiny),
            "--text-columns",
            "内容",
            "--label-column",
            "类别",
            "--as",
            "top-name",
        )
    )
    assert output.splitlines()[0] == f"模型 {version}，6 条"
    accuracy, _ = check_report(output, ["城乡建设", "环境保护", "交通运输"], supports=[2, 2, 2])
    assert accuracy >= 5 / 6, output
    # compared as codes, no prediction (0101 …) can equal a name
    codes = re.search(r"^accuracy (\d\.\d{4})", ok(as_codes), re.MULTILINE)
    assert codes.group(1) == "0.0000"

    bundle, _ = artefact.load(models, version)
    view = training.TopLevelView(
        bundle.category, training.category_tree(), {"城乡建设", "环境保护", "交通运输"}
    )
    assert format_metrics(training.evaluate(view, *map(list, zip(*rows, strict=True)))) in output


def test_eval_bad_choice(hotline, table_csv):
    result = hotline("classifier", "eval", "--input", str(table_csv), *TRAIN_ARGS, "--as", "x")
    assert result.exit_code == 2


# -- train-default and train-router -----------------------------------------------------------


def test_train_default_saves_and_activates(stored, hotline, models, models_dir, monkeypatch):
    """The command's wiring, with the session's default model standing in for the training."""
    version = artefact.active_version(models_dir)
    bundle, meta = artefact.load(models_dir, version)
    seed_meta = {k: meta[k] for k in ("source", "label_level", "training_rows", "training_sha256")}
    calls = []

    def fake_train_default():
        calls.append(1)
        # a second run gets other data: two saves of the same data within one second would
        # get the same version name (see the report)
        return bundle, {**seed_meta, "training_sha256": f"{len(calls)}" * 64}

    monkeypatch.setattr(training, "train_default", fake_train_default)
    output = ok(hotline("classifier", "train-default"))
    assert calls == [1]
    new = saved_version(output)
    assert "（已启用）" in output
    assert stored.active() == new
    assert new.split("-")[1] == "11111111"
    written = stored.meta(new)
    assert {k: written[k] for k in seed_meta} == {**seed_meta, "training_sha256": "1" * 64}
    assert written["classes"] == meta["classes"]
    assert written["label_level"] == 2

    again = ok(hotline("classifier", "train-default", "--no-activate"))
    assert "（已启用）" not in again
    assert saved_version(again).split("-")[1] == "22222222"
    assert stored.active() == new
    assert len(stored.versions()) == 2


def test_train_router_needs_a_model_and_tickets(stored, hotline, models, models_dir):
    result = hotline("classifier", "train-router")
    assert result.exit_code == 1
    assert "没有启用的模型" in result.output
    _copy_default_model(models_dir, models)
    result = hotline("classifier", "train-router")
    assert result.exit_code == 1
    assert "还没有已派单的工单可供学习" in result.output
    assert len(stored.versions()) == 1


# -- retrain (dispatch.learning) -----------------------------------------------------------------


def test_retrain_without_tickets_is_skipped_and_says_why(stored, hotline):
    output = ok(hotline("classifier", "retrain"))
    assert "结果：未训练" in output
    assert "训练样本不足" in output
    assert stored.versions() == []


def test_retrain_prints_the_decision_and_both_models_figures(
    stored, hotline, models, models_dir, monkeypatch
):
    before = _copy_default_model(models_dir, models)

    def promote(examples, active_bundle, *, now, policy, unlabelled=(), active_until=None):
        figures = {
            "candidate": {"category_macro_f1": 0.8312, "n_category": 120, "unit_top3": 0.9},
            "active": {"category_macro_f1": 0.8012, "n_category": 120, "unit_top3": None},
            "tolerance": 0.02,
            "holdout": {
                "from": "2026-11-20T00:00:00+00:00",
                "to": "2026-12-04T00:00:00+00:00",
                "tickets": 120,
            },
            "training": {"tickets": 900},
        }
        return SimpleNamespace(
            status="promoted",
            reason="各项指标下降均未超过允许的 0.02",
            bundle=active_bundle,
            meta={"source": "retrain"},
            figures=figures,
        )

    monkeypatch.setattr(learning.model_learning, "retrain", promote)
    output = ok(hotline("classifier", "retrain"))

    new = stored.active()
    assert new != before and set(stored.versions()) == {before, new}
    assert "结果：已启用新模型" in output
    assert f"候选版本：{new}" in output and f"对比的在用版本：{before}" in output
    assert "留出评估：2026-11-20 至 2026-12-04，120 张已确认工单；训练：900 张" in output
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("指标"))
    assert lines[header + 1].split() == ["分类宏平均F1", "0.831", "0.801", "+0.030", "120"]
    assert lines[header + 2].split() == ["承办单位前三命中率", "0.900", "—", "0"]
    assert stored.activations()[-1][2] == "自动评估通过：各项指标下降均未超过允许的 0.02"
