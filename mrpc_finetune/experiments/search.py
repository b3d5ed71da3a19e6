"""``search``: hyper-parameter search with Optuna: TPE sampling, pruning from per-epoch dev scores, resumable.

mrpc-finetune search mrpc_minilm --trials 20 data.dir=DIR
mrpc-finetune search mrpc_minilm --trials 20 --seeds 2 --space space.yaml --write-recipe minilm_tuned data.dir=...
mrpc-finetune search mrpc_minilm --trials 60 --storage postgresql://USER:PASSWORD@HOST/DB data.dir=...  # per machine

PostgreSQL needs the driver: ``pip install -e ".[postgres]"`` (psycopg). The password shows as ``***`` wherever the
command or the URL is written down (run_info.json, model cards, search.json, messages).

OUT (``--output-dir``, default ``runs/<recipe>-search``):
    study.db                  the Optuna study (SQLite), unless ``--storage`` names another database
    trial-<n>/seed-<s>/       each trial's runs (checkpoints removed once a run ends; metrics, recipe, TensorBoard kept)
    search.json               best point and every trial; optimization_history.png

The objective is the recipe's checkpoint metric (``eval.metric``, else the task's main metric; a loss is minimised)
on the validation split, averaged over the seeds (``--seeds K``). The pruner (median of the trials before, at
the same step) watches each evaluation of a trial's first seed. A trial whose training loss became non-finite
counts as pruned. ``--trials N`` counts finished trials (complete or pruned).

Resume: every trial sends a heartbeat to the storage; a trial left RUNNING by a killed worker stops beating, is
marked failed after 3 heartbeats and queued again with its parameters (Optuna's
``RetryHeartbeatStaleTrialCallback``), and the worker that picks it up resumes its run directories from their last
checkpoint. Safe with several workers on one study: each only ever fails trials whose heartbeat stopped.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from mrpc_finetune.errors import UserError, redact
from mrpc_finetune.experiments.folders import check_overrides, read_metrics, recipe_for_run
from mrpc_finetune.experiments.search_report import reporter, results, write_outputs
from mrpc_finetune.experiments.space import load_space, recipe_point
from mrpc_finetune.recipe.loading import load_recipe
from mrpc_finetune.recipe.new_recipe import new_recipe_path
from mrpc_finetune.recipe.overrides import apply_overrides
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.run.rundir import RunDir
from mrpc_finetune.train import train_with_loop
from mrpc_finetune.train.preparation import best_metric_name, checked_task, greater_is_better


@dataclasses.dataclass
class SearchSettings:
    recipe: str
    overrides: list[str]
    trials: int
    """Finished (complete or pruned) trials to reach; a rerun goes on until the study has them."""
    seeds: list[int]
    out: Path | None = None
    storage: str | None = None
    """Any SQLAlchemy URL; None: ``sqlite:///OUT/study.db``."""
    space_file: str | None = None
    study: str | None = None
    heartbeat: int = 10
    sampler_seed: int = 0
    prune_after: int | None = 3
    """Finished trials before the pruner judges others; None turns pruning off."""
    write_recipe: str | None = None
    recipe_first: bool = False
    """Queue the recipe's own values of the searched keys as a trial (once per study), so that the search says
    whether any point it draws beats what the recipe already had."""


SEED_STEP = 1_000_003
"""A resumed worker's sampler seed moves by this per trial in the study: far from any neighbouring --sampler-seed."""


def search(settings: SearchSettings) -> dict[str, Any]:
    """Run the search to ``settings.trials`` finished trials; write ``search.json`` and the history plot."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    _check_settings(settings)
    base = load_recipe(settings.recipe, settings.overrides)
    dimensions, source = load_space(settings.recipe, settings.space_file, base)
    own_point = recipe_point(dimensions, base) if settings.recipe_first else None
    out = settings.out or Path("runs") / f"{base.name}-search"
    url = settings.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    storage = _storage(url, settings.heartbeat) if settings.storage else None  # a bad --storage, before any loading
    task = checked_task(base)  # data, tokenizer and model source checked before any folder exists
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)  # the default store, a SQLite file in the search folder
        storage = _storage(url, settings.heartbeat)
    metric = f"eval_{best_metric_name(base, task)}"
    study_info = {
        "recipe": settings.recipe,
        "overrides": list(settings.overrides),
        "space": {d.key: str(d) for d in dimensions},
        "seeds": settings.seeds,
        "metric": metric,
    }
    direction = "maximize" if greater_is_better(base, task) else "minimize"  # as each trial picks its checkpoint
    study = open_study(storage, settings, base.name, study_info, direction)
    if own_point is not None:  # skipped where a trial (of any worker, any state) already has these values
        study.enqueue_trial(own_point, user_attrs={"recipe_point": True}, skip_if_exists=True)
    print(f"search {base.name}: {metric} ({study.direction.name.lower()}) over {source} -> {out}", flush=True)
    objective = Objective(base, dimensions, settings.seeds, out, metric)
    storage_label = redact(url) if settings.storage else "sqlite: study.db in this folder"
    if room_for_a_trial(study, settings.trials, poll=settings.heartbeat):
        report = reporter(out, storage_label, metric, study_info)

        def stop_at_target(study, _trial) -> None:  # after the report: the finished trial's line comes first
            if not room_for_a_trial(study, settings.trials, poll=settings.heartbeat):
                study.stop()

        try:
            study.optimize(objective, callbacks=[report, stop_at_target], gc_after_trial=True)
        except KeyboardInterrupt:
            print("interrupted: rerun the same command to continue the search", file=sys.stderr)
            raise SystemExit(130) from None
    result = results(study, storage_label, metric, study_info)
    write_outputs(study, out, result, settings.write_recipe)
    return result


def room_for_a_trial(study, target: int, poll: float) -> bool:
    """Whether this worker should start a trial: True while the finished trials plus those other workers are
    running fall short of ``target``. Where they reach it, wait until those trials finish (False: the study is
    done) or their heartbeat stops (they are failed and queued again: True, this worker runs them). So several
    workers stop at ``target`` finished trials (one more only where two start trials in the same instant), and
    none leaves the study short by stopping while another's trial may still die."""
    import optuna
    from optuna.trial import TrialState

    said = False
    while True:
        with warnings.catch_warnings():  # experimental since Optuna 2.9, as the heartbeat storage it serves
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, its point queued (WAITING)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
        running = states.count(TrialState.RUNNING)
        if finished >= target:
            return False
        if finished + running < target:
            return True
        if not said:
            print(
                f"search: {finished} trials finished and {running} running elsewhere make {target}; waiting for them",
                flush=True,
            )
            said = True
        time.sleep(poll)


def _check_settings(settings: SearchSettings) -> None:
    check_overrides(settings.overrides, "search")
    if settings.trials < 1:
        raise UserError(f"--trials {settings.trials}: must be at least 1")
    if settings.heartbeat < 1:
        raise UserError(f"--heartbeat {settings.heartbeat}: must be at least 1 second")
    if settings.prune_after is not None and settings.prune_after < 0:
        raise UserError(f"--prune-after {settings.prune_after}: must be 0 or more")
    if settings.write_recipe:
        new_recipe_path(settings.write_recipe, "--write-recipe")


def open_study(storage, settings: SearchSettings, name: str, info: dict[str, Any], direction: str):
    """Create or load the study (``direction``: maximize or minimize); refuse one started for another search."""
    import optuna

    study = optuna.create_study(
        storage=storage, study_name=settings.study or name, direction=direction, load_if_exists=True
    )
    recorded = study.user_attrs.get("search")
    if recorded is None:
        study.set_user_attr("search", info)
    elif recorded != info:
        changed = next(key for key in info if recorded.get(key) != info[key])
        raise UserError(
            f"study {study.study_name!r} in {redact(storage.url)} was started with another {changed} "
            f"({recorded.get(changed)!r}); rerun that search, or use another --output-dir / --study"
        )
    # Seeded TPE; a resumed (or second) worker draws from seed + a large step per trial so far, so it does not repeat
    # their points, nor those of a worker whose --sampler-seed is next to its own (seed + trials made workers 1 and 2
    # draw the same points once worker 2 had seen one trial).
    startup = min(10, max(1, settings.trials // 2))
    seed = settings.sampler_seed + SEED_STEP * len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed % 2**32, n_startup_trials=startup)
    prune = settings.prune_after is not None
    study.pruner = optuna.pruners.MedianPruner(settings.prune_after) if prune else optuna.pruners.NopPruner()
    return study


def _storage(url: str, heartbeat: int):
    """The study's database, with heartbeats and the retry of trials whose heartbeat stopped; connected now."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    timeout = {"timeout": 60} if url.startswith("sqlite") else {"connect_timeout": 10}
    for attempt in range(6):
        try:
            return RDBStorage(
                url,
                engine_kwargs={"connect_args": timeout},
                heartbeat_interval=heartbeat,
                grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=3, inherit_intermediate_values=True
                ),
            )
        except Exception as err:  # SQLAlchemy's errors, a missing database driver, a malformed URL
            if attempt < 5 and _created_meanwhile(err):
                time.sleep(0.1 + random.random() * attempt)
                continue
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if isinstance(err, ImportError):  # RDBStorage's own words name no package
                extra = ': pip install -e ".[postgres]"' if url.startswith("postgres") else ""
                reason = f"the driver for {url.partition(':')[0]} is not installed{extra}"
            raise UserError(redact(f"--storage {url}: cannot open it ({reason})")) from None


def _created_meanwhile(err: Exception) -> bool:
    """Workers started at once on an empty database race to create Optuna's tables: the losers' CREATE fails
    (PostgreSQL: a unique violation in pg_type; SQLite: "table ... already exists"); opening again finds them."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    return isinstance(err, IntegrityError) or (
        isinstance(err, (OperationalError, ProgrammingError)) and "already exists" in str(err)
    )


class Objective:
    """One trial: the sampled point on every seed, in ``OUT/trial-<n>/seed-<s>``; the mean of the metric."""

    def __init__(self, base: Recipe, dimensions, seeds: list[int], out: Path, metric: str):
        self.base, self.dimensions, self.seeds, self.out, self.metric = base, dimensions, seeds, out, metric

    def __call__(self, trial) -> float:
        params = {d.key: d.suggest(trial) for d in self.dimensions}
        recipe = apply_overrides(self.base, [f"{key}={value}" for key, value in params.items()])
        folder = self.out / f"trial-{original_number(trial)}"
        trial.set_user_attr("dir", str(folder))
        values = {}
        for position, seed in enumerate(self.seeds):
            run_recipe, status = recipe_for_run(recipe, seed, folder / f"seed-{seed}")
            try:
                metrics = read_metrics(run_recipe.run_dir) or self._train(run_recipe, trial, watch=position == 0)
            except KeyboardInterrupt:  # Optuna marks the trial failed: queue its point again, to resume it
                trial.study.enqueue_trial(params, user_attrs={"retry_of": original_number(trial)})
                raise
            values[str(seed)] = metrics[self.metric]
            trial.set_user_attr("values", values)
        return statistics.fmean(values.values())

    def _train(self, recipe: Recipe, trial, watch: bool) -> dict[str, Any]:
        import optuna

        def report(metrics: dict, step: int) -> None:
            trial.report(metrics[self.metric], step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}: {self.metric}={metrics[self.metric]:.4f}")

        run = RunDir(recipe.run_dir)
        try:
            metrics = train_with_loop(recipe, on_evaluate=report if watch else None)
        except optuna.TrialPruned:
            shutil.rmtree(run.checkpoints, ignore_errors=True)
            raise
        except UserError as err:
            if not run.recipe_file.is_file():
                raise  # bad input found before training: stop the search
            trial.set_user_attr("stopped", str(err))  # e.g. a non-finite loss: this point is hopeless
            shutil.rmtree(run.checkpoints, ignore_errors=True)
            raise optuna.TrialPruned(f"stopped in training: {err}") from None
        shutil.rmtree(run.checkpoints, ignore_errors=True)  # only a resume needs them; the model and metrics stay
        return metrics


def original_number(trial) -> int:
    """The trial number whose run directories this trial continues: its own, or the one it retries."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)  # system attrs
    retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    retried = frozen.user_attrs.get("retry_of") if retried is None else retried
    return trial.number if retried is None else retried
