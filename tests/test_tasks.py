"""Every GLUE task is a recipe that works offline on local files in the Hub schema, and each task shape trains."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification

from mrpc_finetune.data import loading
from mrpc_finetune.metrics import compute_metrics_fn
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.train import trainer_loop
from mrpc_finetune.train.preparation import best_metric_name

from .conftest import sentence, write_jsonl

# What the Hub's nyu-mll/glue configs hold, written out here so that a change to tasks.py is caught.
GLUE = {
    "cola": (["sentence"], 2, {"matthews_correlation"}),
    "sst2": (["sentence"], 2, {"accuracy"}),
    "mrpc": (["sentence1", "sentence2"], 2, {"accuracy", "f1"}),
    "qqp": (["question1", "question2"], 2, {"accuracy", "f1"}),
    "stsb": (["sentence1", "sentence2"], 0, {"pearson", "spearmanr"}),
    "mnli": (["premise", "hypothesis"], 3, {"accuracy"}),
    "qnli": (["question", "sentence"], 2, {"accuracy"}),
    "rte": (["sentence1", "sentence2"], 2, {"accuracy"}),
    "wnli": (["sentence1", "sentence2"], 2, {"accuracy"}),
}


def glue_rows(task: str, n: int, seed: int, labelled: bool = True) -> list[dict]:
    """``n`` rows in the Hub schema of ``task``; test rows carry GLUE's -1 label."""
    columns, num_labels, _ = GLUE[task]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = {column: sentence(rng, rng.randint(3, 12)) for column in columns}
        if not labelled:
            row["label"] = -1.0 if num_labels == 0 else -1
        elif num_labels == 0:
            row["label"] = round(rng.uniform(0, 5), 2)
        else:
            row["label"] = i % num_labels
        rows.append({**row, "idx": i})
    return rows


def glue_dir(folder: Path, task: str) -> Path:
    """train (12 rows), the task's evaluation splits (6 rows each) and its test splits (4 unlabelled rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    eval_splits = ["validation_matched", "validation_mismatched"] if task == "mnli" else ["validation"]
    write_jsonl(folder / "train.jsonl", glue_rows(task, 12, seed=1))
    for k, split in enumerate(eval_splits):
        write_jsonl(folder / f"{split}.jsonl", glue_rows(task, 6, seed=2 + k))
        test = split.replace("validation", "test")
        write_jsonl(folder / f"{test}.jsonl", glue_rows(task, 4, seed=5 + k, labelled=False))
    return folder


@pytest.mark.parametrize("name", sorted(GLUE))
def test_glue_recipe_reads_hub_schema_files(name, tmp_path):
    columns, num_labels, metric_keys = GLUE[name]
    recipe = load_recipe(name, [f"data.dir={glue_dir(tmp_path, name)}"])
    assert recipe.data.task == name and recipe.model.name == "bert-base-uncased"

    task, splits = loading.load_task_and_splits(recipe.data)
    assert list(task.text_columns) == columns
    assert task.num_labels == max(num_labels, 1) and task.is_regression == (num_labels == 0)
    expected_splits = {"train", *task.eval_splits, *task.test_splits}
    assert set(splits) == expected_splits and len(expected_splits) == (5 if name == "mnli" else 3)
    assert splits["train"].num_rows == 12
    if num_labels:
        assert sorted(set(splits["train"]["label"])) == list(range(num_labels))

    logits = np.random.default_rng(0).normal(size=(8, max(num_labels, 1)))
    references = np.linspace(0, 5, 8) if num_labels == 0 else np.arange(8) % num_labels
    metrics = compute_metrics_fn(task)((logits, references))
    assert set(metrics) == {"loss", *metric_keys}
    best = best_metric_name(recipe, task)
    assert best.removeprefix("validation_matched_") in metric_keys
    assert best.startswith("validation_matched_") == (name == "mnli")


SHAPES = {
    "cola": ("single text, Matthews", ["eval_matthews_correlation"]),
    "qqp": ("pair, accuracy and F1", ["eval_accuracy", "eval_f1"]),
    "mnli": (
        "3 classes, two evaluation splits",
        ["eval_validation_matched_accuracy", "eval_validation_mismatched_accuracy"],
    ),
    "stsb": ("regression", ["eval_pearson", "eval_spearmanr"]),
}


@pytest.mark.parametrize(
    "name",  # the fast suite trains the two shapes the others do not cover: two dev splits, and a regression
    [name if name in ("mnli", "stsb") else pytest.param(name, marks=pytest.mark.slow) for name in sorted(SHAPES)],
)
def test_each_task_shape_trains(name, tmp_path, tiny_model_dir):
    _, num_labels, _ = GLUE[name]
    recipe = load_recipe(
        name,
        [
            f"model.name={tiny_model_dir}",
            f"data.dir={glue_dir(tmp_path / 'data', name)}",
            f"output_dir={tmp_path / 'run'}",
            "train.max_steps=2",
            "train.batch_size=6",
            "train.lr=1e-3",
            "eval.batch_size=8",
        ],
    )
    metrics = trainer_loop.main(recipe)
    for key in SHAPES[name][1]:
        assert isinstance(metrics[key], float), key
    assert metrics["global_step"] == 2
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved[SHAPES[name][1][0]] == pytest.approx(metrics[SHAPES[name][1][0]], nan_ok=True)

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert model.config.num_labels == max(num_labels, 1)
    if num_labels:
        assert model.config.problem_type == "single_label_classification"
        assert len(model.config.id2label) == num_labels
    else:
        assert model.config.problem_type == "regression"
