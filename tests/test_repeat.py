"""``repeat``: seeds as child processes under one folder, the summary's numbers, skip and resume after a kill."""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import pytest

from mrpc_finetune.cli import main

from .conftest import mrpc_rows, write_jsonl
from .kill_checks import kill_after_checkpoint, run_again


@pytest.fixture
def with_test_split(tiny_mrpc_dir, tmp_path, overrides):
    """The tiny overrides on a copy of the tiny MRPC folder that also holds a labelled test.jsonl."""
    folder = tmp_path / "mrpc-with-test"
    shutil.copytree(tiny_mrpc_dir, folder)
    write_jsonl(folder / "test.jsonl", mrpc_rows(16, seed=3))
    return [item for item in overrides if not item.startswith("data.dir=")] + [f"data.dir={folder}"]


@pytest.mark.slow  # end-to-end repeat: child training processes
def test_repeat_summary_is_the_runs_aggregated(capsys, tmp_path, with_test_split):
    overrides = with_test_split
    out = tmp_path / "seeds"
    code = main(["repeat", "mrpc_minilm", "--seeds", "2", "--jobs", "2", "--output-dir", str(out), *overrides])
    printed, err = capsys.readouterr()
    assert code == 0, err
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    assert "seeds 1, 2" in printed and f"2 to train, 2 at a time, {threads} thread(s) each" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1, 2] and summary["recipe"] == "mrpc_minilm" and summary["overrides"] == overrides
    runs = {
        run["seed"]: json.loads((out / f"seed-{run['seed']}" / "metrics.json").read_text()) for run in summary["runs"]
    }
    assert sorted(runs) == [1, 2]
    for seed in (1, 2):
        recorded = json.loads((out / f"seed-{seed}" / "recipe.json").read_text())
        assert recorded["seed"] == seed and recorded["train"]["lr"] == 1e-3
        assert (out / "logs" / f"seed-{seed}.log").is_file()
    for key in ("eval_accuracy", "eval_f1", "eval_loss", "test_accuracy", "test_f1", "test_loss"):
        a, b = runs[1][key], runs[2][key]  # the labelled test split is scored in every run and summarised
        stats = summary["metrics"][key]
        assert stats["n"] == 2
        assert stats["mean"] == pytest.approx((a + b) / 2)
        assert stats["std"] == pytest.approx(abs(a - b) / math.sqrt(2))  # sample std of two values
        assert stats["median"] == pytest.approx((a + b) / 2)
        assert (stats["min"], stats["max"]) == (min(a, b), max(a, b))
    assert summary["selection"]["checkpoint_chosen_on"] == "validation"
    assert (
        summary["selection"]["metric"] == "eval_accuracy" and summary["selection"]["test_used_for_any_choice"] is False
    )
    assert "sample standard deviation" in summary["std"]
    table = (out / "summary.md").read_text()
    assert f"| eval_loss | 2 | {summary['metrics']['eval_loss']['mean']:.4f} |" in table
    assert f"| test_f1 | 2 | {summary['metrics']['test_f1']['mean']:.4f} |" in table
    assert runs[1]["test_rows"] == 16
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "seed-1" / "model" / "README.md").read_text()  # each model card holds the spread over the seeds
    assert "1, 2" in card and f"{summary['metrics']['eval_accuracy']['mean']:.4f}" in card

    stamps = {seed: (out / f"seed-{seed}" / "metrics.json").stat().st_mtime_ns for seed in (1, 2)}
    code = main(["repeat", "mrpc_minilm", "--seed-list", "1,2", "--output-dir", str(out), "--ensemble", *overrides])
    printed, _ = capsys.readouterr()
    assert code == 0 and "seed 1: finished before" in printed and "seed 2: finished before" in printed
    assert stamps == {seed: (out / f"seed-{seed}" / "metrics.json").stat().st_mtime_ns for seed in (1, 2)}
    ensemble = json.loads((out / "ensemble" / "metrics.json").read_text())  # --ensemble: the finished seeds as one
    assert ensemble["members"] == [str((out / f"seed-{seed}").resolve()) for seed in (1, 2)]
    assert {"eval_accuracy", "test_f1"} <= set(ensemble) and "ensemble of 2 runs" in printed

    code = main(["repeat", "mrpc_minilm", "--seeds", "2", "--output-dir", str(out), *overrides, "train.lr=5e-4"])
    _, err = capsys.readouterr()
    assert code == 2 and "seed-1 was trained with train.lr=0.001, this command asks for train.lr=0.0005" in err


@pytest.mark.slow  # end-to-end repeat: child training processes
def test_repeat_resumes_after_sigkill(tmp_path, overrides):
    """Kill the command (SIGKILL) while seed 2 trains: the rerun keeps seed 1 and resumes seed 2."""
    out = tmp_path / "seeds"
    argv = ["repeat", "mrpc_minilm", "--seeds", "2", "--threads", "1", "--output-dir", str(out)]
    argv += [*overrides, "train.epochs=6"]  # 48 steps, a checkpoint per epoch: time to kill mid-run
    kill_after_checkpoint(argv, out / "seed-2")
    time.sleep(3)  # the orphaned child, if any, would finish seed 2 in this time
    assert (out / "seed-1" / "metrics.json").is_file()
    assert not (out / "seed-2" / "metrics.json").exists(), "the child outlived the killed command"
    first_stamp = (out / "seed-1" / "metrics.json").stat().st_mtime_ns

    rerun = run_again(argv)
    assert "seed 1: finished before" in rerun.stdout and "seed 2: resuming" in rerun.stdout
    assert (out / "seed-1" / "metrics.json").stat().st_mtime_ns == first_stamp
    assert "resuming from" in (out / "logs" / "seed-2.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished_seeds"] == [1, 2] and summary["metrics"]["eval_accuracy"]["n"] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0"], "error: --seeds 0: must be at least 1"),
        (["--seeds", "2", "train.lrr=1"], "error: unknown recipe key 'train.lrr'; did you mean train.lr?"),
        (["--seeds", "2", "seed=4"], "error: repeat: seed= is set by the command"),
        (["--seeds", "2", "--jobs", "0"], "error: --jobs 0: must be at least 1"),
        (["--seeds", "2", "--threads", "0"], "error: --threads 0: must be at least 1"),
    ],
)
def test_repeat_bad_input_is_one_line_before_anything(capsys, tmp_path, overrides, argv, message):
    out = tmp_path / "seeds"
    code = main(["repeat", "mrpc_minilm", "--output-dir", str(out), *argv, *overrides])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith(message) and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow  # end-to-end repeat: child training processes
def test_repeat_learns_the_task_without_tokenizing(capsys, tmp_path, overrides, monkeypatch):
    """The seeds tokenize in their own processes; the command itself only checks inputs and reads the task."""
    from mrpc_finetune.data import tokenization

    def refuse(*args, **kwargs):
        raise AssertionError("repeat tokenized the data itself")

    monkeypatch.setattr(tokenization, "tokenize_splits", refuse)
    out = tmp_path / "seeds"
    code = main(["repeat", "mrpc_minilm", "--seeds", "1", "--output-dir", str(out), *overrides, "train.max_steps=2"])
    _, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"]["checkpoint_chosen_on"] == "validation" and [r["seed"] for r in summary["runs"]] == [1]


@pytest.mark.slow  # end-to-end repeat: a child training process
def test_repeat_of_runs_scored_at_their_last_step_says_no_checkpoint_was_chosen(capsys, tmp_path, overrides):
    """eval.strategy=no (the GLUE recipes): the summary must not claim that validation picked a checkpoint."""
    out = tmp_path / "seeds"
    argv = ["repeat", "mrpc_minilm", "--seeds", "1", "--output-dir", str(out), *overrides, "train.max_steps=2"]
    code = main([*argv, "eval.strategy=no"])
    _, err = capsys.readouterr()
    assert code == 0, err
    selection = json.loads((out / "summary.json").read_text())["selection"]
    assert selection["checkpoint_chosen_on"] is None and selection["test_used_for_any_choice"] is False
    assert "last step's model" in selection["note"] and "best" not in selection["note"]
    assert selection["note"] in (out / "summary.md").read_text()
