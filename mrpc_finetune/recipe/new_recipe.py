"""Write a new recipe file from an existing recipe plus overrides, holding only what differs from the defaults.

mrpc-finetune new-recipe reviews --from mrpc_minilm data.task=custom data.file=reviews.csv \
    data.text_columns=[review] data.label_column=sentiment
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import textwrap
from pathlib import Path

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.loading import field_docs, load_recipe, recipes_dir
from mrpc_finetune.recipe.schema import Recipe

SECTIONS = {"model": "ModelConfig", "data": "DataConfig", "train": "TrainConfig", "eval": "EvalConfig"}
LEFT_OUT = ("name", "description", "resume", "overwrite")
"""Top-level fields a recipe file does not hold: the name is the file's, resume / overwrite belong to one command."""


def new_recipe_path(name: str, option: str = "new-recipe") -> Path:
    """Where recipe ``name`` would be written; a name that is no module name, or a file already there, is an
    error naming ``option`` (so `search --write-recipe` can check it before any trial trains)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise UserError(f"{option} {name!r}: use lower-case letters, digits and _ (a Python module name)")
    path = recipes_dir() / f"{name}.py"
    if path.exists():
        raise UserError(f"{option} {name}: {path} already exists; edit it, or pick another name")
    return path


def write_new_recipe(name: str, base: str, overrides: list[str] = ()) -> Path:
    """``recipes/<name>.py`` from recipe ``base`` with ``overrides`` applied; an existing file is never replaced."""
    path = new_recipe_path(name)
    start = load_recipe(base)
    recipe = load_recipe(base, list(overrides))
    if not any(o.partition("=")[0].strip() == "description" for o in overrides):
        recipe = dataclasses.replace(recipe, description=_describe(recipe, start.name))
    recipe = dataclasses.replace(recipe, name=name, resume=False, overwrite=False)
    source = recipe_source(recipe, start.name, list(overrides))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    if load_recipe(str(path)) != recipe:  # the file must say exactly what was asked for
        path.unlink()
        raise RuntimeError(f"new-recipe: the written {path} does not reproduce the recipe; please report this")
    return path


def _describe(recipe: Recipe, base: str) -> str:
    data = recipe.data
    source = data.file or data.dir or f"GLUE {data.task} from the Hub"
    task = f"{data.task} data " if data.task == "custom" else ""
    return f"{recipe.model.name} on {task}{source} (started from {base})"


def recipe_source(recipe: Recipe, base: str, overrides: list[str]) -> str:
    """Python source of ``RECIPE = Recipe(...)`` naming only the fields that differ from the defaults, each
    with its documentation as a comment."""
    docs = field_docs()
    defaults = Recipe()
    body, used = [f"    description={_literal(recipe.description)},"], ["Recipe"]
    for field in dataclasses.fields(Recipe):
        if field.name in LEFT_OUT:
            continue
        value, default = getattr(recipe, field.name), getattr(defaults, field.name)
        if field.name in SECTIONS:
            changed = [
                (f.name, getattr(value, f.name))
                for f in dataclasses.fields(value)
                if getattr(value, f.name) != getattr(default, f.name)
            ]
            if not changed:
                continue
            used.append(SECTIONS[field.name])
            body.append(f"    {field.name}={SECTIONS[field.name]}(")
            for key, item in changed:
                body += _comment(docs.get((SECTIONS[field.name], key), ""), "        ")
                body.append(f"        {key}={_literal(item)},")
            body.append("    ),")
        elif value != default:
            body += _comment(docs.get(("Recipe", field.name), ""), "    ")
            body.append(f"    {field.name}={_literal(value)},")
    command = f"mrpc-finetune new-recipe {recipe.name} --from {base}" + "".join(f" {o}" for o in overrides)
    header = [
        f'"""{recipe.name}: written by `{command}`.',
        "",
        f"Only what differs from the defaults in {defaults_file()} is here; edit freely.",
        "",
        f"    mrpc-finetune train {recipe.name}",
        f"    mrpc-finetune eval {recipe.run_dir}",
        f"    mrpc-finetune predict {recipe.run_dir} --file new_rows.csv",
        '"""',
        "",
        f"from mrpc_finetune.recipe import {', '.join(sorted(used))}",
        "",
        "RECIPE = Recipe(",
    ]
    return "\n".join([*header, *body, ")"]) + "\n"


def defaults_file() -> str:
    """The file that defines the ``Recipe`` dataclass and so its defaults, relative to the folder holding the
    package (``mrpc_finetune/recipe/schema.py``): asked of the class itself, so the text follows the schema if it moves."""
    import mrpc_finetune

    defined_in = Path(inspect.getfile(Recipe)).resolve()
    project_root = Path(mrpc_finetune.__file__).resolve().parent.parent
    return defined_in.relative_to(project_root).as_posix()


def _literal(value) -> str:
    """A Python literal, with double quotes as the formatter writes them."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _comment(doc: str, indent: str) -> list[str]:
    text = " ".join(doc.split())
    return textwrap.wrap(text, width=110, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ") if text else []
