"""Fine-tune with an Accelerate loop: one script for 1 CPU, N GPUs or several machines, same recipe and run layout.

mrpc-finetune train mrpc_minilm loop=accelerate data.dir=DIR
accelerate launch --num_processes 2 -m mrpc_finetune train mrpc_minilm loop=accelerate data.dir=DIR
torchrun --nproc_per_node 2 -m mrpc_finetune train mrpc_minilm loop=accelerate data.dir=DIR
make train-accelerate NPROC=2 ARGS="data.dir=DIR"

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
from accelerate.utils import DistributedType, gather_object, parse_flag_from_env
from torch.utils.data import DataLoader

from mrpc_finetune.errors import UserError
from mrpc_finetune.metrics import compute_metrics_fn
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.run import rundir
from mrpc_finetune.run.trackers import open_trackers, recipe_params
from mrpc_finetune.train import guards, loop_parts, loop_sequence
from mrpc_finetune.train.loop_parts import LoopState, StepPlan
from mrpc_finetune.train.loop_sequence import LoopRun
from mrpc_finetune.train.precision import PrecisionProbe
from mrpc_finetune.train.preparation import Prepared, both_orders_metrics, prepare_run

MIXED_precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


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
    _refuse_fsdp_on_cpu(cpu)
    process = PartialState(cpu=cpu)  # joins the process group under accelerate launch / torchrun
    _warn_single_cpu_process(process)
    # Check and load everything before the run directory exists, so bad input leaves nothing behind.
    recipe, prepared, run = prepare_run(
        recipe,
        num_processes=process.num_processes,
        is_main=process.is_main_process,
        wait_for_everyone=process.wait_for_everyone,
    )
    if process.device.type == "cuda":
        loop_parts.enable_tf32_if_supported()
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=MIXED_precision[prepared.precision],  # bf16 runs on a CPU too; fp16 there is refused
        gradient_accumulation_steps=recipe.train.grad_accum,
        dynamo_backend="inductor" if recipe.train.torch_compile else None,
    )
    # Model, optimizer and training batches handed to Accelerate: wrapped for DDP, placed, dealt out per process.
    sampler = loop_parts.train_sampler(prepared.splits["train"], recipe)
    model, optimizer, train_loader = accelerator.prepare(
        prepared.model,
        loop_parts.build_optimizer(prepared.model, recipe.train),
        _train_loader(prepared, recipe, sampler),
    )
    plan = StepPlan.from_recipe(len(train_loader), recipe.train)  # len() is per process after prepare
    _checkpoint_as_model_folder(accelerator, model, prepared.tokenizer)
    scheduler = accelerator.prepare(
        loop_parts.build_scheduler(optimizer.optimizer, recipe.train, plan.total_steps, accelerator.num_processes)
    )
    state = _resume_or_start(recipe, run, accelerator)
    trackers = open_trackers(recipe, run.root, enabled=accelerator.is_main_process)
    unwrapped = accelerator.unwrap_model(model)
    loop = LoopRun(
        name="accelerate",
        recipe=recipe,
        task=prepared.task,
        run=run,
        plan=plan,
        state=state,
        trackers=trackers,
        precision=prepared.precision,
        num_processes=accelerator.num_processes,
        started=started,
        save_checkpoint=partial(_save_checkpoint, accelerator=accelerator, state=state),
        eval_sets=loop_sequence.eval_sets(
            prepared, recipe, rank=accelerator.process_index, processes=accelerator.num_processes
        ),
        test_sets=loop_sequence.eval_sets(
            prepared, recipe, test=True, rank=accelerator.process_index, processes=accelerator.num_processes
        ),
        is_main=accelerator.is_main_process,
        wait_for_everyone=accelerator.wait_for_everyone,
        on_evaluate=on_evaluate,
        probe=PrecisionProbe(unwrapped),
    )
    with trackers:  # closed as FINISHED, or as FAILED / KILLED when an exception leaves the block
        trackers.log_params(recipe_params(recipe))
        training_started = time.time()
        stopped_early = _train(loop, accelerator, model, sampler, train_loader, optimizer, scheduler)
        train_runtime = time.time() - training_started
        if state.best_checkpoint:  # like the Trainer's load_best_model_at_end
            accelerator.load_state(state.best_checkpoint)
        # The best checkpoint on the dev split(s), then once on the labelled test splits.
        metrics = _evaluate(accelerator, model, loop.eval_sets + loop.test_sets, loop.task)
        metrics.update(both_orders_metrics(unwrapped, prepared, recipe.eval.batch_size))  # with eval.both_orders
        metrics = loop_sequence.finish(
            loop,
            metrics=metrics,
            model=unwrapped,
            tokenizer=prepared.tokenizer,
            train_runtime=train_runtime,
            stopped_early=stopped_early,
        )
    accelerator.end_training()
    return accelerator, model, metrics


def _train(loop: LoopRun, accelerator, model, sampler, train_loader, optimizer, scheduler) -> bool:
    """Optimizer steps until the plan's last one (or early stopping); True if it stopped early."""
    recipe, plan, state = loop.recipe, loop.plan, loop.state
    progress = loop_sequence.progress_bar(loop)
    model.train()
    step_loss = torch.zeros((), device=accelerator.device)
    done = False
    try:
        while not done:
            state.start_epoch(plan)
            loop_parts.reseed_sampler(sampler, recipe.seed, state.epoch)
            loader = (
                accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
            )
            # Accelerate's loader sets its sampler's epoch to how often *this process* iterated it, which after a
            # resume is not the run's epoch: tell it, or the resumed epochs replay epoch 0's batch order.
            loader.set_epoch(state.epoch)
            for batch_index, batch in enumerate(loader, start=state.batches_done):
                with accelerator.accumulate(model):
                    loss = model(**batch).loss
                    learning_rate = scheduler.get_last_lr()[0]
                    # before backward, so the weights stay finite; a nan or inf in any process stops them all
                    total = accelerator.reduce(loss.detach().float(), reduction="sum")
                    loop_sequence.check_finite(loop, guards.check_finite_loss, total, state.global_step + 1)
                    window = plan.window_size(batch_index)
                    # backward() divides by grad_accum; a short last window of the epoch divides by its own length,
                    # so every optimizer step follows the mean loss over the micro-batches it saw.
                    accelerator.backward(loss * (plan.grad_accum / window))
                    step_loss += loss.detach() / window
                    grad_norm = None
                    if accelerator.sync_gradients and recipe.train.max_grad_norm > 0:
                        norm = accelerator.clip_grad_norm_(model.parameters(), recipe.train.max_grad_norm)
                        grad_norm = None if norm is None else float(norm)  # DeepSpeed clips inside its step
                    optimizer.step()  # Accelerate makes these no-ops until the window is complete
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                state.batches_done = batch_index + 1
                if not accelerator.sync_gradients:
                    continue

                state.finish_step(accelerator.reduce(step_loss, reduction="mean").item())
                step_loss.zero_()
                progress.update(1)
                scaler = accelerator.scaler  # fp16 on a GPU: Accelerate's GradScaler, and its skipped steps
                loop_sequence.log_training_step(
                    loop,
                    learning_rate=learning_rate,
                    grad_norm=grad_norm,
                    loss_scale=scaler.get_scale() if scaler is not None else None,
                    skipped=accelerator.optimizer_step_was_skipped,
                )
                evaluated = loop_sequence.evaluation_due(loop)
                if evaluated:
                    metrics = _evaluate(accelerator, model, loop.eval_sets, loop.task)
                    # Log it, stop on a nan score, report it, keep the best checkpoint, save this one, rotate.
                    loop_sequence.after_evaluation(loop, metrics)
                done = loop_sequence.training_over(loop, evaluated=evaluated)
                if done:
                    break
    finally:
        progress.close()  # before any error message, so it stands on its own line
    return state.global_step < plan.total_steps


def _evaluate(accelerator, model, sets, task) -> dict:
    """``model.eval()``, logits under ``torch.no_grad()`` in Accelerate's autocast, every process's share gathered,
    logits -> predictions -> the task's metrics (``loop_sequence.evaluate_model``, shared with the torch loop)."""
    return loop_sequence.evaluate_model(
        accelerator.unwrap_model(model),
        sets,
        task=task,
        compute_metrics=compute_metrics_fn(task),
        device=accelerator.device,
        autocast=accelerator.autocast,
        gather=lambda value: gather_object([value]),
    )


def _train_loader(prepared: Prepared, recipe: Recipe, sampler) -> DataLoader:
    return DataLoader(
        prepared.splits["train"],
        batch_size=recipe.train.batch_size,
        sampler=sampler,  # seeded: every process draws the same order, and Accelerate hands each its batches
        collate_fn=prepared.collator,
        num_workers=recipe.train.num_workers,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator(),  # starting an epoch draws nothing from the RNG that dropout uses
    )


def _resume_or_start(recipe: Recipe, run: rundir.RunDir, accelerator) -> LoopState:
    """With resume=true, load the last complete checkpoint in every process; else a new state."""
    if recipe.resume and accelerator.is_main_process:
        rundir.prepare_resume(run, recipe)  # removes checkpoints a kill cut off mid-save; says where it goes on
    accelerator.wait_for_everyone()
    checkpoint = run.last_checkpoint() if recipe.resume else None
    if checkpoint is None:
        return LoopState()
    accelerator.load_state(str(checkpoint))  # model, optimizer, scheduler, each process's RNG states
    return LoopState.load(checkpoint)


def _warn_single_cpu_process(process) -> None:
    """`accelerate launch --cpu --num_processes N` starts one process unless mpirun is configured."""
    launched_for_several = "MASTER_PORT" in os.environ and "WORLD_SIZE" not in os.environ
    if process.num_processes == 1 and launched_for_several and parse_flag_from_env("ACCELERATE_USE_CPU"):
        print(
            "warning: `accelerate launch --cpu` started a single process; for several CPU processes use "
            "`accelerate launch --multi_gpu --num_processes N ...` or `torchrun --nproc_per_node N ...`",
            file=sys.stderr,
        )


def _refuse_fsdp_on_cpu(cpu: bool) -> None:
    """Accelerate (1.15) turns FSDP on for GPUs and other accelerators only: on a CPU `--use_fsdp` either stops in
    ``Accelerator()``, after the run directory exists, or trains plain DDP unsharded and says nothing (docs/loops.md)."""
    if cpu and parse_flag_from_env("ACCELERATE_USE_FSDP"):
        raise UserError(
            "FSDP (accelerate launch --use_fsdp, ACCELERATE_USE_FSDP=true) needs GPUs: Accelerate does not shard on "
            "a CPU; launch without FSDP (`accelerate launch --multi_gpu --num_processes N`) or on GPUs"
        )


def _checkpoint_as_model_folder(accelerator, model, tokenizer) -> None:
    """Checkpoints hold the model as ``save_pretrained`` writes it, with its tokenizer, as the other loops' do, so
    any of them can start a new run (``model.name=RUN/checkpoints/checkpoint-N``); Accelerate saves the rest. Its
    own model file would hold the DDP wrapper's ``module.`` keys and no config. (DeepSpeed and FSDP keep theirs.)"""
    if accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP, DistributedType.MEGATRON_LM):
        return
    unwrapped = accelerator.unwrap_model(model)

    def save(models, weights, output_dir):
        weights.clear()  # Accelerate writes no model file of its own...
        if accelerator.is_main_process:
            unwrapped.save_pretrained(output_dir, safe_serialization=True)
            tokenizer.save_pretrained(output_dir)

    def load(models, input_dir):
        models.clear()  # ...and loads none: the folder's weights go into the model inside the wrapper
        unwrapped.load_state_dict(loop_parts.load_checkpoint_weights(Path(input_dir), accelerator.device))

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)


def _save_checkpoint(path: Path, *, accelerator, state: LoopState) -> None:
    """checkpoint-<step>/: the model folder and tokenizer (``_checkpoint_as_model_folder``), Accelerate's state
    (optimizer, scheduler, RNG of every process), and last the loop's position."""
    accelerator.save_state(str(path))
    accelerator.wait_for_everyone()  # every process has written its RNG states
    if accelerator.is_main_process:
        state.save(path)  # last: a checkpoint with loop_state.json is complete
    accelerator.wait_for_everyone()
