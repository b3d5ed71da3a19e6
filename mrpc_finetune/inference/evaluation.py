"""Evaluate a finished run's model, or an ensemble's members, on a split of its data or on a labelled file.

mrpc-finetune eval runs/mrpc_minilm [--split validation] [--file my_labelled.csv] [--both-orders | --no-both-orders]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrpc_finetune.data import checks as data_checks
from mrpc_finetune.data import loading
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference import averaging
from mrpc_finetune.inference.scorer import Scorer, open_scorer, probabilities
from mrpc_finetune.metrics import both_orders_prefix, split_prefixes
from mrpc_finetune.run import rundir


def evaluate_run(
    run_dir: str | Path, split: str | None = None, file: str | None = None, both_orders: bool | None = None
) -> dict:
    """Metrics (and, for classification, the confusion matrix) of the run's final model, or of an ensemble;
    also written to the folder as ``eval_<split>.json``. With both orders (recorded, or ``both_orders=True``) the
    ``eval_both_orders_*`` scores join the one-order ``eval_*`` ones."""
    scorer = open_scorer(run_dir, both_orders)
    task = scorer.task
    if file:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"--file {path}: no such file")
        raw = loading.load_split_file(path)
        data_checks.check_split(raw, task, str(path), labelled=True)
        name = path.stem
    else:
        name = split or task.eval_splits[0]
        splits = loading.load_raw_splits(scorer.recipe.data, task)
        if name not in splits:
            raise UserError(f"--split {name}: not in the run's data (splits: {', '.join(splits)})")
        raw = splits[name]  # checked on loading, labels included where the split has them
    if not data_checks.is_labelled(raw, task, name):
        raise UserError(f"{name}: has no labels to evaluate against; use `mrpc-finetune predict` instead")
    metrics, found = score_split(scorer, raw, "eval")
    if not task.is_regression:
        references = labels_of(raw, task)
        for key, chosen in (("confusion_matrix", found.one_order), ("both_orders_confusion_matrix", found.both_orders)):
            if chosen is not None:
                metrics[key] = confusion(references, averaging.predicted_ids(chosen), task)
    metrics.update(described(scorer))
    rundir.atomic_write_json(scorer.root / f"eval_{name}.json", metrics)
    return metrics


def score_split(scorer: Scorer, raw, prefix: str):
    """``<prefix>_<metric>``, ``<prefix>_rows`` and, in both orders, ``<prefix>_both_orders_<metric>`` of a
    labelled split; and the probabilities behind them."""
    references = labels_of(raw, scorer.task)
    found = probabilities(scorer, raw)
    metrics = averaging.scores(found.one_order, references, scorer.task, prefix)
    metrics[f"{prefix}_rows"] = len(references)
    if found.both_orders is not None:
        metrics.update(averaging.scores(found.both_orders, references, scorer.task, both_orders_prefix(prefix)))
    return metrics, found


def score_data(scorer: Scorer) -> dict:
    """The scorer on its data as a run's end of training scores it: the dev split(s), then each labelled test split,
    keyed as in a run's ``metrics.json`` (``eval_*``, ``eval_<split>_*`` beside a second dev split, ``test_*``)."""
    task = scorer.task
    splits = loading.load_raw_splits(scorer.recipe.data, task)
    dev = [name for name in task.eval_splits if name in splits]
    if not dev:
        raise UserError(f"data: no {task.eval_splits[0]} split to evaluate on (splits: {', '.join(splits)})")
    tests = [name for name in task.test_splits if name in splits and data_checks.is_labelled(splits[name], task, name)]
    metrics = {}
    for names, test in ((dev, False), (tests, True)):
        for name, prefix in split_prefixes(names, test).items():
            metrics.update(score_split(scorer, splits[name], prefix)[0])
    return metrics


def described(scorer: Scorer) -> dict:
    """What the scores were computed with: one order or both, and an ensemble's members."""
    about = {"both_orders": scorer.both_orders}
    if scorer.ensemble:
        about["members"] = [str(run.root) for run, _ in scorer.members]
    return about


def labels_of(raw, task) -> np.ndarray:
    """The label ids (regression: the scores) of a labelled split, as training encodes them."""
    return np.asarray([data_checks.encode_label(value, task) for value in raw[task.label_column]])


def confusion(references: np.ndarray, predictions: np.ndarray, task) -> dict:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(references, predictions, labels=list(range(task.num_labels)))
    return {"labels": list(task.label_names), "rows_true_columns_predicted": matrix.tolist()}
