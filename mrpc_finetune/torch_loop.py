"""Fine-tune with a plain PyTorch loop: every step in view, same recipe, data, metrics and run layout as the Trainer.

mrpc-finetune train mrpc_minilm loop=torch data.dir=../shared/data/mrpc
make train-loop ARGS="data.dir=../shared/data/mrpc"
"""

from __future__ import annotations

import contextlib
import random
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader
from tqdm.auto import tqdm

from . import loop_utils, runs
from .loop_utils import LoopState, StepPlan
from .metrics import compute_metrics_fn
from .pipeline import Prepared, prepare
from .recipe import Recipe

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def main(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train, evaluate the best checkpoint, save ``RUN/model`` and ``RUN/metrics.json``; returns the metrics.

    ``on_evaluate(metrics, step)``: called after each evaluation during training (see ``cli.train_with_loop``).
    """
    started = time.perf_counter()
    runs.check_can_start(recipe)
    # Load and check everything before the run directory exists, so bad input leaves nothing behind.
    prepared = prepare(recipe)
    compute_metrics = compute_metrics_fn(prepared.task)
    run = runs.create(recipe)
    device = _setup_device()
    model = prepared.model.to(device)
    train_split = prepared.splits["train"]
    sampler = loop_utils.train_sampler(train_split, recipe)
    plan = StepPlan.from_recipe(len(BatchSampler(sampler, recipe.train.batch_size, drop_last=False)), recipe.train)
    optimizer = loop_utils.build_optimizer(model, recipe.train)
    scheduler = loop_utils.build_scheduler(optimizer, recipe.train, plan.total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=prepared.precision == "fp16")
    state = LoopState()
    if checkpoint := runs.resume_checkpoint(run, recipe):
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler, scaler, device)
    autocast = _autocast(device, prepared.precision)
    eval_loaders = {
        name: loop_utils.eval_loader(split, recipe.eval.batch_size, prepared.collator, recipe.train.num_workers)
        for name, split in prepared.eval_splits.items()
    }
    evaluate = partial(
        loop_utils.evaluate, model, eval_loaders, prepared.task, compute_metrics, device=device, autocast=autocast
    )
    writer = _tensorboard_writer(run)

    training_started = time.time()

    def evaluate_in_training():
        metrics = evaluate()
        if on_evaluate:
            on_evaluate(metrics, state.global_step)
        return metrics

    _train(
        recipe,
        prepared,
        run,
        model,
        sampler,
        plan,
        optimizer,
        scheduler,
        scaler,
        state,
        evaluate_in_training,
        writer,
        device,
    )
    train_runtime = time.time() - training_started

    if state.best_checkpoint:  # like the Trainer's load_best_model_at_end
        model.load_state_dict(_load_weights(Path(state.best_checkpoint), device))
    metrics = loop_utils.final_metrics(
        evaluate(),
        state,
        plan,
        loop="torch",
        precision=prepared.precision,
        train_runtime=train_runtime,
        started=started,
    )
    _log(writer, metrics, state.global_step, loop_utils.final_scalars)
    writer.close()
    runs.finish(run, model, prepared.tokenizer, metrics)
    print(runs.summary(run, metrics))
    return metrics


def _train(recipe, prepared, run, model, sampler, plan, optimizer, scheduler, scaler, state, evaluate, writer, device):
    """Optimizer steps until ``plan.total_steps``, evaluating and checkpointing per the recipe's eval strategy."""
    train, best_key = recipe.train, loop_utils.best_metric_key(recipe, prepared.task)
    forward = torch.compile(model) if train.torch_compile else model
    autocast = _autocast(device, prepared.precision)
    progress = tqdm(total=plan.total_steps, initial=state.global_step, desc="train (torch loop)", unit="step")
    model.train()
    step_loss = 0.0
    while state.global_step < plan.total_steps:
        state.start_epoch(plan)
        loader = _epoch_loader(prepared, sampler, recipe, state)
        for batch_index, batch in enumerate(loader, start=state.batches_done):
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast():
                loss = forward(**batch).loss
            # Each micro-batch loss is a mean over its rows; dividing by the window's length makes the
            # accumulated gradient that of the mean over the window, as one large batch would give.
            window_loss = loss / plan.window_size(batch_index)
            scaler.scale(window_loss).backward()
            step_loss += window_loss.item()
            state.batches_done = batch_index + 1
            if not plan.ends_window(batch_index):
                continue

            scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
            grad_norm = (
                torch.nn.utils.clip_grad_norm_(model.parameters(), train.max_grad_norm).item()
                if train.max_grad_norm > 0
                else None
            )
            learning_rate = scheduler.get_last_lr()[0]
            scale_before = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            if scaler.get_scale() >= scale_before:  # a lowered scale means fp16 overflow: the step was skipped
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.finish_step(step_loss)
            step_loss = 0.0
            progress.update(1)

            last = state.global_step >= plan.total_steps
            if loop_utils.logs_now(train, state.global_step, last):
                _log(writer, state.train_logs(plan, learning_rate, grad_norm), state.global_step)
            end_of_epoch = state.batches_done == plan.batches_per_epoch
            if loop_utils.evaluates_now(recipe.eval, state.global_step, end_of_epoch, last):
                eval_metrics = evaluate()
                _log(writer, eval_metrics, state.global_step)
                checkpoint = loop_utils.checkpoint_dir(run, state.global_step)
                state.consider(eval_metrics, best_key, checkpoint)
                _save_checkpoint(checkpoint, model, prepared.tokenizer, optimizer, scheduler, scaler, state)
                loop_utils.rotate_checkpoints(run.checkpoints, recipe.eval.save_total_limit, state.best_checkpoint)
            if last:
                break
    progress.close()


def _setup_device() -> torch.device:
    loop_utils.enable_tf32_if_supported()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device, precision: str):
    """A context factory: bf16/fp16 autocast on CUDA for the forward pass, nothing under fp32."""
    if precision not in AUTOCAST_DTYPES:
        return contextlib.nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def _epoch_loader(prepared: Prepared, sampler, recipe: Recipe, state: LoopState) -> DataLoader:
    """The epoch's batches in the recipe's order, starting after those a resumed run already trained on."""
    loop_utils.reseed_sampler(sampler, recipe.seed, state.epoch)
    batches = list(BatchSampler(sampler, recipe.train.batch_size, drop_last=False))
    return DataLoader(
        prepared.splits["train"],
        batch_sampler=batches[state.batches_done :],
        collate_fn=prepared.collator,
        num_workers=recipe.train.num_workers,
        pin_memory=torch.cuda.is_available(),
        # A private generator: starting the iterator then draws nothing from the RNG that dropout uses,
        # so a run resumed mid-epoch sees the same dropout masks as an unbroken one.
        generator=torch.Generator(),
    )


def _tensorboard_writer(run: runs.RunDir):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run.tensorboard))


def _log(writer, logs: dict, step: int, scalars=loop_utils.tensorboard_scalars) -> None:
    for tag, value in scalars(logs).items():
        writer.add_scalar(tag, value, step)
    writer.flush()


def _save_checkpoint(path: Path, model, tokenizer, optimizer, scheduler, scaler, state: LoopState) -> None:
    """checkpoint-<step>/: model + tokenizer (loadable with from_pretrained), optimizer, scheduler, RNG, position."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(scheduler.state_dict(), path / "scheduler.pt")
    torch.save(scaler.state_dict(), path / "scaler.pt")
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, path / "rng_state.pth")
    state.save(path)  # last: a checkpoint with loop_state.json is complete


def _load_weights(path: Path, device: torch.device) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"), device=str(device))


def _load_checkpoint(path: Path, model, optimizer, scheduler, scaler, device: torch.device) -> LoopState:
    model.load_state_dict(_load_weights(path, device))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=True))
    rng = torch.load(path / "rng_state.pth", weights_only=False)  # our own file: Python and NumPy RNG tuples
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return LoopState.load(path)
