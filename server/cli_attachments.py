"""``hotline attachments …``: photos kept in files by an older release, into the database."""

import click
from flask import current_app
from flask.cli import AppGroup

from hotline import attachments
from hotline.db import get_session

group = AppGroup(
    "attachments", help="Photo attachments: move photos kept in files into the database."
)


@group.command("import-files")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="The folder the photos were kept in (default: ATTACHMENT_DIR).",
)
def import_files(directory):
    """Copy the photos of every attachment kept in the folder into the database (blobs);
    running it again copies nothing. The files stay: remove them once a backup holds the
    database."""
    directory = directory or current_app.config["ATTACHMENT_DIR"]
    counts = attachments.import_files(get_session(), directory)
    click.echo(
        f"已导入 {counts['copied']} 张照片，{counts['present']} 张已在数据库中"
        + (f"，{counts['missing']} 张在 {directory} 中找不到" if counts["missing"] else "")
        + (f"，{counts['damaged']} 张文件内容与其名称不符（未导入）" if counts["damaged"] else "")
    )
    if counts["missing"] or counts["damaged"]:
        raise SystemExit(1)
