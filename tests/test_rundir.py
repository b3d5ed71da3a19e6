"""``runs.summary``: what a finished run prints names only what the run has."""

from __future__ import annotations

import json

from mrpc_finetune.run import rundir

METRICS = {"eval_accuracy": 0.75, "eval_f1": 0.8, "eval_loss": 0.5, "global_step": 6, "stopped_early": False}


def test_summary_names_the_trackers_the_run_used(tmp_path):
    run = rundir.RunDir(tmp_path / "run")
    run.root.mkdir()
    printed = rundir.summary(run, METRICS)
    assert printed.splitlines()[0] == "done: eval_accuracy=0.7500  eval_f1=0.8000"
    assert "tensorboard" not in printed and "mlflow" not in printed and "stopped early" not in printed

    run.tensorboard.mkdir()
    state = {"mlflow": {"run_id": "abc123", "tracking_uri": "sqlite:////x/mlflow.db"}, "wandb": {"run_id": "w1"}}
    (run.root / "trackers.json").write_text(json.dumps(state))
    lines = rundir.summary(run, {**METRICS, "stopped_early": True, "test_accuracy": 0.7}).splitlines()
    assert "  held out:    test_accuracy=0.7000  (not used for selection)" in lines
    assert "  stopped early at step 6: eval.patience evaluations without a gain" in lines
    assert f"  tensorboard: tensorboard --logdir {run.tensorboard}  (or `make tensorboard`)" in lines
    assert "  mlflow:      run abc123 in sqlite:////x/mlflow.db" in lines and "  wandb:       run w1" in lines
