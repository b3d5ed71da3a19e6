"""The pieces every training loop shares: task, tokenizer, model, tokenized splits, collator, precision.

All checks of recipe, data and model run here, before a run directory exists, so bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrpc_finetune import hardware, models
from mrpc_finetune.data import batching, loading, tokenization
from mrpc_finetune.data import checks as data_checks
from mrpc_finetune.errors import UserError
from mrpc_finetune.layer_reinit import reinit_top_layers
from mrpc_finetune.metrics import both_orders_prefix, split_prefixes
from mrpc_finetune.recipe import tasks
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import TaskSpec
from mrpc_finetune.run import provenance, rundir, trackers
from mrpc_finetune.run.model_card import write_model_card


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
    labelled_tests: list[str] = field(default_factory=list)
    """Test splits that carry labels: evaluated once at the end, never used to pick a checkpoint."""
    rows_excluded: dict[str, int] = field(default_factory=dict)
    """Rows each split lost to ``data.exclude`` (recorded in run_info.json); empty without it."""
    swapped: dict[str, Any] = field(default_factory=dict)
    """With ``eval.both_orders``: the dev and labelled test splits tokenized with their two texts swapped."""

    @property
    def eval_splits(self) -> dict[str, Any]:
        return {name: self.splits[name] for name in self.task.eval_splits if name in self.splits}

    @property
    def test_splits(self) -> dict[str, Any]:
        return {name: self.splits[name] for name in self.labelled_tests}


def prepare(recipe: Recipe, with_model: bool = True) -> Prepared:
    """Resolve precision, load tokenizer, data and (optionally) the model; fail with one line on bad input."""
    from transformers import set_seed

    precision, tokenizer, loaded, labelled_tests = _checked_inputs(recipe, check_model_files=with_model)
    task, raw = loaded.task, loaded.splits
    if with_model and (note := hardware.cpu_precision_note(precision)):
        print(note, file=sys.stderr)
    if recipe.data.swap_pairs:
        raw["train"] = loading.with_swapped_pairs(raw["train"], task)
    splits = tokenization.tokenize_splits(raw, tokenizer, task, recipe.data)
    scored = [name for name in (*task.eval_splits, *labelled_tests) if name in raw] if recipe.eval.both_orders else []
    swapped = {name: loading.swapped_pairs(raw[name], task) for name in scored}
    set_seed(recipe.seed)  # the classification head's initial weights depend on it
    model = models.load_model(recipe.model, task, tokenizer=tokenizer) if with_model else None
    if model is not None and recipe.model.reinit_layers:  # after the head, so the head's draw is unchanged
        reinit_top_layers(model, recipe.model.reinit_layers, recipe.model.name)
    collator = batching.make_collator(tokenizer, hardware.pad_to_multiple_of(precision))
    prepared = Prepared(task, tokenizer, model, splits, collator, precision, labelled_tests, loaded.rows_excluded)
    if swapped:  # eval.both_orders: the scored splits with their two texts swapped
        prepared.swapped = dict(tokenization.tokenize_splits(swapped, tokenizer, task, recipe.data))
    return prepared


def checked_task(recipe: Recipe) -> TaskSpec:
    """The task of the recipe's data after ``prepare``'s checks of recipe, data, tokenizer and model source,
    without tokenizing or loading the model: what ``repeat`` and ``search`` need before their runs start (for
    ``data.task=custom`` the label names, and so the metric, come from the training rows)."""
    return _checked_inputs(recipe, check_model_files=False)[2].task


def _checked_inputs(recipe: Recipe, check_model_files: bool):
    """Precision, tokenizer, the loaded data (task, raw splits, rows excluded) and labelled test splits, every
    input checked on the way."""
    precision = hardware.select_precision(recipe.train.precision, loop=recipe.loop)
    models.warn_if_remote_code(recipe.model)
    check_sources(recipe)
    tokenizer = models.load_tokenizer(recipe.model)
    if check_model_files:
        models.check_local_model(recipe.model, tokenizer)  # before the data, so its errors come first
    models.check_max_length(recipe.model, recipe.data.max_length)
    models.check_pooler(recipe.model)
    loaded = loading.load_data(recipe.data)  # custom data: label names found in the training rows
    task, raw = loaded.task, loaded.splits
    tasks.check_eval_metric(recipe.eval.metric, task.name, task.metric_names)  # custom: now classes or scores
    missing = [split for split in task.eval_splits if split not in raw]
    if missing:
        where = f"add {missing[0]}.<ext> to data.dir={recipe.data.dir}" if recipe.data.dir else "use data.dir="
        raise UserError(f"data: no {missing[0]} split to evaluate on; {where}, or data.file=PATH to carve one")
    labelled_tests = [
        name for name in task.test_splits if name in raw and data_checks.is_labelled(raw[name], task, name)
    ]
    return precision, tokenizer, loaded, labelled_tests


def prepare_run(
    recipe: Recipe,
    *,
    num_processes: int = 1,
    is_main: bool = True,
    wait_for_everyone: Callable[[], None] = lambda: None,
) -> tuple[Recipe, Prepared, rundir.RunDir]:
    """Check and load everything in every process, then let the main process alone create the run directory.

    Under ``torchrun`` / ``accelerate launch`` every process runs this: all check the run directory before any
    is made, the main process tokenizes first (the others then read its ``Dataset.map`` cache), and only the
    main process creates, writes and (with overwrite=true) deletes the run directory. Returns the recipe with its
    paths made absolute (what ``recipe.json`` records), the prepared pieces and the run directory.
    """
    recipe = provenance.absolute_paths(recipe)  # recipe.json resolves from any folder; resume compares like paths
    rundir.check_can_start(recipe)
    if is_main:
        trackers.check_trackers(recipe)  # a missing package or an unreachable store fails before anything is made
    wait_for_everyone()  # every process has checked before the main one creates anything
    prepared = prepare(recipe) if is_main else None
    wait_for_everyone()
    if not is_main:
        prepared = prepare(recipe)
    run = rundir.RunDir(recipe.run_dir)
    if is_main:
        run = rundir.create(recipe)
        _record_run_info(run, recipe, num_processes, prepared.precision, prepared.rows_excluded)
    wait_for_everyone()
    return recipe, prepared, run


RESUME_RECORD_KEYS = ("command", "working_folder", "device", "git", "num_processes")
"""The ``provenance.run_info`` keys a resumed run adds to the first record: how and where it was resumed."""


def _record_run_info(
    run: rundir.RunDir, recipe: Recipe, num_processes: int, precision: str, rows_excluded: dict[str, int] | None = None
) -> None:
    """``RUN/run_info.json``; a resumed run keeps the first record and adds how it was resumed."""
    info = provenance.run_info(recipe, num_processes=num_processes, precision=precision, rows_excluded=rows_excluded)
    if recipe.resume and run.run_info.is_file():
        first = json.loads(run.run_info.read_text())
        resumed = {key: info[key] for key in RESUME_RECORD_KEYS}  # KeyError, not silent loss, if a key is renamed
        first.setdefault("resumed", []).append(resumed)
        info = first
    rundir.atomic_write_json(run.run_info, info)


def finish_run(recipe: Recipe, run: rundir.RunDir, *, model, tokenizer, metrics: dict, trackers) -> None:
    """The main process's last steps, in every loop: ``RUN/model`` with its model card swapped in whole, then
    ``metrics.json`` (the run is complete), then the final metrics and model to the trackers, then the summary."""
    info = json.loads(run.run_info.read_text())

    def describe(folder: Path) -> None:
        write_model_card(folder, recipe=recipe, metrics=metrics, run_info=info)

    rundir.finish(run, model, tokenizer, metrics, describe)
    trackers.log_final(metrics, run.model)
    print(rundir.summary(run, metrics))


def both_orders_metrics(model, prepared: Prepared, batch_size: int) -> dict[str, float]:
    """With ``eval.both_orders``, the end-of-run scores of ``model`` with each pair scored as (a, b) and (b, a) and
    the probabilities averaged, ``eval_both_orders_<metric>`` / ``test_both_orders_<metric>``: the same function as
    ``mrpc-finetune eval`` (``inference.averaging``), on this process's device, in every loop alike (every process
    scores all rows itself). Never part of the evaluations that pick the best checkpoint. Empty without
    ``eval.both_orders``."""
    from mrpc_finetune.inference import averaging

    if not prepared.swapped:
        return {}
    device = next(model.parameters()).device
    collator = batching.make_collator(prepared.tokenizer)  # eval's own collator: no padding to a multiple
    task, metrics = prepared.task, {}
    for splits, test in ((prepared.eval_splits, False), (prepared.test_splits, True)):
        for name, prefix in split_prefixes(list(splits), test).items():
            orders = [splits[name], prepared.swapped[name]]
            found = [averaging.model_probabilities(model, s, collator, batch_size, task, device) for s in orders]
            labels = splits[name]["labels"]
            metrics.update(averaging.scores(averaging.mean(found), labels, task, both_orders_prefix(prefix)))
    return metrics


def check_sources(recipe: Recipe) -> None:
    """Model and data reachable (local, cached or Hub)? Cheap: no torch or transformers import, one socket connect."""
    models.check_model_source(recipe.model)
    loading.check_data_source(recipe.data)


def best_metric_name(recipe: Recipe, task: TaskSpec) -> str:
    """The key that picks the best checkpoint, as the Trainer names it in its eval logs (without ``eval_``)."""
    metric = recipe.eval.metric or task.main_metric
    return f"{task.eval_splits[0]}_{metric}" if len(task.eval_splits) > 1 else metric


def greater_is_better(recipe: Recipe, task: TaskSpec) -> bool:
    """Direction of the selection metric: ``loss`` is best lowest, every task metric highest."""
    return tasks.greater_is_better(recipe.eval.metric or task.main_metric)
