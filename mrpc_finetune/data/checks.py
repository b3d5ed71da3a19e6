"""Checks of the rows a data file holds, run before anything is tokenized or trained: bytes, fields per row, rows
read against records written, text columns, and labels (their type, their set, GLUE's -1 for a withheld label).
Each failure is one line naming the file, row and column.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.tasks import TaskSpec


def decode_utf8(path: Path) -> str:
    raw_bytes = path.read_bytes()
    try:
        return raw_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw_bytes.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw_bytes[err.start]:02x}); save the file as UTF-8"
        ) from None


def check_fields(path: Path, records: list[tuple[int, int]]) -> None:
    """Every row has the header's number of fields: pandas would quietly shift an extra one into an index."""
    header = records[0][1]
    for row, (line, fields) in enumerate(records[1:], 1):
        if fields != header:
            if fields < header:
                hint = "a field is missing"
            else:
                hint = "quote texts that hold commas" if path.suffix.lower() == ".csv" else "a text holds a tab"
            raise UserError(f"{path}: row {row} (line {line}) has {fields} fields but the header has {header}; {hint}")


def check_row_count(path: Path, text: str, rows_read: int, records: list | None) -> None:
    """Every record of the file must be a row: a parser that split, merged or dropped lines is an error."""
    if records is not None:
        expected, unit = len(records) - 1, "records" if path.suffix.lower() == ".csv" else "lines"
    else:  # JSON Lines: one object per line
        expected, unit = sum(1 for line in text.split("\n") if line.strip()), "lines"
    if rows_read == expected:
        return
    stray = re.search(r"\r(?!\n)", text)
    where = f"; line {text.count(chr(10), 0, stray.start()) + 1} holds a stray carriage return (\\r)" if stray else ""
    raise UserError(
        f"{path}: has {expected} data {unit} but {rows_read} rows were read, so rows were split, merged or "
        f"dropped{where}; fix the file (one row per line)"
    )


UNLABELLED = -1
"""GLUE's label on a test row whose answer is withheld."""


def is_labelled(dataset, task: TaskSpec, source: str) -> bool:
    """Does a test split carry real labels? Then training evaluates on it once, at the end.

    Labelled means a label column that (for GLUE tasks) holds no ``-1``: GLUE's test files mark every row ``-1``.
    A mix of both is refused, as half of its rows would silently go unscored.
    """
    if task.label_column not in dataset.column_names:
        return False
    if task.is_custom:
        return True
    withheld = [row for row, value in enumerate(dataset[task.label_column]) if value == UNLABELLED]
    if withheld and len(withheld) < dataset.num_rows:
        raise UserError(
            f"{source}: row {withheld[0] + 1}, column {task.label_column!r} is {UNLABELLED} (no label) but other "
            f"rows are labelled; label every row of a test split, or none"
        )
    return not withheld


def check_split(dataset, task: TaskSpec, source: str, labelled: bool) -> None:
    """Columns present, texts non-empty, labels of one type and known, before any tokenizing or training."""
    required = list(task.text_columns) + ([task.label_column] if labelled else [])
    missing = [c for c in required if c not in dataset.column_names]
    if missing:
        raise UserError(f"{source}: missing column {missing[0]!r} (columns found: {', '.join(dataset.column_names)})")
    for column in task.text_columns:
        for row, text in enumerate(dataset[column]):
            if text is None or not str(text).strip():
                raise UserError(f"{source}: row {row + 1}, column {column!r} is empty")
    if not labelled:
        return
    column = task.label_column
    values = dataset[column]
    _check_label_types(values, source, column)
    for row, value in enumerate(values):
        if encode_label(value, task) is None:
            raise UserError(f"{source}: row {row + 1}, column {column!r} has {value!r}; {_expected_labels(task)}")


def _expected_labels(task: TaskSpec) -> str:
    if task.is_regression:
        return "expected a number (a regression score)"
    if task.is_custom:
        return f"a label not in the training data (labels: {', '.join(task.label_names)})"
    return f"expected an integer id 0..{task.num_labels - 1} or a label name ({', '.join(task.label_names)})"


def _label_kind(value) -> str | None:
    """integer / float / string: labels of one column must share one; None for a missing label."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return "string"  # true/false are two class names
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        # CSV cells are all text once one is: "1" beside "positive" is a mix of ids and names
        return "integer" if re.fullmatch(r"\s*[+-]?\d+\s*", value) else "string"
    return type(value).__name__


def _check_label_types(values: list, source: str, column: str) -> None:
    first_kind = first_row = None
    for row, value in enumerate(values):
        kind = _label_kind(value)
        if kind is None or (isinstance(value, str) and not value.strip()):
            raise UserError(f"{source}: row {row + 1}, column {column!r} has no label")
        if kind not in ("integer", "float", "string"):
            raise UserError(f"{source}: row {row + 1}, column {column!r} has {value!r}, not a label")
        if first_kind is None:
            first_kind, first_row = kind, row
        elif kind != first_kind and {kind, first_kind} != {"integer", "float"}:
            raise UserError(
                f"{source}: row {row + 1}, column {column!r} has {value!r} ({kind}) but row {first_row + 1} has "
                f"{values[first_row]!r} ({first_kind}); use one label type in the column"
            )


def find_label_names(dataset, task: TaskSpec, source: str) -> tuple[str, ...]:
    """Label names of custom training rows: their distinct values in sorted order; () when they are float scores."""
    if task.label_column not in dataset.column_names:
        raise UserError(
            f"{source}: missing column {task.label_column!r} (columns found: {', '.join(dataset.column_names)}); "
            f"name it with data.label_column="
        )
    values = dataset[task.label_column]
    _check_label_types(values, source, task.label_column)
    kinds = {_label_kind(v) for v in values}
    if "float" in kinds:
        return ()
    distinct = {int(v) for v in values} if kinds == {"integer"} else {str(v) for v in values}
    if len(distinct) < 2:
        raise UserError(
            f"{source}: column {task.label_column!r} holds one label only ({values[0]!r}); need two or more"
        )
    return tuple(str(v) for v in sorted(distinct))


def encode_label(value, task: TaskSpec):
    """The id (or, for regression, the float) a label value trains as; None when it is not a known label."""
    if _label_kind(value) is None:
        return None
    if task.is_regression:
        return None if isinstance(value, str) else float(value)
    if isinstance(value, str) and _label_kind(value) == "integer":
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not task.is_custom and isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < task.num_labels else None
    name = str(value)
    return task.label_names.index(name) if name in task.label_names else None
