"""Training: a recipe in, a finished run directory out, by one of three loops that keep one contract.

``train_with_loop`` picks the loop; each loop module reads top to bottom as its workflow. May import every layer
below it (recipe, data, models, metrics, run), and ``inference.averaging`` (the end of a run scores both sentence
orders as ``eval`` does); nothing here imports experiments/ or cli."""

from __future__ import annotations

from mrpc_finetune.recipe.schema import Recipe


def train_with_loop(recipe: Recipe, *, on_evaluate=None) -> dict:
    """Train ``recipe`` with its loop; returns the final metrics.

    ``on_evaluate(metrics, step)`` is called on the main process after every evaluation during training (not the
    final one of the best checkpoint), with the evaluation's ``eval_*`` metrics; an exception it raises (e.g.
    ``optuna.TrialPruned``) ends the run there, unfinished (no ``metrics.json``).
    """
    import importlib

    from mrpc_finetune.train.preparation import check_sources

    check_sources(recipe)  # fail in a second when offline, before the loops' heavy imports
    # loop=NAME runs train/NAME_loop.py's main: a new loop is that file and its name in schema.py's `loop` field.
    loop = importlib.import_module(f"mrpc_finetune.train.{recipe.loop}_loop")
    return loop.main(recipe, on_evaluate=on_evaluate)
