"""Task metrics through ``evaluate``, loaded from the module shipped in this package (works with no Hub)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrpc_finetune.recipe.tasks import TaskSpec

METRIC_MODULE = Path(__file__).resolve().parent / "glue_metric"


NOT_SCORES = ("runtime", "samples_per_second", "steps_per_second", "rows", "model_preparation_time")
"""Metric names that describe an evaluation itself (time, speed, size), not the model: ``eval_runtime``,
``test_rows``, TensorBoard's ``eval/runtime``. The one list that ``compare``, the model card and the curves use."""


def is_evaluation_figure(name: str) -> bool:
    """``name`` (a bare metric name or a prefixed key: ``runtime``, ``eval_validation_rows``) is one of
    ``NOT_SCORES``: it describes the evaluation, not the model."""
    return any(name == figure or name.endswith(f"_{figure}") for figure in NOT_SCORES)


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
