"""Evaluate a finished run's model on a split of its data or on a labelled file.

mrpc-finetune eval runs/mrpc_minilm [--split validation] [--file my_labelled.csv]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrpc_finetune import mean_pooling
from mrpc_finetune.data import batching, loading
from mrpc_finetune.data import checks as data_checks
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference.logits import predict_logits
from mrpc_finetune.metrics import load_metric, loss_from_logits, predictions_from_logits
from mrpc_finetune.recipe.tasks import CUSTOM, TaskSpec, task_for
from mrpc_finetune.run import rundir


def load_run_model(run: rundir.RunDir):
    """Tokenizer and model of a finished run, from safetensors, never running remote code (a mean-pooled model
    is built by this package's own class, not by the copy of its code in the folder)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    mean_pooling.register_auto_classes()
    tokenizer = AutoTokenizer.from_pretrained(run.model, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(run.model, use_safetensors=True, trust_remote_code=False)
    return tokenizer, model


def run_task(run: rundir.RunDir, recipe) -> TaskSpec:
    """The task a run trained on: its recipe's columns and, for custom data, the label names its model's config
    keeps (``id2label``; regression for one float output). Reads the config only, so that the files given to
    eval or predict are checked before the weights load."""
    if recipe.data.task != CUSTOM:
        return task_for(recipe.data)
    from transformers import AutoConfig

    mean_pooling.register_auto_classes()
    config = AutoConfig.from_pretrained(run.model, trust_remote_code=False)
    if config.problem_type == "regression":
        return task_for(recipe.data, ())
    return task_for(recipe.data, tuple(config.id2label[i] for i in range(config.num_labels)))


def evaluate_run(run_dir: str | Path, split: str | None = None, file: str | None = None) -> dict:
    """Metrics (and, for classification, the confusion matrix) of the run's final model; also written to RUN."""
    run, recipe = rundir.open_run(run_dir)
    task = run_task(run, recipe)
    if file:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"--file {path}: no such file")
        raw = loading.load_split_file(path)
        data_checks.check_split(raw, task, str(path), labelled=True)
        name = path.stem
    else:
        name = split or task.eval_splits[0]
        splits = loading.load_raw_splits(recipe.data, task)
        if name not in splits:
            raise UserError(f"--split {name}: not in the run's data (splits: {', '.join(splits)})")
        raw = splits[name]  # checked on loading, labels included where the split has them
    if not data_checks.is_labelled(raw, task, name):
        raise UserError(f"{name}: has no labels to evaluate against; use `mrpc-finetune predict` instead")
    tokenizer, model = load_run_model(run)
    tokenized = loading.tokenize_split(raw, tokenizer, task, recipe.data)
    logits = predict_logits(model, tokenized, batching.make_collator(tokenizer), recipe.eval.batch_size)
    predictions = predictions_from_logits(logits, task)
    references = tokenized["labels"]
    scores = load_metric(task).compute(predictions=predictions, references=references)
    metrics = {"eval_loss": loss_from_logits(logits, np.asarray(references), task)}
    metrics.update({f"eval_{k}": v for k, v in scores.items()})
    metrics["eval_rows"] = len(references)
    if not task.is_regression:
        from sklearn.metrics import confusion_matrix

        matrix = confusion_matrix(references, predictions, labels=list(range(task.num_labels)))
        metrics["confusion_matrix"] = {"labels": list(task.label_names), "rows_true_columns_predicted": matrix.tolist()}
    rundir.atomic_write_json(run.root / f"eval_{name}.json", metrics)
    return metrics
