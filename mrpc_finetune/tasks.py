"""What each task is: its text columns, label names, metrics and evaluation splits.

The GLUE entries follow the Hub's ``nyu-mll/glue`` schema, so local files in that schema work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError


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
        TaskSpec("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), "accuracy_f1", "accuracy"),
        TaskSpec("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), "accuracy_f1", "accuracy"),
        TaskSpec("stsb", ("sentence1", "sentence2"), (), "pearson_spearman", "pearson"),
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


def get_task(name: str) -> TaskSpec:
    try:
        return GLUE_TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r} in data.task; known tasks: {', '.join(GLUE_TASKS)}") from None
