"""The search space of ``search``, written as data: recipe keys mapped to distributions.

Beside ``RECIPE`` in a recipe file::

    SEARCH = {
        "train.lr": "loguniform 1e-5 3e-4",
        "train.epochs": "int 2 6",
        "model.dropout": "choice 0.0 0.1",
    }

or in a YAML file given with ``search --space space.yaml``::

    train.lr: loguniform 1e-5 3e-4
    train.warmup_ratio: uniform 0.0 0.2
    train.batch_size: choice 16 32

Distributions: ``uniform LOW HIGH``, ``loguniform LOW HIGH`` (LOW > 0), ``int LOW HIGH`` (both ends included),
``choice A B ...``. Every key, bound and choice is checked against the recipe before any training.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrpc_finetune.errors import UserError
from mrpc_finetune.experiments.folders import SET_BY_COMMAND, recipe_value
from mrpc_finetune.recipe.loading import recipe_file_module, recipes_dir
from mrpc_finetune.recipe.overrides import all_keys, apply_overrides
from mrpc_finetune.recipe.schema import Recipe

DEFAULT_SPACE = {
    "train.lr": "loguniform 1e-5 3e-4",
    "train.epochs": "int 2 6",
    "train.warmup_ratio": "uniform 0.0 0.2",
    "model.dropout": "choice 0.0 0.1",
}
"""Used when neither ``--space`` nor the recipe file's ``SEARCH`` gives one."""

USAGE = "uniform LOW HIGH, loguniform LOW HIGH, int LOW HIGH or choice A B ..."
NOT_SEARCHABLE = (*SET_BY_COMMAND, "name", "description")


@dataclass(frozen=True)
class Dimension:
    key: str
    """The recipe key, also the Optuna parameter name."""
    kind: str
    """uniform, loguniform, int or choice."""
    values: tuple
    """(low, high), or the choices."""

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.key, *self.values)
        return trial.suggest_float(self.key, *self.values, log=self.kind == "loguniform")

    def __str__(self) -> str:
        return " ".join([self.kind, *map(str, self.values)])


def recipe_point(dimensions: list[Dimension], base: Recipe) -> dict[str, Any]:
    """The recipe's own value of each searched key (``search --recipe-first``); one outside its range is an error."""
    point = {}
    for dimension in dimensions:
        value = recipe_value(base, dimension.key)
        if dimension.kind == "choice":
            inside = [choice for choice in dimension.values if choice == value]
        else:
            low, high = dimension.values
            inside = [value] if isinstance(value, (int, float)) and low <= value <= high else []
        if not inside:
            raise UserError(
                f"--recipe-first: the recipe's {dimension.key}={value!r} is outside the space ({dimension}); "
                "widen the space or drop --recipe-first"
            )
        point[dimension.key] = inside[0]
    return point


def load_space(recipe_arg: str, space_file: str | None, base: Recipe) -> tuple[list[Dimension], str]:
    """The space from ``space_file`` (YAML), else the recipe file's ``SEARCH``, else ``DEFAULT_SPACE``; checked.

    Returns the dimensions and where they came from.
    """
    if space_file:
        entries, source = _read_yaml(Path(space_file)), space_file
    elif (found := _recipe_search(recipe_arg)) is not None:
        entries, source = found
    else:
        entries, source = DEFAULT_SPACE, "the default search space"
    return parse_space(entries, source, base), source


def parse_space(entries: Any, source: str, base: Recipe) -> list[Dimension]:
    if not isinstance(entries, dict) or not entries:
        raise UserError(f"{source}: a search space maps recipe keys to distributions, e.g. train.lr: {USAGE}")
    return [_dimension(str(key), spec, source, base) for key, spec in entries.items()]


def _dimension(key: str, spec: Any, source: str, base: Recipe) -> Dimension:
    if key not in all_keys():
        _set(base, key, "0", source)  # raises the recipe's own message: unknown key, closest match, or a section
    if key in NOT_SEARCHABLE:
        raise UserError(f"{source}: {key} cannot be searched (search sets seed and output_dir itself)")
    words = spec.split() if isinstance(spec, str) else [str(w) for w in spec] if isinstance(spec, list) else []
    if not words or words[0] not in ("uniform", "loguniform", "int", "choice"):
        raise UserError(f"{source}: {key}: unknown distribution {spec!r}; use {USAGE}")
    kind, args = words[0], words[1:]
    if kind == "choice":
        if not args:
            raise UserError(f"{source}: {key}: choice needs at least one value, e.g. choice 16 32")
        values = tuple(recipe_value(_set(base, key, word, source), key) for word in args)
        if any(isinstance(v, list) for v in values):
            raise UserError(f"{source}: {key}: list values cannot be choices")
        return Dimension(key, kind, values)
    number = int if kind == "int" else float
    try:
        low, high = (number(word) for word in args) if len(args) == 2 else (None, None)
    except ValueError:
        low = high = None
    if low is None:
        kind_of = "whole numbers" if kind == "int" else "numbers"
        raise UserError(f"{source}: {key}: {kind} needs two {kind_of} LOW HIGH, got {' '.join(args) or 'none'!r}")
    if not low < high:
        raise UserError(f"{source}: {key}: {kind} {low} {high}: LOW must be below HIGH")
    if kind == "loguniform" and low <= 0:
        raise UserError(f"{source}: {key}: loguniform needs LOW > 0, got {low}")
    for bound in (low, high):  # both ends must make a valid recipe: the sampler may come close to either
        _set(base, key, str(bound), source)
    return Dimension(key, kind, (low, high))


def _set(base: Recipe, key: str, text: str, source: str) -> Recipe:
    try:
        return apply_overrides(base, [f"{key}={text}"])
    except UserError as err:
        raise UserError(f"{source}: {err}") from None


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise UserError(f"--space {path}: cannot read it ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise UserError(f"--space {path}: not valid YAML{line}") from None


def _recipe_search(recipe_arg: str) -> tuple[Any, str] | None:
    """``SEARCH`` of the recipe file that ``recipe_arg`` names (a name in recipes/ or a .py path), if it has one."""
    path = Path(recipe_arg)
    if path.suffix != ".py":
        path = recipes_dir() / f"{recipe_arg}.py"
    if not path.is_file():
        return None
    space = getattr(recipe_file_module(path), "SEARCH", None)  # the run that load_recipe reuses for RECIPE
    return (copy.deepcopy(space), f"{path} SEARCH") if space is not None else None
