"""Fine-tune with the Hugging Face Trainer (the default loop).

mrpc-finetune train mrpc_minilm data.dir=DIR
python -m mrpc_finetune train mrpc_minilm data.dir=DIR train.max_steps=30 output_dir=/tmp/run
torchrun --nproc_per_node 2 -m mrpc_finetune train mrpc_minilm data.dir=DIR   # DDP (gloo on CPU)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments

from . import data, guards, hardware, loop_sequence, loop_utils, runs
from .errors import UserError
from .metrics import compute_metrics_fn
from .pipeline import best_metric_name, finish_run, greater_is_better, prepare_run
from .recipe import Recipe
from .tasks import TaskSpec, task_for
from .trackers import open_trackers, recipe_params


class LengthBatchedTrainer(Trainer):
    """The Trainer with our batch order, as transformers offers no hook for a custom sampler.

    ``train_sampling_strategy="group_by_length"`` (set by ``training_arguments`` from ``train.sampler``) trains on
    ``samplers.LengthBucketSampler`` batches instead of transformers' ``LengthGroupedSampler`` (whose first batch is
    always the longest); ``random`` stays the Trainer's own shuffling. Evaluation and prediction run longest rows
    first for little padding (metrics do not depend on row order); ``predict`` puts its outputs back in row order.
    """

    def __init__(self, *args, train_config=None, **kwargs):
        self.train_config = train_config  # the recipe's train section: the optimizer every loop builds
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        """``loop_utils.build_optimizer``, as in the other loops (layer-wise learning rates included)."""
        if self.optimizer is None and self.train_config is not None:
            self.optimizer = loop_utils.build_optimizer(self.model if model is None else model, self.train_config)
        return super().create_optimizer(model)

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

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Logits and labels only: ``compute_metrics`` computes the loss from all gathered rows (metrics.py)."""
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        return (loss, logits, labels) if prediction_loss_only else (None, logits, labels)

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
    task = task or task_for(recipe.data)
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
        metric_for_best_model=best_metric_name(recipe, task),
        greater_is_better=greater_is_better(recipe, task),
        logging_strategy="steps",
        logging_steps=train.logging_steps,
        logging_first_step=True,
        use_cpu=not torch.cuda.is_available(),  # several CPU processes under torchrun then join with gloo
        report_to="none",  # train.report_to goes through TrackersCallback, the same trackers as the other loops
    )


def main(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics.

    ``on_evaluate(metrics, step)``: called after each evaluation during training (see ``cli.train_with_loop``).
    """
    from accelerate import PartialState

    started = time.perf_counter()
    process = PartialState(cpu=not torch.cuda.is_available())  # joins the process group under torchrun
    # Check and load everything before the run directory exists, so bad input leaves nothing behind.
    recipe, prepared, run = prepare_run(
        recipe,
        num_processes=process.num_processes,
        is_main=process.is_main_process,
        wait_for_everyone=process.wait_for_everyone,
    )
    args = training_arguments(recipe, run.checkpoints, prepared.precision, prepared.task)
    trackers = open_trackers(recipe, run.root, enabled=args.process_index == 0)
    callbacks = [TrackersCallback(trackers), StopOnNonFiniteLoss(recipe.train.lr), LogAtEachSaveAndEnd()]
    if recipe.eval.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe.eval.patience))
    # A classification head returns the mean loss of its batch. Its forward takes **kwargs, so the Trainer would
    # otherwise take it for a loss divided by the tokens of all processes: multiply it by the process count under
    # DDP and skip dividing it by train.grad_accum, doubling (tripling, ...) the gradients and the logged losses.
    prepared.model.accepts_loss_kwargs = False
    trainer = LengthBatchedTrainer(
        model=prepared.model,
        args=args,
        train_dataset=prepared.splits["train"],
        eval_dataset=_single_or_dict(prepared.eval_splits),
        data_collator=prepared.collator,
        processing_class=prepared.tokenizer,
        compute_metrics=compute_metrics_fn(prepared.task),
        callbacks=callbacks,
        train_config=recipe.train,
    )
    prefixes = list(loop_sequence.split_prefixes(list(prepared.eval_splits)).values())
    hook = EvaluationHook(on_evaluate, prefixes) if on_evaluate else None
    if hook:
        trainer.add_callback(hook)
    with trackers:  # closed as FINISHED, or as FAILED / KILLED when an exception leaves the block
        trackers.log_params(recipe_params(recipe))
        metrics = _train_and_evaluate(trainer, recipe, prepared, run, hook, started)
        if trainer.is_world_process_zero():
            finish_run(
                recipe, run, model=trainer.model, tokenizer=prepared.tokenizer, metrics=metrics, trackers=trackers
            )
        trainer.accelerator.wait_for_everyone()
    return metrics


def _train_and_evaluate(trainer, recipe: Recipe, prepared, run: runs.RunDir, hook, started: float) -> dict:
    """Train (or resume), then evaluate the best checkpoint on the dev split(s) and once on labelled test splits."""
    if trainer.is_world_process_zero():
        runs.resume_checkpoint(run, recipe)  # removes checkpoints a kill cut off mid-save; says where it goes on
    trainer.accelerator.wait_for_everyone()
    # Every process reads the cleaned run directory after the barrier, so all resume from the same checkpoint.
    resume_from = run.last_checkpoint() if recipe.resume else None
    try:
        train_output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except guards.NonFiniteLossError as err:
        for callback in trainer.callback_handler.callbacks:  # end the progress bars' lines before the message
            for bar in ("prediction_bar", "training_bar"):  # (an evaluation's bar is open when its loss is nan)
                if getattr(callback, bar, None) is not None:
                    getattr(callback, bar).close()
        raise UserError(guards.describe_stop(err, run.last_checkpoint())) from None
    # The final evaluations (of the best checkpoint) are not training ones: no report to on_evaluate, no
    # early-stopping count, and a non-finite score is reported in metrics.json rather than stopping anything.
    for callback in (hook, EarlyStoppingCallback, StopOnNonFiniteLoss):
        if callback:
            trainer.remove_callback(callback)
    metrics = trainer.evaluate()
    for name, prefix in loop_sequence.split_prefixes(list(prepared.test_splits), test=True).items():
        metrics.update(trainer.evaluate(eval_dataset=prepared.test_splits[name], metric_key_prefix=prefix))
    metrics.pop("epoch", None)  # the evaluation's copy; run_figures gives the training's
    state, args = trainer.state, trainer.args
    metrics.update(loop_sequence.row_counts(prepared.eval_splits))
    metrics.update(loop_sequence.row_counts(prepared.test_splits, test=True))
    metrics.update(
        loop_sequence.run_figures(
            loop="trainer",
            precision=prepared.precision,
            num_processes=args.world_size,
            batch_size=recipe.train.batch_size,
            grad_accum=recipe.train.grad_accum,
            global_step=state.global_step,
            epoch=state.epoch,
            train_loss=mean_train_loss(state.log_history, state.global_step),
            train_runtime=train_output.metrics["train_runtime"],
            best_checkpoint=state.best_model_checkpoint,
            stopped_early=state.global_step < state.max_steps,
            started=started,
        )
    )
    return metrics


class LogAtEachSaveAndEnd(TrainerCallback):
    """Log the training loss at every checkpoint and at the last step, so that the log history (saved in every
    checkpoint, restored by resume=true) holds each step's loss exactly once: see ``mean_train_loss``."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save or state.global_step >= state.max_steps:
            control.should_log = True


def mean_train_loss(log_history: list[dict], global_step: int) -> float:
    """The mean training loss over every step of the run, resumed or not. (The Trainer's own ``training_loss``
    averages only the steps since the last resume.) Each logged ``loss`` is the mean since the previous log."""
    total, previous = 0.0, 0
    for entry in sorted((e for e in log_history if "loss" in e), key=lambda e: e["step"]):
        total += entry["loss"] * (entry["step"] - previous)
        previous = entry["step"]
    return total / max(global_step, 1)


class TrackersCallback(TrainerCallback):
    """Every Trainer log line (training, evaluation, test) to the run's trackers, under the TensorBoard tags the
    other loops use (``train/loss``, ``eval/accuracy``, ``test/f1``); the main process alone writes."""

    TRAINER_ONLY = ("total_flos", "train_samples_per_second", "train_steps_per_second")
    """The Trainer's end-of-training throughput figures: the other loops have no such keys, so no loop logs them
    (``train_runtime`` and ``train_loss``, which every loop has, stay)."""

    def __init__(self, trackers):
        self.trackers = trackers

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            kept = {k: v for k, v in logs.items() if k not in self.TRAINER_ONLY}
            self.trackers.log(loop_sequence.tensorboard_scalars(kept), state.global_step)


class StopOnNonFiniteLoss(TrainerCallback):
    """Check every training forward pass's loss (``guards.check_finite_loss``) before backward and the optimizer
    step run, so a diverging run stops at once, with its weights and saved checkpoints still finite; and each
    evaluation during training (``guards.check_finite_evaluation``), which the Trainer runs before it saves."""

    def __init__(self, lr: float):
        self.lr = lr
        self.handle = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def check(module, inputs, outputs):
            loss = getattr(outputs, "loss", None)
            if module.training and loss is not None:
                guards.check_finite_loss(loss, state.global_step + 1, self.lr)

        self.handle = model.register_forward_hook(check)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        guards.check_finite_evaluation(metrics or {}, state.global_step, self.lr)

    def on_train_end(self, args, state, control, **kwargs):
        if self.handle is not None:
            self.handle.remove()


class EvaluationHook(TrainerCallback):
    """Hand each evaluation's metrics to ``on_evaluate(metrics, step)`` on the main process. With two dev splits
    (MNLI) the Trainer evaluates them one after the other: their metrics are handed over together."""

    def __init__(self, report, prefixes: list[str]):
        self.report, self.prefixes, self.pending = report, prefixes, {}

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.pending.update(metrics or {})
        if all(f"{prefix}_loss" in self.pending for prefix in self.prefixes):
            metrics, self.pending = self.pending, {}
            self.report(metrics, state.global_step)


def _single_or_dict(splits: dict):
    """One evaluation split keeps the plain ``eval_<metric>`` keys; several get ``eval_<split>_<metric>``."""
    return next(iter(splits.values())) if len(splits) == 1 else splits
