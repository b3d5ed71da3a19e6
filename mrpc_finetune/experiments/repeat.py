"""``repeat``: one recipe trained under several seeds, each an ordinary run directory, then summed up.

mrpc-finetune repeat mrpc_minilm --seeds 5 data.dir=DIR
mrpc-finetune repeat mrpc_minilm --seed-list 1,5,9 --jobs 2 --output-dir runs/minilm-seeds data.dir=DIR

OUT (``--output-dir``, default ``runs/<recipe>-seeds``):
    seed-<s>/                 the run of seed s (``mrpc-finetune train`` layout)
    logs/seed-<s>.log         its output; a run directory only exists once the run's checks have passed
    summary.json / .md / .png every metric aggregated over the seeds
    ensemble/                 with ``--ensemble``: the finished seeds as one model (``mrpc-finetune ensemble``)

Each run is a child process ``python -m mrpc_finetune train RECIPE ... seed=<s> output_dir=OUT/seed-<s>``; with
``--jobs J`` J of them run at once, each with cores / J threads (``--threads T`` to choose). Rerunning the same command keeps the finished
seeds and resumes an interrupted one from its last complete checkpoint.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mrpc_finetune
from mrpc_finetune.errors import UserError, redact
from mrpc_finetune.experiments.ensemble import build_ensemble
from mrpc_finetune.experiments.folders import check_overrides, read_metrics, recipe_for_run
from mrpc_finetune.experiments.summary import build_summary, selection_note, write_summary
from mrpc_finetune.recipe.loading import load_recipe
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.run import rundir
from mrpc_finetune.run.model_card import write_model_card
from mrpc_finetune.train.preparation import best_metric_name, checked_task


@dataclass
class SeedRun:
    seed: int
    recipe: Recipe
    status: str
    """``finished``, ``interrupted`` (resumed) or ``new`` when the command started."""
    out: Path

    @property
    def folder(self) -> Path:
        return self.recipe.run_dir

    @property
    def log(self) -> Path:
        return self.out / "logs" / f"seed-{self.seed}.log"


def default_output_dir(recipe: Recipe) -> Path:
    return Path("runs") / f"{recipe.name}-seeds"


def repeat(
    recipe_arg: str,
    overrides: list[str],
    seeds: list[int],
    out: Path | None = None,
    jobs: int = 1,
    threads: int | None = None,
    ensemble: bool = False,
) -> dict:
    """Train the missing seeds, then write and return the summary (see the module docstring); with ``ensemble``,
    build ``OUT/ensemble`` over the finished seeds (``experiments/ensemble.py``)."""
    check_overrides(overrides, "repeat")
    for option, value in (("--jobs", jobs), ("--threads", threads)):
        if value is not None and value < 1:
            raise UserError(f"{option} {value}: must be at least 1")
    base = load_recipe(recipe_arg, overrides)
    out = out or default_output_dir(base)
    planned = [SeedRun(s, *recipe_for_run(base, s, out / f"seed-{s}"), out) for s in seeds]
    task = checked_task(base)  # data, tokenizer and model source checked before any training
    print(f"repeat {base.name}: seeds {', '.join(map(str, seeds))} -> {out}", flush=True)
    with _exclusive(out):
        failed = _train_all(recipe_arg, overrides, planned, jobs, threads)
        finished = [(r.seed, r.folder, m) for r in planned if (m := read_metrics(r.folder)) is not None]
        metric = f"eval_{best_metric_name(base, task)}"
        selection = selection_note(task.eval_splits[0], metric, chosen=base.eval.strategy != "no")
        summary = build_summary(recipe=recipe_arg, overrides=overrides, seeds=seeds, runs=finished, selection=selection)
        if finished:
            for path in write_summary(out, summary):
                print(f"wrote {path}")
            _add_summary_to_model_cards(finished, summary)
        if ensemble and finished:
            build_ensemble([folder for _, folder, _ in finished], out / "ensemble")
    if failed:
        first = failed[0]
        raise UserError(
            f"{len(failed)} of {len(seeds)} seeds failed; seed {first.seed}: {_last_line(first.log)} "
            f"(log {first.log}); the summary holds the {len(finished)} finished"
        )
    return summary


def _add_summary_to_model_cards(finished: list[tuple[int, Path, dict]], summary: dict) -> None:
    """Each seed's ``model/README.md`` gets the spread across all the seeds beside its own numbers."""
    for _, folder, metrics in finished:
        run = rundir.RunDir(folder)
        if run.run_info.is_file() and run.model.is_dir():
            info = json.loads(run.run_info.read_text())
            recipe = load_recipe(str(run.recipe_file))
            write_model_card(run.model, recipe=recipe, metrics=metrics, run_info=info, summary=summary)


def _train_all(recipe_arg, overrides, planned: list[SeedRun], jobs: int, threads: int | None) -> list[SeedRun]:
    """Run the unfinished seeds, ``jobs`` at a time; returns the ones that failed."""
    for run in planned:
        if run.status == "finished":
            print(f"seed {run.seed}: finished before ({run.folder}), kept", flush=True)
    queue = [run for run in planned if run.status != "finished"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = threads or max(1, cores // jobs)
    if queue:
        print(f"{len(queue)} to train, {min(jobs, len(queue))} at a time, {threads} thread(s) each", flush=True)
    running: dict[subprocess.Popen, SeedRun] = {}
    failed = []
    try:
        while queue or running:
            while queue and len(running) < jobs:
                run = queue.pop(0)
                running[_start(recipe_arg, overrides, run, threads)] = run
            time.sleep(0.2)
            for process in [p for p in running if p.poll() is not None]:
                run = running.pop(process)
                if process.returncode == 0:
                    print(f"seed {run.seed}: done, {_scores(read_metrics(run.folder))}", flush=True)
                else:
                    print(f"seed {run.seed}: failed (exit {process.returncode}), see {run.log}", flush=True)
                    failed.append(run)
    except KeyboardInterrupt:
        for process in running:
            process.terminate()
        for process in running:
            process.wait()
        print("interrupted: rerun the same command to continue (finished seeds are kept)", file=sys.stderr)
        raise SystemExit(130) from None
    return failed


def _start(recipe_arg: str, overrides: list[str], run: SeedRun, threads: int) -> subprocess.Popen:
    """``python -m mrpc_finetune train`` for one seed, its output appended to its log."""
    command = [sys.executable, "-m", "mrpc_finetune", "train", recipe_arg, *overrides]
    command += [f"seed={run.seed}", f"output_dir={run.folder}"] + (["resume=true"] if run.recipe.resume else [])
    package_root = str(Path(mrpc_finetune.__file__).resolve().parent.parent)  # the children run this same code
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    action = "resuming" if run.recipe.resume else "training"
    print(f"seed {run.seed}: {action} -> {run.folder} (log {run.log})", flush=True)
    run.log.parent.mkdir(parents=True, exist_ok=True)
    with run.log.open("a") as log:
        log.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {redact(' '.join(command))}\n")
        log.flush()
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGKILL when the parent dies, so a killed ``repeat`` leaves no
    orphan still writing into a run directory that the next ``repeat`` will resume."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class _exclusive:
    """Hold ``OUT/.repeat.lock`` so a second ``repeat`` on the same folder stops instead of training beside us."""

    def __init__(self, out: Path):
        self.path = out / ".repeat.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise UserError(f"{self.path.parent} is in use by another repeat command; wait for it to end") from None

    def __exit__(self, *exc):
        self.handle.close()  # closing releases the lock (the kernel also releases it if we are killed)


def _scores(metrics: dict | None) -> str:
    from mrpc_finetune.experiments.stats import is_number, is_score

    shown = {k: v for k, v in (metrics or {}).items() if is_score(k) and is_number(v) and "loss" not in k}
    return "  ".join(f"{k}={v:.4f}" for k, v in shown.items()) or "no metrics.json"


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
