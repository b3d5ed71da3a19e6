"""One timed training run of a benchmark setting, and the matmul peak that MFU divides by; each can run in a fresh
worker process (``in_fresh_process``) so that its peak memory is its own. Used by bench.py and bench_gpu.py."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def setting_recipe(setting: str, spec: dict):
    """The mrpc_minilm recipe with the model, data, seed and step count of this benchmark; only the order differs."""
    from mrpc_finetune.recipe import load_recipe

    overrides = [
        f"model.name={spec['model']}",
        f"data.dir={spec['data']}",
        f"seed={spec['seed']}",
        f"train.batch_size={spec['batch_size']}",
        f"train.sampler={'group_by_length' if setting == 'C' else 'random'}",
        f"train.torch_compile={'true' if spec.get('compile') else 'false'}",
        "eval.strategy=no",
        f"output_dir={spec['workdir']}/{setting}",
        "overwrite=true",
    ]
    overrides.append(f"train.max_steps={spec['steps']}" if spec["steps"] > 0 else f"train.epochs={spec['epochs']}")
    return load_recipe("mrpc_minilm", overrides)


class CountingCollator:
    """Wraps a collator: records rows, real and padded tokens and the model FLOPs of the real tokens of every
    batch (given the model's ``flops.EncoderShape``); keeps copies of the batches when asked."""

    def __init__(self, collate, keep: bool = False, shape=None):
        self.collate, self.keep, self.shape = collate, keep, shape
        self.records: list[tuple[int, int, int, int]] = []
        self.kept: list[dict] = []

    def __call__(self, rows):
        from mrpc_finetune import flops

        batch = self.collate(rows)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        model_flops = flops.training_flops(self.shape, lengths) if self.shape else 0
        self.records.append((len(rows), sum(lengths), batch["input_ids"].numel(), model_flops))
        if self.keep:
            self.kept.append({k: v.clone() for k, v in batch.items()})
        return batch


def _step_clock():
    """A Trainer callback stamping the end of every optimizer step, and RSS when training begins."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.step_ends: list[float] = []
            self.cpu_ends: list[float] = []
            self.rss_at_start_mb = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.rss_at_start_mb = current_rss_mb()

        def on_step_end(self, args, state, control, **kwargs):
            _synchronize()
            self.step_ends.append(time.perf_counter())
            self.cpu_ends.append(time.process_time())

    return StepClock()


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_rates(
    step_ends: list[float], cpu_ends: list[float], records: list[tuple[int, int, int, int]], warmup: int
) -> dict:
    """Rates over the steps after the first ``warmup`` ones: from the end of step ``warmup`` to the end of the last.

    ``cpu_ms_per_step`` is this process's CPU time (all its threads): on a machine shared with other jobs it moves
    far less than wall time, so it tells contention from a real difference."""
    warmup = max(1, min(warmup, len(step_ends) - 1))
    seconds = step_ends[-1] - step_ends[warmup - 1]
    timed = records[warmup : len(step_ends)]
    samples, real, padded, model_flops = (sum(r[k] for r in timed) for k in range(4))
    return {
        "steps_timed": len(timed),
        "seconds": seconds,
        "cpu_seconds": cpu_ends[-1] - cpu_ends[warmup - 1],
        "samples": samples,
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_efficiency": real / padded if padded else 1.0,
        "samples_per_s": samples / seconds,
        "real_tokens_per_s": real / seconds,
        "model_flops": model_flops,
        "model_flops_per_s": model_flops / seconds,
        "ms_per_step": 1000 * seconds / len(timed),
        "cpu_ms_per_step": 1000 * (cpu_ends[-1] - cpu_ends[warmup - 1]) / len(timed),
    }


def run_setting(setting: str, spec: dict) -> dict:
    """Train ``spec['steps']`` Trainer steps of one setting and measure them; C also measures the bare-loop overhead."""
    import torch
    from transformers import set_seed

    from mrpc_finetune import flops
    from mrpc_finetune.run import rundir
    from mrpc_finetune.run.trackers import open_trackers
    from mrpc_finetune.train import callbacks, hf_adapter, trainer_loop
    from mrpc_finetune.train.preparation import prepare

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    started = time.perf_counter()
    recipe = setting_recipe(setting, spec)
    prepared = prepare(recipe)
    train, collate = setting_batches(setting, spec, prepared, recipe.data.max_length)
    counting = CountingCollator(
        collate,
        keep=spec.get("overhead", False) and setting == "C",
        shape=flops.EncoderShape.from_config(prepared.model.config),
    )
    clock = _step_clock()
    args = trainer_loop.training_arguments(recipe, Path(spec["workdir"]) / setting, prepared.precision)
    set_seed(recipe.seed)
    trainer = hf_adapter.LengthBatchedTrainer(
        model=prepared.model,
        args=args,
        train_dataset=train,
        data_collator=counting,
        processing_class=prepared.tokenizer,
        callbacks=[clock, callbacks.TrackersCallback(open_trackers(recipe, Path(spec["workdir"]) / setting))],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    trainer.train()
    _synchronize()
    train_seconds = time.perf_counter() - began
    result = {
        "setting": setting,
        "precision": prepared.precision,
        "compile": bool(spec.get("compile")),
        "torch_threads": torch.get_num_threads(),
        "steps": len(clock.step_ends),
        "train_seconds": train_seconds,
        "startup_seconds": began - started,
        **timed_rates(clock.step_ends, clock.cpu_ends, counting.records, spec["warmup"]),
        "peak_rss_mb": rundir.peak_memory_mb(),
        "rss_growth_mb": rundir.peak_memory_mb() - clock.rss_at_start_mb,
    }
    if torch.cuda.is_available():
        result["peak_cuda_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if counting.kept:
        batches = counting.kept[: len(clock.step_ends)]
        bare = timed_rates(*bare_loop_step_ends(recipe, prepared, args, batches), counting.records, spec["warmup"])
        result["overhead"] = {
            "trainer_ms_per_step": result["ms_per_step"],
            "bare_ms_per_step": bare["ms_per_step"],
            "ratio": result["ms_per_step"] / bare["ms_per_step"],
            "trainer_cpu_ms_per_step": result["cpu_ms_per_step"],
            "bare_cpu_ms_per_step": bare["cpu_ms_per_step"],
            "cpu_ratio": result["cpu_ms_per_step"] / bare["cpu_ms_per_step"],
        }
    return result


COMPILE_PAD_MULTIPLE = 16
"""Under ``torch.compile`` every new batch shape can recompile: padding lengths to a multiple of 16 bounds the
shapes to 128 / 16 = 8 lengths (A pads to 128 anyway)."""


def setting_batches(setting: str, spec: dict, prepared, max_length: int):
    """The training rows and collator of a setting: A pads every row to ``max_length``; B and C pad each batch
    to its longest row (rounded up to ``COMPILE_PAD_MULTIPLE`` when compiled, else as the hardware asks)."""
    from transformers import default_data_collator

    from mrpc_finetune.data import batching

    train = prepared.splits["train"]
    if setting == "A":
        return pad_to_max_length(train, prepared.tokenizer, max_length), default_data_collator
    if spec.get("compile"):
        return train, batching.make_collator(prepared.tokenizer, pad_to_multiple_of=COMPILE_PAD_MULTIPLE)
    return train, prepared.collator


def pad_to_max_length(split, tokenizer, max_length: int):
    """run_glue.py's default: every row padded to ``max_length`` when tokenized (cached by ``Dataset.map``)."""
    inputs = [c for c in ("input_ids", "token_type_ids", "attention_mask") if c in split.column_names]

    def pad(batch):
        return dict(tokenizer.pad({c: batch[c] for c in inputs}, padding="max_length", max_length=max_length))

    return split.map(pad, batched=True, desc="Padding to max_length")


def bare_loop_step_ends(recipe, prepared, args, batches: list[dict]) -> tuple[list[float], list[float]]:
    """The same steps with no framework: a fresh copy of the model, the Trainer's own optimizer and schedule
    (built once, untimed), forward, backward, clipping, step, over the already collated batches."""
    import torch
    from transformers import Trainer, set_seed

    from mrpc_finetune import models

    set_seed(recipe.seed)
    model = models.load_model(recipe.model, prepared.task, tokenizer=prepared.tokenizer).to(args.device)
    builder = Trainer(model=model, args=args)
    builder.create_optimizer_and_scheduler(num_training_steps=len(batches))
    optimizer, scheduler = builder.optimizer, builder.lr_scheduler
    model.train()
    ends, cpu_ends = [], []
    for batch in batches:
        batch = {k: v.to(args.device) for k, v in batch.items()}
        loss = model(**batch).loss
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        model.zero_grad()
        _synchronize()
        ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
    return ends, cpu_ends


def matmul_peak(spec: dict) -> dict:
    """The MFU denominator: best square-matmul FLOP/s in ``spec['peak_dtype']`` (default float32) on this
    process's device, with the runs' thread setting; ``spec['peak_size']`` overrides the matrix size."""
    import torch

    from mrpc_finetune import flops

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = spec.get("peak_dtype", "float32")
    size = spec.get("peak_size") or flops.DEFAULT_PEAK_SIZE[device]
    peak = flops.matmul_peak_flops(getattr(torch, dtype), device, size=size)
    return {
        "flops_per_s": peak,
        "dtype": dtype,
        "device": device,
        "size": size,
        "torch_threads": torch.get_num_threads(),
    }


def _quiet_worker() -> None:
    os.environ["TQDM_DISABLE"] = "1"  # the workers' progress bars would only interleave with the report


def in_fresh_process(function, *args):
    """``function(*args)`` in a fresh spawned interpreter: its peak RSS is its own and nothing warms the next."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_quiet_worker) as pool:
        return pool.submit(function, *args).result()


def run_isolated(setting: str, spec: dict) -> dict:
    return in_fresh_process(run_setting, setting, spec)


def matmul_peak_isolated(spec: dict) -> dict:
    return in_fresh_process(matmul_peak, spec)
