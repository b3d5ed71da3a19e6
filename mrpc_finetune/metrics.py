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


BOTH_ORDERS = "both_orders"
"""The key part that marks a both-orders score (``eval.both_orders``): ``eval_both_orders_accuracy`` beside the
one-order ``eval_accuracy``, ``test_both_orders_f1`` beside ``test_f1``."""


def both_orders_prefix(prefix: str) -> str:
    """``eval`` -> ``eval_both_orders``, ``test`` -> ``test_both_orders``."""
    return f"{prefix}_{BOTH_ORDERS}"


def split_prefixes(names: list[str], test: bool = False) -> dict[str, str]:
    """The Trainer's key prefixes: ``eval`` for one dev split, ``eval_<split>`` for several; a test split's own
    name (``test``, ``test_matched``)."""
    if test:
        return {name: name for name in names}
    return {name: "eval" if len(names) == 1 else f"eval_{name}" for name in names}


def load_metric(task: TaskSpec):
    import evaluate

    return evaluate.load(str(METRIC_MODULE), config_name=task.metric)


def predictions_from_logits(logits: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Class ids by argmax, or the single regression output."""
    return logits.squeeze(-1) if task.is_regression else logits.argmax(-1)


def probabilities_from_logits(logits: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Class probabilities (rows x labels, softmax in float64), or the regression scores (rows): what averaging
    over sentence orders or ensemble members averages."""
    logits = np.asarray(logits, np.float64)
    if task.is_regression:
        return logits[:, 0]
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def logits_from_probabilities(probabilities: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Back to what ``compute_metrics`` takes: log-probabilities (whose softmax is the probabilities, so argmax and
    cross-entropy are theirs), or the scores as one column."""
    if task.is_regression:
        return np.asarray(probabilities, np.float32)[:, None]
    return np.log(np.maximum(probabilities, np.finfo(np.float64).tiny)).astype(np.float32)


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
