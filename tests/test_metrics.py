"""GLUE metrics load through evaluate from the packaged module, with no Hub."""

import numpy as np
import pytest

from mrpc_finetune.metrics import compute_metrics_fn
from mrpc_finetune.recipe.tasks import get_task


def test_mrpc_accuracy_and_f1():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1]])  # predicts 1, 0, 1, 0
    result = compute_metrics_fn(get_task("mrpc"))((logits, np.array([1, 0, 0, 0])))
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["f1"] == pytest.approx(2 / 3)  # precision 1/2, recall 1
    # the loss is the mean cross-entropy of the rows: -log softmax(logits)[label]
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert result["loss"] == pytest.approx(-log_softmax[np.arange(4), [1, 0, 0, 0]].mean(), rel=1e-6)


def test_cola_matthews():
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    result = compute_metrics_fn(get_task("cola"))((logits, np.array([1, 0, 1, 0])))
    assert set(result) == {"loss", "matthews_correlation"} and result["matthews_correlation"] == pytest.approx(1.0)


def test_stsb_correlations():
    scores = np.array([[1.0], [2.0], [3.0], [4.0]])
    result = compute_metrics_fn(get_task("stsb"))((scores, np.array([1.0, 2.0, 3.5, 3.0])))
    assert set(result) == {"loss", "pearson", "spearmanr"}
    assert result["spearmanr"] == pytest.approx(0.8)
    assert result["loss"] == pytest.approx((0 + 0 + 0.25 + 1) / 4)  # mean squared error


def test_the_metric_module_reports_what_tasks_says_each_set_reports():
    """One list of metric sets (tasks.METRIC_SETS), which the evaluate module imports: each set's keys agree."""
    import evaluate

    from mrpc_finetune.glue_metric import glue_metric
    from mrpc_finetune.metrics import METRIC_MODULE
    from mrpc_finetune.recipe.tasks import METRIC_SETS

    assert glue_metric.METRIC_SETS is METRIC_SETS
    for name, keys in METRIC_SETS.items():
        scores = name == "pearson_spearman"
        predictions, references = (
            ([0.5, 1.0, 2.5, 3.0], [1.0, 1.5, 2.0, 3.5]) if scores else ([1, 0, 1, 0], [1, 0, 0, 0])
        )
        metric = evaluate.load(str(METRIC_MODULE), config_name=name)
        assert tuple(metric.compute(predictions=predictions, references=references)) == keys, name
