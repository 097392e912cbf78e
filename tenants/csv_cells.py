"""Cells of the CSV files Parla writes (usage reports, batch manifests), safe to open in a
spreadsheet.

SECURITY: tenants choose much of what lands in these files (key names, batch texts, voice
names). A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return before
one) as a formula: =HYPERLINK(...) can send the sheet's data elsewhere when clicked, and some
applications run commands. Every text cell that starts so gets a leading single quote, as OWASP
recommends ("CSV Injection"); the spreadsheet then shows it as text. Real numbers are written as
they are, so -3 stays a number.
"""

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """The value to hand csv.writer: numbers and None unchanged, text neutralised."""
    if value is None or isinstance(value, (int, float, Decimal)):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(value) for value in values]


class _NeutralisingWriter:
    def __init__(self, writer) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow(csv_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out, **kwargs) -> _NeutralisingWriter:
    """csv.writer(out, **kwargs) whose every cell goes through csv_cell()."""
    return _NeutralisingWriter(csv.writer(out, **kwargs))
