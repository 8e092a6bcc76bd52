"""The administration's home page, and the import pages every kind of import shares
(upload → check → see what would change → import), over ``hotline.tabular``."""

import io

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_file,
)

from hotline import tabular, web
from hotline.audit import audit
from hotline.db import get_session
from hotline.enums import Role
from hotline.errors import ValidationFailed
from hotline.web import page_for

ADMIN = (Role.admin,)
#: Files per upload (a division table may come as streets + villages).
MAX_FILES = 5
#: Largest upload of an import, in bytes (a big city's division tables are under 1 MB; the
#: page-form body limit, ``attachments.allow_upload``, is a little above this).
MAX_IMPORT_BYTES = 20 * 1024 * 1024


def create_blueprint():
    bp = Blueprint("admin", __name__, url_prefix="/admin")
    bp.add_url_rule("/", view_func=home)
    bp.add_url_rule("/imports", view_func=imports)
    bp.add_url_rule("/imports/<kind>", view_func=import_page, methods=["GET", "POST"])
    bp.add_url_rule("/imports/<kind>/export", view_func=export)
    web.add_to_menu(bp, "home", "系统管理", {Role.admin}, home_of={Role.admin})
    web.add_to_admin(
        bp, "imports", "数据导入导出", "导入区划、边界、网格、单位、用户、分类、派单目录和知识库"
    )
    return bp


@page_for(*ADMIN)
def home():
    db = get_session()
    sections = [s for s in web.admin_sections(g.user) if s.endpoint != "admin.home"]
    return render_template("admin/home.html", sections=sections, warnings=web.admin_warnings(db))


@page_for(*ADMIN)
def imports():
    kinds = tabular.importers(current_app).values()
    return render_template("admin/imports.html", kinds=kinds)


def _importer_or_404(kind):
    importer = tabular.importers(current_app).get(kind)
    if importer is None:
        abort(404)
    return importer


@page_for(*ADMIN)
def import_page(kind):
    importer = _importer_or_404(kind)
    if request.method == "GET":
        return render_template("admin/import.html", importer=importer, options={})
    options = {name: request.form.get(name, "").strip() for name in importer.options}
    dry_run = request.form.get("mode") != "apply"
    result, errors, message = None, [], None
    try:
        sources = _uploaded_sources(required=importer.files_required)
        result = tabular.run(
            get_session(), g.user, importer, sources, dry_run=dry_run, options=options
        )
    except tabular.ImportRefused as refused:
        errors, message = refused.errors, refused.message
    except ValidationFailed as exc:
        message = exc.message
    status = 200 if result else 422
    return (
        render_template(
            "admin/import.html",
            importer=importer,
            options=options,
            result=result,
            errors=errors,
            message=message,
        ),
        status,
    )


def _uploaded_sources(*, required=True):
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files and required:
        raise ValidationFailed("请选择要导入的文件", code="IMPORT_NO_FILE")
    if len(files) > MAX_FILES:
        raise ValidationFailed(f"一次最多导入 {MAX_FILES} 个文件", code="IMPORT_TOO_MANY_FILES")
    sources, total = [], 0
    for upload in files:
        data = upload.read(MAX_IMPORT_BYTES + 1)
        total += len(data)
        if total > MAX_IMPORT_BYTES:
            raise ValidationFailed(
                f"文件过大（合计不能超过 {MAX_IMPORT_BYTES // 1024 // 1024} MB）",
                code="IMPORT_TOO_LARGE",
            )
        sources.append((upload.filename, data))
    return sources


@page_for(*ADMIN)
def export(kind):
    importer = _importer_or_404(kind)
    if importer.export is None:
        abort(404)
    db = get_session()
    data = importer.export(db)
    # Exports hold personal data (staff names and phones): who downloaded what is recorded.
    audit(db, g.user, f"export.{importer.kind}", target=importer.label)
    db.commit()
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"{importer.label}.xlsx",
    )
