"""The full `mrpc_minilm` recipe on the real MRPC data, as a user runs it (`make test-all`: 5-8 minutes alone
on 2 cores). Over seeds 1-5 the recipe scored dev accuracy 0.792-0.821 and F1 0.853-0.873, and this run's seed,
the recipe's 42, scores 0.784 / 0.854 on the CPU (docs/benchmarks.md); the floors sit under all of them, to leave
room for other hardware, not for a broken pipeline (a constant answer scores 0.684 / 0.812)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO, real_mrpc_folder

ACCURACY_FLOOR = 0.78
F1_FLOOR = 0.84


@pytest.mark.slow
def test_mrpc_minilm_recipe_reaches_its_accuracy(shared_mrpc, tmp_path):
    run = tmp_path / "mrpc_minilm"
    done = subprocess.run(
        [sys.executable, "-m", "mrpc_finetune", "train", "mrpc_minilm", f"data.dir={shared_mrpc}", f"output_dir={run}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["eval_rows"] == 408  # every validation pair, once
    assert metrics["eval_accuracy"] >= ACCURACY_FLOOR, metrics
    assert metrics["eval_f1"] >= F1_FLOOR, metrics


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_real_data_fails_on_ci_and_skips_elsewhere(ci, outcome, tmp_path, monkeypatch):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="real MRPC not found"):
        real_mrpc_folder(tmp_path / "no-mrpc-here")
    (tmp_path / "mrpc").mkdir()
    (tmp_path / "mrpc" / "train.jsonl").write_text("{}\n")
    assert real_mrpc_folder(tmp_path / "mrpc") == tmp_path / "mrpc"
