"""``mrpc-finetune ensemble``: finished runs scored as one model by their mean probabilities; ``eval`` and
``predict`` on its folder, its card, and the refusals (push, mismatched members, orders not chosen)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.errors import UserError
from mrpc_finetune.experiments.ensemble import build_ensemble
from mrpc_finetune.inference.evaluation import evaluate_run
from mrpc_finetune.inference.predict import predict_file

from .conftest import mrpc_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def probabilities_in(tsv: Path) -> np.ndarray:
    return np.array([[float(x) for x in line.split("\t")[2:]] for line in tsv.read_text().splitlines()[1:]])


def scores(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith(("eval_", "test_"))}


@pytest.fixture
def pairs(tmp_path) -> Path:
    return write_jsonl(tmp_path / "pairs.jsonl", mrpc_rows(10, seed=9))


def test_an_ensemble_of_one_is_its_member(finished_tiny_runs, tmp_path, pairs):
    member = finished_tiny_runs["both_orders"]  # it recorded eval.both_orders, so the ensemble scores both orders
    ens = tmp_path / "ens"
    metrics = build_ensemble([member], ens)
    own = json.loads((member / "metrics.json").read_text())
    for split in ("eval", "test"):
        for key in (
            f"{split}_accuracy",
            f"{split}_f1",
            f"{split}_rows",
            *(f"{split}_both_orders_{m}" for m in ["accuracy", "f1", "loss"]),
        ):
            assert metrics[key] == own[key], key
        assert metrics[f"{split}_loss"] == pytest.approx(own[f"{split}_loss"], rel=1e-6)
    assert scores(evaluate_run(ens)) == scores(evaluate_run(member))  # the same numbers to the last bit
    assert json.loads((ens / "metrics.json").read_text()) == metrics
    assert metrics["members"] == [str(member.resolve())] and metrics["ensemble_size"] == 1
    assert metrics["both_orders"] is True and metrics["passes_per_row"] == 2
    assert "(1 members x 2 orders)" in (ens / "README.md").read_text()
    assert predict_file(ens, pairs, tmp_path / "ens.tsv")[0].read_text() == (
        predict_file(member, pairs, tmp_path / "member.tsv")[0].read_text()
    )


def test_an_ensemble_of_two_is_the_mean_of_its_members(finished_tiny_runs, tmp_path, pairs, capsys):
    members = [finished_tiny_runs["one_order"], finished_tiny_runs["both_orders"]]
    ens = tmp_path / "ens"
    code, out, err = run_cli(capsys, "ensemble", *map(str, members), "--output-dir", str(ens), "--no-both-orders")
    assert code == 0, err
    assert "ensemble of 2 runs: 2 forward passes per row" in out and "done: eval_accuracy=" in out
    own = [probabilities_in(predict_file(m, pairs, tmp_path / f"{m.name}.tsv", both_orders=False)[0]) for m in members]
    assert not np.array_equal(own[0], own[1])
    mean = probabilities_in(predict_file(ens, pairs, tmp_path / "ens.tsv")[0])
    assert np.abs(mean - (own[0] + own[1]) / 2).max() <= 1.5e-6  # 6 decimals printed
    metrics = json.loads((ens / "metrics.json").read_text())
    assert metrics["members"] == [str(m.resolve()) for m in members] and metrics["both_orders"] is False
    assert metrics["passes_per_row"] == 2 and not any("both_orders_" in key for key in metrics)
    assert json.loads((ens / "ensemble.json").read_text()) == {"members": metrics["members"], "both_orders": False}
    card = (ens / "README.md").read_text()
    assert all(f"`{m.resolve()}`" in card for m in members) and "averaged over the 2 members" in card
    assert "2 forward passes per row" in card and f"| validation | accuracy | {metrics['eval_accuracy']:.4f} |" in card

    code, out, err = run_cli(capsys, "eval", str(ens), "--split", "test")
    assert code == 0, err
    evaluated = json.loads(out)
    assert evaluated["eval_accuracy"] == metrics["test_accuracy"] and evaluated["members"] == metrics["members"]
    assert (ens / "eval_test.json").is_file()
    code, out, err = run_cli(capsys, "predict", str(ens), "the bank cut its forecast .", "shares fell .")
    assert code == 0 and out.split("\t")[0] in ("equivalent", "not_equivalent"), err

    code, _, err = run_cli(capsys, "push", str(ens), "someone/model")
    assert code == 2 and err.count("\n") == 1 and "an ensemble of 2 runs, not one model" in err
    assert f"push a member instead, e.g. `mrpc-finetune push {members[0].resolve()} someone/model`" in err


def test_members_that_recorded_different_orders_need_a_choice(finished_tiny_runs, tmp_path, capsys):
    one, both = finished_tiny_runs["one_order"], finished_tiny_runs["both_orders"]
    code, _, err = run_cli(capsys, "ensemble", str(one), str(both), "--output-dir", str(tmp_path / "mixed"))
    assert code == 2 and err.count("\n") == 1 and "--both-orders or --no-both-orders" in err, err
    assert not (tmp_path / "mixed").exists()


@pytest.mark.parametrize("change", ["task", "labels", "tokenizer", "unfinished", "twice"])
def test_mismatched_members_are_refused_by_name(finished_tiny_runs, tmp_path, change):
    member = finished_tiny_runs["one_order"]
    other = tmp_path / "other"
    shutil.copytree(member, other)
    if change == "task":
        recipe = json.loads((other / "recipe.json").read_text())
        recipe["data"]["task"] = "qqp"
        (other / "recipe.json").write_text(json.dumps(recipe))
        expected = f"ensemble member {other}: data.task='qqp', but {member} has 'mrpc'"
    elif change == "labels":
        config = json.loads((other / "model" / "config.json").read_text())
        config["id2label"] = {"0": "no", "1": "yes"}
        (other / "model" / "config.json").write_text(json.dumps(config))
        expected = f"ensemble member {other}: labels ['no', 'yes'] differ"
    elif change == "tokenizer":
        tokenizer = other / "model" / "tokenizer.json"
        spec = json.loads(tokenizer.read_text())
        spec["normalizer"] = {"type": "Lowercase"}  # another way to split text
        tokenizer.write_text(json.dumps(spec))
        expected = f"ensemble member {other}: its tokenizer differs from {member}'s"
    elif change == "unfinished":
        (other / "metrics.json").unlink()
        expected = f"ensemble member {other}: the run has not finished"
    else:
        other = member
        expected = f"ensemble member {member}: listed twice"
    with pytest.raises(UserError) as err:
        build_ensemble([member, other], tmp_path / "ens")
    assert str(err.value).startswith(expected) and "\n" not in str(err.value), str(err.value)
    assert not (tmp_path / "ens").exists()


def test_members_whose_tokenizers_differ_only_in_last_call_state_agree(finished_tiny_runs, tmp_path):
    """A run whose splits came from the datasets cache saves the tokenizer's padding/truncation state as loaded,
    another as its last call left it: the same tokenizer, which transformers resets on every call."""
    member = finished_tiny_runs["one_order"]
    other = tmp_path / "other"
    shutil.copytree(member, other)
    tokenizer = other / "model" / "tokenizer.json"
    spec = json.loads(tokenizer.read_text())
    spec["padding"] = {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": None}
    spec["padding"] |= {"pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
    tokenizer.write_text(json.dumps(spec, indent=1))
    config = json.loads((other / "recipe.json").read_text())
    config["seed"] = 7
    (other / "recipe.json").write_text(json.dumps(config))
    build_ensemble([member, other], tmp_path / "ens")
    assert (tmp_path / "ens" / "metrics.json").is_file()


def test_the_output_folder_is_an_ensemble_or_new(finished_tiny_runs, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and not an ensemble folder"):
        build_ensemble([finished_tiny_runs["one_order"]], taken)
    nested = tmp_path / "earlier"
    nested.mkdir()
    (nested / "ensemble.json").write_text("{}")
    with pytest.raises(UserError, match="an ensemble folder itself; list its runs instead"):
        build_ensemble([nested], tmp_path / "x")
