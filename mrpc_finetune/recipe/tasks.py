"""What each task is: its text columns, label names, metrics and evaluation splits.

The GLUE entries follow the Hub's ``nyu-mll/glue`` schema, so local files in that schema work unchanged.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from mrpc_finetune.errors import UserError

CUSTOM = "custom"
"""``data.task=custom``: your own data; columns from the recipe, label names from the training file."""


METRIC_SETS: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy",),
    "accuracy_f1": ("accuracy", "f1"),
    "matthews": ("matthews_correlation",),
    "pearson_spearman": ("pearson", "spearmanr"),
    "accuracy_f1_macro": ("accuracy", "f1_macro"),
}
"""The metrics each metric set of ``mrpc_finetune/glue_metric`` reports (as ``eval_<name>`` in the logs)."""

LOWER_IS_BETTER = ("loss",)
"""Metrics that pick the best checkpoint by their lowest value; every other one by its highest."""


def greater_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class TaskSpec:
    name: str
    """Task name, also the Hub config name for GLUE tasks."""
    text_columns: tuple[str, ...]
    """One column (single text) or two (a pair, encoded with ``token_type_ids``)."""
    label_names: tuple[str, ...]
    """Class names in label-id order; empty for regression."""
    metric: str
    """Metric set computed by ``mrpc_finetune/glue_metric``: accuracy, accuracy_f1, matthews, pearson_spearman."""
    main_metric: str
    """The metric that picks the best checkpoint (without the ``eval_`` prefix)."""
    eval_splits: tuple[str, ...] = ("validation",)
    """Splits evaluated after each epoch; the first one picks the best checkpoint."""
    label_column: str = "label"
    """Column holding the labels: integer ids or label names (GLUE), any class values or float scores (custom)."""
    order_free: bool = False
    """A pair task whose label does not depend on which text comes first (MRPC, QQP, STS-B), so (a, b) and (b, a)
    may be scored and averaged (``eval.both_orders``); not for entailment tasks, where premise and hypothesis differ."""

    @property
    def is_custom(self) -> bool:
        return self.name == CUSTOM

    @property
    def test_splits(self) -> tuple[str, ...]:
        """Unlabelled splits: ``test``, or ``test_matched`` / ``test_mismatched`` beside MNLI's two validations."""
        return tuple(split.replace("validation", "test", 1) for split in self.eval_splits)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """What ``eval.metric`` may name for this task: the metrics it reports, and ``loss``."""
        return (*METRIC_SETS[self.metric], *LOWER_IS_BETTER)

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1


GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("cola", ("sentence",), ("unacceptable", "acceptable"), "matthews", "matthews_correlation"),
        TaskSpec("sst2", ("sentence",), ("negative", "positive"), "accuracy", "accuracy"),
        TaskSpec(
            "mrpc",
            ("sentence1", "sentence2"),
            ("not_equivalent", "equivalent"),
            "accuracy_f1",
            "accuracy",
            order_free=True,
        ),
        TaskSpec(
            "qqp",
            ("question1", "question2"),
            ("not_duplicate", "duplicate"),
            "accuracy_f1",
            "accuracy",
            order_free=True,
        ),
        TaskSpec("stsb", ("sentence1", "sentence2"), (), "pearson_spearman", "pearson", order_free=True),
        TaskSpec(
            "mnli",
            ("premise", "hypothesis"),
            ("entailment", "neutral", "contradiction"),
            "accuracy",
            "accuracy",
            eval_splits=("validation_matched", "validation_mismatched"),
        ),
        TaskSpec("qnli", ("question", "sentence"), ("entailment", "not_entailment"), "accuracy", "accuracy"),
        TaskSpec("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment"), "accuracy", "accuracy"),
        TaskSpec("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment"), "accuracy", "accuracy"),
    ]
}


def check_eval_metric(metric: str | None, task_name: str, choices: tuple[str, ...]) -> None:
    """``eval.metric`` must be a metric the task reports (or ``loss``), so its direction and key are known."""
    if metric is None or metric in choices:
        return
    close = difflib.get_close_matches(metric, choices, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    kind = "custom data" if task_name == CUSTOM else f"task {task_name}"
    raise UserError(f"eval.metric: {metric!r} is not a metric of {kind} ({', '.join(choices)}){hint}")


def check_both_orders(task_name: str, columns, key: str = "eval.both_orders") -> None:
    """Both orders need a pair task whose order means nothing: MRPC, QQP, STS-B, or custom pairs (whose meaning
    only you know); the entailment tasks (RTE, MNLI, QNLI, WNLI) and single texts are refused."""
    columns = list(columns)
    if len(columns) != 2:
        raise UserError(f"{key}: needs a pair task (two text columns); {task_name} has {len(columns)}")
    if task_name != CUSTOM and not get_task(task_name).order_free:
        free = ", ".join(name for name, spec in GLUE_TASKS.items() if spec.order_free)
        raise UserError(
            f"{key}: the order of {task_name}'s texts ({' -> '.join(columns)}) carries meaning, so their swap is "
            f"another question; only for {free} or custom pairs"
        )


def eval_metric_choices(task_name: str) -> tuple[str, ...]:
    """Metrics ``eval.metric`` may name before the data is read: custom data may turn out classes or scores."""
    if task_name != CUSTOM:
        return get_task(task_name).metric_names
    sets = (*METRIC_SETS["accuracy_f1_macro"], *METRIC_SETS["pearson_spearman"], *LOWER_IS_BETTER)
    return tuple(dict.fromkeys(sets))


def get_task(name: str) -> TaskSpec:
    try:
        return GLUE_TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r} in data.task; known tasks: {', '.join(GLUE_TASKS)}") from None


def task_for(cfg, label_names: tuple[str, ...] | None = None) -> TaskSpec:
    """The task a recipe's ``data`` section describes, with its ``text_columns`` / ``label_column`` applied.

    For ``data.task=custom`` the label names come from ``label_names`` (found in the training file, or read
    back from a trained model's ``id2label``); ``()`` means a regression on float scores. Without them the
    spec is provisional (classification, no names yet): enough to find files, not to train.
    """
    if cfg.task == CUSTOM:
        if not cfg.text_columns:  # checked here, not in the recipe: overrides may set the task before the columns
            raise UserError(
                "data.text_columns: data.task=custom needs its text column(s), e.g. [text] or [question,answer]"
            )
        provisional = ("?",)  # one unnamed class: files can be found and `show` run before the labels are read
        return custom_task(
            tuple(cfg.text_columns), cfg.label_column, provisional if label_names is None else label_names
        )
    task = get_task(cfg.task)
    if cfg.text_columns:
        task = replace(task, text_columns=tuple(cfg.text_columns))
    return replace(task, label_column=cfg.label_column)


def custom_task(text_columns: tuple[str, ...], label_column: str, label_names: tuple[str, ...]) -> TaskSpec:
    """Your own data: accuracy and macro-F1 (every class counts the same) for classes, Pearson/Spearman for scores."""
    if not label_names:
        return TaskSpec(CUSTOM, text_columns, (), "pearson_spearman", "pearson", label_column=label_column)
    return TaskSpec(CUSTOM, text_columns, label_names, "accuracy_f1_macro", "accuracy", label_column=label_column)
