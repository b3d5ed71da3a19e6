"""Task metrics through ``evaluate``, loaded from the module shipped in this package (works with no Hub)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .tasks import TaskSpec

METRIC_MODULE = Path(__file__).resolve().parent / "glue_metric"


def load_metric(task: TaskSpec):
    import evaluate

    return evaluate.load(str(METRIC_MODULE), config_name=task.metric)


def predictions_from_logits(logits: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Class ids by argmax, or the single regression output."""
    return logits.squeeze(-1) if task.is_regression else logits.argmax(-1)


def compute_metrics_fn(task: TaskSpec):
    """A ``compute_metrics`` for the Trainer (and the other loops): EvalPrediction -> {metric: value}."""
    metric = load_metric(task)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        logits, labels = eval_prediction
        logits = logits[0] if isinstance(logits, tuple) else logits
        return metric.compute(predictions=predictions_from_logits(logits, task), references=labels)

    return compute_metrics
