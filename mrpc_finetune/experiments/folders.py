"""What ``repeat``, ``search`` and ``compare`` share: seed lists, the state of a run directory, one recipe per seed,
and the recipe keys in which runs differ.

An experiment folder holds ordinary run directories (``seed-<s>/`` for ``repeat``, ``trial-<n>/seed-<s>/`` for
``search``) and the files that sum them up; it never holds a ``recipe.json`` of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.loading import load_recipe
from mrpc_finetune.recipe.overrides import all_keys
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.run.rundir import RESUME_MAY_CHANGE, RunDir, check_can_start

SET_BY_COMMAND = ("seed", "output_dir", "resume", "overwrite")
"""Recipe keys that ``repeat`` and ``search`` set per run themselves."""

NOT_COMPARED = ("name", "description", "output_dir", "resume", "overwrite")
"""Keys that say where or how a run was started, not what it computed."""


def parse_seeds(count: int | None, listed: str | None, default: int = 1) -> list[int]:
    """``--seeds N`` (seeds 1..N) or ``--seed-list 1,5,9``; both given must agree on how many."""
    if listed is not None:
        try:
            seeds = [int(item) for item in listed.split(",") if item.strip()]
        except ValueError:
            raise UserError(f"--seed-list {listed!r}: expected whole numbers separated by commas, e.g. 1,5,9") from None
        if not seeds:
            raise UserError("--seed-list: give at least one seed, e.g. 1,5,9")
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise UserError(f"--seed-list {listed}: seed {repeated[0]} is listed twice")
        if count is not None and count != len(seeds):
            raise UserError(f"--seeds {count} and --seed-list {listed} disagree: give one of them")
        return seeds
    count = default if count is None else count
    if count < 1:
        raise UserError(f"--seeds {count}: must be at least 1")
    return list(range(1, count + 1))


def check_overrides(overrides: list[str], command: str) -> None:
    """``seed=`` or ``output_dir=`` would fight the command's own choice: refuse them by name."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in SET_BY_COMMAND:
            raise UserError(
                f"{command}: {key}= is set by the command for each run; use --seeds / --seed-list for the seeds "
                f"and --output-dir for the experiment folder"
            )


def run_status(folder: Path) -> str:
    """``finished`` (metrics.json written), ``interrupted`` (a run directory without metrics.json) or ``new``."""
    run = RunDir(folder)
    if run.metrics_file.is_file():
        return "finished"
    if run.recipe_file.is_file():
        return "interrupted"
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{folder} is in the way: it is not a run directory (no recipe.json); move it aside")
    return "new"


def recipe_for_run(base: Recipe, seed: int, folder: Path) -> tuple[Recipe, str]:
    """The recipe of ``base``'s run with ``seed`` in ``folder`` and that folder's status.

    An existing run must have been trained with the same recipe: a finished one is kept, an interrupted one
    resumes (``resume=true``); a different recipe there is an error, before any training.
    """
    status = run_status(folder)
    recipe = dataclasses.replace(base, seed=seed, output_dir=str(folder), resume=False, overwrite=False)
    if status != "new":
        recorded = load_recipe(str(RunDir(folder).recipe_file))
        changed = differing_keys([recorded, recipe], ignore=RESUME_MAY_CHANGE)
        if changed:
            key = changed[0]
            raise UserError(
                f"{folder} was trained with {key}={recipe_value(recorded, key)!r}, this command asks for "
                f"{key}={recipe_value(recipe, key)!r}; rerun the same command, or choose another --output-dir"
            )
    if status == "interrupted":
        recipe = dataclasses.replace(recipe, resume=True)
        check_can_start(recipe)
    return recipe, status


def recipe_value(recipe: Recipe, key: str) -> Any:
    """The value of dotted ``key`` (``train.lr``) in ``recipe``."""
    return functools.reduce(getattr, key.split("."), recipe)


def differing_keys(recipes: list[Recipe], ignore=NOT_COMPARED) -> list[str]:
    """The dotted keys whose values are not the same in all ``recipes``, in the recipe's field order."""
    return [
        key
        for key in all_keys()
        if key not in ignore and len({json.dumps(recipe_value(r, key), sort_keys=True) for r in recipes}) > 1
    ]


def natural_key(path: Path) -> list:
    """Sort ``seed-2`` before ``seed-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(folder: Path) -> list[Path]:
    """The run directories (folders holding a ``recipe.json``) below ``folder``, in natural order."""
    return sorted((p.parent for p in folder.rglob("recipe.json")), key=natural_key)


def read_metrics(folder: Path) -> dict[str, Any] | None:
    """A run's ``metrics.json``, or None while it is unfinished."""
    path = RunDir(folder).metrics_file
    return json.loads(path.read_text()) if path.is_file() else None
