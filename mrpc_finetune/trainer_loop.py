"""Fine-tune with the Hugging Face Trainer (the default loop).

mrpc-finetune train mrpc_minilm data.dir=../shared/data/mrpc
python -m mrpc_finetune train mrpc_minilm data.dir=../shared/data/mrpc train.max_steps=30 output_dir=/tmp/run
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import guards, hardware, loop_utils, runs
from .errors import UserError
from .metrics import compute_metrics_fn
from .pipeline import best_metric_name, prepare
from .recipe import Recipe
from .tasks import TaskSpec, task_for


def training_arguments(
    recipe: Recipe, output_dir: str | Path, precision: str | None = None, task: TaskSpec | None = None
) -> TrainingArguments:
    """The one translation from a recipe to ``TrainingArguments`` (``task``: the one its data resolved to)."""
    train, evaluation = recipe.train, recipe.eval
    precision = precision or hardware.select_precision(train.precision)
    evaluates = evaluation.strategy != "no"
    return TrainingArguments(
        output_dir=str(output_dir),
        seed=recipe.seed,
        num_train_epochs=train.epochs,
        max_steps=train.max_steps,
        per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=evaluation.batch_size,
        gradient_accumulation_steps=train.grad_accum,
        learning_rate=train.lr,
        weight_decay=train.weight_decay,
        warmup_steps=train.warmup_ratio,  # a value below 1 is read as a fraction of all optimizer steps
        lr_scheduler_type=train.lr_scheduler,
        max_grad_norm=train.max_grad_norm,
        train_sampling_strategy=train.sampler,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        tf32=True if hardware.use_tf32() else None,
        torch_compile=train.torch_compile,
        dataloader_num_workers=train.num_workers,
        eval_strategy=evaluation.strategy,
        eval_steps=evaluation.steps,
        save_strategy=evaluation.strategy if evaluates else "no",
        save_steps=evaluation.steps,
        save_total_limit=evaluation.save_total_limit,
        load_best_model_at_end=evaluates,
        metric_for_best_model=best_metric_name(recipe, task or task_for(recipe.data)),
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=train.logging_steps,
        logging_first_step=True,
        report_to="none",  # TensorBoard is attached as an explicit callback writing to RUN/tensorboard
    )


def main(recipe: Recipe) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics."""
    started = time.perf_counter()
    runs.check_can_start(recipe)
    # Load and check everything before the run directory exists, so bad input leaves nothing behind.
    prepared = prepare(recipe)
    run = runs.create(recipe)
    args = training_arguments(recipe, run.checkpoints, prepared.precision, prepared.task)
    trainer = Trainer(
        model=prepared.model,
        args=args,
        train_dataset=prepared.splits["train"],
        eval_dataset=_single_or_dict(prepared.eval_splits),
        data_collator=prepared.collator,
        processing_class=prepared.tokenizer,
        compute_metrics=compute_metrics_fn(prepared.task),
        callbacks=[
            _tensorboard_callback(run.tensorboard),
            StopOnNonFiniteLoss(recipe.train.lr),
            SeedLengthGroupsPerEpoch(recipe.seed),
        ],
    )
    resume_from = runs.resume_checkpoint(run, recipe)
    try:
        train_output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except guards.NonFiniteLossError as err:
        for callback in trainer.callback_handler.callbacks:  # end the progress bar's line before the message
            if getattr(callback, "training_bar", None) is not None:
                callback.training_bar.close()
        raise UserError(guards.describe_stop(err, run.last_checkpoint())) from None
    metrics = trainer.evaluate()
    metrics.update(
        train_loss=train_output.training_loss,
        train_runtime=train_output.metrics["train_runtime"],
        global_step=trainer.state.global_step,
        best_checkpoint=trainer.state.best_model_checkpoint,
        loop="trainer",
        precision=prepared.precision,
        wall_seconds=time.perf_counter() - started,
        peak_memory_mb=runs.peak_memory_mb(),
    )
    metrics.update(loop_utils.eval_rows(prepared.eval_splits))
    runs.finish(run, trainer.model, prepared.tokenizer, metrics)
    print(runs.summary(run, metrics))
    return metrics


class StopOnNonFiniteLoss(TrainerCallback):
    """Check every training forward pass's loss (``guards.check_finite_loss``) before backward and the optimizer
    step run, so a diverging run stops at once, with its weights and saved checkpoints still finite."""

    def __init__(self, lr: float):
        self.lr = lr
        self.handle = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def check(module, inputs, outputs):
            loss = getattr(outputs, "loss", None)
            if module.training and loss is not None:
                guards.check_finite_loss(loss, state.global_step + 1, self.lr)

        self.handle = model.register_forward_hook(check)

    def on_train_end(self, args, state, control, **kwargs):
        if self.handle is not None:
            self.handle.remove()


class SeedLengthGroupsPerEpoch(TrainerCallback):
    """Draw each epoch's length-grouped batch order from its own generator seeded with seed + epoch.

    The Trainer's ``LengthGroupedSampler`` otherwise shuffles with the global RNG, which on resume is read
    before the checkpoint's RNG state is restored: the resumed epoch would see other batches than the
    unbroken run did. With this, a resumed run replays the unbroken run's batches exactly.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        sampler = _find_length_grouped_sampler(train_dataloader)
        if sampler is not None:
            sampler.generator = torch.Generator().manual_seed(self.seed + int(state.epoch or 0))


def _find_length_grouped_sampler(loader, depth: int = 4):
    """The ``LengthGroupedSampler`` inside a (possibly accelerate-wrapped) DataLoader, or None."""
    if isinstance(loader, LengthGroupedSampler):
        return loader
    if loader is None or depth == 0:
        return None
    for attribute in ("batch_sampler", "sampler"):
        found = _find_length_grouped_sampler(getattr(loader, attribute, None), depth - 1)
        if found is not None:
            return found
    return None


def _tensorboard_callback(log_dir: Path) -> TensorBoardCallback:
    """Trainer's TensorBoard logger, pinned to RUN/tensorboard (it reopens its writer for the final evaluation)."""
    callback = TensorBoardCallback()
    callback.logging_dir = str(log_dir)
    return callback


def _single_or_dict(splits: dict):
    """One evaluation split keeps the plain ``eval_<metric>`` keys; several get ``eval_<split>_<metric>``."""
    return next(iter(splits.values())) if len(splits) == 1 else splits
