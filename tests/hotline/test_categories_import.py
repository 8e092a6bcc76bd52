"""Importing and exporting the category tree (``hotline import categories``): the competition's
附件1.csv (names only, codes generated, matched by name path) and our own export (matched by
code); all or nothing, with a row-by-row report; running it again changes nothing."""

import csv
import io
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from hotline import categories, tabular
from hotline.models import AuditLog, Category

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
ATTACHMENT_1 = DATA_DIR / "teddycup2020c" / "附件1.csv"


def run(db, admin, files, *, dry_run=False):
    return tabular.run(db, admin, categories.IMPORTER, files, dry_run=dry_run)


def csv_bytes(rows, *, encoding="utf-8-sig"):
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def by_code(db):
    db.expire_all()
    return {c.code: c for c in db.scalars(sa.select(Category))}


def paths(db):
    rows = by_code(db)
    return {categories.path_names(c, rows): c for c in rows.values()}


def test_names_only_table_matches_by_path_and_generates_codes(db, user):
    admin = user("admin")
    table = csv_bytes(
        [
            ["一级分类", "二级分类", "三级分类"],
            ["城乡建设", "供水", "停水"],  # exists: 010201
            ["城乡建设", "供水", "二次供水"],  # new leaf under 0102
            ["城乡建设", "安全生产", "事故处理"],  # new 二级 and 三级
            ["城乡建设", "安全生产", "安全隐患"],
            ["应急管理", "", ""],  # a new 一级 on its own
        ],
        encoding="gb18030",
    )
    count = len(by_code(db))
    dry = run(db, admin, [("tree.csv", table)], dry_run=True)
    assert (dry.created, dry.updated, dry.unchanged) == (5, 0, 3)
    assert len(by_code(db)) == count  # a dry run writes nothing
    result = run(db, admin, [("tree.csv", table)])
    assert result.counts() == dry.counts()
    found = paths(db)
    assert found[("城乡建设", "供水", "二次供水")].code == "010206"
    assert found[("城乡建设", "供水", "二次供水")].utility is True  # as its parent
    assert found[("城乡建设", "安全生产")].code == "0109"
    assert found[("城乡建设", "安全生产", "安全隐患")].code == "010902"
    assert found[("应急管理",)].code == "16"
    assert any("新增 三级分类 010901 城乡建设 › 安全生产 › 事故处理" in x for x in result.changes)
    created = db.scalars(sa.select(AuditLog).where(AuditLog.action == "category.create")).all()
    assert len(created) == 5
    again = run(db, admin, [("tree.csv", table)])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 8)


def test_names_only_row_errors_refuse_everything(db, user):
    table = csv_bytes(
        [
            ["一级分类", "二级分类", "三级分类"],
            ["城乡建设", "", "孤儿"],
            ["新类", "名" * 60, ""],
            ["好的", "好的二级", "好的三级"],
        ]
    )
    count = len(by_code(db))
    with pytest.raises(tabular.ImportRefused) as caught:
        run(db, user("admin"), [("bad.csv", table)])
    errors = [(e.row, e.column) for e in caught.value.errors]
    assert errors == [(2, "二级分类"), (3, "二级分类")]
    assert "上级分类为空" in caught.value.errors[0].message
    assert "不能超过 50 字" in caught.value.errors[1].message
    assert len(by_code(db)) == count


def test_export_reads_back_unchanged_and_edits_apply_by_code(db, user):
    admin = user("admin")
    exported = categories.IMPORTER.export(db)
    sheet = openpyxl.load_workbook(io.BytesIO(exported)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["编码", "名称", "上级编码", "水电气热", "状态"]
    assert ["0102", "供水", "01", "是", "启用"] in rows
    total = len(rows) - 1
    same = run(db, admin, [("分类.xlsx", exported)])
    assert (same.created, same.updated, same.unchanged) == (0, 0, total)
    table = csv_bytes(
        [
            ["编码", "名称", "上级编码", "水电气热", "状态"],
            ["010201", "计划停水", "0102", "是", "启用"],
            ["0101", "市政设施", "01", "否", "停用"],
            ["010207", "水费发票", "0102", "", ""],
            ["", "水表更换", "0102", "", ""],
        ]
    )
    result = run(db, admin, [("edit.csv", table)])
    assert (result.created, result.updated, result.unchanged) == (2, 2, 0)
    rows = by_code(db)
    assert rows["010201"].name == "计划停水"
    assert not rows["0101"].active and not rows["010101"].active  # the subtree goes too
    assert rows["010207"].name == "水费发票" and rows["010207"].utility
    assert rows["010208"].name == "水表更换"
    actions = {a.action for a in db.scalars(sa.select(AuditLog))}
    assert {"category.rename", "category.deactivate", "category.create"} <= actions
    again = run(db, admin, [("edit.csv", table)])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


def test_code_table_row_errors_name_file_row_and_column(db, user):
    table = csv_bytes(
        [
            ["编码", "名称", "上级编码", "水电气热", "状态"],
            ["0102", "", "01", "", ""],
            ["01x", "坏编码", "", "", ""],
            ["010299", "错上级", "0103", "", ""],
            ["020901", "无上级", "0209", "", ""],
            ["010206", "状态错", "0102", "也许", "暂停"],
            ["0103", "供水", "01", "", ""],
            ["010101", "下级启用", "0101", "", "启用"],
            ["0101", "市政设施", "01", "", "停用"],
        ]
    )
    count = len(by_code(db))
    with pytest.raises(tabular.ImportRefused) as caught:
        run(db, user("admin"), [("codes.csv", table)])
    found = {(e.row, e.column) for e in caught.value.errors}
    assert found == {
        (2, "名称"),
        (3, "编码"),
        (4, "上级编码"),
        (5, "上级编码"),
        (6, "水电气热"),
        (6, "状态"),
        (7, "名称"),
        (8, "状态"),
    }
    assert str(caught.value.errors[0]).startswith("codes.csv，第 2 行，“名称”列：")
    assert len(by_code(db)) == count


def test_unknown_headers_are_refused(db, user):
    table = csv_bytes([["类别", "说明"], ["a", "b"]])
    with pytest.raises(tabular.ImportRefused) as caught:
        run(db, user("admin"), [("x.csv", table)])
    assert "无法识别的表头" in caught.value.errors[0].message


@pytest.fixture
def attachment_1():
    if not ATTACHMENT_1.exists():
        pytest.skip(
            f"附件1.csv not found at {ATTACHMENT_1} (the shared data folder ../shared/data)"
        )
    return [(ATTACHMENT_1.name, ATTACHMENT_1.read_bytes())]


def test_attachment_1_dry_run_real_and_idempotent(db, user, attachment_1):
    """The real tree: 15 一级, 103/390 distinct 二级/三级 names, which as a tree are 118 二级
    and 517 三级 nodes (names repeat under different parents)."""
    admin = user("admin")
    wanted = [tuple(r) for r in csv.reader(io.StringIO(attachment_1[0][1].decode("utf-8-sig")))]
    wanted = wanted[1:]
    assert len({r[0] for r in wanted}) == 15
    assert (len({r[1] for r in wanted}), len({r[2] for r in wanted})) == (103, 390)
    count = len(by_code(db))
    dry = run(db, admin, attachment_1, dry_run=True)
    assert dry.created + dry.unchanged == 15 + 118 + 517
    assert dry.updated == 0
    assert len(by_code(db)) == count
    result = run(db, admin, attachment_1)
    assert result.counts() == dry.counts()
    found = paths(db)
    for first, second, third in wanted:
        assert (first, second, third) in found
    assert len({p for p in found if len(p) == 1 and p[0] in {r[0] for r in wanted}}) == 15
    assert len({p[:2] for p in found if len(p) == 3 and p in set(wanted)}) == 118
    assert len(by_code(db)) == count + result.created
    again = run(db, admin, attachment_1)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 650)
    for row in by_code(db).values():
        if row.level > 1:
            assert row.parent.code == row.code[:-2]


def test_attachment_1_with_a_broken_row_imports_nothing(db, user, attachment_1):
    name, data = attachment_1[0]
    text = data.decode("utf-8-sig") + "交通运输,,孤立三级\n"
    count = len(by_code(db))
    with pytest.raises(tabular.ImportRefused) as caught:
        run(db, user("admin"), [(name, text.encode("utf-8"))])
    (error,) = caught.value.errors
    assert (error.file, error.row, error.column) == (name, 519, "二级分类")
    assert len(by_code(db)) == count
