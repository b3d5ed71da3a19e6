"""Checked raw splits -> tokenized splits, through ``Dataset.map`` and its cache.

splits = tokenize_splits(raw, tokenizer, task, recipe.data)    # a DatasetDict of input_ids, ..., labels
"""

from __future__ import annotations

import contextlib

from mrpc_finetune.data.checks import encode_label
from mrpc_finetune.recipe.schema import DataConfig
from mrpc_finetune.recipe.tasks import TaskSpec


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
    with _call_state_kept(tokenizer):
        return dataset.map(
            _encode,
            batched=True,
            num_proc=cfg.num_proc,
            remove_columns=dataset.column_names,
            fn_kwargs={"tokenizer": tokenizer, "task": task, "max_length": cfg.max_length},
            desc="Tokenizing",
        )


@contextlib.contextmanager
def _call_state_kept(tokenizer):
    """Give the tokenizer back with the padding and truncation it came with. A fast tokenizer keeps those of its
    last call and saves them in ``tokenizer.json``; without this a run whose tokenization came from the datasets
    cache (no call) saved another file than one that tokenized."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer keeps no such state
        yield
        return
    truncation, padding = backend.truncation, backend.padding
    try:
        yield
    finally:
        if truncation is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(**truncation)
        if padding is None:
            backend.no_padding()
        else:
            backend.enable_padding(**padding)


def tokenize_splits(raw, tokenizer, task: TaskSpec, cfg: DataConfig):
    import datasets

    return datasets.DatasetDict({name: tokenize_split(split, tokenizer, task, cfg) for name, split in raw.items()})
