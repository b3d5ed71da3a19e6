"""Fine-tune with the Hugging Face Trainer (the default loop): the path from a recipe to a trained model, in one file.

    mrpc-finetune train mrpc_minilm data.dir=DIR
    python -m mrpc_finetune train mrpc_minilm data.dir=DIR train.max_steps=30 output_dir=/tmp/run
    torchrun --nproc_per_node 2 -m mrpc_finetune train mrpc_minilm data.dir=DIR   # DDP (gloo on CPU)

``main`` reads top to bottom as the workflow: the recipe (checked by ``load_recipe`` in the command) -> tokenized
splits and ``DataCollatorWithPadding`` -> ``training_arguments``, the one translation to ``TrainingArguments`` -> the
``Trainer`` with its named customisations -> train -> evaluate the best checkpoint -> save. Each helper below it is
one of those steps. What transformers keeps private, and we override, is in ``hf_adapter.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, TrainingArguments

from mrpc_finetune import hardware
from mrpc_finetune.errors import UserError
from mrpc_finetune.metrics import compute_metrics_fn
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import TaskSpec, task_for
from mrpc_finetune.run import rundir
from mrpc_finetune.run.trackers import open_trackers, recipe_params
from mrpc_finetune.train import guards, loop_parts, loop_sequence
from mrpc_finetune.train.callbacks import (
    ConfirmPrecision,
    EvaluationHook,
    LogAtEachSaveAndEnd,
    StopOnNonFiniteLoss,
    TrackersCallback,
    mean_train_loss,
)
from mrpc_finetune.train.hf_adapter import LengthBatchedTrainer
from mrpc_finetune.train.preparation import (
    Prepared,
    best_metric_name,
    both_orders_metrics,
    finish_run,
    greater_is_better,
    prepare_run,
)


def main(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics.

    ``on_evaluate(metrics, step)``: called after each evaluation during training (see ``train.train_with_loop``).
    """
    from accelerate import PartialState

    started = time.perf_counter()
    # 1. This process's place: alone, or one of several under torchrun (the process group is joined here).
    process = PartialState(cpu=not torch.cuda.is_available())
    # 2. Check and load everything, then create the run directory: the task, the tokenizer, the splits tokenized with
    #    datasets.map, DataCollatorWithPadding and the model. Bad input stops here and leaves nothing behind.
    recipe, prepared, run = prepare_run(
        recipe,
        num_processes=process.num_processes,
        is_main=process.is_main_process,
        wait_for_everyone=process.wait_for_everyone,
    )
    # 3. The one translation from the recipe to TrainingArguments.
    args = training_arguments(recipe, run.checkpoints, prepared.precision, prepared.task)
    # 4. The Trainer with our customisations: the batch order (LengthBatchedTrainer's samplers), the optimizer's groups
    #    (the AdamW every loop builds, layer-wise rates included), and callbacks: the run's trackers, a stop on a nan
    #    loss, a log line at every save, early stopping with eval.patience, and on_evaluate.
    trackers = open_trackers(recipe, run.root, enabled=args.process_index == 0)
    precision = ConfirmPrecision(prepared.precision)  # what the forward pass ran in, for metrics.json
    callbacks = [TrackersCallback(trackers), StopOnNonFiniteLoss(recipe.train.lr), LogAtEachSaveAndEnd(), precision]
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
        optimizer_factory=lambda model: loop_parts.build_optimizer(model, recipe.train),
    )
    prefixes = list(loop_sequence.split_prefixes(list(prepared.eval_splits)).values())
    hook = EvaluationHook(on_evaluate, prefixes) if on_evaluate else None
    if hook:
        trainer.add_callback(hook)
    with trackers:  # closed as FINISHED, or as FAILED / KILLED when an exception leaves the block
        trackers.log_params(recipe_params(recipe))
        # 5. Train, or go on from the last complete checkpoint with resume=true.
        train_output = train_or_resume(trainer, recipe, run)
        # 6. Evaluate the best checkpoint (load_best_model_at_end put it back) on the dev split(s) and once on any
        #    labelled test split. These are not training evaluations: no report to on_evaluate, no early-stopping
        #    count, and a non-finite score goes into metrics.json rather than stopping anything.
        for callback in (hook, EarlyStoppingCallback, StopOnNonFiniteLoss):
            if callback:
                trainer.remove_callback(callback)
        metrics = evaluate_best(trainer, prepared)
        train_runtime = train_output.metrics["train_runtime"]
        metrics.update(run_figures(trainer, recipe, precision.ran, train_runtime=train_runtime, started=started))
        # 7. The main process saves RUN/model with its model card, then metrics.json (the run is complete).
        if trainer.is_world_process_zero():
            finish_run(
                recipe, run, model=trainer.model, tokenizer=prepared.tokenizer, metrics=metrics, trackers=trackers
            )
        trainer.accelerator.wait_for_everyone()
    return metrics


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


def train_or_resume(trainer: LengthBatchedTrainer, recipe: Recipe, run: rundir.RunDir):
    """``trainer.train()``, from the last complete checkpoint with resume=true; a nan or inf loss (or evaluation)
    becomes the one-line stop that names the last good checkpoint."""
    if trainer.is_world_process_zero():
        rundir.prepare_resume(run, recipe)  # removes checkpoints a kill cut off mid-save; says where it goes on
    trainer.accelerator.wait_for_everyone()
    # Every process reads the cleaned run directory after the barrier, so all resume from the same checkpoint.
    resume_from = run.last_checkpoint() if recipe.resume else None
    try:
        return trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except guards.NonFiniteLossError as err:
        for callback in trainer.callback_handler.callbacks:  # end the progress bars' lines before the message
            for bar in ("prediction_bar", "training_bar"):  # (an evaluation's bar is open when its loss is nan)
                if getattr(callback, bar, None) is not None:
                    getattr(callback, bar).close()
        raise UserError(guards.describe_stop(err, run.last_checkpoint())) from None


def evaluate_best(trainer: LengthBatchedTrainer, prepared: Prepared) -> dict:
    """The model as it is now on the dev split(s), then once on each labelled test split; rows per split; and with
    ``eval.both_orders`` the same splits in both sentence orders."""
    metrics = trainer.evaluate()
    for name, prefix in loop_sequence.split_prefixes(list(prepared.test_splits), test=True).items():
        metrics.update(trainer.evaluate(eval_dataset=prepared.test_splits[name], metric_key_prefix=prefix))
    metrics.pop("epoch", None)  # the evaluation's copy; run_figures gives the training's
    metrics.update(loop_sequence.row_counts(prepared.eval_splits))
    metrics.update(loop_sequence.row_counts(prepared.test_splits, test=True))
    metrics.update(both_orders_metrics(trainer.model, prepared, trainer.args.per_device_eval_batch_size))
    return metrics


def run_figures(
    trainer: LengthBatchedTrainer, recipe: Recipe, precision: str, *, train_runtime: float, started: float
) -> dict:
    """What ``metrics.json`` says about the run beside the scores, the same keys as the other loops write."""
    state = trainer.state
    return loop_sequence.run_figures(
        loop="trainer",
        precision=precision,
        num_processes=trainer.args.world_size,
        batch_size=recipe.train.batch_size,
        grad_accum=recipe.train.grad_accum,
        global_step=state.global_step,
        epoch=state.epoch,
        train_loss=mean_train_loss(state.log_history, state.global_step),
        train_runtime=train_runtime,
        best_checkpoint=state.best_model_checkpoint,
        stopped_early=state.global_step < state.max_steps,
        started=started,
    )


def _single_or_dict(splits: dict):
    """One evaluation split keeps the plain ``eval_<metric>`` keys; several get ``eval_<split>_<metric>``."""
    return next(iter(splits.values())) if len(splits) == 1 else splits
