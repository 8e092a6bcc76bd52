"""The ``hotline`` command: database, seed data, users, server, simulator, ranking export."""

import io
import json
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from werkzeug.serving import WSGIRequestHandler, run_simple

from dashboards import hotspots
from dashboards import publisher as board_publisher
from dispatch import open311
from hotline import backup, logs, migrate, model_versions, seed, tabular, users
from hotline.db import get_session, local_datetime
from hotline.enums import SERVICE_ROLES, Role
from hotline.errors import HotlineError
from hotline.models import User
from server import cli_attachments, cli_classifier, cli_retention, history, scheduler
from server.app import create_app


def _cli_app():
    # Commands are short-lived; the demo server loads the model on its first ticket.
    return create_app({"CLASSIFIER_PRELOAD": False})


@click.group(cls=FlaskGroup, create_app=_cli_app, add_version_option=False)
def main():
    """12345 热线工单系统 — hotline ticket dispatch and grid response."""


main.add_command(cli_classifier.group)
main.add_command(cli_attachments.group)
main.add_command(cli_retention.group)


@main.group()
def db():
    """Database migrations (Alembic)."""


@db.command()
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision):
    """Migrate the database up to REVISION (default: the newest)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)


@db.command()
@click.argument("revision")
@with_appcontext
def downgrade(revision):
    """Migrate the database down to REVISION ("base" removes every table)."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)


@db.command()
@with_appcontext
def current():
    """Show the revision the database is at."""
    migrate.current(current_app.config["DATABASE_URL"])


@db.command()
@click.option("-m", "--message", required=True)
@with_appcontext
def revision(message):
    """Write a new migration from the difference between the models and the database."""
    migrate.revision(current_app.config["DATABASE_URL"], message)


@main.command("backup")
@click.argument("destination", type=click.Path(file_okay=True, dir_okay=True))
@with_appcontext
def backup_command(destination):
    """Back up the database, attachments and models into one tar file (备份).

    DESTINATION is a directory (the file is named hotline-backup-<UTC time>.tar in it) or a
    file name ending in .tar. Safe while the application runs. See hotline/backup.py."""
    try:
        result = backup.create(current_app.config, destination)
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    for line in result.lines:
        click.echo(line)


@main.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False))
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite a database that is not empty (without it, the restore says what it holds "
    "and stops).",
)
@with_appcontext
def restore_command(backup_file, force):
    """Restore a backup made by `hotline backup` (恢复). Every checksum is verified before
    anything is touched; the database is replaced all or nothing, then migrated to this
    version. Stop the web, scheduler and board-publisher processes first."""
    try:
        result = backup.restore(current_app.config, backup_file, force=force)
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    for line in result.lines:
        click.echo(line)


def _history_options(default_days):
    def decorate(command):
        command = click.option(
            "--seed",
            "history_seed",
            default=history.DEFAULT_SEED,
            show_default=True,
            help="Random seed of the generated history (same seed, same history).",
        )(command)
        return click.option(
            "--history-days",
            default=default_days,
            show_default=True,
            type=click.IntRange(0, 3660),
            help="Days of past tickets to generate through the real operations (0: none); "
            "nothing is added if a history is already there.",
        )(command)

    return decorate


def _make_history(days, history_seed):
    """Generate the history in one transaction of its own and print what it holds."""
    click.echo(f"生成近 {days} 天的演示历史（种子 {history_seed}）…")
    sys.stdout.flush()
    started = time.monotonic()
    # A session that publishes nothing: the past is not news for the boards or the senders.
    factory = current_app.extensions["hotline.db"]
    with factory(info={"publisher": None, "notifier": None}) as session:
        summary = history.generate(session, days=days, seed=history_seed)
        session.commit()
    for line in history.report(summary):
        click.echo(line)
    # The history's tickets grouped into hot issues at once (the scheduler's grouper then
    # replays what this stored).
    with factory(info={"publisher": None, "notifier": None}) as session:
        rebuilt = hotspots.rebuild(session)
        session.commit()
    click.echo(_rebuild_line(rebuilt))
    click.echo(f"  用时 {time.monotonic() - started:.1f} 秒")


@main.command("seed")
@click.option("--directory", default=str(seed.SEED_DIR), show_default=True)
@_history_options(default_days=0)
@with_appcontext
def seed_command(directory, history_days, history_seed):
    """Load areas, units, categories, catalogue, time limits and demo users (idempotent);
    with --history-days, also a realistic past of tickets (see server/history.py)."""
    session = get_session()
    counts = seed.load_all(session, directory)
    session.commit()
    for kind, count in counts.items():
        click.echo(f"{kind}: {count} new")
    if history_days:
        _make_history(history_days, history_seed)


@main.command("import")
@click.argument("kind")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check and show what would change; save nothing.")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="An option of this kind of import (see `hotline import-kinds`).",
)
@with_appcontext
def import_command(kind, files, dry_run, options):
    """Load FILES of KIND (areas, boundaries, grids, units, users, categories, routing,
    knowledge …): all or nothing, matched by code, with a row-by-row report of every error."""
    importer = _importer(kind)
    if not files and importer.files_required:
        raise click.ClickException(f"请指定要导入的文件（{importer.label}：{importer.accepts}）")
    values = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or name not in importer.options:
            known = "、".join(importer.options) or "无"
            raise click.ClickException(f"未知选项 {option!r}（{importer.label}的选项：{known}）")
        values[name] = value
    session = get_session()
    try:
        result = tabular.run(
            session,
            None,
            importer,
            tabular.sources_from_paths(files),
            dry_run=dry_run,
            options=values,
        )
    except tabular.ImportRefused as refused:
        for error in refused.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"未导入任何数据：共 {len(refused.errors)} 处错误") from None
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    for line in result.changes:
        click.echo(line)
    if result.more_changes:
        click.echo(f"……另有 {result.more_changes} 处变化")
    click.echo(f"{importer.label}：{result.summary()}")


@main.command("export")
@click.argument("kind")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def export_command(kind, output):
    """Write KIND as the file its import reads back (XLSX)."""
    importer = _importer(kind)
    if importer.export is None:
        raise click.ClickException(f"{importer.label}没有导出")
    Path(output).write_bytes(importer.export(get_session()))
    click.echo(f"已导出{importer.label}到 {output}")


@main.command("import-kinds")
@with_appcontext
def import_kinds_command():
    """What can be imported, the files each takes and its options."""
    for importer in tabular.importers(current_app).values():
        options = "；".join(f"{k}={v}" for k, v in importer.options.items())
        click.echo(
            f"{importer.kind}\t{importer.label}\t{importer.accepts}"
            + (f"\t选项：{options}" if options else "")
        )


def _importer(kind):
    kinds = tabular.importers(current_app)
    if kind not in kinds:
        raise click.ClickException(f"未知的导入类别 {kind!r}（可用：{'、'.join(kinds) or '无'}）")
    return kinds[kind]


@main.command("create-user")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in Role if r not in SERVICE_ROLES])
)
@click.option("--name", required=True, help="Real name shown to colleagues.")
@click.option("--unit", help="Unit code (required for unit_handler).")
@click.option("--grid", "grids", multiple=True, help="Grid code (grid_worker; repeatable).")
@click.option("--district", help="District code limiting a leader's view.")
@click.password_option(help="Asked for when not given.")
@with_appcontext
def create_user(username, role, name, unit, grids, district, password):
    """Create a user account (the same operation as the administration's 用户管理)."""
    session = get_session()
    role = Role(role)
    try:
        users.create_user(
            session,
            None,
            username=username,
            name=name,
            role=role,
            password=password,
            unit=unit,
            grids=grids,
            district=district,
        )
    except HotlineError as error:
        raise click.ClickException(_refusal(error)) from None
    session.commit()
    click.echo(f"已创建用户 {username}（{role.label}）")


@main.group("open311-key")
def open311_key():
    """Open311 GeoReport v2 API keys of other systems (the page 开放接口密钥 does the same)."""


@open311_key.command("create")
@click.argument("name")
@click.option("--note", help="Who the key is for (contact, purpose).")
@with_appcontext
def open311_key_create(name, note):
    """Make a key for the client NAME; the key alone is printed on the last line (shown once)."""
    session = get_session()
    try:
        row, key = open311.create_key(session, None, name, note)
    except HotlineError as error:
        raise click.ClickException(_refusal(error)) from None
    session.commit()
    click.echo(
        f"已为“{row.name}”新建开放接口密钥（开头 {row.key_prefix}），请妥善保存，此后无法再次查看："
    )
    click.echo(key)


@open311_key.command("list")
@with_appcontext
def open311_key_list():
    """Every key: name, first characters, created, last used, revoked."""
    timezone = current_app.config["TIMEZONE"]

    def local(moment):
        return f"{local_datetime(moment, timezone):%Y-%m-%d %H:%M}" if moment else "—"

    rows = open311.list_keys(get_session())
    if not rows:
        click.echo("还没有开放接口密钥")
    for row in rows:
        state = f"已吊销 {local(row.revoked_at)}" if row.revoked_at else "有效"
        click.echo(
            f"{row.name}\t{row.key_prefix}…\t新建 {local(row.created_at)}"
            f"\t最近使用 {local(row.last_used_at)}\t{state}"
        )


@open311_key.command("revoke")
@click.argument("name")
@with_appcontext
def open311_key_revoke(name):
    """Revoke the key of NAME: refused from now on (its tickets stay)."""
    session = get_session()
    try:
        row = open311.get_key(session, name)
        changed = open311.revoke_key(session, None, row)
    except HotlineError as error:
        raise click.ClickException(_refusal(error)) from None
    session.commit()
    click.echo(f"已吊销“{name}”的密钥" if changed else f"“{name}”的密钥此前已吊销")


def _refusal(error):
    """A refusal for the terminal: the message, and each field's own problem after it."""
    extra = [m for m in error.details.values() if isinstance(m, str) and m not in error.message]
    return "；".join([error.message, *extra])


@main.command("set-password")
@click.argument("username")
@click.password_option(help="Asked for when not given.")
@with_appcontext
def set_password_command(username, password):
    """Give a user a new password; every session of theirs ends at once."""
    session = get_session()
    user = _user(session, username)
    try:
        users.set_password(session, None, user, password)
    except HotlineError as error:
        raise click.ClickException(_refusal(error)) from None
    session.commit()
    click.echo(f"已为 {username} 设置新密码，其所有登录已结束")


@main.command("deactivate-user")
@click.argument("username")
@with_appcontext
def deactivate_user_command(username):
    """Stop a user from logging in; every session of theirs ends at once."""
    session = get_session()
    users.deactivate(session, None, _user(session, username))
    session.commit()
    click.echo(f"已停用用户 {username}，其所有登录已结束")


def _user(session, username):
    user = session.scalars(sa.select(User).where(User.username == username)).first()
    if user is None:
        raise click.ClickException(f"用户不存在：{username}")
    return user


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option(
    "--scheduler/--no-scheduler",
    "with_scheduler",
    default=True,
    show_default=True,
    help="Run the SLA timers inside the demo server.",
)
@_history_options(default_days=history.DEFAULT_DAYS)
@with_appcontext
def demo(host, port, with_scheduler, history_days, history_seed):
    """Migrate, seed, make the city's recent past, print the demo logins and serve on
    HOST:PORT."""
    migrate.upgrade(current_app.config["DATABASE_URL"])
    session = get_session()
    seed.load_all(session)
    session.commit()
    models_dir = current_app.config["CLASSIFIER_MODELS_DIR"]
    model_versions.import_at_start(session, models_dir)
    if model_versions.active_version(session) is None:
        click.echo("训练默认分类模型（首次启动，约需十秒）…")
        from classifier import training

        bundle, meta = training.train_default()
        model_versions.save(session, None, bundle, models_dir, meta, active=True)
        session.commit()
    if history_days:
        _make_history(history_days, history_seed)
    _show_sent_messages()
    url = f"http://{host}:{port}"
    click.echo(f"\n12345 热线工单系统已启动：{url}  (API: {url}/api/v1)")
    click.echo(f"登录：{url}/login（各角色登录后进入自己的工作台：受理台、派单台、待办工单 …）")
    click.echo(f"月度考核排名：{url}/reports/ranking（leader 或 supervisor 登录）")
    click.echo(f"数据库：{current_app.config['DATABASE_URL']}\n")
    click.echo("演示账号（密码均见下表）：")
    for role_label, username, password, name, unit in seed.demo_logins():
        click.echo(f"  {role_label:<8}\t{username:<12}\t{password}\t{name}\t{unit}")
    click.echo(
        f"\n模拟来电：在另一终端运行 .venv/bin/hotline simulate --url {url} --rate 2 --lifecycle\n"
    )
    sys.stdout.flush()
    app = current_app._get_current_object()
    if with_scheduler:
        # Demo mode: the SLA timers run in this process (production runs `hotline scheduler`).
        scheduler.start_in_process(app)
    # Demo mode: the live boards' publisher runs here too (production: `hotline board-publisher`).
    board_publisher.start_publisher(app)
    click.echo(f"实时大屏：{url}/boards（leader、dispatcher 或 supervisor 登录）")
    _serve(app, host, port)


def _show_sent_messages():
    """Demo mode: what the logging senders "send" (the citizens' codes included) shows in
    this terminal (``hotline.outbox_delivery``)."""
    import logging

    sent = logging.getLogger("hotline.outbox")
    if not sent.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s 通知发送（演示，未真正发出）%(message)s")
        )
        sent.addHandler(handler)
        sent.setLevel(logging.INFO)
        sent.propagate = False


def _serve(app, host, port, access_log=True):
    """Serve HTTP and the boards' Socket.IO endpoint: Werkzeug with a thread per connection,
    which is what Flask-SocketIO's threading mode (simple-websocket) runs on. (``run_simple``
    rather than ``socketio.run``: Flask ignores ``app.run`` inside a CLI command.)"""
    import logging

    # The application writes each request's access line (``hotline.observability``) in
    # LOG_FORMAT; Werkzeug's own would repeat it.
    logs.configure(app.config)
    if not access_log:
        logging.getLogger("hotline.access").setLevel(logging.WARNING)
    run_simple(host, port, app, threaded=True, request_handler=RequestLog)


class RequestLog(WSGIRequestHandler):
    """Werkzeug's access log without query strings: a list's filters may carry a requester's
    phone number (``/api/v1/tickets?phone=…``), and personal data stays out of logs."""

    def log_request(self, code="-", size="-"):
        full = self.path
        self.path = full.split("?", 1)[0]
        try:
            super().log_request(code, size)
        finally:
            self.path = full


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option(
    "--with-publisher",
    is_flag=True,
    help="Also push the live boards from this process (a single-process deployment).",
)
@with_appcontext
def serve(host, port, access_log, with_publisher):
    """Serve the web pages, the API and the live boards (no migration, no seed, no timers).

    Several `hotline serve` processes share board updates through Redis (set
    HOTLINE_REDIS_URL); run exactly one `hotline board-publisher` beside them, or give one
    single process --with-publisher."""
    app = current_app._get_current_object()
    if with_publisher:
        board_publisher.start_publisher(app)
    click.echo(f"12345 热线工单系统：http://{host}:{port}")
    sys.stdout.flush()
    _serve(app, host, port, access_log)


@main.command("board-publisher")
@with_appcontext
def board_publisher_command():
    """Push live board updates (one process per deployment, beside `hotline serve`).

    Listens to the ticket events on Redis (HOTLINE_REDIS_URL), recomputes the affected
    boards from the database and emits them through Socket.IO's Redis message queue."""
    import signal
    import threading

    app = current_app._get_current_object()
    if not app.config["REDIS_URL"]:
        raise click.ClickException(
            "需要设置 HOTLINE_REDIS_URL：实时大屏推送进程通过 Redis 接收工单事件并推送到各 Web 进程"
            "（单进程演示请用 hotline demo，它自带推送）"
        )
    logs.configure(app.config)
    publisher = board_publisher.start_publisher(app, standalone=True)
    click.echo("实时大屏推送已启动（Ctrl-C 退出）")
    sys.stdout.flush()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    publisher.stop()


@main.command("scheduler")
@click.option("--once", is_flag=True, help="Fire what is due now, print the totals and exit.")
@click.option("--interval", type=click.IntRange(1, 3600), help="Seconds between ticks.")
@click.option("--batch", type=click.IntRange(1, 100_000), help="Tickets per transaction.")
@with_appcontext
def scheduler_command(once, interval, batch):
    """Run the scheduler in the foreground: the SLA timers (预警, 超时, 催办, 督办, 回访任务),
    吹哨报到's timers, the knowledge base's expiry and review-due reminders (知识库到期复核),
    the hot issues' grouper, the outbox's sweep, the early warnings' scan (诉求激增, 突发事件),
    质检's daily sample, the personal-data retention job and the classifier's retraining
    (when asked for, or weekly). ``--once`` runs every one of these jobs once (for cron, or
    to catch up by hand) and prints their totals."""

    app = current_app._get_current_object()
    if interval:
        app.config["SCHEDULER_INTERVAL_SECONDS"] = interval
    if batch:
        app.config["SCHEDULER_BATCH"] = batch
    logs.configure(app.config)
    if once:
        result = scheduler.make_job(app)()
        click.echo(
            f"fired={result.fired} tickets={result.tickets} "
            f"max_lateness_s={result.max_lateness:.0f}"
        )
        summoned = scheduler.make_whistle_job(app)()
        click.echo(f"summons_fired={summoned.fired} summonses={summoned.tickets}")
        knowledge = scheduler.make_knowledge_job(app)()
        click.echo(f"knowledge_expired={knowledge.expired} knowledge_reminded={knowledge.reminded}")
        grouped = scheduler.make_hotspot_job(app)()
        click.echo(
            f"hotspots_added={grouped.added} hotspots_created={len(grouped.created)} "
            f"hotspots_grown={len(grouped.grown)}"
        )
        sent = scheduler.make_outbox_job(app)()
        click.echo(
            f"outbox_sent={sent.sent} outbox_retry={sent.retried} outbox_failed={sent.failed}"
        )
        scanned = scheduler.make_warning_job(app)()
        if scanned is None:
            click.echo("warnings_skipped=another-scheduler")
        else:
            click.echo(
                f"warnings_raised={len(scanned.raised)} warnings_updated={len(scanned.updated)}"
            )
        sampled = scheduler.make_inspection_job(app)()
        if sampled is None:
            click.echo("inspection_skipped=another-scheduler")
        else:
            click.echo(f"inspection_days={len(sampled.days)} inspection_sampled={sampled.sampled}")
        kept = scheduler.make_retention_job(app)()
        click.echo(f"retention_redacted={kept.tickets}" + (" (off)" if kept.skipped else ""))
        retrained = scheduler.make_learning_job(app)()
        click.echo(f"classifier_retrain={retrained.status if retrained else 'none'}")
        return
    click.echo(f"SLA 定时器每 {app.config['SCHEDULER_INTERVAL_SECONDS']} 秒检查一次（Ctrl-C 退出）")
    try:
        scheduler.build(app, blocking=True).start()
    except (KeyboardInterrupt, SystemExit):
        pass


@main.group("hotspots")
def hotspots_group():
    """Hot issues (热点问题): grouping the tickets of the same matter."""


def _rebuild_line(result):
    return (
        f"热点问题重新归并：窗口内工单 {result.tickets} 件，热点问题 {result.groups} 个"
        f"（新建 {len(result.created)}，保留 {len(result.kept)}，删除 {len(result.deleted)}，"
        f"无对应但经人工处理而保留 {len(result.untouched_kept)}）；"
        f"归属新增 {result.added}、移出 {result.removed}、改变 {result.moved}"
    )


@hotspots_group.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
@with_appcontext
def hotspots_rebuild(as_json):
    """Group the window's tickets again from scratch; supervisors' decisions (merged, split,
    handled, renamed) are kept."""
    session = get_session()
    result = hotspots.rebuild(session)
    session.commit()
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        click.echo(_rebuild_line(result))


@main.command()
@click.option("--url", default="http://127.0.0.1:5000", show_default=True)
@click.option("--username", default="operator", show_default=True)
@click.option("--password", default="demo-12345", show_default=True)
@click.option("--rate", default=1.0, show_default=True, help="Calls per second.")
@click.option("--count", default=0, show_default=True, help="Calls to make; 0 = until stopped.")
@click.option(
    "--lifecycle/--intake-only",
    default=False,
    show_default=True,
    help="Also dispatch, sign, finish and call back with the demo accounts.",
)
@click.option("--seed", "random_seed", default=None, type=int, help="Random seed.")
def simulate(url, username, password, rate, count, lifecycle, random_seed):
    """Feed realistic citizen calls to a running server through its API."""
    from server import simulate as sim

    sim.run(
        url,
        username,
        password,
        rate=rate,
        count=count,
        lifecycle=lifecycle,
        random_seed=random_seed,
        echo=click.echo,
    )


RANK_FORMATS = ("xlsx", "csv", "json")


@main.command("rank")
@click.option("--month", required=True, help="The month ranked, YYYY-MM (e.g. 2026-10).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(RANK_FORMATS),
    help="Output format (default: from the --output suffix, else json).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="File to write (xlsx needs one; json and csv go to stdout without it, or with '-').",
)
@click.option(
    "--freeze",
    is_flag=True,
    help="Freeze (publish) the month first; refused if already frozen or not over yet.",
)
@with_appcontext
def rank_command(month, output_format, output, freeze):
    """Export the mayor's monthly ranking (frozen snapshot if published, else live data).

    The JSON and the workbook list every unit's referrals to discipline inspection of the
    month (this is the operator's tool on the server, not a person's view: no district is
    left out), as they stood when a frozen month was frozen."""
    from dashboards import accountability, exports, ranking
    from hotline.db import utcnow

    try:
        year, number = ranking.parse_month(month)
    except HotlineError as error:
        raise click.ClickException(error.message) from None
    month = f"{year}-{number:02d}"
    to_stdout = output in (None, "-")
    if output_format is None:
        suffix = "" if to_stdout else Path(output).suffix.lstrip(".").lower()
        output_format = suffix if suffix in RANK_FORMATS else "json"
    if output_format == "xlsx" and to_stdout:
        raise click.UsageError("xlsx 格式须用 --output 指定输出文件，例如 --output 排名.xlsx")
    if not to_stdout and not Path(output).absolute().parent.is_dir():
        raise click.UsageError(f"输出目录不存在：{Path(output).parent}")
    config = current_app.config
    session = get_session()
    now = utcnow()
    try:
        if freeze:
            ranking.freeze(session, None, month, now=now, config=config)
            session.commit()
        result = ranking.load(session, month, now=now, config=config)
    except HotlineError as error:
        session.rollback()
        raise click.ClickException(error.message) from None
    timezone = config["TIMEZONE"]
    referrals = accountability.referrals(session, month, timezone, until=result.frozen_at)

    try:
        if output_format == "xlsx":
            exports.write_xlsx(result, output, timezone=timezone, referrals=referrals)
        else:
            if output_format == "json":
                text = json.dumps(
                    exports.ranking_to_dict(result, referrals), ensure_ascii=False, indent=2
                )
                data = (text + "\n").encode("utf-8")
            else:
                buffer = io.BytesIO()
                exports.write_csv(result, buffer)
                data = buffer.getvalue()
            if to_stdout:
                click.echo(data, nl=False)  # bytes go to the binary stdout as they are
            else:
                Path(output).write_bytes(data)
    except OSError as error:
        done = f"（{month} 排名已冻结）" if freeze else ""
        raise click.ClickException(f"无法写入 {output}：{error.strerror or error}{done}") from None

    zone = ZoneInfo(timezone)
    if result.frozen_at is not None:
        when = result.frozen_at.astimezone(zone)
        status = f"{month} 排名：已冻结发布的快照（冻结于 {when:%Y-%m-%d %H:%M}）"
        if freeze:
            status = f"已冻结 {month} 排名（冻结于 {when:%Y-%m-%d %H:%M}），输出为冻结快照"
    else:
        when = result.as_of.astimezone(zone)
        status = f"{month} 排名：实时数据，未冻结（截至 {when:%Y-%m-%d %H:%M}，数据仍可能变化）"
    click.echo(status, err=True)
    if not to_stdout:
        click.echo(f"已写入 {output}（{output_format}）", err=True)
