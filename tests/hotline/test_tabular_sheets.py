"""``hotline.tabular``'s one guard against text becoming a formula, for the downloadable
tables and for the laid-out sheets (the ranking's, a joint meeting's) alike."""

import io

import openpyxl

from hotline import tabular


def test_formula_like():
    for text in ("=1+1", "+1+1", "-2+3", "@SUM(A1)", '=HYPERLINK("x")'):
        assert tabular.formula_like(text), text
    for text in ("-5", "+3.5", "路灯", "", "1=1"):
        assert not tabular.formula_like(text), text


def test_a_laid_out_sheet_keeps_every_formula_like_text_as_text():
    book = openpyxl.Workbook()
    ws = book.active
    values = ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "普通\x07文本"]
    for column, value in enumerate(values, start=1):
        tabular.sheet_cell(ws, 1, column, value)
    out = io.BytesIO()
    book.save(out)
    read = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    cells = [read.cell(row=1, column=c) for c in range(1, len(values) + 1)]
    assert [c.value for c in cells] == ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "普通文本"]
    assert all(c.data_type == "s" for c in cells)
