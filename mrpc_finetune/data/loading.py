"""Raw splits: Hub or local files, checked, carved, less the rows ``data.exclude`` names.

The checks of what is read (fields, rows, labels, bytes) are in ``checks.py``; tokenizing in ``tokenization.py``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import random
from pathlib import Path
from typing import Any, NamedTuple

from mrpc_finetune.data.checks import (
    check_fields,
    check_row_count,
    check_split,
    decode_utf8,
    encode_label,
    find_label_names,
    is_labelled,
)
from mrpc_finetune.data.exclusion import exclude_rows
from mrpc_finetune.errors import UserError, first_line
from mrpc_finetune.hub import OFFLINE_ROUTE, hub_reachable
from mrpc_finetune.recipe.schema import DataConfig
from mrpc_finetune.recipe.tasks import CUSTOM, TaskSpec, task_for

FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
"""Extension -> ``datasets`` builder. Tab files go through the csv builder with tab separators and no quoting."""
TEXT_FORMATS = (".jsonl", ".json", ".csv", ".tsv")


def find_split_files(folder: str | Path, task: TaskSpec) -> dict[str, Path]:
    """``DIR/<split>.<ext>`` for train, the task's evaluation and test splits; train is required."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"data.dir={folder}: no such folder")
    found = {}
    for split in ("train", *task.eval_splits, *task.test_splits):
        candidates = [folder / f"{split}{ext}" for ext in FILE_BUILDERS if (folder / f"{split}{ext}").is_file()]
        if len(candidates) > 1:
            raise UserError(
                f"data.dir={folder}: several files for split {split!r}: {', '.join(c.name for c in candidates)}"
            )
        if candidates:
            found[split] = candidates[0]
    if "train" not in found:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise UserError(
            f"data.dir={folder}: no train.{{{','.join(e[1:] for e in FILE_BUILDERS)}}} file (found: {present})"
        )
    return found


def load_split_file(path: str | Path):
    """One split from one file, every row of it, with types as written; bad bytes or lost rows are errors."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: is a folder, not a data file")
    suffix = path.suffix.lower()
    builder = FILE_BUILDERS.get(suffix)
    if builder is None:
        raise UserError(f"{path}: unsupported extension {path.suffix!r}; use one of {', '.join(FILE_BUILDERS)}")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    text, records = "", None
    if suffix in TEXT_FORMATS:
        text = decode_utf8(path)
        if not text.strip():
            raise UserError(f"{path}: has no data rows (only blank lines)")
    if suffix in (".csv", ".tsv"):
        try:
            records = _table_records(path, text)
        except csv.Error as err:
            if "field larger" not in str(err):
                raise UserError(f"{path}: cannot be read as csv ({err})") from None
            records = None  # a field over the csv module's size limit: the loader's own count stands
        if records is not None and len(records) == 1:  # the loaders fail obscurely on this
            raise UserError(f"{path}: has no data rows (first line: {text.splitlines()[0][:200]})")
        if records is not None:
            check_fields(path, records)
    kwargs = {"sep": "\t", "quoting": 3} if suffix == ".tsv" else {}  # 3 = csv.QUOTE_NONE
    try:
        with _quiet_datasets():
            dataset = datasets.load_dataset(builder, data_files={"rows": str(path)}, split="rows", **kwargs)
    except Exception as err:  # the builders raise many types; the first line is what the user needs
        cause = err.__cause__ or err
        raise UserError(
            f"{path}: cannot be read as {path.suffix[1:]} ({str(cause).strip().splitlines()[0][:200]})"
        ) from None
    if dataset.num_rows == 0:
        raise UserError(f"{path}: has no data rows (columns found: {', '.join(dataset.column_names) or 'none'})")
    if records is not None or suffix == ".jsonl":
        check_row_count(path, text, dataset.num_rows, records)
    return dataset


@contextlib.contextmanager
def _quiet_datasets():
    """The csv/json builders log a read failure before raising it; the user gets our one line instead."""
    import datasets

    level, bars = datasets.logging.get_verbosity(), datasets.is_progress_bar_enabled()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    datasets.disable_progress_bars()  # local files load in seconds; stderr stays for what went wrong
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


def _table_records(path: Path, text: str) -> list[tuple[int, int]]:
    """(line number, field count) of each non-blank record of a csv or tab file, the header first."""
    if path.suffix.lower() == ".csv":  # quoted fields may span lines: records as the csv module reads them
        reader = csv.reader(io.StringIO(text, newline=""))
        return [(reader.line_num, len(record)) for record in reader if record]
    # tab files have no quoting (a quote is text): one record per line
    lines = text.split("\n")
    return [(number, line.count("\t") + 1) for number, line in enumerate(lines, 1) if line.strip("\r")]


class LoadedData(NamedTuple):
    task: TaskSpec
    splits: Any
    """``DatasetDict`` of the checked raw splits, less the rows ``data.exclude`` names."""
    rows_excluded: dict[str, int]
    """Rows each split lost to ``data.exclude`` (before ``data.file``'s carve); empty without it."""


def load_data(cfg: DataConfig, label_names: tuple[str, ...] | None = None) -> LoadedData:
    """The task, the checked raw splits of a recipe's ``data`` section and the rows ``data.exclude`` dropped.

    For ``data.task=custom`` the label names are found in the training rows (sorted; none for float scores)
    unless given, e.g. read back from a trained model's ``id2label``.
    """
    task = task_for(cfg, label_names)
    raw, sources = _read_splits(cfg, task)
    if task.is_custom and label_names is None:
        task = task_for(cfg, find_label_names(raw["train"], task, sources["train"]))
    return LoadedData(task, *_check_and_carve(raw, sources, cfg, task))


def load_task_and_splits(cfg: DataConfig, label_names: tuple[str, ...] | None = None):
    """``load_data``'s task and splits."""
    loaded = load_data(cfg, label_names)
    return loaded.task, loaded.splits


def check_data_source(cfg: DataConfig) -> None:
    """Hub data with no Hub fails here at once, not after the library's minute of retries. A local folder in the
    Hub's repository layout (``data.hub_dataset=PATH``: parquet files per config and the README's ``configs:``)
    needs no Hub."""
    if cfg.dir is not None or cfg.file is not None or cfg.task == CUSTOM or local_hub_folder(cfg.hub_dataset):
        return
    if not hub_reachable():
        raise UserError(
            f"data: the Hugging Face Hub cannot be reached to download {cfg.hub_dataset}/{cfg.task}; {OFFLINE_ROUTE}"
        )


def local_hub_folder(hub_dataset: str) -> bool:
    """True for an existing folder, False for a Hub id; a path (``.``, ``/``, ``~``) to no folder is an error."""
    path = Path(hub_dataset).expanduser()
    if path.is_dir():
        return True
    if hub_dataset.startswith((".", "/", "~")):
        raise UserError(f"data.hub_dataset={hub_dataset}: no such folder")
    return False


def load_raw_splits(cfg: DataConfig, task: TaskSpec):
    """A ``DatasetDict`` with train, the task's evaluation splits and (if present) test, each checked."""
    raw, sources = _read_splits(cfg, task)
    return _check_and_carve(raw, sources, cfg, task)[0]


def _read_splits(cfg: DataConfig, task: TaskSpec):
    import datasets

    if cfg.file:
        raw = datasets.DatasetDict({"train": load_split_file(Path(cfg.file))})
        return raw, {"train": str(cfg.file)}
    if cfg.dir is None:
        if task.is_custom:
            raise UserError("data.task=custom reads local files: set data.file=PATH (one file) or data.dir=DIR")
        check_data_source(cfg)
        try:
            raw = datasets.load_dataset(cfg.hub_dataset, task.name)
        except (ValueError, FileNotFoundError) as err:  # e.g. no such config in a local folder's README
            if not local_hub_folder(cfg.hub_dataset):
                raise
            raise UserError(
                f"data.hub_dataset={cfg.hub_dataset}: cannot load config {task.name!r} ({first_line(err)})"
            ) from None
        return raw, {split: f"{cfg.hub_dataset}/{task.name}:{split}" for split in raw}
    files = find_split_files(cfg.dir, task)
    raw = datasets.DatasetDict({split: load_split_file(path) for split, path in files.items()})
    return raw, {split: str(path) for split, path in files.items()}


def _check_and_carve(raw, sources: dict[str, str], cfg: DataConfig, task: TaskSpec):
    """The checked splits, less ``data.exclude``'s rows, with ``data.file`` carved; and the rows each split lost."""
    scored = []  # every split but an unlabelled test split: those are only ever predicted
    for split, dataset in raw.items():
        labelled = split not in task.test_splits or is_labelled(dataset, task, sources[split])
        check_split(dataset, task, sources[split], labelled=labelled)
        scored += [split] if labelled else []
    rows_excluded = exclude_rows(raw, cfg.exclude, sources, scored) if cfg.exclude else {}
    if cfg.file:  # checked as one file (row numbers are the file's), then split
        raw = carve_validation(raw["train"], task, cfg.validation_fraction, cfg.split_seed, cfg.file)
    return raw, rows_excluded


def carve_validation(dataset, task: TaskSpec, fraction: float, seed: int, source: str = "data.file"):
    """Hold out ``fraction`` of the rows (at least one) as validation, the same rows on every run.

    Classes are stratified: each label gives its share of the held-out rows (largest remainders round up)
    and keeps at least one training row. Both splits keep the file's row order.
    """
    import datasets

    groups: dict[object, list[int]] = {}
    for row, value in enumerate(dataset[task.label_column]):
        groups.setdefault(None if task.is_regression else encode_label(value, task), []).append(row)
    keys = sorted(groups, key=str)
    target = max(1, round(dataset.num_rows * fraction))
    quotas = {key: len(groups[key]) * target / dataset.num_rows for key in keys}
    counts = {key: math.floor(quotas[key]) for key in keys}
    by_remainder = sorted(keys, key=lambda key: counts[key] - quotas[key])  # stable: ties in label order
    for key in by_remainder[: target - sum(counts.values())]:
        counts[key] += 1
    rng = random.Random(seed)
    held_out = set()
    for key in keys:
        rows = list(groups[key])
        rng.shuffle(rows)
        held_out.update(rows[: min(counts[key], len(rows) - 1)])
    if not held_out:
        raise UserError(
            f"data.validation_fraction={fraction}: holds out no rows of the {dataset.num_rows} in {source} "
            f"(each label needs a second row to spare one); add rows"
        )
    return datasets.DatasetDict(
        {
            "train": dataset.select([i for i in range(dataset.num_rows) if i not in held_out]),
            "validation": dataset.select(sorted(held_out)),
        }
    )


def with_swapped_pairs(dataset, task: TaskSpec):
    """Every row, then every row again with its two texts swapped: for pair tasks whose order means nothing."""
    import datasets

    return datasets.concatenate_datasets([dataset, swapped_pairs(dataset, task)])


def swapped_pairs(dataset, task: TaskSpec):
    """The rows with their two texts exchanged, in the same order, every other column kept."""
    first, second = task.text_columns
    return dataset.rename_columns({first: second, second: first}).select_columns(dataset.column_names)
