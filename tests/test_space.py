"""Search spaces as data: parsed from YAML or a recipe's SEARCH, every key, bound and choice checked."""

from __future__ import annotations

import pytest

from mrpc_finetune.errors import UserError
from mrpc_finetune.experiments.space import DEFAULT_SPACE, Dimension, load_space, parse_space, recipe_point
from mrpc_finetune.recipe import load_recipe

BASE = load_recipe("mrpc_minilm")


def test_parse_each_distribution():
    space = parse_space(
        {
            "train.lr": "loguniform 1e-5 3e-4",
            "train.epochs": "int 2 6",
            "train.warmup_ratio": "uniform 0.0 0.2",
            "model.dropout": "choice 0.0 0.1",
            "train.lr_scheduler": ["choice", "linear", "cosine"],
        },
        "test",
        BASE,
    )
    assert space == [
        Dimension("train.lr", "loguniform", (1e-5, 3e-4)),
        Dimension("train.epochs", "int", (2, 6)),
        Dimension("train.warmup_ratio", "uniform", (0.0, 0.2)),
        Dimension("model.dropout", "choice", (0.0, 0.1)),
        Dimension("train.lr_scheduler", "choice", ("linear", "cosine")),
    ]
    assert str(space[0]) == "loguniform 1e-05 0.0003"


def test_choices_take_the_fields_type():
    (batch,) = parse_space({"train.batch_size": "choice 16 32"}, "test", BASE)
    assert batch.values == (16, 32) and all(isinstance(v, int) for v in batch.values)


def test_yaml_file_wins_over_the_default(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.lr: loguniform 1e-5 1e-4\n")
    space, source = load_space("mrpc_minilm", str(path), BASE)
    assert [d.key for d in space] == ["train.lr"] and source == str(path)
    space, source = load_space("mrpc", None, load_recipe("mrpc"))  # a recipe file without SEARCH
    assert [d.key for d in space] == list(DEFAULT_SPACE) and source == "the default search space"
    space, source = load_space("mrpc_minilm", None, BASE)  # the one beside the recipe
    assert "train.layer_lr_decay" in [d.key for d in space] and source.endswith("mrpc_minilm.py SEARCH")


def test_search_beside_recipe(tmp_path):
    path = tmp_path / "tuned.py"
    path.write_text(
        "from mrpc_finetune.recipe import Recipe, TrainConfig\n"
        "RECIPE = Recipe(train=TrainConfig(lr=1e-4))\n"
        'SEARCH = {"train.lr": "loguniform 3e-5 3e-4", "train.epochs": "int 3 5"}\n'
    )
    space, source = load_space(str(path), None, load_recipe(str(path)))
    assert [str(d) for d in space] == ["loguniform 3e-05 0.0003", "int 3 5"] and source.endswith("tuned.py SEARCH")


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"train.lrr": "uniform 0 1"}, "unknown recipe key 'train.lrr'; did you mean train.lr?"),
        ({"train": "uniform 0 1"}, "train is a section"),
        ({"seed": "int 1 9"}, "seed cannot be searched"),
        ({"train.lr": "normal 1e-5 1e-4"}, "train.lr: unknown distribution 'normal 1e-5 1e-4'"),
        ({"train.lr": 0.001}, "train.lr: unknown distribution 0.001"),
        ({"train.lr": "loguniform 3e-4 1e-5"}, "LOW must be below HIGH"),
        ({"train.lr": "loguniform 0 1e-4"}, "loguniform needs LOW > 0"),
        ({"train.lr": "uniform 1e-5"}, "uniform needs two numbers LOW HIGH"),
        ({"train.epochs": "int 2 6.5"}, "int needs two whole numbers LOW HIGH"),
        ({"model.dropout": "uniform 0.0 1.0"}, "model.dropout: must be in [0, 1), got 1.0"),
        ({"train.batch_size": "uniform 8 32"}, "train.batch_size: expected int, got '8.0'"),
        ({"train.sampler": "choice random shuffled"}, "train.sampler: 'shuffled' is not one of"),
        ({"train.lr": "choice"}, "choice needs at least one value"),
        ({}, "a search space maps recipe keys to distributions"),
    ],
)
def test_bad_space_is_one_clear_line(entries, message):
    with pytest.raises(UserError) as caught:
        parse_space(entries, "space.yaml", BASE)
    text = str(caught.value)
    assert text.startswith("space.yaml: ") and message in text and "\n" not in text


def test_bad_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.lr: loguniform 1e-5 3e-4\n  bad: [\n")
    with pytest.raises(UserError, match=r"space.yaml: not valid YAML at line \d"):
        load_space("mrpc_minilm", str(path), BASE)


def test_a_search_runs_its_recipe_file_once(tmp_path):
    """A recipe file is a program: reading its SEARCH and its RECIPE runs it once, and an edit runs it anew."""
    runs_log = tmp_path / "runs.log"
    path = tmp_path / "counted.py"
    body = (
        "from pathlib import Path\n"
        "from mrpc_finetune.recipe import Recipe, TrainConfig\n"
        f"with open({str(runs_log)!r}, 'a') as log:\n"
        "    log.write('ran\\n')\n"
        "RECIPE = Recipe(train=TrainConfig(lr=1e-4))\n"
        'SEARCH = {"train.lr": "loguniform 3e-5 3e-4"}\n'
    )
    path.write_text(body)
    base = load_recipe(str(path), ["train.epochs=2"])
    space, _ = load_space(str(path), None, base)
    assert load_recipe(str(path)).train.epochs != 2  # the overrides changed a copy, not the file's RECIPE
    assert [d.key for d in space] == ["train.lr"]
    assert runs_log.read_text() == "ran\n"

    path.write_text(body.replace("lr=1e-4", "lr=2e-4"))
    assert load_recipe(str(path)).train.lr == 2e-4
    assert runs_log.read_text() == "ran\nran\n"


def test_recipe_point_is_the_recipes_own_values_inside_the_space():
    space = parse_space(
        {"train.lr": "loguniform 3e-5 3e-4", "train.epochs": "choice 3 4", "model.dropout": "choice 0.0 0.1"},
        "test",
        BASE,
    )
    point = recipe_point(space, BASE)
    assert point == {"train.lr": BASE.train.lr, "train.epochs": BASE.train.epochs, "model.dropout": 0.0}
    (epochs,) = parse_space({"train.epochs": "choice 3 5"}, "test", BASE)  # mrpc_minilm trains 4
    with pytest.raises(UserError, match=r"recipe's train.epochs=4 is outside the space \(choice 3.0 5.0\)"):
        recipe_point([epochs], BASE)
