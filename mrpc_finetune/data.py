"""Raw splits (Hub or local files) -> tokenized splits, the padding collator and the training sampler."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import random
import re
from pathlib import Path

from .errors import UserError
from .modeling import OFFLINE_ROUTE, _first_line, hub_reachable
from .recipe import DataConfig
from .tasks import CUSTOM, TaskSpec, task_for

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
        text = _decode_utf8(path)
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
            _check_fields(path, records)
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
        _check_row_count(path, text, dataset.num_rows, records)
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


def _decode_utf8(path: Path) -> str:
    raw_bytes = path.read_bytes()
    try:
        return raw_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw_bytes.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw_bytes[err.start]:02x}); save the file as UTF-8"
        ) from None


def _table_records(path: Path, text: str) -> list[tuple[int, int]]:
    """(line number, field count) of each non-blank record of a csv or tab file, the header first."""
    if path.suffix.lower() == ".csv":  # quoted fields may span lines: records as the csv module reads them
        reader = csv.reader(io.StringIO(text, newline=""))
        return [(reader.line_num, len(record)) for record in reader if record]
    # tab files have no quoting (a quote is text): one record per line
    lines = text.split("\n")
    return [(number, line.count("\t") + 1) for number, line in enumerate(lines, 1) if line.strip("\r")]


def _check_fields(path: Path, records: list[tuple[int, int]]) -> None:
    """Every row has the header's number of fields: pandas would quietly shift an extra one into an index."""
    header = records[0][1]
    for row, (line, fields) in enumerate(records[1:], 1):
        if fields != header:
            if fields < header:
                hint = "a field is missing"
            else:
                hint = "quote texts that hold commas" if path.suffix.lower() == ".csv" else "a text holds a tab"
            raise UserError(f"{path}: row {row} (line {line}) has {fields} fields but the header has {header}; {hint}")


def _check_row_count(path: Path, text: str, rows_read: int, records: list | None) -> None:
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


def load_task_and_splits(cfg: DataConfig, label_names: tuple[str, ...] | None = None):
    """The task and the checked raw splits of a recipe's ``data`` section.

    For ``data.task=custom`` the label names are found in the training rows (sorted; none for float scores)
    unless given, e.g. read back from a trained model's ``id2label``.
    """
    task = task_for(cfg, label_names)
    raw, sources = _read_splits(cfg, task)
    if task.is_custom and label_names is None:
        task = task_for(cfg, find_label_names(raw["train"], task, sources["train"]))
    return task, _check_and_carve(raw, sources, cfg, task)


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
    return _check_and_carve(raw, sources, cfg, task)


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
                f"data.hub_dataset={cfg.hub_dataset}: cannot load config {task.name!r} ({_first_line(err)})"
            ) from None
        return raw, {split: f"{cfg.hub_dataset}/{task.name}:{split}" for split in raw}
    files = find_split_files(cfg.dir, task)
    raw = datasets.DatasetDict({split: load_split_file(path) for split, path in files.items()})
    return raw, {split: str(path) for split, path in files.items()}


def _check_and_carve(raw, sources: dict[str, str], cfg: DataConfig, task: TaskSpec):
    for split, dataset in raw.items():
        check_split(dataset, task, sources[split], labelled=split not in task.test_splits)
    if cfg.file:  # checked as one file (row numbers are the file's), then split
        raw = carve_validation(raw["train"], task, cfg.validation_fraction, cfg.split_seed, cfg.file)
    return raw


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
        if not task.is_custom and value == -1:  # GLUE's marker for an unlabelled (test) row
            continue
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


def _encode(batch, tokenizer, task, max_length):
    texts = [batch[c] for c in task.text_columns]
    encoded = tokenizer(*texts, truncation=True, max_length=max_length)
    if task.label_column in batch:  # labelled splits were checked; unknown labels of test rows become -1
        encoded["labels"] = [
            -1 if (label := encode_label(value, task)) is None else label for value in batch[task.label_column]
        ]
    return encoded


def tokenize_split(dataset, tokenizer, task: TaskSpec, cfg: DataConfig):
    """Batched ``Dataset.map``; its cache makes the next run with the same inputs re-tokenize nothing."""
    return dataset.map(
        _encode,
        batched=True,
        num_proc=cfg.num_proc,
        remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": tokenizer, "task": task, "max_length": cfg.max_length},
        desc="Tokenizing",
    )


def tokenize_splits(raw, tokenizer, task: TaskSpec, cfg: DataConfig):
    import datasets

    return datasets.DatasetDict({name: tokenize_split(split, tokenizer, task, cfg) for name, split in raw.items()})


def token_lengths(dataset) -> list[int]:
    return [len(ids) for ids in dataset["input_ids"]]


def make_collator(tokenizer, pad_to_multiple_of: int | None = None):
    """Dynamic padding: each batch is padded to its own longest row (rounded up to a multiple under mixed precision)."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)


def make_train_sampler(lengths: list[int], batch_size: int, strategy: str, seed: int):
    """The training order: batches of similar length in random order (``LengthBucketSampler``), or plain shuffling."""
    import torch

    from .samplers import LengthBucketSampler

    if strategy == "group_by_length":
        return LengthBucketSampler(lengths, batch_size, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.RandomSampler(range(len(lengths)), generator=generator)


def length_sorted_order(lengths: list[int]) -> list[int]:
    """Row indices longest first: evaluation batches with little padding, and the memory peak comes at once."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def batches_of(indices, batch_size: int) -> list[list[int]]:
    indices = list(indices)
    return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]


def padding_efficiency(lengths: list[int], batches: list[list[int]], pad_to_multiple_of: int | None = None) -> float:
    """Real tokens / padded tokens when each batch is padded to its longest row."""
    real = padded = 0
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        if pad_to_multiple_of:
            longest = math.ceil(longest / pad_to_multiple_of) * pad_to_multiple_of
        real += sum(lengths[i] for i in batch)
        padded += longest * len(batch)
    return real / padded if padded else 1.0
