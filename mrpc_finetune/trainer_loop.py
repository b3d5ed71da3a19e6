"""Fine-tune with the Hugging Face Trainer (the default loop).

mrpc-finetune train mrpc_minilm data.dir=../shared/data/mrpc
python -m mrpc_finetune train mrpc_minilm data.dir=../shared/data/mrpc train.max_steps=30 output_dir=/tmp/run
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback

from . import data, guards, hardware, loop_utils, runs
from .errors import UserError
from .metrics import compute_metrics_fn
from .pipeline import best_metric_name, prepare
from .recipe import Recipe
from .tasks import TaskSpec, task_for


class LengthBatchedTrainer(Trainer):
    """The Trainer with our batch order, as transformers offers no hook for a custom sampler.

    ``train_sampling_strategy="group_by_length"`` (set by ``training_arguments`` from ``train.sampler``) trains on
    ``samplers.LengthBucketSampler`` batches instead of transformers' ``LengthGroupedSampler`` (whose first batch is
    always the longest); ``random`` stays the Trainer's own shuffling. Evaluation and prediction run longest rows
    first for little padding (metrics do not depend on row order); ``predict`` puts its outputs back in row order.
    """

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or not _has_input_ids(dataset):
            return super()._get_train_sampler(train_dataset)
        seed = self.args.seed if self.args.data_seed is None else self.args.data_seed
        return data.make_train_sampler(data.token_lengths(dataset), self.args.train_batch_size, "group_by_length", seed)

    def _get_eval_sampler(self, eval_dataset):
        if not _has_input_ids(eval_dataset):
            return super()._get_eval_sampler(eval_dataset)
        return data.length_sorted_order(data.token_lengths(eval_dataset))

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        output = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if not _has_input_ids(test_dataset):
            return output
        order = data.length_sorted_order(data.token_lengths(test_dataset))
        return output._replace(
            predictions=_in_row_order(output.predictions, order), label_ids=_in_row_order(output.label_ids, order)
        )


def _has_input_ids(dataset) -> bool:
    import datasets

    return isinstance(dataset, datasets.Dataset) and "input_ids" in dataset.column_names


def _in_row_order(values, order: list[int]):
    """Undo a permutation: ``values[k]`` belongs to row ``order[k]``; tuples of arrays (several outputs) too."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(_in_row_order(v, order) for v in values)
    restored = np.empty_like(values)
    restored[order] = values
    return restored


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


def main(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics.

    ``on_evaluate(metrics, step)``: called after each evaluation during training (see ``cli.train_with_loop``).
    """
    started = time.perf_counter()
    runs.check_can_start(recipe)
    # Load and check everything before the run directory exists, so bad input leaves nothing behind.
    prepared = prepare(recipe)
    run = runs.create(recipe)
    args = training_arguments(recipe, run.checkpoints, prepared.precision, prepared.task)
    trainer = LengthBatchedTrainer(
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
        ],
    )
    hook = EvaluationHook(on_evaluate) if on_evaluate else None
    if hook:
        trainer.add_callback(hook)
    resume_from = runs.resume_checkpoint(run, recipe)
    try:
        train_output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except guards.NonFiniteLossError as err:
        for callback in trainer.callback_handler.callbacks:  # end the progress bar's line before the message
            if getattr(callback, "training_bar", None) is not None:
                callback.training_bar.close()
        raise UserError(guards.describe_stop(err, run.last_checkpoint())) from None
    if hook:
        trainer.remove_callback(hook)  # the final evaluation (of the best checkpoint) is not a training one
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


class EvaluationHook(TrainerCallback):
    """Hand each evaluation's metrics to ``on_evaluate(metrics, step)`` on the main process."""

    def __init__(self, report):
        self.report = report

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero:
            self.report(metrics, state.global_step)


def _tensorboard_callback(log_dir: Path) -> TensorBoardCallback:
    """Trainer's TensorBoard logger, pinned to RUN/tensorboard (it reopens its writer for the final evaluation)."""
    callback = TensorBoardCallback()
    callback.logging_dir = str(log_dir)
    return callback


def _single_or_dict(splits: dict):
    """One evaluation split keeps the plain ``eval_<metric>`` keys; several get ``eval_<split>_<metric>``."""
    return next(iter(splits.values())) if len(splits) == 1 else splits
