"""``hotline classifier …``: train, evaluate, list, activate and roll back model versions.

Versions and which one is active live in the database (``hotline.model_versions``), so every
host follows the same one; a command keeps its copy of the files in ``CLASSIFIER_MODELS_DIR``.
A folder an older release kept (``ACTIVE`` in it) is imported before a command's first use
of the database's versions (or with ``hotline classifier import``)."""

import unicodedata
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import aliased

from classifier import training
from classifier.bundle import ModelBundle
from classifier.router import LearnedRouter, record_from_codes
from dispatch import learning
from hotline import model_versions
from hotline.audit import audit
from hotline.db import get_session
from hotline.errors import HotlineError
from hotline.models import Area, Category, Ticket, Unit

group = AppGroup("classifier", help="Complaint classifier: train, evaluate, switch versions.")


def _models_dir():
    return current_app.config["CLASSIFIER_MODELS_DIR"]


def _session():
    """The command's session, after an older release's model folder went into the database
    (once; nothing happens when the database names an active version)."""
    session = get_session()
    model_versions.import_at_start(session, _models_dir())
    return session


def _active():
    """(session, version, bundle, meta) of the active model, or a usage error."""
    session = _session()
    version = model_versions.active_version(session)
    if version is None:
        raise click.ClickException("没有启用的模型：请先运行 hotline classifier train-default")
    bundle, meta = model_versions.load(session, _models_dir(), version)
    return session, version, bundle, meta


def _save(session, bundle, meta, activate):
    version = model_versions.save(session, None, bundle, _models_dir(), meta, active=activate)
    session.commit()
    return version


def _columns(value):
    return [c.strip() for c in value.split(",") if c.strip()]


def _read_table(path, text_columns, label_column=None):
    """``training.read_table`` with a missing column reported as a usage error, not a traceback."""
    try:
        return training.read_table(path, text_columns, label_column)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _steps(label, steps):
    """Run (name, callable) steps under a progress bar; returns their results by name."""
    results = {}
    with click.progressbar(steps, label=label, item_show_func=lambda s: s and s[0]) as bar:
        for name, step in bar:
            results[name] = step(results)
    return results


@group.command("train")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True),
    help="Labelled history, CSV (UTF-8) or XLSX.",
)
@click.option("--text-columns", required=True, help="Comma-separated, e.g. 留言主题,留言详情")
@click.option("--label-column", required=True)
@click.option(
    "--unlabelled",
    "unlabelled_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Files of unlabelled messages (same text columns) shaping the vocabulary.",
)
@click.option(
    "--descriptions",
    type=click.Path(exists=True),
    help="A category table (CSV/XLSX) whose rows name classes, e.g. 附件1.",
)
@click.option("--description-columns", default="", help="Name columns; the first is the label.")
@click.option("--activate/--no-activate", default=False, show_default=True)
def train(
    input_path,
    text_columns,
    label_column,
    unlabelled_paths,
    descriptions,
    description_columns,
    activate,
):
    """Train a category model on a city's own history and save it as a new version."""
    columns = _columns(text_columns)

    def read(_):
        return _read_table(input_path, columns, label_column)

    def read_unlabelled(_):
        texts = []
        for path in unlabelled_paths:
            texts += _read_table(path, columns)[0]
        return texts

    def read_descriptions(results):
        if not descriptions:
            return []
        names = _columns(description_columns)
        if len(names) < 2:
            raise click.UsageError("--description-columns needs the label column and a name column")
        rows = training.read_rows(Path(descriptions))
        labels = set(results["data"][1])
        return [
            (row[c], row[names[0]])
            for row in rows
            for c in names[1:]
            if row.get(names[0]) in labels and row.get(c) and row[c] != "其他"
        ]

    def fit(results):
        texts, labels = results["data"]
        return training.train_table(
            texts, labels, unlabelled=results["unlabelled"], descriptions=results["descriptions"]
        )

    results = _steps(
        "训练分类模型",
        [
            ("data", read),
            ("unlabelled", read_unlabelled),
            ("descriptions", read_descriptions),
            ("model", fit),
        ],
    )
    texts, labels = results["data"]
    model, metrics = results["model"]
    urgency, urgency_meta = _urgency_model()
    bundle = ModelBundle(model, urgency=urgency)
    meta = {
        "source": click.format_filename(input_path),
        "text_columns": columns,
        "label_column": label_column,
        "training_rows": len(texts),
        "unlabelled_rows": len(results["unlabelled"]),
        "training_sha256": training.digest(texts, labels),
        "metrics": metrics or {},
        "urgency": urgency_meta,
    }
    version = _save(get_session(), bundle, meta, activate)
    _report(version, metrics, activate)


def _urgency_model():
    """A city's history has no emergency labels: its model keeps the active version's emergency
    model, or one learned from the seed corpus (seconds), never the rules alone."""
    session = _session()
    version = model_versions.active_version(session)
    if version is not None:
        bundle, meta = model_versions.load(session, _models_dir(), version)
        if getattr(bundle, "urgency", None) is not None:
            return bundle.urgency, {**meta.get("urgency", {}), "from_version": version}
    return training.train_urgency()


@group.command("train-default")
@click.option("--activate/--no-activate", default=True, show_default=True)
def train_default(activate):
    """Train the out-of-the-box model from the seed corpus and save it as a new version."""
    results = _steps("训练默认模型", [("bundle", lambda _: training.train_default())])
    bundle, meta = results["bundle"]
    version = _save(_session(), bundle, meta, activate)
    _report(version, None, activate)


@group.command("train-router")
@click.option("--activate/--no-activate", default=True, show_default=True)
def train_router(activate):
    """Learn which unit handles what from dispatched tickets; saved with the active model."""
    session, version, bundle, meta = _active()
    lead = aliased(Unit)
    rows = session.execute(
        sa.select(Category.code, Area.code, Ticket.request_type, Ticket.channel, lead.code)
        .join(Category, Ticket.category_id == Category.id)
        .outerjoin(Area, Ticket.area_id == Area.id)
        .join(lead, Ticket.lead_unit_id == lead.id)
    ).all()
    if not rows:
        raise click.ClickException("还没有已派单的工单可供学习")
    records = [
        record_from_codes(category, area, {"request_type": rt.value, "channel": ch.value})
        for category, area, rt, ch, _ in rows
    ]
    bundle.router = LearnedRouter().fit(records, [unit for *_, unit in rows])
    meta = {**meta, "router_tickets": len(rows), "based_on": version}
    new_version = model_versions.save(
        session, None, bundle, _models_dir(), meta, active=activate, reason="学习派单后启用"
    )
    audit(
        session, None, "classifier.train_router", target=new_version, payload={"tickets": len(rows)}
    )
    session.commit()
    _report(new_version, None, activate)


@group.command("eval")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True))
@click.option("--text-columns", required=True)
@click.option("--label-column", required=True)
@click.option("--version", help="Model version (default: the active one).")
@click.option(
    "--as",
    "predicted_as",
    type=click.Choice(["code", "top-name"]),
    default="code",
    show_default=True,
    help="top-name: map predicted codes to top-level category names (01 → 城乡建设).",
)
def evaluate(input_path, text_columns, label_column, version, predicted_as):
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    session = _session()
    version = version or model_versions.active_version(session)
    if version is None:
        raise click.ClickException("没有启用的模型，请用 --version 指定")
    try:
        bundle, _ = model_versions.load(session, _models_dir(), version)
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    texts, labels = _read_table(input_path, _columns(text_columns), label_column)
    model = bundle.category
    if predicted_as == "top-name":
        model = training.TopLevelView(model, training.category_tree(), set(labels))
    metrics = training.evaluate(model, texts, labels)
    click.echo(f"模型 {version}，{len(texts)} 条")
    click.echo(format_metrics(metrics))


def format_metrics(metrics):
    lines = [f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}", ""]
    width = max(len(c) for c in metrics["labels"]) + 2
    lines.append(f"{'class':<{width}} precision  recall     f1  support")
    for label, m in metrics["per_class"].items():
        lines.append(
            f"{label:<{width}} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} "
            f"{m['support']:8d}"
        )
    lines += ["", "confusion (rows: truth, columns: prediction, same order as above)"]
    lines += ["  " + " ".join(f"{n:4d}" for n in row) for row in metrics["confusion"]]
    return "\n".join(lines)


def _report(version, metrics, activated):
    click.echo(f"已保存模型版本 {version}" + ("（已启用）" if activated else ""))
    if metrics:
        click.echo("留出集评估：")
        click.echo(format_metrics(metrics))


@group.command("retrain")
def retrain():
    """Retrain now from the centre's confirmed tickets, as the weekly schedule does
    (``dispatch.learning``): a candidate trained on all but the recent days, judged against
    the active model on those days, activated if no headline figure drops beyond the
    tolerance, else kept as a candidate. Prints the decision and both models' figures."""
    session = _session()
    row = learning.request(session, None, "command")
    run_id = row.id
    session.commit()
    click.echo(f"重新训练（第 {run_id} 次）：读取已确认的工单并训练，约需一两分钟……")
    run = learning.run_due(current_app.extensions["hotline.db"], models_dir=_models_dir())
    if run is None:
        session.rollback()
        busy = learning.unfinished(session)
        since = busy.started_at.strftime("%Y-%m-%d %H:%M") if busy and busy.started_at else "—"
        raise click.ClickException(f"另一个进程正在重新训练（开始于 {since} UTC），请稍后再看结果")
    click.echo(format_run(run))
    if run.status == learning.FAILED:
        raise SystemExit(1)


def format_run(run):
    """The decision, the held-out period and the figures table (candidate vs active)."""
    status = learning.STATUS_LABELS.get(run.status, run.status)
    lines = [f"结果：{status}（用时 {run.seconds:.0f} 秒）"]
    lines.append(f"原因：{run.reason}")
    if run.candidate_version:
        lines.append(f"候选版本：{run.candidate_version}")
    lines.append(f"对比的在用版本：{run.active_version or '—'}")
    figures = run.figures or {}
    holdout, training_part = figures.get("holdout") or {}, figures.get("training") or {}
    if holdout:
        lines.append(
            f"留出评估：{_day(holdout.get('from'))} 至 {_day(holdout.get('to'))}，"
            f"{holdout.get('tickets', 0)} 张已确认工单；训练：{training_part.get('tickets', 0)} 张"
        )
    rows = learning.figure_rows(figures)
    if rows:
        widths = (20, 9, 9, 9, 6)
        lines.append(_line(("指标", "新模型", "在用模型", "变化", "样本"), widths))
        for row in rows:
            cells = (
                row["name"],
                _figure(row["candidate"]),
                _figure(row["active"]),
                _change(row["change"]),
                str(row["n"]),
            )
            lines.append(_line(cells, widths))
    if figures.get("tolerance") is not None:
        lines.append(f"允许下降幅度：{figures['tolerance']:g}")
    return "\n".join(lines)


def _line(cells, widths):
    """Cells padded to ``widths`` terminal columns (a Chinese character takes two): the
    first to the left, the others to the right."""

    def width(text):
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    first, *rest = cells
    out = first + " " * (widths[0] - width(first))
    for cell, columns in zip(rest, widths[1:], strict=True):
        out += " " * (columns - width(cell)) + cell
    return out


def _day(moment):
    return moment[:10] if moment else "—"


def _figure(value):
    return "—" if value is None else f"{value:.3f}"


def _change(value):
    return "" if value is None else f"{value:+.3f}"


@group.command("list")
def list_versions():
    """Registered versions, the active one marked; then the latest switches."""
    session = _session()
    active = model_versions.active_version(session)
    for row in model_versions.versions(session):
        meta = row.meta or {}
        mark = "*" if row.version == active else " "
        click.echo(
            f"{mark} {row.version}  {meta.get('source', '')}  {meta.get('training_rows')} 条"
        )
    switches = model_versions.activations(session, limit=10)
    if switches:
        click.echo("\n最近的切换：")
    for row in switches:
        when = row.activated_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"  {when}  {row.previous or '—'} → {row.version}  {row.reason or ''}")


@group.command("activate")
@click.argument("version")
@click.option("--reason", help="Why (kept with the switch), e.g. 回退：新版本误判增多.")
def activate(version, reason):
    """Make VERSION the active model; running servers on every host switch within seconds.
    A rollback is activating an earlier version with a reason."""
    session = _session()
    try:
        model_versions.activate(session, None, version, reason=reason)
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    session.commit()
    click.echo(f"已启用模型版本 {version}")


@group.command("rollback")
@click.option("--reason", required=True, help="Why the current version goes.")
def rollback(reason):
    """Activate again the version that was active before the current one."""
    session = _session()
    try:
        version, previous = model_versions.roll_back(session, None, reason=reason)
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    session.commit()
    click.echo(f"已回退到模型版本 {version}（停用 {previous}）")


@group.command("import")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False),
    help="A models folder of an older release (default: CLASSIFIER_MODELS_DIR).",
)
def import_folder(directory):
    """Register the versions of a models folder in the database and, while the database names
    no active version, activate the folder's ACTIVE one. Running it again changes nothing."""
    session = get_session()
    registered, activated = model_versions.import_folder(session, None, directory or _models_dir())
    session.commit()
    click.echo(
        f"已导入 {len(registered)} 个模型版本" + (f"，已启用 {activated}" if activated else "")
    )
