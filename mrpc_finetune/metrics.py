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


def loss_from_logits(logits: np.ndarray, labels: np.ndarray, task: TaskSpec) -> float:
    """Mean loss over rows, as training computes it: cross-entropy for classes, squared error for a regression."""
    import torch

    logits_t, labels_t = torch.from_numpy(np.asarray(logits, np.float32)), torch.from_numpy(np.asarray(labels))
    if task.is_regression:
        return torch.nn.functional.mse_loss(logits_t.squeeze(-1), labels_t.float()).item()
    return torch.nn.functional.cross_entropy(logits_t, labels_t.long()).item()


def compute_metrics_fn(task: TaskSpec):
    """``compute_metrics`` for every loop: (logits, labels) of all evaluated rows -> {"loss": ..., metric: ...}.

    The loss is computed here, from the gathered rows, rather than averaged from per-batch losses: under several
    processes a batch of repeated rows (which evens out the last round) would otherwise weigh in the mean.
    """
    metric = load_metric(task)

    def compute_metrics(eval_prediction) -> dict[str, float]:
        logits, labels = eval_prediction
        logits = logits[0] if isinstance(logits, tuple) else logits
        scores = metric.compute(predictions=predictions_from_logits(logits, task), references=labels)
        return {"loss": loss_from_logits(logits, labels, task), **scores}

    return compute_metrics
