"""``search``: Optuna over a recipe; a pruned trial, resume after SIGKILL, the best point as a recipe, bad input."""

from __future__ import annotations

import json
import time

import optuna
import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.run.rundir import RunDir

from .conftest import REPO
from .kill_checks import kill_after_checkpoint, run_again

MINILM = str(REPO / "recipes" / "mrpc_minilm.py")


@pytest.fixture
def lr_space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.lr: loguniform 1e-4 0.2\n")
    return str(path)


@pytest.mark.slow  # end-to-end search: several trainings
def test_pruned_trial_and_best_recipe(capsys, tmp_path, monkeypatch, overrides, lr_space):
    """Two good trials first; the third (lr 0.1: the loss jumps) is worse than their median after one epoch."""
    out = tmp_path / "search"
    out.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="mrpc_minilm", direction="minimize")
    for lr in (1e-3, 1e-3, 0.1):
        study.enqueue_trial({"train.lr": lr})
    monkeypatch.setenv("MRPC_FINETUNE_RECIPES", str(tmp_path / "recipes"))
    argv = ["search", MINILM, "--trials", "3", "--space", lr_space, "--output-dir", str(out), "--prune-after", "2"]
    code = main([*argv, "--write-recipe", "tiny_tuned", *overrides, "eval.metric=loss"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads((out / "search.json").read_text())
    assert [t["state"] for t in result["trials"]] == ["complete", "complete", "pruned"]
    assert result["direction"] == "minimize" and result["metric"] == "eval_loss"
    pruned = result["trials"][2]
    assert pruned["pruned_at"]["step"] == 8  # the first epoch's evaluation: 64 rows / batch 8
    first_epoch = [json.loads((out / f"trial-{n}" / "seed-1" / "metrics.json").read_text()) for n in (0, 1)]
    assert pruned["pruned_at"]["value"] > max(m["eval_loss"] for m in first_epoch)
    assert not (out / "trial-2" / "seed-1" / "metrics.json").exists()
    assert not (out / "trial-2" / "seed-1" / "checkpoints").exists()
    assert not (out / "trial-0" / "seed-1" / "checkpoints").exists() and (out / "trial-0" / "seed-1" / "model").is_dir()
    best = result["best"]
    assert best["trial"] in (0, 1) and best["params"] == {"train.lr": 1e-3}
    assert best["value"] == pytest.approx(min(m["eval_loss"] for m in first_epoch))
    assert (out / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    assert "trial 2: pruned at step 8" in printed
    written = load_recipe("tiny_tuned")
    assert written.train.lr == 1e-3 and written.eval.metric == "loss" and written.model.name == overrides[0][11:]

    code = main([*argv, *overrides, "eval.metric=loss"])  # all trials done: nothing more to train
    printed, _ = capsys.readouterr()
    assert code == 0 and "trial " not in printed.replace("best: trial", "")
    assert len(json.loads((out / "search.json").read_text())["trials"]) == 3


@pytest.mark.slow  # end-to-end search: several trainings
def test_search_resumes_after_sigkill(tmp_path, overrides, lr_space):
    """Kill the search while trial 1 trains: the rerun fails it (its heartbeat stopped), retries its point and
    resumes its run from the checkpoint; trial 0 is not trained again."""
    out = tmp_path / "search"
    argv = ["search", "mrpc_minilm", "--trials", "2", "--space", lr_space, "--output-dir", str(out), "--heartbeat", "1"]
    argv += ["--no-prune", *overrides, "train.epochs=6"]
    second = RunDir(out / "trial-1" / "seed-1")
    killed_at = kill_after_checkpoint(argv, second.root)
    first_stamp = (out / "trial-0" / "seed-1" / "metrics.json").stat().st_mtime_ns
    assert not second.metrics_file.exists()
    time.sleep(max(0.0, killed_at + 3.5 - time.time()))  # past the grace period of 3 heartbeats

    rerun = run_again(argv)
    result = json.loads((out / "search.json").read_text())
    states = {t["number"]: t["state"] for t in result["trials"]}
    assert states == {0: "complete", 1: "fail", 2: "complete"}
    retry = result["trials"][2]
    assert retry["retry_of"] == 1 and retry["dir"] == str(out / "trial-1")
    assert retry["params"] == result["trials"][1]["params"]
    assert "resuming from" in rerun.stderr + rerun.stdout
    assert (out / "trial-0" / "seed-1" / "metrics.json").stat().st_mtime_ns == first_stamp
    assert second.metrics_file.is_file() and not (out / "trial-2").exists()


@pytest.mark.slow  # end-to-end search: several trainings
def test_seeds_average_into_the_objective(capsys, tmp_path, overrides, lr_space):
    out = tmp_path / "search"
    argv = ["search", "mrpc_minilm", "--trials", "1", "--seeds", "2", "--space", lr_space, "--output-dir", str(out)]
    code = main([*argv, *overrides, "train.epochs=1"])
    assert code == 0, capsys.readouterr().err
    (trial,) = json.loads((out / "search.json").read_text())["trials"]
    scores = [json.loads((out / "trial-0" / f"seed-{s}" / "metrics.json").read_text())["eval_accuracy"] for s in (1, 2)]
    assert trial["values"] == {"1": scores[0], "2": scores[1]}
    assert trial["value"] == pytest.approx(sum(scores) / 2)


@pytest.mark.parametrize(
    "space, argv, message",
    [
        ("train.lrr: uniform 0 1", [], "space.yaml: unknown recipe key 'train.lrr'; did you mean train.lr?"),
        ("train.lr: gaussian 0 1", [], "space.yaml: train.lr: unknown distribution 'gaussian 0 1'"),
        ("train.lr: loguniform 1e-3 1e-5", [], "space.yaml: train.lr: loguniform 0.001 1e-05: LOW must be below HIGH"),
        ("train.lr: loguniform 1e-5 1e-3", ["--trials", "0"], "--trials 0: must be at least 1"),
        ("train.lr: loguniform 1e-5 1e-3", ["--seeds", "0"], "--seeds 0: must be at least 1"),
        ("train.lr: loguniform 1e-5 1e-3", ["train.lrr=1"], "unknown recipe key 'train.lrr'"),
        ("train.lr: loguniform 1e-5 1e-3", ["output_dir=x"], "search: output_dir= is set by the command"),
        ("train.lr: loguniform 1e-5 1e-3", ["--storage", "sqlite:////no/such/folder/s.db"], "--storage sqlite:"),
        ("train.lr: loguniform 1e-5 1e-3", ["--storage", "nosuchdb://host/db"], "--storage nosuchdb://host/db: cannot"),
        ("train.lr: loguniform 1e-5 1e-3", ["--write-recipe", "Bad-Name"], "--write-recipe 'Bad-Name': use lower-case"),
        ("train.lr: loguniform 1e-5 1e-3", ["data.dir=/no/such/mrpc"], "data.dir=/no/such/mrpc: no such folder"),
        ("train.lr: loguniform 1e-5 1e-3", ["model.name=/no/such/model"], "/no/such/model"),
        (
            "train.lr: loguniform 1e-5 1e-4",
            ["--recipe-first"],
            "--recipe-first: the recipe's train.lr=0.001 is outside",
        ),
    ],
)
def test_search_bad_input_is_one_line_before_training(capsys, tmp_path, overrides, space, argv, message):
    path = tmp_path / "space.yaml"
    path.write_text(space + "\n")
    out = tmp_path / "search"
    replaced = {item.partition("=")[0] for item in argv if "=" in item}  # a bad data.dir= or model.name= wins
    overrides = [item for item in overrides if item.partition("=")[0] not in replaced]
    argv = ["search", "mrpc_minilm", "--space", str(path), "--output-dir", str(out), *argv]
    code = main([*argv, *([] if "--trials" in argv else ["--trials", "2"]), *overrides])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.slow  # end-to-end search: three tiny trainings
def test_recipe_first_tries_the_recipes_own_point_once(capsys, tmp_path, overrides, lr_space):
    """--recipe-first: the recipe's lr (1e-3 in the tiny overrides) is a trial of its own, marked as such; a
    second worker or a rerun with the flag finds it in the study and does not queue it again."""
    out = tmp_path / "search"
    argv = ["search", "mrpc_minilm", "--space", lr_space, "--output-dir", str(out), "--no-prune", "--recipe-first"]
    assert main([*argv, "--trials", "2", *overrides, "train.epochs=1"]) == 0, capsys.readouterr().err
    assert main([*argv, "--trials", "3", *overrides, "train.epochs=1"]) == 0, capsys.readouterr().err
    trials = json.loads((out / "search.json").read_text())["trials"]
    assert [t["state"] for t in trials] == ["complete"] * 3
    own = [t for t in trials if t.get("recipe_point")]
    assert len(own) == 1 and own[0]["number"] == 0 and own[0]["params"] == {"train.lr": 1e-3}
    assert all(t["params"]["train.lr"] != 1e-3 for t in trials[1:])


def test_a_study_of_another_search_is_refused(capsys, tmp_path, overrides, lr_space):
    out = tmp_path / "search"
    out.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="mrpc_minilm")
    study.set_user_attr("search", {"recipe": "mrpc_minilm", "overrides": [], "space": {"train.lr": "uniform 0 1"}})
    code = main(["search", "mrpc_minilm", "--trials", "1", "--space", lr_space, "--output-dir", str(out), *overrides])
    _, err = capsys.readouterr()
    assert code == 2
    assert "study 'mrpc_minilm' in sqlite:" in err and "was started with another overrides" in err
    assert len(study.trials) == 0


@pytest.mark.slow  # end-to-end search: several trainings
def test_search_tokenizes_only_in_its_trials(capsys, tmp_path, overrides, lr_space, monkeypatch):
    """One trial, one seed: one tokenization, the trial's own; the search reads the task without one."""
    from mrpc_finetune.data import tokenization

    tokenized = []
    tokenize_splits = tokenization.tokenize_splits

    def count(*args, **kwargs):
        tokenized.append(args[2].name)
        return tokenize_splits(*args, **kwargs)

    monkeypatch.setattr(tokenization, "tokenize_splits", count)
    out = tmp_path / "search"
    argv = ["search", "mrpc_minilm", "--trials", "1", "--space", lr_space, "--output-dir", str(out)]
    code = main([*argv, *overrides, "train.max_steps=2"])
    assert code == 0, capsys.readouterr().err
    assert tokenized == ["mrpc"]
    assert json.loads((out / "search.json").read_text())["metric"] == "eval_accuracy"


def test_search_takes_its_direction_from_the_tasks_rule(capsys, tmp_path, overrides, lr_space, monkeypatch):
    """The study's direction is the one that picks each trial's checkpoint: tasks.greater_is_better."""
    from mrpc_finetune.errors import UserError
    from mrpc_finetune.experiments import search
    from mrpc_finetune.recipe import tasks

    directions = []

    def record_direction(storage, settings, name, info, direction):
        directions.append((info["metric"], direction))
        raise UserError("stop before any trial")

    monkeypatch.setattr(search, "open_study", record_direction)
    monkeypatch.setattr(tasks, "greater_is_better", lambda metric: metric == "loss")  # the rule, turned around
    argv = ["search", "mrpc_minilm", "--trials", "1", "--space", lr_space, "--output-dir", str(tmp_path / "s")]
    for metric in ("accuracy", "loss"):
        assert main([*argv, *overrides, f"eval.metric={metric}"]) == 2
    capsys.readouterr()
    assert directions == [("eval_accuracy", "minimize"), ("eval_loss", "maximize")]


def study_with_trials(tmp_path, finished: int):
    """A study on a heartbeat storage (1 s, as ``--heartbeat 1``) holding ``finished`` complete trials."""
    from mrpc_finetune.experiments.search import _storage

    study = optuna.create_study(storage=_storage(f"sqlite:///{tmp_path / 'study.db'}", 1), direction="maximize")
    for value in range(finished):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=float(value)))
    return study


def running_elsewhere(study, beats: int, tell_after: bool):
    """A trial RUNNING as in another worker: its heartbeat sent every 0.5 s, ``beats`` times, then told (complete)
    or left to go stale (that worker was killed)."""
    import threading

    trial = study.ask()

    def worker():
        for _ in range(beats):
            study._storage.record_heartbeat(trial._trial_id)
            time.sleep(0.5)
        if tell_after:
            study.tell(trial, 1.0)

    thread = threading.Thread(target=worker, daemon=True)
    study._storage.record_heartbeat(trial._trial_id)
    thread.start()
    return thread


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test plays the other worker by hand
def test_a_worker_waits_for_the_trial_that_completes_the_study_then_stops(capsys, tmp_path):
    """2 finished + 1 running elsewhere = the 3 asked for: no fourth trial; wait until that one is told."""
    from mrpc_finetune.experiments.search import room_for_a_trial

    study = study_with_trials(tmp_path, finished=2)
    assert room_for_a_trial(study, 3, poll=0.2)  # 2 finished, none running: start one more
    thread = running_elsewhere(study, beats=4, tell_after=True)
    started = time.monotonic()
    assert not room_for_a_trial(study, 3, poll=0.2)
    assert time.monotonic() - started >= 1.5  # it waited for the other worker's trial
    thread.join()
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 3
    assert "2 trials finished and 1 running elsewhere make 3; waiting for them" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test plays the other worker by hand
def test_a_worker_takes_over_a_trial_whose_heartbeat_stopped(tmp_path):
    """The other worker dies mid-trial: once its heartbeat is 3 s old, the trial is failed and its point queued,
    and this worker has room for it instead of leaving the study one short."""
    from mrpc_finetune.experiments.search import room_for_a_trial

    study = study_with_trials(tmp_path, finished=2)
    running_elsewhere(study, beats=1, tell_after=False).join()
    assert room_for_a_trial(study, 3, poll=0.2)
    states = [t.state for t in study.get_trials()]
    assert states[2:] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
