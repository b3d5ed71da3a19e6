"""Predict with a finished run: a label and its probabilities per row of a file, or for texts given directly.

mrpc-finetune predict runs/mrpc_minilm --file new_pairs.tsv [--out predictions.tsv]
mrpc-finetune predict runs/mrpc_minilm "The cat sat on the mat." "A cat was sitting on the mat."
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrpc_finetune.data import batching, loading
from mrpc_finetune.data import checks as data_checks
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference.evaluation import load_run_model, run_task
from mrpc_finetune.inference.logits import predict_logits
from mrpc_finetune.run import rundir


def _scores(raw, run, recipe, task) -> np.ndarray:
    """Class probabilities (rows x labels), or the regression scores (rows), in the input's row order."""
    tokenizer, model = load_run_model(run)
    texts_only = raw.select_columns(list(task.text_columns))  # a label column, if any, plays no part
    tokenized = loading.tokenize_split(texts_only, tokenizer, task, recipe.data)
    # predict_logits sorts the rows by length into batches (little padding) and returns them in input order.
    logits = predict_logits(model, tokenized, batching.make_collator(tokenizer), recipe.eval.batch_size)
    if task.is_regression:
        return logits[:, 0]
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def predict_texts(run_dir: str | Path, texts: list[str]) -> dict:
    """One prediction for one text (or pair): ``{"label", "probability", "probabilities"}`` or ``{"score"}``."""
    import datasets

    run, recipe = rundir.open_run(run_dir)
    task = run_task(run, recipe)
    if len(texts) != len(task.text_columns):
        raise UserError(
            f"predict: {run.root} takes {len(task.text_columns)} text(s) ({' and '.join(task.text_columns)}), "
            f"got {len(texts)}; quote each one, or use --file"
        )
    raw = datasets.Dataset.from_dict({column: [text] for column, text in zip(task.text_columns, texts, strict=True)})
    data_checks.check_split(raw, task, "predict", labelled=False)
    scores = _scores(raw, run, recipe, task)
    if task.is_regression:
        return {"score": float(scores[0])}
    probabilities = scores[0]
    best = int(probabilities.argmax())
    return {
        "label": task.label_names[best],
        "probability": float(probabilities[best]),
        "probabilities": {name: float(p) for name, p in zip(task.label_names, probabilities, strict=True)},
    }


def predict_file(run_dir: str | Path, file: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write ``index<TAB>prediction[<TAB>prob_<label> ...]`` per row of ``file``, in its order; returns (path, rows).

    ``index`` is the file's ``idx`` column when it has one (GLUE test files), else the row number from 0:
    the GLUE submission layout. A label column, if present, is ignored.
    """
    run, recipe = rundir.open_run(run_dir)
    task = run_task(run, recipe)
    path = Path(file)
    raw = loading.load_split_file(path)
    data_checks.check_split(raw, task, str(path), labelled=False)
    scores = _scores(raw, run, recipe, task)
    index = raw["idx"] if "idx" in raw.column_names else list(range(raw.num_rows))
    if task.is_regression:
        header = ["index", "prediction"]
        lines = [f"{i}\t{score:.6f}" for i, score in zip(index, scores, strict=True)]
    else:
        header = ["index", "prediction", *(f"prob_{name}" for name in task.label_names)]
        lines = [
            "\t".join([str(i), task.label_names[int(p.argmax())], *(f"{x:.6f}" for x in p)])
            for i, p in zip(index, scores, strict=True)
        ]
    destination = Path(out) if out else run.root / f"predictions_{path.stem}.tsv"
    rundir.atomic_write_text(destination, "\n".join(["\t".join(header), *lines]) + "\n")
    return destination, len(lines)
