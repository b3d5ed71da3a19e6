"""Fine-tune with an Accelerate loop: one script for 1 CPU, N GPUs or several machines, same recipe and run layout.

mrpc-finetune train mrpc_minilm loop=accelerate data.dir=../shared/data/mrpc
accelerate launch --num_processes 2 -m mrpc_finetune train mrpc_minilm loop=accelerate data.dir=../shared/data/mrpc
torchrun --nproc_per_node 2 -m mrpc_finetune train mrpc_minilm loop=accelerate data.dir=../shared/data/mrpc
make train-accelerate NPROC=2 ARGS="data.dir=../shared/data/mrpc"

Only the main process creates the run directory and writes files other than Accelerate's per-process RNG states.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import parse_flag_from_env
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import loop_utils, runs
from .loop_utils import LoopState, StepPlan
from .metrics import compute_metrics_fn
from .pipeline import Prepared, prepare
from .recipe import Recipe

MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def main(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics.

    ``on_evaluate(metrics, step)``: called after each evaluation during training (see ``cli.train_with_loop``).
    """
    _, _, metrics = train(recipe, on_evaluate=on_evaluate)
    return metrics


def train(recipe: Recipe, on_evaluate=None):
    """The whole run; returns ``(accelerator, prepared model, metrics)`` so callers can inspect every process."""
    started = time.perf_counter()
    # Without a GPU, Accelerate forms a (gloo) process group only when told it runs on CPU.
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    process = PartialState(cpu=cpu)  # joins the process group under accelerate launch / torchrun
    _warn_single_cpu_process(process)
    prepared, compute_metrics, run = _setup_run(recipe, process)
    precision = prepared.precision if process.device.type == "cuda" else "fp32"  # `accelerate launch --cpu`
    if process.device.type == "cuda":
        loop_utils.enable_tf32_if_supported()
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=MIXED_PRECISION[precision],
        gradient_accumulation_steps=recipe.train.grad_accum,
        log_with="tensorboard",
        project_dir=str(run.root),
        dynamo_backend="inductor" if recipe.train.torch_compile else None,
    )
    accelerator.init_trackers(run.tensorboard.name)  # TensorBoard writes into project_dir/<name> = RUN/tensorboard
    sampler = loop_utils.train_sampler(prepared.splits["train"], recipe)
    model, optimizer, train_loader, eval_loaders = _setup_training(recipe, prepared, accelerator, sampler)
    plan = StepPlan.from_recipe(len(train_loader), recipe.train)  # len() is per process after prepare
    scheduler = accelerator.prepare(
        loop_utils.build_scheduler(optimizer.optimizer, recipe.train, plan.total_steps, accelerator.num_processes)
    )
    state = LoopState()
    if recipe.resume and accelerator.is_main_process:
        runs.resume_checkpoint(run, recipe)  # removes checkpoints a kill cut off mid-save; says where it goes on
    accelerator.wait_for_everyone()
    if recipe.resume and (checkpoint := run.last_checkpoint()):
        accelerator.load_state(str(checkpoint))  # model, optimizer, scheduler, each process's RNG states
        state = LoopState.load(checkpoint)
        accelerator.print(f"resuming from {checkpoint} (step {state.global_step})")
    evaluate = partial(
        loop_utils.evaluate, model, eval_loaders, prepared.task, compute_metrics, gather=accelerator.gather_for_metrics
    )

    def evaluate_in_training():
        metrics = evaluate()
        if on_evaluate and accelerator.is_main_process:
            on_evaluate(metrics, state.global_step)
        return metrics

    training_started = time.time()
    _train(
        recipe,
        prepared,
        run,
        accelerator,
        model,
        sampler,
        train_loader,
        plan,
        optimizer,
        scheduler,
        state,
        evaluate_in_training,
    )
    train_runtime = time.time() - training_started

    if state.best_checkpoint:  # like the Trainer's load_best_model_at_end
        accelerator.load_state(state.best_checkpoint)
    metrics = loop_utils.final_metrics(
        evaluate(),
        state,
        plan,
        loop="accelerate",
        precision=precision,
        train_runtime=train_runtime,
        started=started,
    )
    accelerator.log(loop_utils.final_scalars(metrics), step=state.global_step)
    if accelerator.is_main_process:
        runs.finish(run, accelerator.unwrap_model(model), prepared.tokenizer, metrics)
        print(runs.summary(run, metrics))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return accelerator, model, metrics


def _setup_run(recipe: Recipe, process):
    """Check and load everything on every process, then let the main process alone create the run directory."""
    runs.check_can_start(recipe)
    process.wait_for_everyone()  # every process has checked before the main one creates anything
    with process.main_process_first():  # the main process fills the datasets cache, the others read it
        prepared = prepare(recipe)
        compute_metrics = compute_metrics_fn(prepared.task)
    run = runs.create(recipe) if process.is_main_process else runs.RunDir(recipe.run_dir)
    process.wait_for_everyone()
    return prepared, compute_metrics, run


def _setup_training(recipe: Recipe, prepared: Prepared, accelerator, sampler):
    """Model, optimizer and loaders handed to Accelerate: wrapped for DDP, placed on the device, sharded."""
    train_loader = DataLoader(
        prepared.splits["train"],
        batch_size=recipe.train.batch_size,
        sampler=sampler,  # seeded: every process draws the same order, and Accelerate hands each its batches
        collate_fn=prepared.collator,
        num_workers=recipe.train.num_workers,
        pin_memory=accelerator.device.type == "cuda",
        generator=torch.Generator(),  # starting an epoch draws nothing from the RNG that dropout uses
    )
    eval_loaders = {
        name: loop_utils.eval_loader(split, recipe.eval.batch_size, prepared.collator, recipe.train.num_workers)
        for name, split in prepared.eval_splits.items()
    }
    optimizer = loop_utils.build_optimizer(prepared.model, recipe.train)
    model, optimizer, train_loader, *prepared_eval = accelerator.prepare(
        prepared.model, optimizer, train_loader, *eval_loaders.values()
    )
    return model, optimizer, train_loader, dict(zip(eval_loaders, prepared_eval, strict=True))


def _train(
    recipe, prepared, run, accelerator, model, sampler, train_loader, plan, optimizer, scheduler, state, evaluate
):
    """Optimizer steps until ``plan.total_steps``, evaluating and checkpointing per the recipe's eval strategy."""
    train, best_key = recipe.train, loop_utils.best_metric_key(recipe, prepared.task)
    progress = tqdm(
        total=plan.total_steps,
        initial=state.global_step,
        desc="train (accelerate loop)",
        unit="step",
        disable=not accelerator.is_local_main_process,
    )
    model.train()
    step_loss = torch.zeros((), device=accelerator.device)
    while state.global_step < plan.total_steps:
        state.start_epoch(plan)
        loop_utils.reseed_sampler(sampler, recipe.seed, state.epoch)
        loader = (
            accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
        )
        # Accelerate's loader sets its sampler's epoch to how often *this process* iterated it, which after a
        # resume is not the run's epoch: tell it, or the resumed epochs replay epoch 0's batch order.
        loader.set_epoch(state.epoch)
        for batch_index, batch in enumerate(loader, start=state.batches_done):
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                window = plan.window_size(batch_index)
                # backward() divides by grad_accum; a short last window of the epoch divides by its own length,
                # so every optimizer step follows the mean loss over the micro-batches it saw.
                accelerator.backward(loss * (plan.grad_accum / window))
                step_loss += loss.detach() / window
                grad_norm = None
                if accelerator.sync_gradients and train.max_grad_norm > 0:
                    norm = accelerator.clip_grad_norm_(model.parameters(), train.max_grad_norm)
                    grad_norm = None if norm is None else float(norm)  # DeepSpeed clips inside its step
                learning_rate = scheduler.get_last_lr()[0]
                optimizer.step()  # Accelerate makes these no-ops until the window is complete
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state.batches_done = batch_index + 1
            if not accelerator.sync_gradients:
                continue

            state.finish_step(accelerator.reduce(step_loss, reduction="mean").item())
            step_loss.zero_()
            progress.update(1)

            last = state.global_step >= plan.total_steps
            if loop_utils.logs_now(train, state.global_step, last):
                logs = state.train_logs(plan, learning_rate, grad_norm)
                accelerator.log(loop_utils.tensorboard_scalars(logs), step=state.global_step)
            end_of_epoch = state.batches_done == plan.batches_per_epoch
            if loop_utils.evaluates_now(recipe.eval, state.global_step, end_of_epoch, last):
                eval_metrics = evaluate()
                accelerator.log(loop_utils.tensorboard_scalars(eval_metrics), step=state.global_step)
                checkpoint = loop_utils.checkpoint_dir(run, state.global_step)
                state.consider(eval_metrics, best_key, checkpoint)
                _save_checkpoint(accelerator, checkpoint, state)
                if accelerator.is_main_process:
                    loop_utils.rotate_checkpoints(run.checkpoints, recipe.eval.save_total_limit, state.best_checkpoint)
                accelerator.wait_for_everyone()
            if last:
                break
    progress.close()


def _warn_single_cpu_process(process) -> None:
    """`accelerate launch --cpu --num_processes N` starts one process unless mpirun is configured."""
    launched_for_several = "MASTER_PORT" in os.environ and "WORLD_SIZE" not in os.environ
    if process.num_processes == 1 and launched_for_several and parse_flag_from_env("ACCELERATE_USE_CPU"):
        print(
            "warning: `accelerate launch --cpu` started a single process; for several CPU processes use "
            "`accelerate launch --multi_gpu --num_processes N ...` or `torchrun --nproc_per_node N ...`",
            file=sys.stderr,
        )


def _save_checkpoint(accelerator, path: Path, state: LoopState) -> None:
    """checkpoint-<step>/: Accelerate's state (model, optimizer, scheduler, RNG of every process) + loop position."""
    accelerator.save_state(str(path))
    accelerator.wait_for_everyone()  # every process has written its RNG states
    if accelerator.is_main_process:
        state.save(path)  # last: a checkpoint with loop_state.json is complete
    accelerator.wait_for_everyone()
