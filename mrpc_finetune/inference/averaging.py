"""Averaging over the two orders of a pair and over the members of an ensemble: class probabilities (softmax), or
for a regression the predicted scores, with equal weights.

Probabilities rather than logits: a softmax is not linear, and the mean of probabilities is what the label is
then read from. Scores go back into the task's metrics as log-probabilities (``metrics.logits_from_probabilities``),
so one run, one run in both orders and an ensemble are all scored by the same ``compute_metrics`` as training.
"""

from __future__ import annotations

import numpy as np

from mrpc_finetune.inference.logits import predict_logits
from mrpc_finetune.metrics import compute_metrics_fn, logits_from_probabilities, probabilities_from_logits
from mrpc_finetune.recipe.tasks import TaskSpec


def model_probabilities(model, tokenized, collator, batch_size: int, task: TaskSpec, device=None) -> np.ndarray:
    """Probabilities (rows x labels) or scores (rows) of one model for a tokenized split, in its row order."""
    return probabilities_from_logits(predict_logits(model, tokenized, collator, batch_size, device), task)


def mean(arrays: list[np.ndarray]) -> np.ndarray:
    """The element-wise mean: of one array, that array exactly; of two, the same whichever comes first."""
    return np.mean(np.stack(arrays), axis=0)


def scores(probabilities: np.ndarray, labels, task: TaskSpec, prefix: str) -> dict[str, float]:
    """The task's metrics and loss of averaged probabilities (or scores), as ``<prefix>_<metric>``."""
    compute = compute_metrics_fn(task)
    # the dtypes of the loops' evaluation, whose labels come batched as float32 (scores) or int64 (classes): the
    # metrics are then computed alike, down to a Pearson correlation of nearly constant early predictions
    labels = np.asarray(labels, np.float32 if task.is_regression else np.int64)
    found = compute((logits_from_probabilities(probabilities, task), labels))
    return {f"{prefix}_{name}": float(value) for name, value in found.items()}


def predicted_ids(probabilities: np.ndarray) -> np.ndarray:
    """The label id of each row: the most probable class of the averaged probabilities."""
    return probabilities.argmax(-1)
