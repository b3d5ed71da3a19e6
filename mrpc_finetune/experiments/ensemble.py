"""``ensemble``: finished runs of one task (the seeds of a ``repeat``, say) scored as one model, their class
probabilities (regression: their scores) averaged with equal weights.

mrpc-finetune ensemble runs/mrpc_minilm-seeds/seed-* --output-dir runs/mrpc_minilm-ensemble
mrpc-finetune repeat mrpc_minilm --seeds 5 --ensemble data.dir=DIR     # the same over the finished seeds: OUT/ensemble
mrpc-finetune eval runs/mrpc_minilm-ensemble  /  mrpc-finetune predict runs/mrpc_minilm-ensemble --file rows.csv

ENS (``run/ensemble_dir.py``): ``ensemble.json`` (the members), ``metrics.json`` (scored on the dev split(s) and any
labelled test split like a run, the same keys, plus the members) and ``README.md`` (its card). The members must
share task, data, labels and tokenizer. Both sentence orders (``eval.both_orders``) are combined when every member
recorded them, or as ``--both-orders`` / ``--no-both-orders`` say.
"""

from __future__ import annotations

from pathlib import Path

from mrpc_finetune.errors import UserError
from mrpc_finetune.experiments.folders import read_metrics
from mrpc_finetune.experiments.stats import is_number, is_score
from mrpc_finetune.inference.evaluation import described, score_data
from mrpc_finetune.inference.scorer import scorer_of
from mrpc_finetune.run import rundir
from mrpc_finetune.run.ensemble_card import write_ensemble_card
from mrpc_finetune.run.ensemble_dir import check_can_write, is_ensemble

STALE_OUTPUTS = ("eval_*.json", "predictions_*.tsv")
"""What ``eval`` and ``predict`` wrote into an ensemble folder: removed when the ensemble is rebuilt there."""


def build_ensemble(paths: list[Path], out: Path, both_orders: bool | None = None) -> dict:
    """Check the members, score the ensemble on its data, then write ``out``; returns its metrics."""
    ens = check_can_write(out)
    members = [_finished_run(Path(path)) for path in paths]
    chosen = _both_orders(members, both_orders)
    scorer = scorer_of(out, members, chosen, ensemble=True)  # task, data, labels, tokenizer agree, or one line
    print(f"ensemble of {len(members)} runs: {scorer.passes_per_row} forward passes per row -> {out}", flush=True)
    metrics = score_data(scorer)
    metrics.update(described(scorer))
    metrics.update({"ensemble_size": len(members), "passes_per_row": scorer.passes_per_row})
    out.mkdir(parents=True, exist_ok=True)
    for pattern in STALE_OUTPUTS:
        for stale in out.glob(pattern):
            stale.unlink()
    ens.write([run.root for run, _ in members], chosen)
    rundir.atomic_write_json(ens.metrics_file, metrics)
    own = [(run.root.resolve(), recipe, read_metrics(run.root) or {}) for run, recipe in members]
    write_ensemble_card(ens, task=scorer.task, members=own, both_orders=chosen, metrics=metrics)
    shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if is_score(k) and is_number(v) and "loss" not in k)
    print(f"done: {shown}\n  ensemble:    {out}\n  metrics:     {ens.metrics_file}\n  card:        {ens.card_file}")
    return metrics


def _finished_run(path: Path) -> tuple[rundir.RunDir, object]:
    """A member: a finished run folder (its recipe, final model and metrics.json)."""
    if is_ensemble(path):
        raise UserError(f"ensemble member {path}: an ensemble folder itself; list its runs instead")
    run, recipe = rundir.open_run(path)
    if not run.metrics_file.is_file():
        raise UserError(f"ensemble member {path}: the run has not finished (no metrics.json); finish or resume it")
    return run, recipe


def _both_orders(members: list, asked: bool | None) -> bool:
    """``--both-orders`` / ``--no-both-orders`` when given, else what every member recorded (``eval.both_orders``)."""
    if asked is not None:
        return asked
    recorded = {recipe.eval.both_orders: run.root for run, recipe in members}
    if len(recorded) > 1:
        raise UserError(
            f"ensemble: {recorded[True]} recorded eval.both_orders=true, {recorded[False]} false; choose with "
            f"--both-orders or --no-both-orders"
        )
    return next(iter(recorded))
