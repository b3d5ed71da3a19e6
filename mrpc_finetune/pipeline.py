"""The pieces every training loop shares: task, tokenizer, model, tokenized splits, collator, precision.

All checks of recipe, data and model run here, before a run directory exists, so bad input leaves nothing behind.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from . import data, hardware, modeling
from .errors import UserError
from .recipe import Recipe
from .tasks import TaskSpec


@dataclass
class Prepared:
    task: TaskSpec
    tokenizer: Any
    model: Any
    splits: Any
    """``DatasetDict`` of tokenized splits: input_ids, token_type_ids, attention_mask, labels."""
    collator: Any
    precision: str
    """fp32, bf16 or fp16, resolved from ``train.precision`` and the hardware."""

    @property
    def eval_splits(self) -> dict[str, Any]:
        return {name: self.splits[name] for name in self.task.eval_splits if name in self.splits}


def prepare(recipe: Recipe, with_model: bool = True) -> Prepared:
    """Resolve precision, load tokenizer, data and (optionally) the model; fail with one line on bad input."""
    from transformers import set_seed

    precision = hardware.select_precision(recipe.train.precision)
    if recipe.model.trust_remote_code:
        print("WARNING: model.trust_remote_code=true runs Python code downloaded with the model", file=sys.stderr)
    check_sources(recipe)
    tokenizer = modeling.load_tokenizer(recipe.model)
    if with_model:
        modeling.check_local_model(recipe.model, tokenizer)  # before the data, so its errors come first
    task, raw = data.load_task_and_splits(recipe.data)  # custom data: label names found in the training rows
    missing = [split for split in task.eval_splits if split not in raw]
    if missing:
        where = f"add {missing[0]}.<ext> to data.dir={recipe.data.dir}" if recipe.data.dir else "use data.dir="
        raise UserError(f"data: no {missing[0]} split to evaluate on; {where}, or data.file=PATH to carve one")
    splits = data.tokenize_splits(raw, tokenizer, task, recipe.data)
    set_seed(recipe.seed)  # the classification head's initial weights depend on it
    model = modeling.load_model(recipe.model, task, tokenizer=tokenizer) if with_model else None
    collator = data.make_collator(tokenizer, hardware.pad_to_multiple_of(precision))
    return Prepared(task, tokenizer, model, splits, collator, precision)


def check_sources(recipe: Recipe) -> None:
    """Model and data reachable (local, cached or Hub)? Cheap: no torch or transformers import, one socket connect."""
    modeling.check_model_source(recipe.model)
    data.check_data_source(recipe.data)


def best_metric_name(recipe: Recipe, task: TaskSpec) -> str:
    """The key that picks the best checkpoint, as the Trainer names it in its eval logs."""
    metric = recipe.eval.metric or task.main_metric
    return f"{task.eval_splits[0]}_{metric}" if len(task.eval_splits) > 1 else metric
