"""Raw splits (Hub or local files) -> tokenized splits, the padding collator and the training sampler."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .modeling import OFFLINE_ROUTE, hub_reachable
from .recipe import DataConfig
from .tasks import TaskSpec

FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
"""Extension -> ``datasets`` builder. Tab files go through the csv builder with tab separators and no quoting."""


def find_split_files(folder: str | Path, task: TaskSpec) -> dict[str, Path]:
    """``DIR/<split>.<ext>`` for train, the task's evaluation splits and test; train is required."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"data.dir={folder}: no such folder")
    found = {}
    for split in ("train", *task.eval_splits, "test"):
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


def load_split_file(path: Path):
    """One split from one file, every row of it, with types as written."""
    import datasets

    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise UserError(f"{path}: unsupported extension {path.suffix!r}; use one of {', '.join(FILE_BUILDERS)}")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    kwargs = {"sep": "\t", "quoting": 3} if path.suffix.lower() == ".tsv" else {}  # 3 = csv.QUOTE_NONE
    try:
        return datasets.load_dataset(builder, data_files={"rows": str(path)}, split="rows", **kwargs)
    except Exception as err:  # the builders raise many types; the first line is what the user needs
        cause = err.__cause__ or err
        raise UserError(
            f"{path}: cannot be read as {path.suffix[1:]} ({str(cause).strip().splitlines()[0][:200]})"
        ) from None


def load_raw_splits(cfg: DataConfig, task: TaskSpec):
    """A ``DatasetDict`` with train, the task's evaluation splits and (if present) test, each checked."""
    import datasets

    if cfg.dir is None:
        if not hub_reachable():
            raise UserError(
                f"data: the Hugging Face Hub cannot be reached to download {cfg.hub_dataset}/{task.name}; "
                f"{OFFLINE_ROUTE}"
            )
        raw = datasets.load_dataset(cfg.hub_dataset, task.name)
        sources = {split: f"{cfg.hub_dataset}/{task.name}:{split}" for split in raw}
    else:
        files = find_split_files(cfg.dir, task)
        raw = datasets.DatasetDict({split: load_split_file(path) for split, path in files.items()})
        sources = {split: str(path) for split, path in files.items()}
    for split, dataset in raw.items():
        check_split(dataset, task, sources[split], labelled=split != "test")
    return raw


def check_split(dataset, task: TaskSpec, source: str, labelled: bool) -> None:
    """Columns present, texts non-empty and labels in range, before any tokenizing or training."""
    required = list(task.text_columns) + (["label"] if labelled else [])
    missing = [c for c in required if c not in dataset.column_names]
    if missing:
        raise UserError(f"{source}: missing column {missing[0]!r} (columns found: {', '.join(dataset.column_names)})")
    for column in task.text_columns:
        for row, text in enumerate(dataset[column]):
            if text is None or not str(text).strip():
                raise UserError(f"{source}: row {row + 1}, column {column!r} is empty")
    if labelled and not task.is_regression:
        for row, label in enumerate(dataset["label"]):
            if label == -1:  # GLUE's marker for an unlabelled (test) row
                continue
            if not isinstance(label, int) or not 0 <= label < task.num_labels:
                raise UserError(
                    f"{source}: row {row + 1}, column 'label' has {label!r}; expected an integer id "
                    f"0..{task.num_labels - 1} ({', '.join(task.label_names)})"
                )


def _encode(batch, tokenizer, text_columns, max_length):
    texts = [batch[c] for c in text_columns]
    encoded = tokenizer(*texts, truncation=True, max_length=max_length)
    if "label" in batch:
        encoded["labels"] = batch["label"]
    return encoded


def tokenize_split(dataset, tokenizer, task: TaskSpec, cfg: DataConfig):
    """Batched ``Dataset.map``; its cache makes the next run with the same inputs re-tokenize nothing."""
    return dataset.map(
        _encode,
        batched=True,
        num_proc=cfg.num_proc,
        remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": tokenizer, "text_columns": task.text_columns, "max_length": cfg.max_length},
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


class LengthBucketSampler(torch.utils.data.Sampler[int]):
    """Batches of rows of similar length, met in a random order: the default training order.

    Each epoch: shuffle every row (so rows of equal length tie-break at random), sort each mega-batch of
    ``mega_batch`` batches by length, cut it into batches of ``batch_size``, then shuffle the order of the batches,
    so neither the first batches nor any stretch of an epoch is longer or shorter than the rest. The one short
    batch (when ``batch_size`` does not divide the rows) is cut at a random place in its mega-batch's length order
    and always comes last: the DataLoader cuts this stream into ``batch_size`` chunks and must get these batches back.

    The order depends only on ``(seed, epoch)``, never on global random state: every process of a distributed run
    builds the same one, ``accelerator.prepare`` (Trainer, Accelerate loop) deals its batches out to the processes,
    and a resumed run sees the batches it would have seen. ``set_epoch`` picks the epoch; without it each new
    iteration moves on to the next epoch, as ``RandomSampler`` with a generator does.

    ``mega_batch`` is the number of batches sorted together; None sorts the whole set (least padding, least variety
    in what a batch holds). 50 keeps real MRPC train at batch 32 above 0.98 real / padded tokens.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, mega_batch: int | None = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.mega_batch = mega_batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of one epoch, in the order they are met."""
        rng = np.random.default_rng((self.seed, epoch))
        shuffled = rng.permutation(len(self.lengths))
        span = len(shuffled) if self.mega_batch is None else self.mega_batch * self.batch_size
        full, short = [], []
        for start in range(0, len(shuffled), max(span, 1)):
            mega = shuffled[start : start + span]
            mega = mega[np.argsort(self.lengths[mega], kind="stable")].tolist()
            remainder = len(mega) % self.batch_size
            if remainder:
                cut = int(rng.integers(0, len(mega) // self.batch_size + 1)) * self.batch_size
                short = mega[cut : cut + remainder]
                mega = mega[:cut] + mega[cut + remainder :]
            full += batches_of(mega, self.batch_size)
        order = rng.permutation(len(full))
        return [full[i] for i in order] + ([short] if short else [])

    def __iter__(self):
        batches = self.batches(self.epoch)
        self.epoch += 1
        return iter([i for batch in batches for i in batch])


def make_train_sampler(lengths: list[int], batch_size: int, strategy: str, seed: int):
    """The training order: batches of similar length in random order (``LengthBucketSampler``), or plain shuffling."""
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
