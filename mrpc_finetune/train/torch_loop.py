"""Fine-tune with a plain PyTorch loop: every step in view, same recipe, data, metrics and run layout as the Trainer.

mrpc-finetune train mrpc_minilm loop=torch data.dir=DIR
torchrun --nproc_per_node 2 -m mrpc_finetune train mrpc_minilm loop=torch data.dir=DIR
make train-loop ARGS="data.dir=DIR"

Under torchrun each process trains a DistributedDataParallel copy on its share of every epoch's batches (the
same seeded order in every process); the main process alone writes the run directory.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, DataLoader

from mrpc_finetune.metrics import compute_metrics_fn
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.run import rundir
from mrpc_finetune.run.trackers import open_trackers, recipe_params
from mrpc_finetune.train import guards, loop_parts, loop_sequence
from mrpc_finetune.train.loop_parts import LoopState, Processes, StepPlan
from mrpc_finetune.train.loop_sequence import LoopRun
from mrpc_finetune.train.precision import LABELS, PrecisionProbe
from mrpc_finetune.train.preparation import Prepared, both_orders_metrics, prepare_run

AUTOCAST_DTYPES = {label: dtype for dtype, label in LABELS.items() if label != "fp32"}


def main(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics.

    ``on_evaluate(metrics, step)``: called after each evaluation during training (see ``cli.train_with_loop``).
    """
    started = time.perf_counter()
    processes = _join_processes()
    # Check and load everything before the run directory exists, so bad input leaves nothing behind.
    recipe, prepared, run = prepare_run(
        recipe, num_processes=processes.count, is_main=processes.is_main, wait_for_everyone=processes.wait_for_everyone
    )
    model = prepared.model.to(processes.device)
    trained = _distributed(model, processes)  # what the forward pass goes through (DDP under torchrun)
    sampler = loop_parts.train_sampler(prepared.splits["train"], recipe)
    batches_per_epoch = len(_epoch_batches(sampler, recipe, 0, processes))
    plan = StepPlan.from_recipe(batches_per_epoch, recipe.train)
    optimizer = loop_parts.build_optimizer(model, recipe.train)
    scheduler = loop_parts.build_scheduler(optimizer, recipe.train, plan.total_steps)
    scaler = torch.amp.GradScaler(processes.device.type, enabled=prepared.precision == "fp16")
    state = _resume_or_start(recipe, run, model, optimizer, scheduler, scaler, processes)
    autocast = _autocast(processes.device, prepared.precision)
    trackers = open_trackers(recipe, run.root, enabled=processes.is_main)
    loop = LoopRun(
        name="torch",
        recipe=recipe,
        task=prepared.task,
        run=run,
        plan=plan,
        state=state,
        trackers=trackers,
        precision=prepared.precision,
        num_processes=processes.count,
        started=started,
        save_checkpoint=partial(
            _save_checkpoint,
            model=model,
            tokenizer=prepared.tokenizer,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            state=state,
            processes=processes,
        ),
        eval_sets=loop_sequence.eval_sets(prepared, recipe, rank=processes.rank, processes=processes.count),
        test_sets=loop_sequence.eval_sets(prepared, recipe, test=True, rank=processes.rank, processes=processes.count),
        is_main=processes.is_main,
        wait_for_everyone=processes.wait_for_everyone,
        on_evaluate=on_evaluate,
        probe=PrecisionProbe(model),
    )
    with trackers:  # closed as FINISHED, or as FAILED / KILLED when an exception leaves the block
        trackers.log_params(recipe_params(recipe))
        training_started = time.time()
        stopped_early = _train(
            loop, prepared, model, trained, sampler, optimizer, scheduler, scaler, autocast, processes
        )
        train_runtime = time.time() - training_started
        if state.best_checkpoint:  # like the Trainer's load_best_model_at_end
            model.load_state_dict(loop_parts.load_checkpoint_weights(Path(state.best_checkpoint), processes.device))
        # The best checkpoint on the dev split(s), then once on the labelled test splits.
        metrics = _evaluate(model, loop.eval_sets + loop.test_sets, prepared, processes, autocast)
        metrics.update(both_orders_metrics(model, prepared, recipe.eval.batch_size))  # with eval.both_orders
        metrics = loop_sequence.finish(
            loop,
            metrics=metrics,
            model=model,
            tokenizer=prepared.tokenizer,
            train_runtime=train_runtime,
            stopped_early=stopped_early,
        )
    return metrics


def _train(
    loop: LoopRun, prepared: Prepared, model, trained, sampler, optimizer, scheduler, scaler, autocast, processes
) -> bool:
    """Optimizer steps until the plan's last one (or early stopping); True if it stopped early."""
    recipe, plan, state = loop.recipe, loop.plan, loop.state
    progress = loop_sequence.progress_bar(loop)
    trained.train()
    step_loss, done = 0.0, False
    try:
        while not done:
            state.start_epoch(plan)
            for batch_index, batch in _epoch_loader(prepared, sampler, recipe, state, processes):
                batch = {k: v.to(processes.device) for k, v in batch.items()}
                window = plan.window_size(batch_index)
                # DDP averages gradients across processes at each backward; skip that until the window's last one.
                syncs = plan.ends_window(batch_index) or processes.count == 1
                with contextlib.nullcontext() if syncs else trained.no_sync():
                    with autocast():
                        loss = trained(**batch).loss
                    # Stop before backward on a nan or inf loss in any process: weights and checkpoints stay finite.
                    learning_rate, loss_value = scheduler.get_last_lr()[0], loss.detach().float().item()
                    step = loop.state.global_step + 1
                    loop_sequence.check_finite(loop, guards.check_finite_loss, processes.mean(loss_value), step)
                    # Each micro-batch loss is a mean over its rows; dividing by the window's length makes the
                    # accumulated gradient that of the mean over the window, as one large batch would give.
                    scaler.scale(loss / window).backward()
                step_loss += loss_value / window
                state.batches_done = batch_index + 1
                if not plan.ends_window(batch_index):
                    continue

                scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
                max_norm = recipe.train.max_grad_norm
                grad_norm = (
                    torch.nn.utils.clip_grad_norm_(trained.parameters(), max_norm).item() if max_norm > 0 else None
                )
                scale_before = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                skipped = scaler.get_scale() < scale_before  # a lowered scale means fp16 overflow: no update was made
                if not skipped:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.finish_step(processes.mean(step_loss))
                step_loss = 0.0
                progress.update(1)
                loop_sequence.log_training_step(
                    loop,
                    learning_rate=learning_rate,
                    grad_norm=grad_norm,
                    loss_scale=scaler.get_scale() if scaler.is_enabled() else None,
                    skipped=skipped,
                )
                evaluated = loop_sequence.evaluation_due(loop)
                if evaluated:
                    metrics = _evaluate(model, loop.eval_sets, prepared, processes, autocast)
                    # Log it, stop on a nan score, report it, keep the best checkpoint, save this one, rotate.
                    loop_sequence.after_evaluation(loop, metrics)
                done = loop_sequence.training_over(loop, evaluated=evaluated)
                if done:
                    break
    finally:
        progress.close()  # before any error message, so it stands on its own line
    return state.global_step < plan.total_steps


def _evaluate(model, sets, prepared: Prepared, processes: Processes, autocast) -> dict:
    """``model.eval()``, logits under ``torch.no_grad()``, gathered from every process, logits -> predictions -> the
    task's metrics (``loop_sequence.evaluate_model``, the evaluation loop all custom loops share)."""
    return loop_sequence.evaluate_model(
        model,
        sets,
        task=prepared.task,
        compute_metrics=compute_metrics_fn(prepared.task),
        device=processes.device,
        autocast=autocast,
        gather=processes.gather,
    )


def _join_processes() -> Processes:
    """Under torchrun (WORLD_SIZE > 1) join the process group: NCCL on GPUs, gloo on CPUs."""
    loop_parts.enable_tf32_if_supported()
    count = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = (
        torch.device(f"cuda:{local_rank}" if cuda else "cpu") if count > 1 else torch.device("cuda" if cuda else "cpu")
    )
    if count > 1:
        if cuda:
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
    return Processes(rank=dist.get_rank() if count > 1 else 0, count=count, device=device)


def _distributed(model, processes: Processes):
    if processes.count == 1:
        return model
    device_ids = [processes.device.index] if processes.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _autocast(device: torch.device, precision: str):
    """A context factory: bf16/fp16 autocast for the forward pass (on the GPU, or on the CPU to check the path),
    nothing under fp32."""
    if precision not in AUTOCAST_DTYPES:
        return contextlib.nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def _epoch_batches(sampler, recipe: Recipe, epoch: int, processes: Processes) -> list[list[int]]:
    """This process's batches of the epoch: the recipe's order (the same in every process), dealt out evenly."""
    loop_parts.reseed_sampler(sampler, recipe.seed, epoch)
    batches = list(BatchSampler(sampler, recipe.train.batch_size, drop_last=False))
    return loop_parts.even_share(batches, processes.rank, processes.count)


def _epoch_loader(prepared: Prepared, sampler, recipe: Recipe, state: LoopState, processes: Processes):
    """(index, batch) of the epoch, starting after the batches a resumed run already trained on."""
    batches = _epoch_batches(sampler, recipe, state.epoch, processes)
    loader = DataLoader(
        prepared.splits["train"],
        batch_sampler=batches[state.batches_done :],
        collate_fn=prepared.collator,
        num_workers=recipe.train.num_workers,
        pin_memory=processes.device.type == "cuda",
        # A private generator: starting the iterator then draws nothing from the RNG that dropout uses,
        # so a run resumed mid-epoch sees the same dropout masks as an unbroken one.
        generator=torch.Generator(),
    )
    return enumerate(loader, start=state.batches_done)


def _save_checkpoint(path: Path, *, model, tokenizer, optimizer, scheduler, scaler, state, processes) -> None:
    """checkpoint-<step>/: model + tokenizer (loadable with from_pretrained), optimizer, scheduler, each process's
    RNG states, and last the loop's position. Processes hold the same weights and optimizer state under DDP."""
    if processes.is_main:
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)
        torch.save(optimizer.state_dict(), path / "optimizer.pt")
        torch.save(scheduler.state_dict(), path / "scheduler.pt")
        torch.save(scaler.state_dict(), path / "scaler.pt")
    processes.wait_for_everyone()
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, path / f"rng_state_{processes.rank}.pth")
    processes.wait_for_everyone()
    if processes.is_main:
        state.save(path)  # last: a checkpoint with loop_state.json is complete


def _resume_or_start(recipe, run, model, optimizer, scheduler, scaler, processes: Processes) -> LoopState:
    """With resume=true, every process loads the last complete checkpoint (its own RNG states); else a new state."""
    if recipe.resume and processes.is_main:
        rundir.prepare_resume(run, recipe)  # removes checkpoints a kill cut off mid-save; says where it goes on
    processes.wait_for_everyone()
    path = run.last_checkpoint() if recipe.resume else None
    if path is None:
        return LoopState()
    device = processes.device
    model.load_state_dict(loop_parts.load_checkpoint_weights(path, device))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=True))
    rng = torch.load(path / f"rng_state_{processes.rank}.pth", weights_only=False)  # our own file: RNG tuples
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return LoopState.load(path)
