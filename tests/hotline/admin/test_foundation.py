"""The administration's foundation: tables people upload (CSV/XLSX, row-by-row reports),
the one way an import runs (all or nothing, dry run, audited), audited settings, reference
versions, the admin home and import pages."""

import io

import openpyxl
import pytest
import sqlalchemy as sa

from hotline import reference, settings, tabular
from hotline.enums import UnitKind
from hotline.errors import ValidationFailed
from hotline.models import AuditLog, Setting, Unit, User
from tests.helpers import is_postgres

COLUMNS = (
    tabular.Column("code", "单位编码", required=True),
    tabular.Column("name", "单位名称", required=True, aliases=("名称",)),
    tabular.Column("always_on", "全天候"),
)


def _xlsx(rows):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_csv_in_utf8_with_bom_and_in_gb18030_reads_the_same():
    text = "单位编码,名称,多余列\nU-A, 甲局 ,x\n\n,,\nU-B,乙局,y\n"
    for data in (("\ufeff" + text).encode("utf-8"), text.encode("gb18030")):
        table = tabular.read(data, "units.csv", COLUMNS)
        assert table.rows == [
            (2, {"code": "U-A", "name": "甲局"}),
            (5, {"code": "U-B", "name": "乙局"}),
        ]


def test_xlsx_numbers_and_empty_cells_become_text():
    data = _xlsx([["单位编码", "单位名称", "全天候"], [370705, "奎文区", None]])
    table = tabular.read(data, "units.xlsx", COLUMNS)
    assert table.rows == [(2, {"code": "370705", "name": "奎文区", "always_on": ""})]


def test_a_missing_required_column_names_the_column_and_the_expected_headers():
    with pytest.raises(tabular.ImportRefused) as refused:
        tabular.read("单位编码,电话\nU-A,1\n".encode(), "units.csv", COLUMNS)
    (error,) = refused.value.errors
    assert (error.file, error.row, error.column) == ("units.csv", 1, "单位名称")
    assert "单位编码、单位名称、全天候" in error.message
    assert refused.value.code == "IMPORT_INVALID"
    assert refused.value.details["errors"][0]["column"] == "单位名称"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "缺少表头"),
        ("单位编码,单位名称\n".encode(), "没有数据行"),
        (b"PK\x03\x04junk", "XLSX"),
    ],
)
def test_empty_and_broken_files_are_refused_in_words(data, message):
    with pytest.raises(tabular.ImportRefused) as refused:
        tabular.read(data, "x.csv", COLUMNS)
    assert message in str(refused.value.errors[0])


def test_an_export_reads_back_and_never_carries_a_formula():
    rows = [{"code": "U-A", "name": '=HYPERLINK("http://x")', "always_on": True}]
    data = tabular.write_xlsx(COLUMNS, rows)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert [c.value for c in sheet[2]] == ["U-A", '\'=HYPERLINK("http://x")', "是"]
    table = tabular.read(data, "back.xlsx", COLUMNS)
    assert table.rows[0][1]["code"] == "U-A"


def test_yes_no_and_lists():
    problems = tabular.Problems()
    assert tabular.yes_no(problems, "f", 2, "全天候", "是") is True
    assert tabular.yes_no(problems, "f", 2, "全天候", "") is False
    assert tabular.yes_no(problems, "f", 3, "全天候", "也许") is None
    assert str(problems.errors[0]) == "f，第 3 行，“全天候”列：应填“是”或“否”（现为“也许”）"
    assert tabular.split_list("370705、370702,370703；370704 370786") == [
        "370705",
        "370702",
        "370703",
        "370704",
        "370786",
    ]


def _load_units(session, actor, sources, options):
    """A small importer of units, as the real ones are written: check all, then upsert."""
    result = tabular.ImportResult("units")
    problems = tabular.Problems()
    ((name, data),) = sources
    table = tabular.read(data, name, COLUMNS)
    for row, values in table.rows:
        if not values["code"].startswith("U-"):
            problems.add(name, row, "单位编码", "应以 U- 开头")
    problems.check()
    for _, values in table.rows:
        unit = session.scalars(sa.select(Unit).where(Unit.code == values["code"])).first()
        if unit is None:
            session.add(
                Unit(code=values["code"], name=values["name"], kind=UnitKind.city_department)
            )
            result.created += 1
            result.note(f"新增 {values['code']}")
        elif unit.name != values["name"]:
            unit.name = values["name"]
            result.updated += 1
        else:
            result.unchanged += 1
    return result


IMPORTER = tabular.Importer("test-units", "测试单位", _load_units, columns=COLUMNS)


def _units(db, prefix="U-9"):
    return db.scalars(sa.select(Unit.code).where(Unit.code.startswith(prefix))).all()


def test_a_dry_run_changes_nothing_and_a_real_import_is_audited_and_idempotent(db, user):
    admin = user("admin")
    source = [("u.csv", "单位编码,单位名称\nU-91,甲\nU-92,乙\n".encode())]
    result = tabular.run(db, admin, IMPORTER, source, dry_run=True)
    assert (result.created, result.dry_run) == (2, True)
    assert result.summary().startswith("试运行（未保存）")
    assert _units(db) == []
    result = tabular.run(db, admin, IMPORTER, source)
    assert (result.created, result.updated) == (2, 0)
    assert sorted(_units(db)) == ["U-91", "U-92"]
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "import.test-units")).one()
    assert entry.payload["created"] == 2 and entry.target == "u.csv"
    again = tabular.run(db, admin, IMPORTER, source)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_one_bad_row_and_nothing_is_imported(db, user):
    source = [("u.csv", "单位编码,单位名称\nU-93,甲\nX-1,乙\nY-2,丙\n".encode())]
    with pytest.raises(tabular.ImportRefused) as refused:
        tabular.run(db, user("admin"), IMPORTER, source)
    assert [(e.row, e.column) for e in refused.value.errors] == [(3, "单位编码"), (4, "单位编码")]
    assert "共 2 处错误" in refused.value.message
    assert _units(db) == []


def test_settings_are_checked_all_at_once_audited_and_followed(db, user):
    admin = user("admin")
    assert settings.get(db, "ranking.weight_response") == 10
    with pytest.raises(ValidationFailed) as refused:
        settings.update(db, admin, {"ranking.weight_response": "abc", "ranking.min_sample": 0})
    assert set(refused.value.details) == {"ranking.weight_response", "ranking.min_sample"}
    assert "响应率权重须为整数" in refused.value.message
    assert db.scalar(sa.select(sa.func.count()).select_from(Setting)) == 0
    before = reference.versions(db)[reference.SETTINGS]
    changed = settings.update(db, admin, {"ranking.weight_response": "20", "ranking.list_size": 5})
    assert changed == {"ranking.weight_response": 20}  # 5 is the value already in force
    assert settings.get(db, "ranking.weight_response") == 20
    assert settings.group(db, "ranking.")["weight_response"] == 20
    assert reference.versions(db)[reference.SETTINGS] == before + 1
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "settings.update")).one()
    assert entry.payload["changes"] == {"ranking.weight_response": [10, 20]}
    assert entry.actor_id == admin.id


def test_a_combination_check_refuses_the_whole_change(db, user):
    def weights_not_all_zero(values):
        if not any(
            values[f"ranking.weight_{k}"] for k in ("response", "resolution", "satisfaction")
        ):
            raise ValidationFailed("三项权重不能都为 0")

    zero = {f"ranking.weight_{k}": 0 for k in ("response", "resolution", "satisfaction")}
    with pytest.raises(ValidationFailed, match="不能都为 0"):
        settings.update(db, user("admin"), zero, check=weights_not_all_zero)
    assert settings.get(db, "ranking.weight_resolution") == 45


def test_reference_stamps_change_with_every_bump(db):
    first = reference.stamp(db, reference.AREAS, reference.UNITS)
    reference.bump(db, reference.AREAS)
    second = reference.stamp(db, reference.AREAS, reference.UNITS)
    assert second[0] != first[0] and second[1] == first[1]
    # Each kind's mark is (version, moment of the bump).
    assert second[0][0] == first[0][0] + 1
    with pytest.raises(ValueError):
        reference.bump(db, "nonsense")


def test_the_administrator_lands_on_the_administration(client, web_login):
    response = web_login(client, "admin")
    assert response.headers["Location"] == "/admin/"
    page = client.get("/admin/").get_data(as_text=True)
    assert "系统管理" in page and "审计日志" in page and "数据导入导出" in page


def test_other_roles_may_not_open_the_administration(client, web_login):
    web_login(client, "supervisor")
    for path in ("/admin/", "/admin/imports", "/admin/audit/"):
        assert client.get(path).status_code == 403, path


@pytest.fixture
def test_importer(app):
    tabular.register(app, IMPORTER)
    yield IMPORTER
    app.extensions["hotline.importers"].pop(IMPORTER.kind)


def test_the_import_page_checks_then_imports(client, db, web_login, form_token, test_importer):
    web_login(client, "admin")
    assert "测试单位" in client.get("/admin/imports").get_data(as_text=True)
    path = "/admin/imports/test-units"
    token = form_token(client, path)
    bad = client.post(
        path,
        data={
            "csrf_token": token,
            "mode": "apply",
            "files": (io.BytesIO("单位编码,单位名称\nX,甲\n".encode()), "u.csv"),
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "未导入任何数据" in html and "应以 U- 开头" in html
    assert _units(db) == []
    good = io.BytesIO("单位编码,单位名称\nU-99,甲\n".encode())
    checked = client.post(
        path,
        data={"csrf_token": token, "mode": "check", "files": (good, "u.csv")},
        content_type="multipart/form-data",
    )
    assert "试运行（未保存）" in checked.get_data(as_text=True)
    assert _units(db) == []
    done = client.post(
        path,
        data={
            "csrf_token": token,
            "mode": "apply",
            "files": (io.BytesIO("单位编码,单位名称\nU-99,甲\n".encode()), "u.csv"),
        },
        content_type="multipart/form-data",
    )
    assert "已导入" in done.get_data(as_text=True)
    assert _units(db) == ["U-99"]


def test_an_import_without_a_file_or_token_is_refused(client, web_login, form_token, test_importer):
    web_login(client, "admin")
    path = "/admin/imports/test-units"
    assert client.post(path, data={"mode": "apply"}).status_code == 400  # no CSRF token
    token = form_token(client, path)
    response = client.post(path, data={"csrf_token": token, "mode": "apply"})
    assert response.status_code == 422
    assert "请选择要导入的文件" in response.get_data(as_text=True)
    assert client.get("/admin/imports/nonsense").status_code == 404


def test_the_side_menu_marks_the_section_of_a_sub_page():
    from hotline.web import AdminSection, current_section

    def section(endpoint):
        return AdminSection(endpoint, endpoint, "", frozenset())

    policies, calendar, users = (
        section("admin_time.policies"),
        section("admin_time.calendar"),
        section("admin_users.index"),
    )
    sections = [users, policies, calendar]
    assert current_section(sections, "admin_time.calendar") is calendar
    assert current_section(sections, "admin_time.policy_edit") is policies
    assert current_section(sections, "admin_time.calendar_day") is calendar
    assert current_section(sections, "admin_users.edit") is users
    assert current_section(sections, "admin.home") is None
    assert current_section(sections, "board.board_page") is None


def test_an_export_is_recorded(client, db, web_login, test_importer):
    from hotline.models import AuditLog

    exporting = tabular.Importer(
        "test-export", "测试导出", _load_units, export=lambda session: b"PK", columns=COLUMNS
    )
    tabular.register(client.application, exporting)
    try:
        web_login(client, "admin")
        assert client.get("/admin/imports/test-export/export").status_code == 200
    finally:
        client.application.extensions["hotline.importers"].pop("test-export")
    db.expire_all()
    entry = db.scalars(sa.select(AuditLog).where(AuditLog.action == "export.test-export")).one()
    assert entry.target == "测试导出"


def test_a_reader_between_a_change_and_its_commit_does_not_keep_the_old_values(
    committed_app, database_url
):
    """A board refresh in another thread reads the settings while an administrator's change
    is not yet committed: once it commits, the next read in this process has the new value
    at once (not after the counters' check interval)."""
    if not is_postgres(database_url):
        pytest.skip("SQLite runs one transaction at a time: no read falls between them")
    factory = committed_app.extensions["hotline.db"]
    with committed_app.app_context():
        writer, reader = factory(), factory()
        try:
            admin = writer.scalars(sa.select(User).where(User.username == "admin")).one()
            settings.update(writer, admin, {"ranking.list_size": 7})
            assert settings.get(reader, "ranking.list_size") == 5  # not committed yet
            reader.rollback()
            writer.commit()
            assert settings.get(reader, "ranking.list_size") == 7
            reader.rollback()
            settings.update(writer, admin, {"ranking.list_size": 5})
            writer.commit()
        finally:
            writer.close()
            reader.close()
            settings.clear()
