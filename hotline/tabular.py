"""Files an administrator loads and downloads: CSV or XLSX tables with Chinese headers, the
row-by-row report of what is wrong in them, and the one way every import runs.

An import is all-or-nothing: an importer checks every row, collects every problem as a
``RowError`` (file, row, column, why, in Chinese) and raises ``ImportRefused`` with all of
them, or makes its changes (matched by code: running it again changes nothing). ``run``
commits the changes, or rolls them back on a refusal or a dry run, and audits the import.

Each domain registers its importers (``register``) from its blueprint builder, as pages are
put in the menu, so the CLI (``hotline import KIND``) and the administration's import page
find every kind without naming any.
"""

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

from hotline.audit import audit
from hotline.errors import ValidationFailed

#: At most this many rows are read from one uploaded table.
MAX_ROWS = 200_000
#: Lines of the change list kept in a result (the counts are always complete).
MAX_CHANGES_SHOWN = 500
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Column:
    """One column of a table: our key, the Chinese header people see, other headers that
    mean the same (e.g. 一级分类 in 附件1.csv), and whether a value is required."""

    key: str
    header: str
    required: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowError:
    file: str
    #: The row as a spreadsheet numbers it (the header is row 1); None: the whole file.
    row: int | None
    #: The column's Chinese header; None: the whole row.
    column: str | None
    message: str

    def __str__(self):
        where = [self.file]
        if self.row is not None:
            where.append(f"第 {self.row} 行")
        if self.column:
            where.append(f"“{self.column}”列")
        return f"{'，'.join(where)}：{self.message}"

    def as_dict(self):
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


class ImportRefused(ValidationFailed):
    """Nothing was imported: every problem found, row by row."""

    code = "IMPORT_INVALID"

    def __init__(self, errors):
        self.errors = list(errors)
        first = str(self.errors[0]) if self.errors else "导入文件有误"
        more = f"（共 {len(self.errors)} 处错误）" if len(self.errors) > 1 else ""
        super().__init__(
            f"未导入任何数据：{first}{more}",
            details={"errors": [e.as_dict() for e in self.errors[:1000]]},
        )


@dataclass
class Table:
    """An uploaded table: its file name and its rows as ``(row number, {key: text})``;
    every cell is stripped text ("" when empty)."""

    file: str
    rows: list[tuple[int, dict]]
    headers: list[str] = field(default_factory=list)


class Problems:
    """Collects the problems of one import; ``check()`` raises them all at once."""

    def __init__(self):
        self.errors = []

    def add(self, file, row, column, message):
        self.errors.append(RowError(file, row, column, message))

    def __bool__(self):
        return bool(self.errors)

    def check(self):
        if self.errors:
            raise ImportRefused(self.errors)


@dataclass
class ImportResult:
    """What an import did (or, in a dry run, would do)."""

    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    dry_run: bool = False
    #: Human-readable lines, e.g. "新增 承办单位 U-ABC 某某局", at most MAX_CHANGES_SHOWN.
    changes: list[str] = field(default_factory=list)
    more_changes: int = 0

    def note(self, line):
        if len(self.changes) < MAX_CHANGES_SHOWN:
            self.changes.append(line)
        else:
            self.more_changes += 1

    def counts(self):
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
        }

    def as_dict(self):
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            **self.counts(),
            "changes": self.changes,
            "more_changes": self.more_changes,
        }

    def summary(self):
        text = f"新增 {self.created} 条，更新 {self.updated} 条，未变 {self.unchanged} 条"
        if self.deactivated:
            text += f"，停用 {self.deactivated} 条"
        return ("试运行（未保存）：" if self.dry_run else "已导入：") + text


# -- reading -------------------------------------------------------------------------------------


def read(data, filename, columns):
    """The table in ``data`` (bytes or a path) as a ``Table`` of ``columns``. XLSX or CSV by
    content (CSV in UTF-8, with or without BOM, or GB18030 as Excel in China saves it).
    Refuses, naming the file, a table without a required column or with no rows."""
    if isinstance(data, str | Path):
        filename = filename or Path(data).name
        data = Path(data).read_bytes()
    if data[:4] == XLSX_MAGIC:
        raw_rows = _xlsx_rows(data, filename)
    else:
        raw_rows = _csv_rows(data, filename)
    return _table(raw_rows, filename, columns)


def _xlsx_rows(data, filename):
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — any unreadable workbook is the same refusal
        raise ImportRefused([RowError(filename, None, None, "不是有效的 XLSX 文件")]) from exc
    sheet = book.worksheets[0]
    for values in sheet.iter_rows(values_only=True):
        yield [_cell_text(v) for v in values]
    book.close()


def _cell_text(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):  # dates typed as dates
        return value.isoformat()[:10] if not getattr(value, "hour", 0) else value.isoformat()
    return str(value).strip()


def _csv_rows(data, filename):
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportRefused([RowError(filename, None, None, "无法识别文件编码（请存为 UTF-8）")])
    if "\x00" in text:
        raise ImportRefused(
            [RowError(filename, None, None, "文件含有不可见控制字符，不是文本表格")]
        )
    for values in csv.reader(io.StringIO(text)):
        yield [v.strip() for v in values]


def _table(raw_rows, filename, columns):
    raw_rows = iter(raw_rows)
    header = next(raw_rows, None)
    if not header or not any(header):
        raise ImportRefused([RowError(filename, 1, None, "文件为空或缺少表头")])
    by_header = {}
    for column in columns:
        for name in (column.header, *column.aliases):
            by_header[name] = column.key
    positions = {}
    for index, name in enumerate(header):
        key = by_header.get(name.strip())
        if key is not None and key not in positions:
            positions[key] = index
    missing = [c.header for c in columns if c.required and c.key not in positions]
    if missing:
        expected = "、".join(c.header for c in columns)
        raise ImportRefused(
            [
                RowError(filename, 1, name, f"缺少必需的列（表头应为：{expected}）")
                for name in missing
            ]
        )
    rows = []
    for number, values in enumerate(raw_rows, start=2):
        if not any(values):
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportRefused([RowError(filename, number, None, f"超过 {MAX_ROWS} 行上限")])
        rows.append(
            (
                number,
                {
                    key: (values[i].strip() if i < len(values) and values[i] else "")
                    for key, i in positions.items()
                },
            )
        )
    if not rows:
        raise ImportRefused([RowError(filename, None, None, "表格没有数据行")])
    return Table(filename, rows, [h for h in header if h])


# -- writing -------------------------------------------------------------------------------------


def write_xlsx(columns, rows, *, title="数据"):
    """An XLSX workbook (bytes) of ``rows`` (dicts by column key) under Chinese headers, which
    the matching import reads back unchanged."""
    return write_xlsx_sheets([(title, columns, rows)])


def write_xlsx_sheets(sheets):
    """An XLSX workbook (bytes) of several sheets: ``(title, columns, rows)`` each, written
    as ``write_xlsx`` writes its one."""
    book = openpyxl.Workbook(write_only=True)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append([c.header for c in columns])
        for row in rows:
            sheet.append([_xlsx_value(row.get(c.key)) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    text = str(value)
    return "'" + text if formula_like(text) else text


def formula_like(text):
    """Whether a spreadsheet would run ``text`` as a formula (it starts with = + - @ and is
    not a number): the one guard of every table and printed sheet we write."""
    return text[:1] in ("=", "+", "-", "@") and not _number(text)


def _number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_csv(columns, rows):
    """The same table as UTF-8 CSV with a BOM (Excel opens it as Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.header for c in columns])
    for row in rows:
        writer.writerow([_xlsx_value(row.get(c.key)) for c in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# -- sheets laid out to print (the ranking's, a joint meeting's) --------------------------------

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_THIN = Side(style="thin", color="A6A6A6")
BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
TITLE_FONT = Font(bold=True, size=14)
BOLD = Font(bold=True)


def sheet_cell(ws, row, column, value):
    """Write a cell of a laid-out sheet: text loses the characters XML can't hold and stays
    text when it looks like a formula (``formula_like``)."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str) and formula_like(value):
        cell.data_type = "s"
    return cell


def sheet_title(ws, text, subtitle, width):
    """A bold title row and a subtitle row, each across ``width`` columns."""
    sheet_cell(ws, 1, 1, text).font = TITLE_FONT
    sheet_cell(ws, 2, 1, subtitle)
    if width > 1:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
        ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=width)
    ws.row_dimensions[1].height = 24


def sheet_header(ws, row, headers):
    """A bold, shaded, bordered header row."""
    for index, header in enumerate(headers, start=1):
        cell = ws.cell(row=row, column=index, value=header)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.border = BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def print_setup(ws, footer, title_rows):
    """A4 landscape, one page wide, ``title_rows`` repeated on every page, the ``footer``
    text and page numbers at the foot."""
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    if title_rows:
        ws.print_title_rows = title_rows
    ws.oddFooter.left.text = footer.replace("&", "&&")
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddFooter.left.size = ws.oddFooter.center.size = 9


# -- cell parsing helpers shared by importers ----------------------------------------------------

YES = {"是", "y", "yes", "true", "1", "√", "✓"}
NO = {"否", "n", "no", "false", "0", ""}


def yes_no(problems, file, row, column, text):
    """是/否 (also yes/no, 1/0; empty is 否)."""
    value = text.strip().lower()
    if value in YES:
        return True
    if value in NO:
        return False
    problems.add(file, row, column, f"应填“是”或“否”（现为“{text}”）")
    return None


def split_list(text):
    """Several values in one cell, separated by 、 , ， ; ； or whitespace."""
    for sep in "，,;；\n\t":
        text = text.replace(sep, "、")
    return [part.strip() for part in text.replace(" ", "、").split("、") if part.strip()]


# -- importers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importer:
    """One kind of import. ``load(session, actor, sources, options)`` makes the changes (it
    never commits) and returns an ``ImportResult``, or raises ``ImportRefused``. ``sources``
    is a list of ``(file name, bytes)``. ``export(session)`` returns the file (bytes) the
    import reads back, or the kind has no export. ``columns``: a table's columns, shown on the
    import page as the expected headers (None: not a table, e.g. GeoJSON)."""

    kind: str
    label: str
    load: Callable
    export: Callable | None = None
    columns: tuple[Column, ...] | None = None
    #: What the files are, in words, for the import page and ``hotline import --help``.
    accepts: str = "XLSX 或 CSV（首行为中文表头）"
    #: Options a load takes (name → Chinese label), e.g. the city of a division table.
    options: dict = field(default_factory=dict)
    #: Text of a sample file (the first rows of a real one), or None.
    template: Callable | None = None
    #: False: the kind may run without a file (grids generated from the areas).
    files_required: bool = True


def register(app, importer):
    app.extensions.setdefault("hotline.importers", {})[importer.kind] = importer


def register_on(bp, importer):
    """Register ``importer`` when the blueprint ``bp`` is registered (like the menu)."""
    bp.record_once(lambda state: register(state.app, importer))


def importers(app):
    return app.extensions.get("hotline.importers", {})


def run(session, actor, importer, sources, *, dry_run=False, options=None):
    """Run one import: all or nothing. Returns the ``ImportResult``; on a refusal everything
    is rolled back and ``ImportRefused`` propagates. A dry run is rolled back too; a real
    import is audited and committed."""
    try:
        result = importer.load(session, actor, list(sources), dict(options or {}))
        session.flush()
    except Exception:
        session.rollback()
        raise
    result.dry_run = dry_run
    if dry_run:
        session.rollback()
        return result
    audit(
        session,
        actor,
        f"import.{importer.kind}",
        target=", ".join(name for name, _ in sources)[:100],
        payload=result.counts(),
    )
    session.commit()
    return result


def sources_from_paths(paths: Iterable):
    return [(Path(p).name, Path(p).read_bytes()) for p in paths]
