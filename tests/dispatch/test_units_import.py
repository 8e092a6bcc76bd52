"""``hotline import units`` / ``export units``: upsert by code, all or nothing, a row-by-row
report, and no deactivation of a unit that still holds open tickets."""

import pytest
import sqlalchemy as sa

from dispatch import operations as ops
from dispatch import units
from hotline import tabular
from hotline.models import AuditLog, Unit
from tests.dispatch.common import DONGGUAN, STREETLIGHT

HEADER = "单位编码,单位名称,类型,服务区域,全天候,值班电话,状态\n"


def csv(*lines):
    return [("单位.csv", (HEADER + "\n".join(lines) + "\n").encode("utf-8"))]


def unit(db, code):
    db.expire_all()
    return db.scalars(sa.select(Unit).where(Unit.code == code)).first()


def run(db, user, sources, dry_run=False):
    return tabular.run(db, user("admin"), units.IMPORTER, sources, dry_run=dry_run)


def test_export_reads_back_unchanged(db, user):
    exported = units.export_units(db)
    result = run(db, user, [("承办单位.xlsx", exported)])
    total = db.scalar(sa.select(sa.func.count()).select_from(Unit))
    assert (result.created, result.updated, result.unchanged) == (0, 0, total)
    rows = units.export_rows(db)
    street = next(r for r in rows if r["code"] == DONGGUAN)
    assert street == {
        "code": DONGGUAN,
        "name": unit(db, DONGGUAN).name,
        "kind": "街道乡镇",
        "areas": ["370705001"],
        "always_on": False,
        "phones": [],
        "status": "启用",
    }


def test_dry_run_saves_nothing_and_a_real_run_is_idempotent(db, user):
    sources = csv(
        "U-NEW,潍坊市新设局,市直部门,370705、370702,否,13805360000；0536-8234567,启用",
        "U-CGJ,潍坊市城市管理局,市直部门,,否,13900000000,",
    )
    preview = run(db, user, sources, dry_run=True)
    assert (preview.created, preview.updated, preview.dry_run) == (1, 1, True)
    assert unit(db, "U-NEW") is None

    done = run(db, user, sources)
    assert (done.created, done.updated, done.unchanged) == (1, 1, 0)
    created = unit(db, "U-NEW")
    assert created.phones == ["13805360000", "05368234567"]
    assert sorted(a.code for a in created.areas) == ["370702", "370705"]
    assert unit(db, "U-CGJ").phones == ["13900000000"]
    assert any("值班电话" in line for line in done.changes)
    actions = db.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-3:] == ["unit.create", "unit.import", "import.units"]

    again = run(db, user, sources)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_every_bad_row_is_reported_and_nothing_is_saved(db, user, make_ticket):
    ticket = make_ticket(user("operator"), category=STREETLIGHT, area="370705001")
    ops.dispatch(db, user("dispatcher"), ticket, lead=unit(db, DONGGUAN))
    db.flush()
    sources = csv(
        "U-A,甲单位,大队,,否,,启用",
        "U-B,乙单位,市直部门,999999,否,,",
        "U-C,丙单位,市直部门,,也许,12,",
        "U-A,甲单位重复,市直部门,,否,,",
        f"{DONGGUAN},东关街道办事处,街道乡镇,370705001,否,,停用",
        "U-D,丁街道,街道乡镇,370705,否,,",
        "U-HOTLINE,热线,热线中心,,是,,停用",
        ",无编码单位,市直部门,,否,,",
    )
    with pytest.raises(tabular.ImportRefused) as refused:
        run(db, user, sources)
    found = {(e.row, e.column) for e in refused.value.errors}
    assert found == {
        (2, "类型"),
        (3, "服务区域"),
        (4, "全天候"),
        (4, "值班电话"),
        (5, "单位编码"),
        (6, "状态"),
        (7, "服务区域"),
        (8, "状态"),
        (9, "单位编码"),
    }
    messages = {(e.row, e.column): e.message for e in refused.value.errors}
    assert "1 件在办工单" in messages[(6, "状态")]
    assert "热线中心不能停用" in messages[(8, "状态")]
    assert unit(db, "U-B") is None
    assert unit(db, DONGGUAN).active


def test_a_unit_without_open_tickets_is_deactivated_by_import(db, user):
    result = run(db, user, csv("U-STHJ,潍坊市生态环境局,市直部门,,否,,停用"))
    assert result.deactivated == 1
    assert not unit(db, "U-STHJ").active
    assert "派单目录中仍有" in result.changes[0]
    back = run(db, user, csv("U-STHJ,潍坊市生态环境局,市直部门,,否,,启用"))
    assert back.updated == 1 and unit(db, "U-STHJ").active


def test_only_administrators_import(db, user):
    with pytest.raises(Exception, match="只有系统管理员"):
        tabular.run(db, user("dispatcher"), units.IMPORTER, csv("U-X,某单位,市直部门,,否,,"))
    assert unit(db, "U-X") is None


def test_the_command_line_exports_and_imports_units(tmp_path):
    from click.testing import CliRunner

    from server.cli import main

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"

    def invoke(*args):
        result = CliRunner().invoke(
            main,
            list(args),
            env={"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "cli-test"},
            catch_exceptions=False,
        )
        return result

    assert invoke("db", "upgrade").exit_code == 0
    assert invoke("seed").exit_code == 0
    exported = tmp_path / "承办单位.xlsx"
    assert invoke("export", "units", "-o", str(exported)).exit_code == 0
    checked = invoke("import", "units", str(exported), "--dry-run")
    assert checked.exit_code == 0, checked.output
    assert "试运行（未保存）：新增 0 条，更新 0 条" in checked.output

    changed = tmp_path / "phones.csv"
    changed.write_bytes(csv("U-CGJ,潍坊市城市管理局,市直部门,,否,13805360000,启用")[0][1])
    done = invoke("import", "units", str(changed))
    assert done.exit_code == 0, done.output
    assert "更新 承办单位 U-CGJ 潍坊市城市管理局：值班电话" in done.output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        phones = conn.scalar(sa.select(Unit.phones).where(Unit.code == "U-CGJ"))
        actors = conn.execute(
            sa.select(AuditLog.action, AuditLog.actor_id).where(AuditLog.target == "U-CGJ")
        ).all()
    engine.dispose()
    assert phones == ["13805360000"]
    assert actors == [("unit.import", None)]
