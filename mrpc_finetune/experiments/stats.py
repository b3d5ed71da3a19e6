"""Numbers over several runs: n, mean, sample standard deviation, median, range and a 95% interval of the mean.

Used by ``repeat`` (a recipe under several seeds) and ``compare`` (an experiment folder as one row).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from mrpc_finetune.metrics import is_evaluation_figure

STD_CONVENTION = "sample standard deviation (n - 1 in the denominator); null for a single run"
CI_CONVENTION = "95% interval of the mean: mean -/+ t(0.975, n - 1) * std / sqrt(n); null for a single run"

RUN_FIGURES = ("wall_seconds", "train_runtime", "peak_memory_mb", "train_loss")
"""Numeric ``metrics.json`` entries about the run rather than an evaluated split."""


def describe(values: list[float]) -> dict[str, Any]:
    """``{"n", "mean", "std", "median", "min", "max", "ci95"}`` of ``values`` (``std`` and ``ci95`` need two)."""
    from scipy.stats import t

    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else None
    half = t.ppf(0.975, n - 1) * std / math.sqrt(n) if n > 1 else None
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "ci95": [mean - half, mean + half] if half is not None else None,
    }


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_split_metric(key: str) -> bool:
    """A metric of an evaluated split: ``eval_*`` (validation, or ``eval_<split>_*``) or ``test_*``."""
    return key.startswith(("eval_", "test_"))


def is_score(key: str) -> bool:
    """A split metric that measures the model (accuracy, f1, loss, ...), not the evaluation's time or size."""
    return is_split_metric(key) and not is_evaluation_figure(key)


def aggregate(runs: list[dict[str, Any]], keep=is_split_metric) -> dict[str, dict[str, Any]]:
    """``describe`` of every numeric key that ``keep`` accepts, over the runs that have it, keys sorted."""
    keys = sorted({k for metrics in runs for k, v in metrics.items() if keep(k) and is_number(v)})
    return {key: describe([m[key] for m in runs if is_number(m.get(key))]) for key in keys}


def split_of(key: str) -> str:
    """The split a metric key belongs to: ``eval_f1`` -> validation, ``eval_validation_matched_accuracy`` ->
    validation_matched, ``test_accuracy`` -> test."""
    prefix, _, rest = key.partition("_")
    for split in ("validation_matched", "validation_mismatched", "test_matched", "test_mismatched"):
        if rest.startswith(f"{split}_"):
            return split
    plain = "validation" if prefix == "eval" else "test"
    for part in ("matched", "mismatched"):  # test_matched_accuracy
        if rest.startswith(f"{part}_"):
            return f"{plain}_{part}"
    return plain


def format_stats(stats: dict[str, Any], digits: int = 4) -> str:
    """``0.8235 ± 0.0061 (n=5)``: mean and sample std."""
    std = f" ± {stats['std']:.{digits}f}" if stats["std"] is not None else ""
    return f"{stats['mean']:.{digits}f}{std} (n={stats['n']})"
