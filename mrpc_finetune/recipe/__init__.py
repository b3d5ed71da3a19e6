"""Recipes as typed data: the schema (dataclasses with their defaults and checks), dotted overrides, recipe files
and saved ``recipe.json``, the GLUE tasks, new-recipe. May import ``errors`` only; every layer imports it.

Recipe files import the sections from here: ``from mrpc_finetune.recipe import Recipe, TrainConfig``."""

from mrpc_finetune.recipe.loading import field_docs, key_docs, load_recipe, recipe_names, recipes_dir
from mrpc_finetune.recipe.overrides import all_keys, apply_overrides, flat_dict, from_dict, split_list_items, to_dict
from mrpc_finetune.recipe.schema import (
    TRACKERS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainConfig,
    check_sections_agree,
)

__all__ = [  # the sections, for recipe files; the loaders, for tools
    "TRACKERS",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "Recipe",
    "TrainConfig",
    "all_keys",
    "apply_overrides",
    "check_sections_agree",
    "field_docs",
    "flat_dict",
    "from_dict",
    "key_docs",
    "load_recipe",
    "recipe_names",
    "recipes_dir",
    "split_list_items",
    "to_dict",
]
