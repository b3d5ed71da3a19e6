"""GLUE metrics load through evaluate from the packaged module, with no Hub."""

import numpy as np
import pytest

from mrpc_finetune.metrics import compute_metrics_fn
from mrpc_finetune.tasks import get_task


def test_mrpc_accuracy_and_f1():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1]])  # predicts 1, 0, 1, 0
    result = compute_metrics_fn(get_task("mrpc"))((logits, np.array([1, 0, 0, 0])))
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["f1"] == pytest.approx(2 / 3)  # precision 1/2, recall 1


def test_cola_matthews():
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    result = compute_metrics_fn(get_task("cola"))((logits, np.array([1, 0, 1, 0])))
    assert result == {"matthews_correlation": pytest.approx(1.0)}


def test_stsb_correlations():
    scores = np.array([[1.0], [2.0], [3.0], [4.0]])
    result = compute_metrics_fn(get_task("stsb"))((scores, np.array([1.0, 2.0, 3.5, 3.0])))
    assert set(result) == {"pearson", "spearmanr"}
    assert result["spearmanr"] == pytest.approx(0.8)
