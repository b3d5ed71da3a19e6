"""The steps the plain PyTorch loop and the Accelerate loop both take, each called by name from the loop's own file,
so that the two differ only in how a micro-batch becomes an optimizer step. After each step: ``log_training_step``,
then if ``evaluation_due``, ``evaluate_model`` (the evaluation loop) and ``after_evaluation`` (log, nan stop,
report, best checkpoint, save, rotate), until ``training_over``. At the end, ``finish``: the figures of the run,
``RUN/model`` and ``metrics.json``. Evaluation shards rows over the processes and gathers them, so each row counts
exactly once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mrpc_finetune.data import batching
from mrpc_finetune.errors import UserError
from mrpc_finetune.metrics import split_prefixes
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import TaskSpec
from mrpc_finetune.run import rundir
from mrpc_finetune.run.trackers import Trackers
from mrpc_finetune.train import guards, hf_adapter
from mrpc_finetune.train.loop_parts import (
    LoopState,
    StepPlan,
    checkpoint_dir,
    evaluates_now,
    logs_now,
    rotate_checkpoints,
)
from mrpc_finetune.train.precision import PrecisionProbe, report_skipped_step
from mrpc_finetune.train.preparation import best_metric_name, finish_run, greater_is_better


def _alone(value: Any) -> list[Any]:
    """``gather`` of a single process: its own value is everyone's."""
    return [value]


@dataclass
class EvalSet:
    """One split to evaluate, as this process sees it."""

    prefix: str
    """Key prefix of its metrics: ``eval`` (or ``eval_<split>`` beside a second dev split), ``test``..."""
    loader: DataLoader
    """This process's share of the rows: every ``processes``-th row of the longest-first order."""


@dataclass
class LoopRun:
    """One training run as the shared steps see it; each loop fills in how it saves and waits."""

    name: str
    """The loop, as ``metrics.json`` records it: ``torch`` or ``accelerate``."""
    recipe: Recipe
    task: TaskSpec
    run: rundir.RunDir
    plan: StepPlan
    state: LoopState
    trackers: Trackers
    precision: str
    num_processes: int
    started: float
    """``time.perf_counter()`` when the command started, for ``wall_seconds``."""
    save_checkpoint: Callable[[Path], None]
    """Write everything a resume needs into the folder, ``loop_state.json`` last (it marks the folder complete)."""
    eval_sets: list[EvalSet]
    test_sets: list[EvalSet] = field(default_factory=list)
    is_main: bool = True
    wait_for_everyone: Callable[[], None] = lambda: None
    on_evaluate: Callable[[dict[str, Any], int], None] | None = None
    probe: PrecisionProbe | None = None
    """Reads the precision of the first training step; ``precision`` becomes what it saw (train/precision.py)."""


def progress_bar(loop: LoopRun):
    """The steps of the run, shown by the main process (a resumed run starts at its checkpoint's step)."""
    from tqdm.auto import tqdm

    total, done = loop.plan.total_steps, loop.state.global_step
    return tqdm(total=total, initial=done, desc=f"train ({loop.name} loop)", unit="step", disable=not loop.is_main)


def log_training_step(loop: LoopRun, *, learning_rate, grad_norm, loss_scale=None, skipped=False) -> None:
    """The step's mean loss, learning rate and gradient norm (under fp16 the loss scale) to the trackers: the first
    step, every ``train.logging_steps`` and the last, like the Trainer; a step fp16's scaler ``skipped`` is said."""
    state, plan = loop.state, loop.plan
    step = state.global_step
    if loop.probe is not None and loop.probe.pending:
        loop.precision = loop.probe.confirm(loop.precision, loop.name)
    if skipped:
        report_skipped_step(loop.trackers, step, loss_scale, loop.is_main)
    if logs_now(loop.recipe.train, step, step >= plan.total_steps):
        logs = state.train_logs(plan, learning_rate, grad_norm)
        loop.trackers.log(tensorboard_scalars(logs if loss_scale is None else {**logs, "loss_scale": loss_scale}), step)


def evaluation_due(loop: LoopRun) -> bool:
    """Whether ``eval.strategy`` evaluates (and saves a checkpoint) after this step: each epoch's end, every
    ``eval.steps``, and always after the last step unless the strategy is ``no``."""
    state, plan = loop.state, loop.plan
    end_of_epoch = state.batches_done == plan.batches_per_epoch
    return evaluates_now(loop.recipe.eval, state.global_step, end_of_epoch, state.global_step >= plan.total_steps)


def after_evaluation(loop: LoopRun, metrics: dict[str, Any]) -> None:
    """What follows an evaluation during training: log it, stop on a nan or inf score before its checkpoint is
    saved, report it to ``on_evaluate``, remember the best checkpoint, save this one and rotate the old ones."""
    recipe, state = loop.recipe, loop.state
    step = state.global_step
    metrics = {**metrics, "epoch": state.epoch_progress(loop.plan)}
    loop.trackers.log(tensorboard_scalars(metrics), step)
    check_finite(loop, guards.check_finite_evaluation, metrics, step)  # before this evaluation's checkpoint is saved
    if loop.on_evaluate and loop.is_main:
        loop.on_evaluate(metrics, step)
    checkpoint = checkpoint_dir(loop.run, step)
    key = f"eval_{best_metric_name(recipe, loop.task)}"
    state.consider(metrics, key, checkpoint, greater_is_better(recipe, loop.task))
    loop.save_checkpoint(checkpoint)
    if loop.is_main:
        rotate_checkpoints(loop.run.checkpoints, recipe.eval.save_total_limit, state.best_checkpoint)
    loop.wait_for_everyone()


def training_over(loop: LoopRun, *, evaluated: bool) -> bool:
    """The last step is done, or (after an evaluation) ``eval.patience`` evaluations in a row did not improve the
    selection metric: early stopping, like the Trainer's EarlyStoppingCallback."""
    last = loop.state.global_step >= loop.plan.total_steps
    return last or (evaluated and loop.state.out_of_patience(loop.recipe.eval.patience))


def check_finite(loop: LoopRun, check: Callable, *args) -> None:
    """``check(*args)``, one of the ``guards`` checks, with the recipe's learning rate; a nan or inf loss becomes
    the one-line stop that names the last good checkpoint."""
    try:
        check(*args, lr=loop.recipe.train.lr)
    except guards.NonFiniteLossError as err:
        raise UserError(guards.describe_stop(err, loop.run.last_checkpoint())) from None


def finish(
    loop: LoopRun, *, metrics: dict[str, Any], model, tokenizer, train_runtime: float, stopped_early: bool
) -> dict[str, Any]:
    """The final evaluation's ``metrics`` (of the best checkpoint, reloaded by the loop, on the dev split(s) and
    the labelled test splits) with the run's figures; the main process writes ``RUN/model`` and ``metrics.json``."""
    metrics = dict(metrics)
    recipe, state = loop.recipe, loop.state
    metrics.update(
        run_figures(
            loop=loop.name,
            precision=loop.precision,
            num_processes=loop.num_processes,
            batch_size=recipe.train.batch_size,
            grad_accum=recipe.train.grad_accum,
            global_step=state.global_step,
            epoch=state.epoch_progress(loop.plan),
            train_loss=state.train_loss,
            train_runtime=train_runtime,
            best_checkpoint=state.best_checkpoint,
            stopped_early=stopped_early,
            started=loop.started,
        )
    )
    loop.trackers.log(final_scalars(metrics), loop.state.global_step)
    if loop.is_main:
        rotate_checkpoints(loop.run.checkpoints, recipe.eval.save_total_limit, state.best_checkpoint, finished=True)
        finish_run(loop.recipe, loop.run, model=model, tokenizer=tokenizer, metrics=metrics, trackers=loop.trackers)
    loop.wait_for_everyone()
    return metrics


def run_figures(
    *,
    loop: str,
    precision: str,
    num_processes: int,
    batch_size: int,
    grad_accum: int,
    global_step: int,
    epoch: float,
    train_loss: float,
    train_runtime: float,
    best_checkpoint: str | None,
    stopped_early: bool,
    started: float,
) -> dict[str, Any]:
    """What ``metrics.json`` says about the run beside the metrics: the same keys from every loop."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_runtime": round(train_runtime, 4),
        "global_step": global_step,
        "best_checkpoint": best_checkpoint,
        "stopped_early": stopped_early,
        "loop": loop,
        "precision": precision,
        "num_processes": num_processes,
        "effective_batch_size": batch_size * grad_accum * num_processes,
        "wall_seconds": time.perf_counter() - started,
        "peak_memory_mb": rundir.peak_memory_mb(),
    }


def eval_sets(prepared, recipe: Recipe, *, test: bool = False, rank: int = 0, processes: int = 1) -> list[EvalSet]:
    """The dev splits (or the labelled test splits) as this process evaluates them. Each process takes every
    ``processes``-th row of a split's longest-first order: equal shares, little padding, each row in one share."""
    splits = prepared.test_splits if test else prepared.eval_splits
    sets = []
    for name, prefix in split_prefixes(list(splits), test).items():
        split = splits[name]
        share = batching.length_sorted_order(batching.token_lengths(split))[rank::processes]
        # A private generator: creating the iterator then draws no number from the global RNG that dropout uses.
        loader = DataLoader(
            split.select(share),
            batch_size=recipe.eval.batch_size,
            collate_fn=prepared.collator,
            num_workers=recipe.train.num_workers,
            generator=torch.Generator(),
        )
        sets.append(EvalSet(prefix, loader))
    return sets


def evaluate_model(
    model,
    sets: list[EvalSet],
    *,
    task: TaskSpec,
    compute_metrics: Callable,
    device: torch.device,
    autocast: Callable = contextlib.nullcontext,
    gather: Callable[[Any], list[Any]] = _alone,
) -> dict[str, Any]:
    """The evaluation loop: ``model.eval()``, then under ``torch.no_grad()`` each batch's logits (in ``autocast``, as
    in training), this process's share gathered from every process, logits -> predictions -> the task's metrics and
    loss (``compute_metrics``), with speed and row count of every set keyed like the Trainer's; back to train mode.
    ``gather`` collects a value from every process (one list entry each): each process scores its share, the shares
    are gathered, and every process computes the same metrics over all rows.
    """
    metrics: dict[str, Any] = {}
    was_training = model.training
    model.eval()
    for eval_set in sets:
        started, logits, labels, batches = time.time(), [], [], 0
        with torch.no_grad():
            for batch in eval_set.loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast():
                    output = model(**{k: v for k, v in batch.items() if k != "labels"})
                logits.append(output.logits.float().cpu().numpy())
                labels.append(batch["labels"].cpu().numpy())
                batches += 1
        mine = (
            np.concatenate(logits) if logits else np.zeros((0, task.num_labels), np.float32),
            np.concatenate(labels) if labels else np.zeros(0, np.float32 if task.is_regression else np.int64),
        )
        shares = gather(mine)
        all_logits = np.concatenate([share[0] for share in shares])
        all_labels = np.concatenate([share[1] for share in shares])
        scores = compute_metrics((all_logits, all_labels))  # the loss too, as for the Trainer
        prefix = eval_set.prefix
        metrics.update({f"{prefix}_{k}": float(v) for k, v in scores.items()})
        metrics.update(hf_adapter.speed_metrics(prefix, started, num_samples=len(all_labels), num_steps=batches))
        metrics[f"{prefix}_rows"] = len(all_labels)
    model.train(was_training)
    return metrics


def tensorboard_scalars(logs: dict[str, Any]) -> dict[str, float]:
    """Logs renamed to the Trainer's TensorBoard tags (``train/loss``, ``eval/f1``); row counts left out."""
    scalars = {k: v for k, v in logs.items() if isinstance(v, (int, float)) and not k.endswith("_rows")}
    return hf_adapter.tensorboard_tags(scalars)


def final_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """What the Trainer logs at the end: the final evaluation (and test), the training loss and runtime."""
    chosen = {
        k: v for k, v in metrics.items() if k.startswith(("eval_", "test")) or k in ("train_loss", "train_runtime")
    }
    return tensorboard_scalars(chosen)


def row_counts(splits: dict[str, Any], test: bool = False) -> dict[str, int]:
    """Rows per split under the metric key names (``eval_rows`` for one dev split, ``test_rows``)."""
    return {f"{prefix}_rows": len(splits[name]) for name, prefix in split_prefixes(list(splits), test).items()}
