"""The benchmark's report: per-setting totals and MFU, the printed lines, the bar plot, the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from bench_runs import COMPILE_PAD_MULTIPLE

SETTINGS = {
    "A": "pad every pair to max_length + default_data_collator, random order (run_glue.py defaults)",
    "B": "dynamic padding over random batches (the reference workflow)",
    "C": "length-bucket batches in random order + dynamic padding (this project's default)",
}


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


BUSY_MARGIN = 0.15
"""Largest spread, (max - min) / max, of the matmul peaks timed before, between and after the rounds, or of one
setting's rounds (padded tokens per second: the work a step does, whatever its batches' lengths), that still
counts as a quiet machine. On a quiet machine both agree within a few percent; 15% is past that noise, and about
the day-to-day drift of absolute timings on a shared machine (docs/benchmarks.md), at which the A / B / C ratios
and the MFU stop being comparable."""


def spread(values: list[float]) -> float:
    """(max - min) / max; 0 for fewer than two values."""
    return (max(values) - min(values)) / max(values) if len(values) > 1 and max(values) > 0 else 0.0


def busy_reasons(report: dict, margin: float = BUSY_MARGIN) -> list[str]:
    """Why the figures are not comparable: the matmul peaks or a setting's rounds disagree by more than
    ``margin``, or an MFU is over 100% (the peak was timed while the machine was busier than during the runs)."""
    reasons = []
    peaks = report.get("peaks") or []
    if spread(peaks) > margin:
        reasons.append(
            f"the matmul peak varied by {spread(peaks):.0%} over the run ({min(peaks) / 1e9:.1f} to "
            f"{max(peaks) / 1e9:.1f} GFLOP/s over {len(peaks)} timings)"
        )
    runs = report.get("runs") or []
    for setting in sorted({r["setting"] for r in runs}):
        rates = [r["padded_tokens"] / r["seconds"] for r in runs if r["setting"] == setting]
        if spread(rates) > margin:
            reasons.append(
                f"{setting}'s {len(rates)} rounds differ by {spread(rates):.0%} ({min(rates):.0f} to "
                f"{max(rates):.0f} padded tokens/s)"
            )
    for setting, s in report["summary"].items():
        if s.get("mfu") is not None and s["mfu"] > 1:
            reasons.append(f"{setting}'s MFU is {s['mfu']:.0%}, over 100%")
    return reasons


def busy_lines(reasons: list[str], margin: float = BUSY_MARGIN) -> list[str]:
    if not reasons:
        return []
    return [
        f"WARNING: the machine was busy: these figures are not comparable (margin {margin:.0%}): {reason}"
        for reason in reasons
    ] + ["rerun on a quiet machine (`uptime`: load below the core count); --strict makes this an error"]


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
    if peaks := report.get("peaks"):
        lines.append(
            f"matmul peaks timed before, between and after the rounds: "
            f"{', '.join(f'{p / 1e9:.1f}' for p in peaks)} GFLOP/s (MFU uses the highest)"
        )
    if report.get("json"):
        lines.append(f"wrote {report['json']} and {report['png']}")
    lines += busy_lines(report.get("busy", []))
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
    lines += busy_lines(report.get("busy", []))
    if "compile_gain" in report:
        lines.append(
            f"torch.compile: C+compile/C = {report['compile_gain']:.2f} (samples/s after warm-up; compiled runs pad "
            f"lengths to a multiple of {COMPILE_PAD_MULTIPLE})"
        )
    return lines
