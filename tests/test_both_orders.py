"""``eval.both_orders``: each pair scored as (a, b) and (b, a), probabilities averaged, in ``eval`` and ``predict``
(the end-of-run scoring of the loops: tests/test_loop_contract.py); only for tasks whose order means nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference.evaluation import evaluate_run
from mrpc_finetune.inference.predict import predict_file, predict_texts
from mrpc_finetune.metrics import logits_from_probabilities, probabilities_from_logits
from mrpc_finetune.recipe import load_recipe, to_dict
from mrpc_finetune.recipe.tasks import get_task

from .conftest import mrpc_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def pair_files(folder: Path) -> tuple[Path, Path]:
    """Twelve pairs, and the same pairs with their two sentences swapped."""
    rows = mrpc_rows(12, seed=7)
    swapped = [{**row, "sentence1": row["sentence2"], "sentence2": row["sentence1"]} for row in rows]
    return write_jsonl(folder / "pairs.jsonl", rows), write_jsonl(folder / "swapped.jsonl", swapped)


def probabilities_in(tsv: Path) -> np.ndarray:
    return np.array([[float(x) for x in line.split("\t")[2:]] for line in tsv.read_text().splitlines()[1:]])


@pytest.mark.parametrize(
    "recipe, extra, refused",
    [
        ("mrpc", [], None),
        ("qqp", [], None),
        ("stsb", [], None),
        ("mrpc", ["data.task=custom", "data.text_columns=[q,a]"], None),  # your pairs: your call
        ("rte", [], "eval.both_orders: the order of rte's texts (sentence1 -> sentence2) carries meaning"),
        ("mnli", [], "eval.both_orders: the order of mnli's texts (premise -> hypothesis) carries meaning"),
        ("qnli", [], "eval.both_orders: the order of qnli's texts"),
        ("wnli", [], "eval.both_orders: the order of wnli's texts"),
        ("sst2", [], "eval.both_orders: needs a pair task (two text columns); sst2 has 1"),
    ],
)
def test_only_pair_tasks_whose_order_means_nothing_take_both_orders(recipe, extra, refused):
    if refused is None:
        assert load_recipe(recipe, [*extra, "eval.both_orders=true"]).eval.both_orders
        return
    with pytest.raises(UserError, match="^" + refused.replace("(", r"\(").replace(")", r"\)")) as err:
        load_recipe(recipe, ["eval.both_orders=true"])
    assert "\n" not in str(err.value)
    assert not load_recipe(recipe).eval.both_orders  # and no recipe has it on by default
    assert [name for name in ("mrpc", "qqp", "stsb") if get_task(name).order_free] == ["mrpc", "qqp", "stsb"]


def test_probabilities_and_log_probabilities_round_trip():
    task = get_task("mrpc")
    logits = np.array([[2.0, -1.0], [0.5, 0.25]], np.float32)
    probabilities = probabilities_from_logits(logits, task)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert probabilities_from_logits(logits_from_probabilities(probabilities, task), task) == pytest.approx(
        probabilities
    )
    scores = probabilities_from_logits(np.array([[3.5], [1.25]], np.float32), get_task("stsb"))
    assert scores.tolist() == [3.5, 1.25]  # a regression averages its scores as they are


def test_both_orders_is_the_mean_of_the_two_and_swapping_the_texts_changes_nothing(finished_tiny_runs, tmp_path):
    run = finished_tiny_runs["both_orders"]
    pairs, swapped = pair_files(tmp_path)
    both = [predict_file(run, f, tmp_path / f"both_{f.stem}.tsv")[0].read_text() for f in (pairs, swapped)]
    assert both[0] == both[1]  # identical to the last digit, labels included
    one = [predict_file(run, f, tmp_path / f"one_{f.stem}.tsv", both_orders=False)[0] for f in (pairs, swapped)]
    one = [probabilities_in(tsv) for tsv in one]
    assert not np.array_equal(one[0], one[1])  # one order is not symmetric
    mean = probabilities_in(tmp_path / "both_pairs.tsv")
    assert np.abs(mean - (one[0] + one[1]) / 2).max() <= 1.5e-6  # 6 decimals printed
    a, b = "the bank cut its forecast .", "shares fell on monday after the report ."
    assert predict_texts(run, [a, b]) == predict_texts(run, [b, a])


def test_eval_follows_the_recorded_key_and_the_flag_overrides_it(finished_tiny_runs, capsys):
    run = finished_tiny_runs["both_orders"]
    trained = json.loads((run / "metrics.json").read_text())
    evaluated = evaluate_run(run)
    assert evaluated["both_orders"] is True
    for metric in ("accuracy", "f1"):
        assert evaluated[f"eval_both_orders_{metric}"] == trained[f"eval_both_orders_{metric}"]
        assert f"test_both_orders_{metric}" in trained  # the labelled test split too, in both orders
    assert evaluated["eval_both_orders_loss"] == pytest.approx(trained["eval_both_orders_loss"], rel=1e-6)
    assert evaluated["eval_accuracy"] == trained["eval_accuracy"]  # the one-order scores stay beside them
    assert sum(map(sum, evaluated["both_orders_confusion_matrix"]["rows_true_columns_predicted"])) == 20

    code, out, err = run_cli(capsys, "eval", str(run), "--no-both-orders")
    assert code == 0, err
    one_order = json.loads(out)
    assert one_order["both_orders"] is False and not any("both_orders_" in key for key in one_order)

    plain = finished_tiny_runs["one_order"]
    assert evaluate_run(plain)["both_orders"] is False
    asked = evaluate_run(plain, split="test", both_orders=True)
    assert asked["both_orders"] is True and "eval_both_orders_accuracy" in asked and asked["eval_rows"] == 12


def test_the_model_card_says_so(finished_tiny_runs):
    card = (finished_tiny_runs["both_orders"] / "model" / "README.md").read_text()
    assert "## Both sentence orders" in card and "| validation | both_orders_accuracy |" in card
    assert "Both sentence orders" not in (finished_tiny_runs["one_order"] / "model" / "README.md").read_text()


def test_refused_for_a_task_whose_order_matters(finished_tiny_runs, tmp_path, capsys):
    """A finished run of RTE (its recipe.json and model config suffice: the check comes before any weights load)."""
    fake = tmp_path / "rte_run"
    (fake / "model").mkdir(parents=True)
    shutil.copy(finished_tiny_runs["one_order"] / "model" / "config.json", fake / "model" / "config.json")
    (fake / "recipe.json").write_text(json.dumps(to_dict(load_recipe("rte", ["data.dir=/nowhere"]))))
    for command in (["eval", str(fake)], ["predict", str(fake), "a .", "b ."]):
        code, out, err = run_cli(capsys, *command, "--both-orders")
        assert code == 2 and err.startswith("error: --both-orders: the order of rte's texts") and err.count("\n") == 1
