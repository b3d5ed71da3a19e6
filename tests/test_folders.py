"""Seed lists, run-directory states and recipe differences shared by repeat, search and compare."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mrpc_finetune.errors import UserError
from mrpc_finetune.experiments.folders import (
    check_overrides,
    differing_keys,
    find_runs,
    parse_seeds,
    recipe_for_run,
    run_status,
)
from mrpc_finetune.recipe import load_recipe, to_dict


def test_seeds():
    assert parse_seeds(None, None, default=5) == [1, 2, 3, 4, 5]
    assert parse_seeds(3, None) == [1, 2, 3]
    assert parse_seeds(None, "1,5,9") == [1, 5, 9]
    assert parse_seeds(3, "1, 5, 9") == [1, 5, 9]


@pytest.mark.parametrize(
    "count, listed, message",
    [
        (0, None, "--seeds 0: must be at least 1"),
        (-2, None, "--seeds -2: must be at least 1"),
        (None, "1,x", "--seed-list '1,x': expected whole numbers"),
        (None, "1,2,1", "seed 1 is listed twice"),
        (2, "1,5,9", "--seeds 2 and --seed-list 1,5,9 disagree"),
    ],
)
def test_bad_seeds(count, listed, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        parse_seeds(count, listed)


@pytest.mark.parametrize("override", ["seed=3", "output_dir=/tmp/x", "resume=true"])
def test_command_owned_keys_are_refused(override):
    with pytest.raises(UserError, match="is set by the command"):
        check_overrides(["train.lr=1e-4", override], "repeat")


def write_run(folder, recipe, finished: bool):
    folder.mkdir(parents=True)
    (folder / "recipe.json").write_text(json.dumps(to_dict(recipe)))
    if finished:
        (folder / "metrics.json").write_text('{"eval_accuracy": 0.5}')


def test_run_states_and_recipe_checks(tmp_path):
    base = load_recipe("mrpc_minilm", ["train.lr=1e-4"])  # the error message below names this value
    assert run_status(tmp_path / "none") == "new"
    recipe, status = recipe_for_run(base, 3, tmp_path / "seed-3")
    assert status == "new" and recipe.seed == 3 and recipe.output_dir == str(tmp_path / "seed-3")

    write_run(tmp_path / "seed-1", dataclasses.replace(base, seed=1, output_dir=str(tmp_path / "seed-1")), True)
    recipe, status = recipe_for_run(base, 1, tmp_path / "seed-1")
    assert status == "finished" and not recipe.resume

    write_run(tmp_path / "seed-2", dataclasses.replace(base, seed=2, output_dir=str(tmp_path / "seed-2")), False)
    recipe, status = recipe_for_run(base, 2, tmp_path / "seed-2")
    assert status == "interrupted" and recipe.resume

    other = dataclasses.replace(base, train=dataclasses.replace(base.train, lr=5e-5))
    with pytest.raises(
        UserError, match=r"seed-1 was trained with train.lr=0.0001, this command asks for train.lr=5e-05"
    ):
        recipe_for_run(other, 1, tmp_path / "seed-1")

    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is in the way: it is not a run directory"):
        run_status(tmp_path / "stray")
    assert find_runs(tmp_path) == [tmp_path / "seed-1", tmp_path / "seed-2"]


def test_differing_keys():
    a = load_recipe("mrpc_minilm")
    b = load_recipe("mrpc_minilm", ["train.lr=3e-5", "seed=7", "output_dir=/elsewhere"])
    assert differing_keys([a, b]) == ["train.lr", "seed"]
    assert differing_keys([a, a]) == []
