"""``hotline import areas|boundaries|grids`` (server/cli.py over hotline/onboarding.py) on a
fresh database: dry run, import, grids without a file, a refused file."""

import sqlalchemy as sa

from hotline.models import Area, Setting
from tests.hotline.test_onboarding import BOUNDARIES, DISTRICTS, STREETS, VILLAGES
from tests.server.test_cli import fresh_sqlite, invoke  # noqa: F401 — the fixture

CITY_ROWS = "code,name,provinceCode\n9901,样例市,99\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def areas(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = dict(
            conn.execute(sa.select(Area.level, sa.func.count()).group_by(Area.level)).all()
        )
        name = conn.scalar(sa.select(Setting.value).where(Setting.key == "city.name"))
    engine.dispose()
    return found, name


def test_import_a_city_from_the_command_line(fresh_sqlite, tmp_path):  # noqa: F811
    assert invoke(fresh_sqlite, "db", "upgrade").exit_code == 0
    files = [
        write(tmp_path, "areas.csv", DISTRICTS),
        write(tmp_path, "streets.csv", STREETS),
        write(tmp_path, "villages.csv", VILLAGES),
        write(tmp_path, "cities.csv", CITY_ROWS),
    ]
    dry = invoke(fresh_sqlite, "import", "areas", *files, "--dry-run", "--option", "city=样例市")
    assert dry.exit_code == 0, dry.output
    assert "新增区县 990101 甲区" in dry.output and "试运行（未保存）" in dry.output
    assert areas(fresh_sqlite) == ({}, None)

    done = invoke(
        fresh_sqlite,
        "import",
        "areas",
        *files,
        "--option",
        "city=9901",
        "--option",
        "street_units=1",
    )
    assert done.exit_code == 0, done.output
    assert "已导入：新增 9 条" in done.output
    # A fresh system with no other city: the import names the city.
    assert areas(fresh_sqlite)[1] == {"value": "样例市"}

    geo = write(tmp_path, "sample_full.json", BOUNDARIES)
    assert invoke(fresh_sqlite, "import", "boundaries", geo).exit_code == 0
    grids = invoke(fresh_sqlite, "import", "grids", "--option", "cell_m=500")
    assert grids.exit_code == 0, grids.output
    found, _ = areas(fresh_sqlite)
    assert found["community"] == 4 and found["grid"] >= 4

    again = invoke(fresh_sqlite, "import", "areas", *files, "--option", "city=9901")
    assert "新增 0 条，更新 0 条，未变 9 条" in again.output


def test_refusals_name_file_row_and_column(fresh_sqlite, tmp_path):  # noqa: F811
    assert invoke(fresh_sqlite, "db", "upgrade").exit_code == 0
    bad = write(tmp_path, "streets.csv", STREETS + "99010200,短,990102,99,9901\n")
    districts = write(tmp_path, "areas.csv", DISTRICTS)
    result = invoke(fresh_sqlite, "import", "areas", districts, bad, "--option", "city=9901")
    assert result.exit_code != 0
    assert "streets.csv，第 5 行，“code”列：街道乡镇代码应为 9 位数字" in result.output
    assert "未导入任何数据" in result.output
    assert areas(fresh_sqlite)[0] == {}
    missing = invoke(fresh_sqlite, "import", "areas")
    assert missing.exit_code != 0 and "请指定要导入的文件" in missing.output
    unknown = invoke(fresh_sqlite, "import", "grids", "--option", "size=3")
    assert unknown.exit_code != 0 and "未知选项" in unknown.output
