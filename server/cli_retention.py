"""``hotline retention run [--dry-run]``: the personal-data retention job (个人信息保护,
``hotline.retention``) by hand, printing its report."""

import json

import click
from flask import current_app
from flask.cli import AppGroup

from hotline import retention
from hotline.db import get_session

group = AppGroup(
    "retention", help="个人信息保护: redact requesters' data past the retention period."
)


@group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be redacted; change nothing.")
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=retention.BATCH,
    show_default=True,
    help="Tickets per transaction.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run_command(dry_run, batch, as_json):
    """Redact (or with --dry-run count) the personal data of every ticket closed before the
    retention period (系统管理 › 个人信息保护). Runs even when the daily job is switched off:
    a person asked for it. Audited; each batch is recorded as a retention run."""
    session = get_session()
    switched_off = not retention.enabled(session)
    session.close()
    report = retention.run(
        current_app.extensions["hotline.db"], dry_run=dry_run, batch=batch, force=True
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    if switched_off:
        click.echo("（每日自动脱敏已关闭；本次为手动运行）")
    for line in report.lines():
        click.echo(line)
