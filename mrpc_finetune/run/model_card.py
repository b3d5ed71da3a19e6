"""The model card of a finished run: ``RUN/model/README.md`` in the Hub's format, so the folder can be pushed as is.

    write_model_card(run.model, recipe=recipe, metrics=metrics, run_info=info, summary=None)

YAML metadata (``base_model``, ``datasets``, ``metrics``, ``pipeline_tag`` and a ``model-index`` with the results
per split) through huggingface_hub's ``ModelCardData``, then the base model, the data and its fingerprints, the
recipe, the metrics per split, the multi-seed summary, time and hardware, and what the numbers can and cannot say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mrpc_finetune.metrics import BOTH_ORDERS, is_evaluation_figure
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import TaskSpec, task_for
from mrpc_finetune.run.card_sections import (
    base_model_id,
    base_model_section,
    both_orders_section,
    data_section,
    hardware_section,
    limits_section,
    recipe_section,
    results_section,
    seeds_section,
    title_section,
)
from mrpc_finetune.run.card_usage import usage_section
from mrpc_finetune.run.rundir import atomic_write_text


def write_model_card(
    model_dir: Path, *, recipe: Recipe, metrics: dict, run_info: dict, summary: dict | None = None
) -> Path:
    """Write ``model_dir/README.md`` (replacing it atomically) and return its path."""
    path = Path(model_dir) / "README.md"
    atomic_write_text(path, str(model_card(recipe=recipe, metrics=metrics, run_info=run_info, summary=summary)))
    return path


def model_card(*, recipe: Recipe, metrics: dict, run_info: dict, summary: dict | None = None):
    """The ``huggingface_hub.ModelCard`` of a run."""
    from huggingface_hub import ModelCard, ModelCardData

    task = task_for(recipe.data)  # custom data: columns only, the label names are the trained model's
    results = split_scores(metrics, task)
    glue = not task.is_custom
    data = ModelCardData(
        model_name=recipe.name or "model",
        base_model=base_model_id(recipe),
        license=base_model_license(recipe),
        datasets=[recipe.data.hub_dataset] if glue else None,
        language="en" if glue else None,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["text-classification", "mrpc-finetune", *(["glue", task.name] if glue else [])],
        metrics=sorted({metric.removeprefix(f"{BOTH_ORDERS}_") for scores in results.values() for metric in scores})
        or None,
        eval_results=_eval_results(recipe, task, results) or None,
    )
    sections = [
        title_section(recipe, task),
        base_model_section(recipe, run_info),
        data_section(recipe, run_info),
        recipe_section(recipe),
        results_section(results, recipe, task),
        both_orders_section(recipe),
        seeds_section(summary) if summary else "",
        hardware_section(metrics, run_info),
        usage_section(task, recipe.model.pooler),
        limits_section(recipe, task, metrics, results, summary),
    ]
    body = "\n\n".join(section for section in sections if section)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


def split_scores(metrics: dict[str, Any], task: TaskSpec) -> dict[tuple[str, str], dict[str, float]]:
    """``{("eval", "validation"): {"accuracy": 0.84, "f1": 0.88}, ("test", "test"): {...}}`` from metrics keys:
    ``eval_<metric>`` for one evaluation split, ``eval_<split>_<metric>`` for several, and likewise ``test_``."""
    prefixes = {}
    for kind, splits in (("eval", task.eval_splits), ("test", task.test_splits)):
        for split in splits:
            prefixes[f"{kind}_" if len(splits) == 1 else f"{kind}_{split}_"] = (kind, split)
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not is_task_score(key):
            continue
        prefix = max((p for p in prefixes if key.startswith(p)), key=len, default=None)
        if prefix is not None and key[len(prefix) :]:
            scores.setdefault(prefixes[prefix], {})[key[len(prefix) :]] = value
    return scores


def is_task_score(key: str) -> bool:
    """A key the card reports as a task score: not a figure of the evaluation itself (``metrics.NOT_SCORES``) and
    not the loss, which measures the training objective rather than the task."""
    return not is_evaluation_figure(key) and not (key == "loss" or key.endswith("_loss"))


def base_model_license(recipe: Recipe) -> str | None:
    """The license the base model's own card declares, which a fine-tune of it inherits: the ``README.md`` beside
    its weights (a folder, a packaged model) or in the Hub cache. None without such a card; nothing is downloaded."""
    from huggingface_hub import ModelCard, try_to_load_from_cache

    from mrpc_finetune.models import resolve_model_path

    source = resolve_model_path(recipe.model.name)
    card = Path(source) / "README.md" if Path(source).is_dir() else try_to_load_from_cache(source, "README.md")
    if not isinstance(card, (str, Path)) or not Path(card).is_file():  # not cached, or cached as missing
        return None
    try:
        return ModelCard.load(card).data.license
    except (OSError, ValueError):  # unreadable, or front matter that is not YAML: no license is claimed
        return None


def _dataset(recipe: Recipe, task: TaskSpec) -> tuple[str, str]:
    """(dataset id, pretty name) for the model-index."""
    if task.is_custom:
        name = Path(recipe.data.file or recipe.data.dir or "custom").name
        return name, name
    return recipe.data.hub_dataset, f"GLUE {task.name.upper()}"


def _eval_results(recipe: Recipe, task: TaskSpec, results: dict) -> list:
    from huggingface_hub import EvalResult

    dataset_id, dataset_name = _dataset(recipe, task)
    return [
        EvalResult(
            task_type="text-classification",
            task_name="Text Classification",
            dataset_type=dataset_id,
            dataset_name=dataset_name,
            dataset_config=None if task.is_custom else task.name,
            dataset_split=split,
            metric_type=metric,
            metric_value=value,
            metric_name=f"{metric} ({'held-out test, not used for selection' if kind == 'test' else 'dev'}"
            f"{', both sentence orders averaged' if metric.startswith(BOTH_ORDERS) else ''})",
        )
        for (kind, split), scores in results.items()
        for metric, value in scores.items()
    ]
