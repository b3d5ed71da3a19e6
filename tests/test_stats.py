"""Aggregation over runs: the numbers checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from mrpc_finetune.experiments import stats


def test_describe_by_hand():
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; sample variance 5 / 3; t(0.975, 3) = 3.182446
    result = stats.describe([1.0, 2.0, 3.0, 4.0])
    assert result["n"] == 4 and result["mean"] == 2.5 and result["median"] == 2.5
    assert result["min"] == 1.0 and result["max"] == 4.0
    assert result["std"] == pytest.approx(math.sqrt(5 / 3))
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert result["ci95"] == pytest.approx([2.5 - half, 2.5 + half], abs=1e-5)


def test_describe_three_scores_by_hand():
    # 0.80, 0.82, 0.85: mean 0.823333; deviations -0.023333, -0.003333, 0.026667; sum of squares 0.0012667;
    # sample variance 0.00063333, std 0.0251661; median 0.82
    result = stats.describe([0.80, 0.85, 0.82])
    assert result["mean"] == pytest.approx(0.8233333, abs=1e-7)
    assert result["std"] == pytest.approx(0.0251661, abs=1e-7)
    assert result["median"] == 0.82


def test_single_run_has_no_spread():
    result = stats.describe([0.7])
    assert result["std"] is None and result["ci95"] is None and result["mean"] == 0.7


def test_aggregate_every_split_and_only_numbers():
    runs = [
        {"eval_accuracy": 0.8, "eval_f1": 0.9, "test_accuracy": 0.7, "loop": "trainer", "global_step": 10},
        {"eval_accuracy": 0.6, "eval_f1": 0.7, "test_accuracy": 0.9, "best_checkpoint": None, "eval_flag": True},
    ]
    result = stats.aggregate(runs)
    assert sorted(result) == ["eval_accuracy", "eval_f1", "test_accuracy"]
    assert result["eval_accuracy"]["mean"] == pytest.approx(0.7)
    assert result["eval_accuracy"]["std"] == pytest.approx(math.sqrt(0.02))  # (0.1^2 + 0.1^2) / (2 - 1)
    assert result["test_accuracy"]["median"] == pytest.approx(0.8)


def test_aggregate_counts_only_the_runs_that_have_a_key():
    result = stats.aggregate([{"eval_validation_matched_accuracy": 0.5}, {"eval_accuracy": 1.0}])
    assert result["eval_validation_matched_accuracy"]["n"] == 1 and result["eval_accuracy"]["n"] == 1


@pytest.mark.parametrize(
    "key, split",
    [
        ("eval_accuracy", "validation"),
        ("eval_validation_matched_accuracy", "validation_matched"),
        ("eval_validation_mismatched_loss", "validation_mismatched"),
        ("test_f1", "test"),
        ("test_matched_accuracy", "test_matched"),
    ],
)
def test_split_of(key, split):
    assert stats.split_of(key) == split


def test_scores_leave_out_time_and_size():
    assert stats.is_score("eval_f1") and stats.is_score("test_loss")
    assert not stats.is_score("eval_runtime") and not stats.is_score("eval_rows")
    assert not stats.is_score("wall_seconds")


EVALUATION_METRICS = {
    "eval_accuracy": 0.8,
    "eval_f1": 0.85,
    "eval_loss": 0.4,
    "eval_runtime": 1.5,
    "eval_samples_per_second": 100.0,
    "eval_steps_per_second": 10.0,
    "eval_rows": 408,
    "eval_model_preparation_time": 0.01,
    "test_accuracy": 0.79,
    "test_rows": 1725,
}


def test_one_list_of_evaluation_figures_for_compare_the_model_card_and_the_curves(tmp_path):
    """Runtime, speed, rows and preparation time are left out alike everywhere; the loss is a score for
    compare and the curves, and left out of the card's task scores only."""
    from torch.utils.tensorboard import SummaryWriter

    from mrpc_finetune.experiments.events import eval_curves
    from mrpc_finetune.recipe.tasks import get_task
    from mrpc_finetune.run.model_card import split_scores

    assert [k for k in EVALUATION_METRICS if stats.is_score(k)] == [
        "eval_accuracy",
        "eval_f1",
        "eval_loss",
        "test_accuracy",
    ]

    assert split_scores(EVALUATION_METRICS, get_task("mrpc")) == {
        ("eval", "validation"): {"accuracy": 0.8, "f1": 0.85},
        ("test", "test"): {"accuracy": 0.79},
    }

    writer = SummaryWriter(log_dir=str(tmp_path / "tensorboard"))  # a run still training: every point counts
    for key, value in EVALUATION_METRICS.items():
        if key.startswith("eval_"):
            writer.add_scalar("eval/" + key.removeprefix("eval_"), value, 2)
    writer.close()
    _, curves = eval_curves(tmp_path)
    assert sorted(curves) == ["accuracy", "f1", "loss"]
