"""Your own data: column mapping, labels of any type, a carved validation split, then eval and predict of the run."""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mrpc_finetune.cli import main
from mrpc_finetune.data import loading, tokenization
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference.predict import predict_file, predict_texts
from mrpc_finetune.recipe import DataConfig, Recipe, load_recipe
from mrpc_finetune.recipe.tasks import task_for
from mrpc_finetune.train import trainer_loop

from .conftest import sentence, write_jsonl

LABELS = ["negative", "neutral", "positive"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def review_rows(n: int, seed: int = 0) -> list[list]:
    """[review, sentiment] rows, 'neutral' least common, texts of mixed lengths (some with commas and quotes)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[[0, 0, 1, 2, 2][i % 5]]
        text = sentence(rng, rng.randint(2, 30)).replace(" the ", ' "the", ', 1)
        rows.append([text, label])
    return rows


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("reviews") / "reviews.csv", ["review", "sentiment"], review_rows(30))


CUSTOM = ["data.task=custom", "data.text_columns=[review]", "data.label_column=sentiment"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir, reviews_csv) -> Path:
    """A custom run trained 3 steps on reviews.csv (string labels, validation carved from the one file)."""
    run_dir = tmp_path_factory.mktemp("custom_run") / "run"
    recipe = load_recipe(
        "mrpc_minilm",
        [
            *CUSTOM,
            f"data.file={reviews_csv}",
            "data.validation_fraction=0.2",
            f"model.name={tiny_model_dir}",
            f"output_dir={run_dir}",
            "train.max_steps=3",
            "train.batch_size=8",
            "eval.batch_size=4",
        ],
    )
    trainer_loop.main(recipe)
    return run_dir


def test_string_labels_become_sorted_ids(reviews_csv):
    cfg = load_recipe("mrpc_minilm", [*CUSTOM, f"data.file={reviews_csv}"]).data
    task, splits = loading.load_task_and_splits(cfg)
    assert task.label_names == tuple(LABELS) and task.metric == "accuracy_f1_macro"
    assert task.text_columns == ("review",) and task.label_column == "sentiment"
    assert set(splits) == {"train", "validation"}


def test_validation_carve_is_stratified_seeded_and_ordered(reviews_csv):
    whole = loading.load_split_file(reviews_csv)
    cfg = DataConfig(task="custom", file=str(reviews_csv), text_columns=["review"], label_column="sentiment")
    _, first = loading.load_task_and_splits(cfg)
    _, again = loading.load_task_and_splits(cfg)
    train, validation = first["train"], first["validation"]
    assert train.num_rows + validation.num_rows == whole.num_rows == 30
    assert validation["review"] == again["validation"]["review"]  # the same rows on every run
    # 12 negative, 6 neutral, 12 positive: 10% of each, rounded, and every label keeps training rows
    counts = {label: validation["sentiment"].count(label) for label in LABELS}
    assert counts == {"negative": 1, "neutral": 1, "positive": 1}
    assert set(train["sentiment"]) == set(LABELS)
    positions = {text: i for i, text in enumerate(whole["review"])}
    for split in (train, validation):  # both keep the file's row order
        order = [positions[text] for text in split["review"]]
        assert order == sorted(order)
    other = loading.load_task_and_splits(DataConfig(**{**cfg.__dict__, "split_seed": 1}))[1]["validation"]
    assert other["review"] != validation["review"]


@pytest.mark.parametrize("ext", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_every_format_reads_the_same_rows(ext, tmp_path):
    import datasets

    rows = {"review": [r[0] for r in review_rows(10)], "sentiment": [r[1] for r in review_rows(10)]}
    path = tmp_path / f"reviews.{ext}"
    table = datasets.Dataset.from_dict(rows)
    if ext == "tsv":
        table.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    elif ext == "json":
        path.write_text(
            json.dumps([dict(zip(rows, values, strict=True)) for values in zip(*rows.values(), strict=True)])
        )
    else:
        {"csv": table.to_csv, "jsonl": table.to_json, "parquet": table.to_parquet}[ext](str(path))
    cfg = DataConfig(task="custom", file=str(path), text_columns=["review"], label_column="sentiment")
    task, splits = loading.load_task_and_splits(cfg)
    assert task.label_names == tuple(LABELS)
    loaded = loading.load_split_file(path)
    assert loaded["review"] == rows["review"] and loaded["sentiment"] == rows["sentiment"]
    assert splits["train"].num_rows + splits["validation"].num_rows == 10


def test_integer_labels_and_pairs_with_renamed_columns(tmp_path, minilm_path):
    rows = [
        {"question": f"q {sentence(random.Random(i), 4)}", "answer": "an answer .", "stars": [1, 3, 5][i % 3]}
        for i in range(9)
    ]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[:3])
    cfg = DataConfig(task="custom", dir=str(tmp_path), text_columns=["question", "answer"], label_column="stars")
    task, splits = loading.load_task_and_splits(cfg)
    assert task.label_names == ("1", "3", "5")  # integer labels sorted by value, named by their text
    tokenized = tokenization.tokenize_split(splits["train"], AutoTokenizer.from_pretrained(minilm_path), task, cfg)
    assert tokenized["labels"][:3] == [0, 1, 2]
    assert set(tokenized[0]["token_type_ids"]) == {0, 1}  # a pair


def test_float_labels_are_regression(tmp_path):
    write_csv(tmp_path / "scores.csv", ["text", "score"], [[f"text {i} .", i / 4] for i in range(12)])
    cfg = DataConfig(task="custom", file=str(tmp_path / "scores.csv"), text_columns=["text"], label_column="score")
    task, splits = loading.load_task_and_splits(cfg)
    assert task.is_regression and task.num_labels == 1 and task.metric == "pearson_spearman"
    assert splits["validation"].num_rows == 1


def test_trained_custom_run_keeps_its_labels(trained_run, reviews_csv):
    model = AutoModelForSequenceClassification.from_pretrained(trained_run / "model")
    assert model.config.id2label == dict(enumerate(LABELS))
    saved = json.loads((trained_run / "recipe.json").read_text())
    assert saved["data"]["task"] == "custom" and saved["data"]["label_column"] == "sentiment"
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert {"eval_accuracy", "eval_f1_macro"} <= set(metrics)


def test_eval_custom_run_on_its_split_and_on_a_file(trained_run, reviews_csv, capsys):
    assert main(["eval", str(trained_run)]) == 0
    on_split = json.loads(capsys.readouterr().out)
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert on_split["eval_rows"] == 6  # 20% of 30 rows: 2.4, 1.2 and 2.4 of the 12, 6 and 12 per label -> 3 + 1 + 2
    assert on_split["eval_accuracy"] == pytest.approx(trained["eval_accuracy"])
    assert on_split["confusion_matrix"]["labels"] == LABELS

    assert main(["eval", str(trained_run), "--file", str(reviews_csv)]) == 0
    on_file = json.loads(capsys.readouterr().out)
    assert (
        on_file["eval_rows"] == 30 and sum(map(sum, on_file["confusion_matrix"]["rows_true_columns_predicted"])) == 30
    )
    assert (trained_run / "eval_reviews.json").is_file()


def test_predict_file_keeps_input_order(trained_run, tmp_path, capsys):
    rng = random.Random(3)
    lengths = [60, 2, 35, 1, 50, 3, 20, 5, 45, 8]  # far from sorted: batches by length reorder them
    texts = [sentence(rng, n) for n in lengths]
    unlabelled = write_csv(tmp_path / "new.csv", ["review"], [[t] for t in texts])
    out = tmp_path / "predictions.tsv"
    assert main(["predict", str(trained_run), "--file", str(unlabelled), "--out", str(out)]) == 0
    assert f"wrote 10 predictions to {out}" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["index", "prediction", *(f"prob_{label}" for label in LABELS)]
    rows = [line.split("\t") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(10))

    # each row scored alone (no padding at all) must match the batched, length-sorted file output row for row
    tokenizer = AutoTokenizer.from_pretrained(trained_run / "model")
    model = AutoModelForSequenceClassification.from_pretrained(trained_run / "model").eval()
    with torch.inference_mode():
        alone = [torch.softmax(model(**tokenizer(t, return_tensors="pt")).logits[0], -1).numpy() for t in texts]
    written = np.array([[float(x) for x in r[2:]] for r in rows])
    np.testing.assert_allclose(written, np.array(alone), atol=1e-4)
    assert [r[1] for r in rows] == [LABELS[int(p.argmax())] for p in alone]


def test_predict_file_with_labels_and_idx(trained_run, reviews_csv, tmp_path):
    with_idx = tmp_path / "test.jsonl"
    write_jsonl(with_idx, [{"idx": 100 + i, "review": f"review {i} .", "sentiment": "unseen"} for i in range(4)])
    path, rows = predict_file(trained_run, with_idx)
    assert rows == 4 and path == trained_run / "predictions_test.tsv"
    assert [line.split("\t")[0] for line in path.read_text().splitlines()[1:]] == ["100", "101", "102", "103"]
    path, rows = predict_file(trained_run, reviews_csv, tmp_path / "all.tsv")
    assert rows == 30


def test_predict_texts(trained_run, capsys):
    result = predict_texts(trained_run, ["a lovely and moving film ."])
    assert result["label"] in LABELS
    assert result["probability"] == pytest.approx(max(result["probabilities"].values()))
    assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    assert main(["predict", str(trained_run), "a lovely and moving film ."]) == 0
    label, probability = capsys.readouterr().out.strip().split("\t")
    assert label == result["label"] and float(probability) == pytest.approx(result["probability"], abs=1e-4)

    assert main(["predict", str(trained_run), "one text", "and a second"]) == 2
    err = capsys.readouterr().err
    assert "takes 1 text(s) (review), got 2" in err and err.count("\n") == 1


def test_custom_regression_trains_and_predicts_scores(tmp_path, tiny_model_dir):
    rng = random.Random(0)
    rows = [[sentence(rng, rng.randint(3, 10)), round(rng.uniform(0, 5), 2)] for _ in range(16)]
    scores = write_csv(tmp_path / "scores.csv", ["text", "score"], rows)
    recipe = load_recipe(
        "mrpc_minilm",
        [
            "data.task=custom",
            "data.text_columns=[text]",
            "data.label_column=score",
            f"data.file={scores}",
            "data.validation_fraction=0.25",
            f"model.name={tiny_model_dir}",
            f"output_dir={tmp_path / 'run'}",
            "train.max_steps=2",
            "train.batch_size=6",
        ],
    )
    metrics = trainer_loop.main(recipe)
    assert {"eval_pearson", "eval_spearmanr"} <= set(metrics)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    path, n = predict_file(tmp_path / "run", scores)
    lines = path.read_text().splitlines()
    assert n == 16 and lines[0] == "index\tprediction" and all(len(line.split("\t")) == 2 for line in lines)
    assert isinstance(predict_texts(tmp_path / "run", ["some text ."])["score"], float)


def test_custom_task_spec_needs_columns():
    with pytest.raises(UserError, match=r"data.text_columns: data.task=custom needs its text column"):
        task_for(DataConfig(task="custom"))


def test_new_recipe_writes_only_the_differences(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRPC_FINETUNE_RECIPES", str(tmp_path))
    shutil.copy(Path(__file__).resolve().parent.parent / "recipes" / "mrpc_minilm.py", tmp_path)
    argv = ["new-recipe", "reviews", "--from", "mrpc_minilm", *CUSTOM, "data.file=reviews.csv", "train.epochs=2"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    path = tmp_path / "reviews.py"
    source = path.read_text()
    assert 'file="reviews.csv"' in source and 'text_columns=["review"]' in source and "epochs=2.0" in source
    assert "batch_size" not in source and "max_length" not in source  # defaults stay out
    assert "# One local file holding all the labelled rows" in source  # each field carries its documentation

    recipe = load_recipe("reviews")
    expected = load_recipe("mrpc_minilm", [*CUSTOM, "data.file=reviews.csv", "train.epochs=2"])
    assert recipe.name == "reviews" and recipe.data == expected.data and recipe.train == expected.train
    assert recipe.model == expected.model and "reviews.csv" in recipe.description

    assert main(argv) == 2  # never overwrites
    err = capsys.readouterr().err
    assert "reviews.py already exists" in err and err.count("\n") == 1
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.is_file():  # what it writes already passes `make quality`
        subprocess.run([str(ruff), "format", "--check", "--quiet", str(path)], check=True)
        subprocess.run([str(ruff), "check", "--quiet", "--no-cache", str(path)], check=True)


def test_new_recipe_rejects_bad_names_and_bases(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MRPC_FINETUNE_RECIPES", str(tmp_path))
    assert main(["new-recipe", "My-Recipe"]) == 2
    assert "lower-case letters" in capsys.readouterr().err
    assert main(["new-recipe", "mine", "--from", "nosuch"]) == 2
    assert "unknown recipe 'nosuch'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_recipe_round_trip_keeps_columns(tmp_path):
    recipe = load_recipe("mrpc_minilm", [*CUSTOM, "data.file=x.csv"])
    assert recipe.data.text_columns == ["review"]
    path = tmp_path / "recipe.json"
    from mrpc_finetune.recipe import to_dict

    path.write_text(json.dumps(to_dict(recipe)))
    assert load_recipe(str(path)) == recipe
    assert Recipe(data=DataConfig(text_columns=("a", "b"))).data.text_columns == ["a", "b"]
