"""The STS-B -> MRPC chain (recipes/stsb_minilm_msrfree.py, then recipes/mrpc_minilm_stsb.py from its model):
each recipe is its base recipe's settings but for what the chain needs, the second fails in one line until the
first has run, and the two run end to end on the tiny model, the second replacing the first's regression head."""

from __future__ import annotations

import json
import math

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.recipe.overrides import flat_dict, to_dict

from .conftest import write_jsonl
from .test_exclusion import stsb_rows
from .test_golden import keyword_pairs

FIRST, SECOND = "stsb_minilm_msrfree", "mrpc_minilm_stsb"


def differences(recipe, base) -> dict:
    """The dotted keys whose values differ between two recipes, the name and description aside."""
    ours, theirs = flat_dict(to_dict(recipe)), flat_dict(to_dict(base))
    return {key: ours[key] for key in ours if ours[key] != theirs[key] and key not in ("name", "description")}


def test_stage_one_is_stsb_minilm_without_msrpar():
    # stsb_minilm before its light search (lr 8.8e-5, 3 epochs): the settings the chain was measured with
    assert differences(load_recipe(FIRST), load_recipe("stsb_minilm")) == {
        "data.exclude": ["source=MSRpar"],
        "train.lr": 8.8e-5,
        "train.epochs": 3,
    }
    assert load_recipe(FIRST).run_dir.as_posix() == f"runs/{FIRST}"  # where stage 2 looks by default


def test_stage_two_is_mrpc_minilm_from_stage_ones_model():
    assert differences(load_recipe(SECOND), load_recipe("mrpc_minilm")) == {
        "model.name": f"runs/{FIRST}/model",
        "model.pooler": "pretrained",  # stage 1 trained the pooler it started as tanh([CLS])
    }


def test_stage_two_takes_any_data_folder_and_any_stage_one_run(tmp_path):
    recipe = load_recipe(SECOND, [f"data.dir={tmp_path / 'heldout'}", f"model.name={tmp_path / 's1' / 'model'}"])
    assert recipe.data.dir == str(tmp_path / "heldout") and recipe.model.name == str(tmp_path / "s1" / "model")


def test_stage_two_before_stage_one_is_one_line_and_no_run_folder(tmp_path, tiny_mrpc_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no runs/ here
    code = main(["train", SECOND, f"data.dir={tiny_mrpc_dir}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert err == (
        f"error: model.name=runs/{FIRST}/model: runs/{FIRST}/model is not a model folder (no such folder); "
        f"it is the model of a {FIRST} run: train it first "
        f"(mrpc-finetune train {FIRST})\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # two trainings of the tiny model: about 15 s
def test_the_chain_runs_end_to_end(tiny_model_dir, tmp_path, capsys, one_torch_thread):
    stsb, mrpc = tmp_path / "stsb", tmp_path / "mrpc"
    for folder, train, validation in (
        (stsb, stsb_rows(48, 1), stsb_rows(16, 2)),
        (mrpc, keyword_pairs(96, 1), keyword_pairs(24, 2)),
    ):
        folder.mkdir()
        write_jsonl(folder / "train.jsonl", train)
        write_jsonl(folder / "validation.jsonl", validation)
    tiny = ["train.batch_size=8", "train.logging_steps=4", "eval.batch_size=8", "train.report_to=[]"]
    first = [f"model.name={tiny_model_dir}", f"data.dir={stsb}", f"output_dir={tmp_path / 's1'}", "train.lr=1e-3"]
    assert main(["train", FIRST, *first, *tiny, "train.epochs=2"]) == 0
    assert (
        "data.exclude=[source=MSRpar]: dropped 12 of 48 train rows, 4 of 16 validation rows" in capsys.readouterr().out
    )
    excluded = json.loads((tmp_path / "s1" / "run_info.json").read_text())["data"]["exclude"]
    assert excluded["rows_dropped"] == {"train": 12, "validation": 4}
    assert "12 of train, 4 of validation" in (tmp_path / "s1" / "model" / "README.md").read_text()
    start = tmp_path / "s1" / "model"
    assert json.loads((start / "config.json").read_text())["id2label"] == {"0": "score"}

    # the tiny model learns the keyword pairs at 3e-3 in 8 epochs (the recipe's 8.8e-5 is MiniLM's)
    second = [f"model.name={start}", f"data.dir={mrpc}", f"output_dir={tmp_path / 's2'}", "train.lr=3e-3"]
    assert main(["train", SECOND, *second, *tiny, "train.epochs=8", "train.warmup_ratio=0.1"]) == 0
    out = capsys.readouterr().out
    assert f"model.name={start}: a regression model (1 output); its head is replaced by a new 2-class one" in out
    metrics = json.loads((tmp_path / "s2" / "metrics.json").read_text())
    assert metrics["eval_accuracy"] >= 0.8 and metrics["eval_loss"] < math.log(2) - 0.1, metrics  # chance: 0.5, ln 2
    saved = json.loads((tmp_path / "s2" / "model" / "config.json").read_text())
    assert saved["id2label"] == {"0": "not_equivalent", "1": "equivalent"}
