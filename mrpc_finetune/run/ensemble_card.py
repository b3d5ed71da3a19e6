"""The card of an ensemble folder, ``ENS/README.md``: its members, how their outputs combine, what that costs, and
its scores beside the members' own.

    write_ensemble_card(ens, task=task, members=[(folder, recipe, metrics), ...], both_orders=False, metrics=...)
"""

from __future__ import annotations

from pathlib import Path

from mrpc_finetune.metrics import BOTH_ORDERS, both_orders_prefix
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import TaskSpec
from mrpc_finetune.run.ensemble_dir import EnsembleDir
from mrpc_finetune.run.model_card import split_scores
from mrpc_finetune.run.rundir import atomic_write_text


def write_ensemble_card(
    ens: EnsembleDir,
    *,
    task: TaskSpec,
    members: list[tuple[Path, Recipe, dict]],
    both_orders: bool,
    metrics: dict,
) -> Path:
    """Write ``ENS/README.md`` (replacing it atomically) and return its path."""
    sections = [
        _title(ens, task, members),
        _members(task, members),
        _combining(task, len(members), both_orders),
        _results(task, metrics, selected=any(recipe.eval.strategy != "no" for _, recipe, _ in members)),
        _use(ens),
    ]
    atomic_write_text(ens.card_file, "\n\n".join(sections) + "\n")
    return ens.card_file


def _title(ens: EnsembleDir, task: TaskSpec, members: list) -> str:
    data = f"GLUE {task.name.upper()}" if not task.is_custom else "custom data"
    return (
        f"# {ens.root.name}\n\nAn ensemble of {len(members)} fine-tuned runs on {data}, made with "
        f"`mrpc-finetune ensemble`. It has no weights of its own: it needs its members' folders where this card "
        f"lists them."
    )


def _members(task: TaskSpec, members: list) -> str:
    """Each member and its own dev score, in one order and (where it recorded them) in both."""
    dev = "eval" if len(task.eval_splits) == 1 else f"eval_{task.eval_splits[0]}"
    keys = [f"{dev}_{task.main_metric}", f"{both_orders_prefix(dev)}_{task.main_metric}"]
    lines = [
        "## Members",
        "",
        f"| run folder | recipe | seed | its dev {task.main_metric} | the same, both orders |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for folder, recipe, own in members:
        shown = ["–" if not isinstance(own.get(key), (int, float)) else f"{own[key]:.4f}" for key in keys]
        lines.append(f"| `{folder}` | `{recipe.name}` | {recipe.seed} | {' | '.join(shown)} |")
    return "\n".join(lines)


def _combining(task: TaskSpec, n: int, both_orders: bool) -> str:
    output = "predicted score" if task.is_regression else "class probabilities (the softmax of its logits)"
    orders = (
        " Each member scores every pair twice, as (a, b) and as (b, a), and its two outputs are averaged first "
        "(`both_orders`)."
        if both_orders
        else ""
    )
    label = "" if task.is_regression else " The label is the class of highest mean probability."
    passes = n * (2 if both_orders else 1)
    return "\n".join(
        [
            "## How the members combine",
            "",
            f"Each member's {output} for a row, averaged over the {n} members with equal weights.{orders}{label}",
            "",
            f"**Cost:** {passes} forward passes per row ({n} members{' x 2 orders' if both_orders else ''}), "
            f"{passes} times the inference of one run; `mrpc-finetune` loads the members one after another, so "
            f"memory holds one model at a time.",
        ]
    )


def _results(task: TaskSpec, metrics: dict, selected: bool) -> str:
    dev = "dev (the members' checkpoints were chosen on it)" if selected else "dev"
    lines = ["## Results", "", "| split | metric | value | role |", "| --- | --- | ---: | --- |"]
    for (kind, split), scores in split_scores(metrics, task).items():
        role = "held-out test" if kind == "test" else dev
        for metric, value in scores.items():
            orders = ", both sentence orders averaged" if metric.startswith(BOTH_ORDERS) else ""
            lines.append(f"| {split} | {metric} | {value:.4f} | {role}{orders} |")
    return "\n".join(lines)


def _use(ens: EnsembleDir) -> str:
    return "\n".join(
        [
            "## How to use",
            "",
            "```",
            f"mrpc-finetune eval {ens.root}",
            f"mrpc-finetune predict {ens.root} --file rows.csv",
            "```",
            "",
            "`mrpc-finetune push` refuses an ensemble folder: push a member, and average the members' outputs as "
            "above in your own code.",
        ]
    )
