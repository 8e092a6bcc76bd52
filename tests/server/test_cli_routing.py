"""``hotline import routing`` and ``hotline export routing``: a dry run saves nothing, a real
run saves, again changes nothing, and a bad file is reported row by row with nothing saved."""

import sqlalchemy as sa

from hotline.db import make_engine
from tests.server.test_cli import fresh_sqlite, invoke  # noqa: F401 — the fixture


def _rules(url):
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM routing_rules")).scalar_one()
    engine.dispose()
    return count


def test_import_and_export_routing(fresh_sqlite, tmp_path):  # noqa: F811
    invoke(fresh_sqlite, "db", "upgrade")
    invoke(fresh_sqlite, "seed")
    before = _rules(fresh_sqlite)
    good = tmp_path / "rules.csv"
    good.write_text(
        "事项分类编码,区域编码,承办单位编码,生效日期,失效日期,说明\n"
        "010103,370705001,U-GAJ,2030-01-01,,夜间照明试点\n",
        encoding="utf-8",
    )
    dry = invoke(fresh_sqlite, "import", "routing", str(good), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "试运行" in dry.output and "新增 1 条" in dry.output
    assert _rules(fresh_sqlite) == before
    real = invoke(fresh_sqlite, "import", "routing", str(good))
    assert real.exit_code == 0 and "路灯故障" in real.output
    assert _rules(fresh_sqlite) == before + 1
    again = invoke(fresh_sqlite, "import", "routing", str(good))
    assert "新增 0 条，更新 0 条，未变 1 条" in again.output

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "事项分类编码,区域编码,承办单位编码,生效日期\n010103,,U-NOPE,\n0101,,U-ZJJ,2030-13-01\n",
        encoding="utf-8",
    )
    refused = invoke(fresh_sqlite, "import", "routing", str(bad))
    assert refused.exit_code != 0
    assert "第 2 行" in refused.output and "U-NOPE" in refused.output
    assert "第 3 行" in refused.output and "生效日期" in refused.output
    assert _rules(fresh_sqlite) == before + 1

    out = tmp_path / "out.xlsx"
    exported = invoke(fresh_sqlite, "export", "routing", "-o", str(out))
    assert exported.exit_code == 0 and out.read_bytes()[:2] == b"PK"
    back = invoke(fresh_sqlite, "import", "routing", str(out), "--dry-run")
    assert f"未变 {before + 1} 条" in back.output
