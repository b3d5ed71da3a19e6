"""Predict with a finished run or an ensemble: a label and its probabilities per row of a file, or for texts given
directly; in both sentence orders, averaged, where the run or ensemble recorded it (or ``both_orders=True``).

mrpc-finetune predict runs/mrpc_minilm --file new_pairs.tsv [--out predictions.tsv] [--both-orders | --no-both-orders]
mrpc-finetune predict runs/mrpc_minilm "The cat sat on the mat." "A cat was sitting on the mat."
"""

from __future__ import annotations

from pathlib import Path

from mrpc_finetune.data import checks as data_checks
from mrpc_finetune.data import loading
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference.scorer import open_scorer, probabilities
from mrpc_finetune.run import rundir


def predict_texts(run_dir: str | Path, texts: list[str], both_orders: bool | None = None) -> dict:
    """One prediction for one text (or pair): ``{"label", "probability", "probabilities"}`` or ``{"score"}``."""
    import datasets

    scorer = open_scorer(run_dir, both_orders)
    task = scorer.task
    if len(texts) != len(task.text_columns):
        raise UserError(
            f"predict: {scorer.root} takes {len(task.text_columns)} text(s) ({' and '.join(task.text_columns)}), "
            f"got {len(texts)}; quote each one, or use --file"
        )
    raw = datasets.Dataset.from_dict({column: [text] for column, text in zip(task.text_columns, texts, strict=True)})
    data_checks.check_split(raw, task, "predict", labelled=False)
    scores = probabilities(scorer, raw).chosen
    if task.is_regression:
        return {"score": float(scores[0])}
    row = scores[0]
    best = int(row.argmax())
    return {
        "label": task.label_names[best],
        "probability": float(row[best]),
        "probabilities": {name: float(p) for name, p in zip(task.label_names, row, strict=True)},
    }


def predict_file(
    run_dir: str | Path, file: str | Path, out: str | Path | None = None, both_orders: bool | None = None
) -> tuple[Path, int]:
    """Write ``index<TAB>prediction[<TAB>prob_<label> ...]`` per row of ``file``, in its order; returns (path, rows).

    ``index`` is the file's ``idx`` column when it has one (GLUE test files), else the row number from 0:
    the GLUE submission layout. A label column, if present, is ignored.
    """
    scorer = open_scorer(run_dir, both_orders)
    task = scorer.task
    path = Path(file)
    raw = loading.load_split_file(path)
    data_checks.check_split(raw, task, str(path), labelled=False)
    scores = probabilities(scorer, raw).chosen
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
    destination = Path(out) if out else scorer.root / f"predictions_{path.stem}.tsv"
    rundir.atomic_write_text(destination, "\n".join(["\t".join(header), *lines]) + "\n")
    return destination, len(lines)
