"""Cells of exported CSV files cannot start a spreadsheet formula."""

from decimal import Decimal

import pytest

from tenants.csv_cells import csv_cell


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"),
    ("+1", "'+1"),
    ("-3", "'-3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=cmd", "'\t=cmd"),
    ("\r=cmd", "'\r=cmd"),
    ("a=1", "a=1"),
    ("", ""),
])
def test_csv_cell_neutralises_text_that_starts_a_formula(value, written):
    assert csv_cell(value) == written


@pytest.mark.parametrize("value", [-3, -2.5, Decimal("-0.10"), 0, None])
def test_csv_cell_leaves_numbers_as_numbers(value):
    assert csv_cell(value) == value
