"""``compare`` and the TensorBoard curves it reads: runs and experiment folders side by side."""

from __future__ import annotations

import json

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.experiments.events import eval_curves
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.train import train_with_loop


@pytest.fixture(scope="module")
def experiment(tiny_model_dir, tiny_mrpc_dir, tmp_path_factory):
    """``exp/seed-1``, ``exp/seed-2`` (lr 1e-3) and ``other`` (lr 5e-4), with seed 1's evaluations as they
    happened during training."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared machine: see conftest.one_torch_thread
    root = tmp_path_factory.mktemp("compare")
    common = [f"model.name={tiny_model_dir}", f"data.dir={tiny_mrpc_dir}", "train.batch_size=8", "train.epochs=3"]
    common += ["train.logging_steps=2", "eval.batch_size=8"]
    seen = []
    for folder, extra in [("exp/seed-1", ["seed=1"]), ("exp/seed-2", ["seed=2"]), ("other", ["seed=1"])]:
        lr = "train.lr=5e-4" if folder == "other" else "train.lr=1e-3"
        recipe = load_recipe("mrpc_minilm", [*common, *extra, lr, f"output_dir={root / folder}"])
        report = (lambda metrics, step: seen.append((step, dict(metrics)))) if folder == "exp/seed-1" else None
        train_with_loop(recipe, on_evaluate=report)
    torch.set_num_threads(threads)
    (root / "exp" / "seed-3").mkdir()
    (root / "exp" / "seed-3" / "recipe.json").write_text((root / "exp" / "seed-1" / "recipe.json").read_text())
    return root, seen


def metrics_of(folder):
    return json.loads((folder / "metrics.json").read_text())


def test_curves_are_the_evaluations_during_training(experiment):
    root, seen = experiment
    x_label, curves = eval_curves(root / "exp" / "seed-1")
    assert x_label == "epoch" and [step for step, _ in seen] == [8, 16, 24]
    assert set(curves) == {"accuracy", "f1", "loss"}
    for name in curves:  # one point per epoch, the final re-evaluation of the best checkpoint left out
        assert [x for x, _ in curves[name]] == [1.0, 2.0, 3.0]
        assert [v for _, v in curves[name]] == pytest.approx([m[f"eval_{name}"] for _, m in seen], abs=1e-6)


def test_table_of_runs(capsys, experiment, tmp_path):
    root, _ = experiment
    plot = tmp_path / "compare.png"
    code = main(["compare", str(root / "exp" / "seed-1"), str(root / "other"), "--plot", str(plot)])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "| run | eval_accuracy | eval_f1 | eval_loss | minutes | peak MB | train.lr |"
    a, b = metrics_of(root / "exp" / "seed-1"), metrics_of(root / "other")
    assert lines[2].startswith(f"| {root / 'exp' / 'seed-1'} | {a['eval_accuracy']:.4f} | {a['eval_f1']:.4f} | ")
    assert lines[2].endswith(f"| {a['wall_seconds'] / 60:.2f} | {a['peak_memory_mb']:.0f} | 0.001 |")
    assert lines[3].startswith(f"| {root / 'other'} | {b['eval_accuracy']:.4f} |") and lines[3].endswith("| 0.0005 |")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_experiment_folder_expands_or_sums_up(capsys, experiment, tmp_path):
    root, _ = experiment
    code = main(["compare", str(root / "exp"), "--plot", str(tmp_path / "a.png")])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "| seed |" in out.splitlines()[0]  # the only recipe key that differs between the two seeds
    assert f"| {root / 'exp' / 'seed-2'} |" in out and "1 unfinished run(s) left out" in out

    code = main(["compare", str(root / "exp"), str(root / "other"), "--summary", "--plot", str(tmp_path / "b.png")])
    out, _ = capsys.readouterr()
    assert code == 0
    header, _, summed, single = out.splitlines()[:4]
    assert header.endswith("| train.lr | seed |")
    losses = [metrics_of(root / "exp" / f"seed-{s}")["eval_loss"] for s in (1, 2)]
    mean, std = sum(losses) / 2, abs(losses[0] - losses[1]) / 2**0.5
    assert f"| {mean:.4f} ± {std:.4f} (n=2) |" in summed and summed.endswith("| 0.001 | 1,2 |")
    assert single.endswith("| 0.0005 | 1 |")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "not a run directory or an experiment folder"),
        (lambda p: p.mkdir() or p, "no finished run below it"),
    ],
)
def test_compare_bad_paths(capsys, tmp_path, make, message):
    path = make(tmp_path / "nothing")
    code = main(["compare", str(path), "--plot", str(tmp_path / "c.png")])
    _, err = capsys.readouterr()
    assert code == 2 and message in err and err.count("\n") == 1


def test_the_plot_line_names_the_absolute_path_and_no_plot_writes_none(capsys, experiment, tmp_path, monkeypatch):
    root, _ = experiment
    monkeypatch.chdir(tmp_path)  # the default compare.png lands here
    assert main(["compare", str(root / "other")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == f"plot: {tmp_path / 'compare.png'}"
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    (tmp_path / "compare.png").unlink()
    assert main(["compare", str(root / "other"), "--no-plot"]) == 0
    out, err = capsys.readouterr()
    assert "plot:" not in out and out.splitlines()[-1].startswith(f"| {root / 'other'} |")
    assert list(tmp_path.iterdir()) == []


def test_an_ensemble_folder_is_one_row_of_its_own_scores(capsys, experiment, tmp_path):
    """Beside its seeds' mean: the ensemble's own metrics.json, its members' minutes summed, their seeds."""
    from mrpc_finetune.experiments.ensemble import build_ensemble

    root, _ = experiment
    members = [root / "exp" / "seed-1", root / "exp" / "seed-2"]
    build_ensemble(members, tmp_path / "ens")
    capsys.readouterr()
    argv = ["compare", str(root / "exp"), str(tmp_path / "ens"), str(root / "other"), "--summary"]
    code = main([*argv, "--plot", str(tmp_path / "e.png")])
    out, err = capsys.readouterr()
    assert code == 0, err
    header, _, summed, ensemble, _ = out.splitlines()[:5]
    columns = [c.strip() for c in header.strip("|").split("|")]
    cells = dict(zip(columns, [c.strip() for c in ensemble.strip("|").split("|")], strict=True))
    assert cells["run"] == f"{tmp_path / 'ens'} (ensemble of 2)"
    own = metrics_of(tmp_path / "ens")
    assert cells["eval_accuracy"] == f"{own['eval_accuracy']:.4f}" and cells["eval_loss"] == f"{own['eval_loss']:.4f}"
    minutes = sum(metrics_of(m)["wall_seconds"] for m in members) / 60
    assert cells["minutes"] == f"{minutes:.2f} (members)" and cells["peak MB"] == "-"
    assert cells["seed"] == "1,2" and cells["train.lr"] == "0.001"  # the members' recipes, as the summary row's
    assert (tmp_path / "e.png").is_file()

    from mrpc_finetune.run.ensemble_dir import EnsembleDir

    EnsembleDir(tmp_path / "ens").write([members[0], tmp_path / "moved-away"], both_orders=False)
    code = main(["compare", str(tmp_path / "ens"), "--plot", str(tmp_path / "f.png")])
    _, err = capsys.readouterr()
    assert code == 2 and f"its member {tmp_path / 'moved-away'} is not there" in err and err.count("\n") == 1
